// Retention of a remote store's history against the handles reading it: every handle keeps
// a row in the clients table (its snapshot and a heartbeat), collect() keeps every block
// version a live handle's snapshot reads, and dead handles (closed, silent past the
// timeout, killed) hold nothing. Also: commit ids older than keepIds are "unknown", never
// "not committed"; a commit too large for one call is refused before anything is sent;
// and the schema's upgrades (format 3 to 4, server functions of another revision).
import { randomUUID } from 'node:crypto'
import { Client } from 'pg'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  CommitOutcomeForgottenError, CommitOutcomeUnknownError, open, RemoteUnavailableError, type Store, TooLargeError,
} from '../src/index'
import { callCommit, resolveCommit } from '../src/remote/commit-call'
import { commitSizeLimit } from '../src/remote/commit-plan'
import { collectHistory } from '../src/remote/retention'
import { FUNCTIONS_REVISION, functionsStamp, install, REMOTE_FORMAT } from '../src/remote/schema'
import { startChild } from './helpers/child'
import { rejectsCode, throwsCode } from './helpers/expect'
import { testPostgres } from './helpers/postgres'
import { remoteStores, someoneWaitsForLock } from './helpers/remote-stores'
import { tempDir } from './helpers/tmp'

const found = testPostgres()
const BLOCK = 4096
const PER_BLOCK = BLOCK / 4  // int32 elements per block
const BLOCKS = 4

