// A machine killed (SIGKILL) while its commit is in flight: the commit is one PostgreSQL
// transaction, so it is visible whole or not at all, and any other machine can decide
// which by the commit id.
import { randomBytes, randomUUID } from 'node:crypto'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Client } from 'pg'
import { callCommit, resolveCommit } from '../src/remote/commit-call'
import { readChangesSince } from '../src/remote/changes-since'
import { install } from '../src/remote/schema'
import { startChild } from './helpers/child'
import { testPostgres } from './helpers/postgres'
import { someoneWaitsForLock } from './helpers/remote-stores'

const found = testPostgres()

if ('skipped' in found) {
  console.log(`remote-kill: skipped (${found.skipped})`)
  test.skip('a machine killed mid-commit', () => undefined)
} else {
  test('kill -9 of a machine whose commit waits inside the server: the commit lands whole, and its id says so', async () => {
    const url = await found.server.freshDatabase()
    const schema = `k_${randomBytes(5).toString('hex')}`
    const admin = new Client({ connectionString: url })
    await admin.connect()
    try {
      await install(admin, schema)
      const body = Buffer.from('{}')
      const made = await callCommit(admin, {
        commitId: randomUUID(), snapshot: 0, blocks: [],
        records: [{ name: 'k', id: 0, expectedSerial: 0, rows: 0, rowBytes: 8, blockBytes: 64, body }],
      }, schema)
      const id = made.status === 'committed' ? made.ids[0] : 0
      // The commit: 40 appended rows (5 blocks) and a record change of another kind: all or nothing.
      const commitId = randomUUID()
      const rows = Buffer.alloc(40 * 8, 7)
      const plan = {
        commitId, snapshot: 1, blocks: [],
        records: [{ name: 'k', id, expectedSerial: 1, rows: 0, rowBytes: 8, blockBytes: 64, body: body.toString('base64'), append: rows.toString('base64') }],
      }
      await admin.query('BEGIN')
      await admin.query(`SELECT 1 FROM ${schema}.arrays WHERE id = $1 FOR UPDATE`, [id])
      const child = startChild('remote-commit.child.ts', [url, schema, JSON.stringify(plan)])
      const watcher = new Client({ connectionString: url })
      await watcher.connect()
      assert.ok(await someoneWaitsForLock(watcher, 1000), 'the commit reached the server and waits for the lock')
      const exited = new Promise<NodeJS.Signals | null>((res) => child.on('exit', (_code, signal) => res(signal)))
      child.kill('SIGKILL')
      assert.is(await exited, 'SIGKILL')
      await admin.query('COMMIT')
      const decided = await resolveCommit(watcher, commitId, plan.snapshot, schema)
      const seen = await readChangesSince(watcher, 1, schema)
      if (decided.status === 'committed') {
        assert.is(seen.head, decided.serial)
        assert.is(seen.records[0].rows, 40, 'all the rows')
        assert.is(seen.blocks.length, 5, 'all the blocks')
        assert.ok(seen.blocks.every((b) => b.data?.every((v) => v === 7)))
      } else {
        assert.is(seen.head, 1, 'nothing of it')
        assert.equal(seen.blocks, [])
      }
      await watcher.end()
    } finally {
      await admin.end().catch(() => undefined)
    }
  })
}

test.run()
