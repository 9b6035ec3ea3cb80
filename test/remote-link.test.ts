// A JavaScript thread reaches a remote store only through its link: a library-owned thread
// holds the PostgreSQL connection; the synchronous calls block on a shared cell, the
// asynchronous ones await, and failures arrive as coded errors — RemoteUnavailableError
// when nothing reached the server, ConflictError with its facts, and a commit cut off on
// its way is looked up by its id on a new connection.
import { randomBytes, randomUUID } from 'node:crypto'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Client } from 'pg'
import { ConflictError, RemoteUnavailableError } from '../src/index'
import type { CommitPlan } from '../src/remote/commit-plan'
import { RemoteLink } from '../src/remote/remote-link'
import { throwsCode } from './helpers/expect'
import { testPostgres } from './helpers/postgres'

const found = testPostgres()
const links: RemoteLink[] = []
let database = ''

async function link(schema: string, url?: string): Promise<RemoteLink> {
  if (!database && 'server' in found) database = await found.server.freshDatabase()
  const l = new RemoteLink(url ?? database, { schema, connectTimeoutMs: 2000, callTimeoutMs: 20_000 })
  links.push(l)
  return l
}

const schemaName = () => `l_${randomBytes(5).toString('hex')}`
const body = Buffer.from('{}')

function createPlan(name: string): CommitPlan {
  return { commitId: randomUUID(), snapshot: 0, blocks: [], records: [{ name, id: 0, expectedSerial: 0, rows: 8, rowBytes: 8, blockBytes: 32, body }] }
}

function blockPlan(snapshot: number, id: number, index: number, value: number): CommitPlan {
  return { commitId: randomUUID(), snapshot, records: [], blocks: [{ array: id, index, data: new Uint8Array(32).fill(value) }] }
}

if ('skipped' in found) {
  console.log(`remote-link: skipped (${found.skipped})`)
  test.skip('the link to a remote store', () => undefined)
} else {
  test.after(async () => {
    for (const l of links) await l.close()
  })

  test('synchronous calls from this thread: open, commit, catch up; a conflict arrives with its facts', async () => {
    const schema = schemaName()
    const a = await link(schema)
    const b = await link(schema)
    const id = a.openSync()
    assert.is(b.openSync(), id, 'every machine sees one store')
    const made = a.commitSync(createPlan('x'))
    assert.is(made.status, 'committed')
    const arrayId = made.status === 'committed' ? made.ids[0] : 0
    const landed = a.commitSync(blockPlan(1, arrayId, 1, 5))
    assert.ok(landed.status === 'committed')
    assert.equal({ ...landed, commit: undefined }, { status: 'committed', serial: 2, ids: [], lengths: [], commit: undefined })
    assert.is(landed.commit.serial, 2)
    assert.equal(landed.commit.changes.get(arrayId)?.blocks, [[1, 1]], 'the change set the commits row records')
    const err = throwsCode(() => b.commitSync(blockPlan(1, arrayId, 1, 6)), ConflictError, 'TXA_CONFLICT')
    assert.is(err.serial, 2)
    assert.equal(err.blocks, [[1, 1]])
    assert.equal(err.rows, [[4, 7]])
    const seen = b.changesSinceSync(0)
    assert.is(seen.head, 2)
    assert.equal(seen.commits.map((c) => c.serial), [1, 2])
    assert.equal(Array.from(seen.blocks[0].data ?? []), new Array(32).fill(5))
  })

  test('asynchronous calls answer the same, and sync and async calls can interleave', async () => {
    const schema = schemaName()
    const a = await link(schema)
    await a.open()
    const pending = a.commit(createPlan('p'))
    const head = a.changesSinceSync(0).head  // answered while the async commit may be in flight
    const made = await pending
    assert.is(made.status, 'committed')
    assert.ok(head === 0 || head === 1)
    const seen = await a.changesSince(0)
    assert.equal(seen.records.map((r) => r.name), ['p'])
    const arrayId = seen.records[0].id
    await a.commit(blockPlan(1, arrayId, 0, 1))
    const err = await a.commit(blockPlan(1, arrayId, 0, 2)).catch((e: unknown) => e)
    assert.instance(err, ConflictError)
  })

  test('no server at the address: RemoteUnavailableError at open, nothing hangs', async () => {
    const url = new URL(database || 'postgres://postgres@127.0.0.1/x')
    url.port = '1'  // nothing listens on port 1
    const l = await link(schemaName(), url.toString())
    throwsCode(() => l.openSync(), RemoteUnavailableError, 'TXA_REMOTE_UNAVAILABLE')
    const err = await l.changesSince(0).catch((e: unknown) => e)
    assert.instance(err, RemoteUnavailableError)
  })

  test('a commit cut off by the server is looked up by its id: it did not land, and never will', async () => {
    const schema = schemaName()
    const a = await link(schema)
    a.openSync()
    const made = a.commitSync(createPlan('k'))
    const arrayId = made.status === 'committed' ? made.ids[0] : 0
    const admin = new Client({ connectionString: database })
    admin.on('error', () => undefined)
    await admin.connect()
    try {
      // Hold the array's lock so the commit waits inside the server, then end its backend.
      const holder = new Client({ connectionString: database })
      holder.on('error', () => undefined)
      await holder.connect()
      await holder.query('BEGIN')
      await holder.query(`SELECT 1 FROM ${schema}.arrays WHERE id = $1 FOR UPDATE`, [arrayId])
      const plan = blockPlan(1, arrayId, 0, 3)
      const outcome = a.commit(plan)
      let pid = 0
      for (let i = 0; i < 500 && !pid; i++) {
        const { rows } = await admin.query(`SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`)
        pid = rows[0]?.pid ?? 0
        if (!pid) await new Promise((r) => setTimeout(r, 10))
      }
      assert.ok(pid, 'the commit waited inside the server')
      await admin.query('SELECT pg_terminate_backend($1)', [pid])
      assert.equal(await outcome, { status: 'abandoned' })
      await holder.query('COMMIT')
      await holder.end()
      assert.equal(a.resolveSync(plan.commitId, plan.snapshot), { status: 'abandoned' })
      assert.is(a.changesSinceSync(1).head, 1, 'nothing landed')
      // The link reconnected by itself: the next commit goes through.
      assert.equal(a.commitSync(blockPlan(1, arrayId, 0, 4)).status, 'committed')
    } finally {
      await admin.end()
    }
  })

  const serverTest = found.server.owned ? test : test.skip
  serverTest('the server stopped and started again: calls fail with RemoteUnavailableError meanwhile, then work', async () => {
    const schema = schemaName()
    const a = await link(schema)
    a.openSync()
    const made = a.commitSync(createPlan('r'))
    const arrayId = made.status === 'committed' ? made.ids[0] : 0
    found.server.stop('immediate')
    try {
      throwsCode(() => a.changesSinceSync(0), RemoteUnavailableError, 'TXA_REMOTE_UNAVAILABLE')
      throwsCode(() => a.commitSync(blockPlan(1, arrayId, 0, 1)), RemoteUnavailableError, 'TXA_REMOTE_UNAVAILABLE')
    } finally {
      found.server.start()
    }
    const seen = a.changesSinceSync(0)
    assert.is(seen.head, 1, 'the commit before the crash is there; the refused one is not')
    assert.equal(a.commitSync(blockPlan(1, arrayId, 0, 2)).status, 'committed')
  })
}

test.run()