if ('skipped' in found) {
  console.log(`remote-retention: skipped (${found.skipped})`)
  test.skip('retention against live handles', () => undefined)
} else {
  const server = found.server
  const remoteStore = remoteStores(server, 'r')

  async function connect(url: string): Promise<Client> {
    const client = new Client({ connectionString: url })
    client.on('error', () => undefined)
    await client.connect()
    return client
  }

  /** Every value of `x` (int32) is `value`. */
  function uniform(x: Int32Array, value: number): boolean {
    return x.every((v) => v === value)
  }

  /** Writes `value` into every element of array 'x' on `s` and commits. */
  function fill(s: Store, value: number): void {
    s.array('x', 'int32').write(null, new Int32Array(BLOCKS * PER_BLOCK).fill(value))
    s.commit()
  }

  /** The clients rows, oldest snapshot first. */
  async function clients(admin: Client, schema: string): Promise<{ serial: number; about: string }[]> {
    const { rows } = await admin.query(`SELECT serial::int, about FROM ${schema}.clients ORDER BY serial, about`)
    return rows
  }

  /** Waits (up to 10 s) until `ok` holds of the clients rows; returns them. */
  async function clientsUntil(admin: Client, schema: string, ok: (rows: { serial: number; about: string }[]) => boolean, what: string) {
    const end = Date.now() + 10_000
    for (;;) {
      const rows = await clients(admin, schema)
      if (ok(rows)) return rows
      if (Date.now() > end) assert.unreachable(`${what}; the rows: ${JSON.stringify(rows)}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  /** How many versions of array x's blocks the server holds with serial `serial`. */
  async function versionsAt(admin: Client, schema: string, serial: number): Promise<number> {
    const { rows } = await admin.query(`SELECT count(*)::int AS n FROM ${schema}.blocks WHERE serial = $1`, [serial])
    return rows[0].n
  }

  /** A store whose machine A committed 'x' (BLOCKS blocks of 1s) as serial 1. */
  async function storeWithX() {
    const store = await remoteStore()
    const a = store.machine()
    a.create('x', { dtype: 'int32', shape: [BLOCKS * PER_BLOCK], blockBytes: BLOCK })
    fill(a, 1)
    const lazy = (cache = tempDir()) => open(cache, { remote: store.url, remoteSchema: store.schema, remoteBlocks: 'lazy' })
    return { ...store, a, lazy, admin: await connect(store.url) }
  }

  test('a lazy handle holding an old snapshot keeps reading the blocks other machines superseded after collect()', async () => {
    const { schema, a, lazy, admin } = await storeWithX()
    try {
      const b = lazy()
      assert.is(b.serial, 1)
      await clientsUntil(admin, schema, (rows) => rows.length === 2 && rows.every((r) => r.serial === 1), 'both handles registered at serial 1')
      fill(a, 2)
      fill(a, 3)
      const collected = await collectHistory(admin, { keepCommits: 0 }, schema)
      assert.is(collected.horizon, 1, "held at B's snapshot, not moved to the head (3)")
      assert.is(collected.versions, 0)
      assert.is(await versionsAt(admin, schema, 1), BLOCKS, 'the versions B reads are kept')
      const x = b.array('x', 'int32')
      assert.ok(uniform(x.read().data as Int32Array, 1), "B reads its snapshot's blocks, fetched after the collection")
      assert.is(b.stats().blocksFetched, BLOCKS)
      b.refresh()
      assert.is(b.serial, 3)
      assert.ok(uniform(x.read().data as Int32Array, 3))
      await clientsUntil(admin, schema, (rows) => rows.every((r) => r.serial === 3), 'the rows follow the handles to serial 3')
      const after = await collectHistory(admin, { keepCommits: 0 }, schema)
      assert.is(after.horizon, 3)
      assert.is(after.versions, 2 * BLOCKS, 'the versions of serials 1 and 2 go once no snapshot reads them')
      b.close()
    } finally {
      a.close()
      await admin.end()
    }
  })

  test('a handle that closes deletes its row: collect() then removes the versions it held', async () => {
    const { schema, a, lazy, admin } = await storeWithX()
    try {
      const b = lazy()
      fill(a, 2)
      await clientsUntil(admin, schema, (rows) => rows.map((r) => r.serial).join() === '1,2', 'the rows at the snapshots of B (1) and A (2)')
      assert.is((await collectHistory(admin, { keepCommits: 0 }, schema)).versions, 0, 'B holds serial 1')
      b.close()
      await clientsUntil(admin, schema, (rows) => rows.length === 1, "B's row deleted by close()")
      const collected = await collectHistory(admin, { keepCommits: 0 }, schema)
      assert.is(collected.horizon, 2)
      assert.is(collected.versions, BLOCKS)
      assert.is(await versionsAt(admin, schema, 1), 0)
    } finally {
      a.close()
      await admin.end()
    }
  })

  test('a handle silent for longer than clientTimeoutMs holds nothing; its read says so, and its row returns when it moves', async () => {
    const { schema, a, lazy, admin } = await storeWithX()
    try {
      const b = lazy()
      fill(a, 2)
      await clientsUntil(admin, schema, (rows) => rows.map((r) => r.serial).join() === '1,2', 'the rows at the snapshots of B (1) and A (2)')
      assert.is((await collectHistory(admin, { keepCommits: 0, clientTimeoutMs: 60_000 }, schema)).horizon, 1, 'live within the default timeout')
      await new Promise((r) => setTimeout(r, 300))
      const collected = await collectHistory(admin, { keepCommits: 0, clientTimeoutMs: 100 }, schema)
      assert.is(collected.clients, 2, 'both rows are older than 100 ms (handles beat every 10 s)')
      assert.is(collected.horizon, 2)
      assert.is(collected.versions, BLOCKS)
      const x = b.array('x', 'int32')
      const e = throwsCode(() => x.read(), RemoteUnavailableError, 'TXA_REMOTE_UNAVAILABLE')
      assert.match(e.message, /no longer on the server/)
      b.refresh()
      assert.ok(uniform(x.read().data as Int32Array, 2), 'after refresh() B reads the newest versions')
      await clientsUntil(admin, schema, (rows) => rows.some((r) => r.serial === 2), "B's row written again by its move")
      b.close()
    } finally {
      a.close()
      await admin.end()
    }
  })

  test('a client process killed (kill -9) holds the horizon until its heartbeat is older than the timeout, then not', async () => {
    const { url, schema, a, admin } = await storeWithX()
    try {
      const child = startChild('retention-client.child.ts', [url, schema, tempDir()])
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)))
      let out = ''
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString()
          if (/holding 1\b/.test(out)) resolve()
        })
        child.on('exit', () => reject(new Error(`the child ended: ${out}`)))
      })
      const mine = `:${child.pid}`
      fill(a, 2)
      await clientsUntil(admin, schema, (rows) => rows.some((r) => r.about.endsWith(mine) && r.serial === 1) &&
        rows.some((r) => !r.about.endsWith(mine) && r.serial === 2), "the child's row at serial 1, A's at 2")
      child.kill('SIGKILL')
      assert.is(await exited, 'SIGKILL')
      const held = await collectHistory(admin, { keepCommits: 0 }, schema)
      assert.is(held.horizon, 1, "the killed client's row still holds within the timeout")
      assert.is(await versionsAt(admin, schema, 1), BLOCKS)
      await new Promise((r) => setTimeout(r, 600))
      const collected = await collectHistory(admin, { keepCommits: 0, clientTimeoutMs: 500 }, schema)
      assert.ok(collected.clients >= 1)
      assert.not.ok((await clients(admin, schema)).some((r) => r.about.endsWith(mine)), "the killed client's row is gone")
      assert.is(collected.horizon, 2)
      assert.is(await versionsAt(admin, schema, 1), 0, 'what only the killed client read is collected')
    } finally {
      a.close()
      await admin.end()
    }
  })

  test('a commit id collected by retention (keepIds) is looked up as unknown, never as not committed', async () => {
    const url = await server.freshDatabase()
    const schema = `r_${randomUUID().slice(0, 8)}`
    const admin = await connect(url)
    try {
      await install(admin, schema)
      const body = Buffer.from('{}')
      const landed = { commitId: randomUUID(), snapshot: 0, blocks: [], records: [{ name: 'k', id: 0, expectedSerial: 0, rows: 0, rowBytes: 8, blockBytes: 4096, body }] }
      const made = await callCommit(admin, landed, schema)
      assert.is(made.status, 'committed')
      assert.equal(await resolveCommit(admin, landed.commitId, 0, schema), { status: 'committed', serial: 1 }, 'kept: the answer is definite')
      // The answer was lost and the client stays in doubt for longer than keepIds.
      const collected = await collectHistory(admin, { keepIdsMs: 0 }, schema)
      assert.is(collected.ids, 1)
      assert.equal(await resolveCommit(admin, landed.commitId, 0, schema), { status: 'unknown' })
      assert.equal(await resolveCommit(admin, landed.commitId, 0, schema), { status: 'unknown' }, 'the same answer again: nothing was fenced')
      // A commit planned at snapshot 1 could only land after 1: every collected id is older.
      const after = randomUUID()
      assert.equal(await resolveCommit(admin, after, 1, schema), { status: 'abandoned' })
      const late = await callCommit(admin, { ...landed, commitId: after, snapshot: 1, records: [{ ...landed.records[0], name: 'l' }] }, schema)
      assert.equal(late, { status: 'abandoned' }, 'and fenced: a late copy never lands')
    } finally {
      await admin.end()
    }
  })

  test('a handle in doubt longer than keepIds: commit() throws CommitOutcomeForgottenError (TXA_COMMIT_UNKNOWN) and commits nothing', async () => {
    if (!server.owned) return
    const { url, schema, machine } = await remoteStore()
    const a = machine()
    const s = a.create('s', { dtype: 'int32', shape: [0] })
    a.commit()
    s.append(new Int32Array([1, 2, 3]))
    // The commit reaches the server and waits for a row another session holds; the server stops.
    const blocker = await connect(url)
    await blocker.query('BEGIN')
    await blocker.query(`SELECT 1 FROM ${schema}.arrays FOR UPDATE`)
    const pending = a.commitAsync()
    assert.ok(await someoneWaitsForLock(blocker), 'the commit waits inside the server')
    server.stop('immediate')
    try {
      await rejectsCode(pending, CommitOutcomeUnknownError, 'TXA_COMMIT_UNKNOWN')
    } finally {
      server.start()
      await blocker.end().catch(() => undefined)
    }
    // Days pass: another machine commits, and retention collects every decided id.
    const b = machine()
    b.create('other', { dtype: 'int32', shape: [1] })
    b.commit()
    const admin = await connect(url)
    try {
      assert.ok((await collectHistory(admin, { keepIdsMs: 0 }, schema)).ids >= 2)
    } finally {
      await admin.end()
    }
    const e = throwsCode(() => a.commit(), CommitOutcomeForgottenError, 'TXA_COMMIT_UNKNOWN')
    assert.instance(e, CommitOutcomeUnknownError)
    assert.match(e.message, /not committed again/)
    throwsCode(() => a.commit(), CommitOutcomeForgottenError, 'TXA_COMMIT_UNKNOWN')
    throwsCode(() => s.append(new Int32Array([4])), CommitOutcomeForgottenError, 'TXA_COMMIT_UNKNOWN')
    b.refresh()
    assert.is(b.array('s').shape[0], 0, 'nothing was committed again')
    a.abort()
    s.append(new Int32Array([5]))
    a.commit()
    b.refresh()
    assert.equal(Array.from(b.array('s', 'int32').read().data as Int32Array), [5])
    a.close()
    b.close()
  })

  test('a commit larger than one remote call carries: TooLargeError before anything is sent, the changes kept', async () => {
    const { machine } = await remoteStore()
    const a = machine()
    const b = machine()
    const saved = commitSizeLimit.bytes
    commitSizeLimit.bytes = 64 * 1024
    try {
      const x = a.create('x', { dtype: 'int32', shape: [0], blockBytes: 16384 })
      x.append(new Int32Array(32 * 1024).fill(7))  // 128 KiB
      const e = throwsCode(() => a.commit(), TooLargeError, 'TXA_TOO_LARGE')
      assert.match(e.message, /at most 65536 bytes/)
      assert.match(e.message, /nothing was sent/)
      await rejectsCode(a.commitAsync(), TooLargeError, 'TXA_TOO_LARGE')
      assert.ok(a.dirty, 'the changes are kept')
      b.refresh()
      assert.is(b.serial, 0, 'nothing reached the server')
      a.abort()
      a.create('x', { dtype: 'int32', shape: [0], blockBytes: 16384 })
      a.commit()
      for (let part = 0; part < 4; part++) {
        a.array('x', 'int32').append(new Int32Array(8 * 1024).fill(part))
        a.commit()
      }
      b.refresh()
      assert.is(b.array('x').shape[0], 32 * 1024, 'the same rows committed in parts')
    } finally {
      commitSizeLimit.bytes = saved
      a.close()
      b.close()
    }
  })

  test('a store of format 3 is upgraded in place to 4 at open: the clients table and the ids horizon added, arrays kept', async () => {
    const { url, schema, machine } = await remoteStore()
    const a = machine()
    a.create('x', { dtype: 'int32', shape: [0] }).append(new Int32Array([7, 8]))
    a.commit()
    a.close()
    const admin = await connect(url)
    try {
      // What format 3 lacked.
      await admin.query(`DROP TABLE ${schema}.clients; ALTER TABLE ${schema}.head DROP COLUMN ids_pruned`)
      await admin.query(`DELETE FROM ${schema}.meta WHERE key = 'functions'`)
      await admin.query(`UPDATE ${schema}.meta SET value = '{"name": "txarray-remote", "version": 3}' WHERE key = 'format'`)
      const b = machine()
      assert.equal(Array.from(b.array('x', 'int32').read().data as Int32Array), [7, 8])
      b.array('x', 'int32').append(new Int32Array([9]))
      b.commit()
      const { rows } = await admin.query(`SELECT key, value FROM ${schema}.meta WHERE key IN ('format', 'functions') ORDER BY key`)
      assert.equal(rows.map((r) => r.value), [REMOTE_FORMAT, functionsStamp(schema)])
      await clientsUntil(admin, schema, (r) => r.length === 1 && r[0].serial === 2, "B's row")
      assert.is((await collectHistory(admin, { keepCommits: 0, keepIdsMs: 0 }, schema)).horizon, 2)
      b.close()
    } finally {
      await admin.end()
    }
  })

  test("install() replaces server functions of an earlier revision or other bodies, and keeps a later revision's", async () => {
    const { url, schema, machine } = await remoteStore()
    machine().close()
    const admin = await connect(url)
    // An earlier release's collect(): same signature, another body.
    const older = `CREATE OR REPLACE FUNCTION ${schema}.collect(p_keep bigint, p_keep_ids interval DEFAULT '7 days', p_client_timeout interval DEFAULT '60 seconds')
      RETURNS TABLE (horizon bigint, versions bigint, tombstones bigint, records bigint, commits bigint, ids bigint, clients bigint)
      LANGUAGE plpgsql AS $fn$ BEGIN RAISE EXCEPTION 'the installed collect'; END $fn$`
    const stamp = (value: object) => admin.query(`UPDATE ${schema}.meta SET value = $1 WHERE key = 'functions'`, [JSON.stringify(value)])
    const collects = async () => {
      try {
        await collectHistory(admin, {}, schema)
        return true
      } catch (e) {
        assert.match((e as Error).message, /the installed collect/)
        return false
      }
    }
    try {
      const mine = functionsStamp(schema)
      for (const installed of [{ revision: FUNCTIONS_REVISION - 1, hash: 'earlier' }, { revision: FUNCTIONS_REVISION, hash: 'other bodies' }]) {
        await admin.query(older)
        await stamp(installed)
        assert.not.ok(await collects())
        machine().close()
        assert.ok(await collects(), `replaced over ${JSON.stringify(installed)}`)
        assert.equal((await admin.query(`SELECT value FROM ${schema}.meta WHERE key = 'functions'`)).rows[0].value, mine)
      }
      await admin.query(older)
      await stamp({ revision: FUNCTIONS_REVISION + 1, hash: 'later' })
      machine().close()
      assert.not.ok(await collects(), 'a later revision stays')
    } finally {
      await admin.end()
    }
  })
}
test.run()
