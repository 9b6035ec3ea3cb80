// The PostgreSQL side of a remote store, against a real server: several clients act as
// several machines. Commits land as one transaction each with gap-free serials; the
// first writer of a block wins and the other gets the local engine's ConflictError
// facts; appends never conflict and each lands contiguous; catch-up reads a consistent
// prefix of the history; one notification per commit; a commit id lands at most once,
// and an unknown outcome (connection lost) is always resolved.
import { randomBytes, randomUUID } from 'node:crypto'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Client } from 'pg'
import { ConflictError, FormatError } from '../src/index'
import { callCommit, resolveCommit } from '../src/remote/commit-call'
import type { CommitPlan, PlannedBlock, PlannedRecord } from '../src/remote/commit-plan'
import { listenForCommits } from '../src/remote/commit-notifications'
import { readChangesSince, type RemoteChanges } from '../src/remote/changes-since'
import { collectHistory } from '../src/remote/retention'
import { install } from '../src/remote/schema'
import { testPostgres } from './helpers/postgres'
import { someoneWaitsForLock } from './helpers/remote-stores'

const found = testPostgres()
let database = ''
const clients: Client[] = []

async function connect(): Promise<Client> {
  if (!database && 'server' in found) database = await found.server.freshDatabase()
  const client = new Client({ connectionString: database })
  client.on('error', () => undefined)  // a terminated backend: the test checks the outcome
  await client.connect()
  clients.push(client)
  return client
}

/** A new store (its own schema) and `n` clients on it, acting as machines. */
async function store(n: number): Promise<{ schema: string; machines: Client[] }> {
  const schema = `s_${randomBytes(5).toString('hex')}`
  const machines: Client[] = []
  for (let i = 0; i < n; i++) machines.push(await connect())
  await install(machines[0], schema)
  return { schema, machines }
}

const ROW_BYTES = 16   // float32 × 4
const BLOCK_BYTES = 64 // 4 rows per block

function record(name: string, fields: Partial<PlannedRecord> = {}): PlannedRecord {
  return { name, id: 0, expectedSerial: 0, rows: 0, rowBytes: ROW_BYTES, blockBytes: BLOCK_BYTES, body: Buffer.from(`{${name}}`), ...fields }
}

function plan(snapshot: number, records: PlannedRecord[], blocks: PlannedBlock[] = [], commitId = randomUUID()): CommitPlan {
  return { commitId, snapshot, records, blocks }
}

/** `rows` rows whose every byte is `value`. */
const rowsOf = (rows: number, value: number) => new Uint8Array(rows * ROW_BYTES).fill(value)
const blockOf = (value: number) => new Uint8Array(BLOCK_BYTES).fill(value)

/** Creates array `name` with `rows` zero rows; returns its id and the commit serial. */
async function create(client: Client, schema: string, name: string, rows = 0, snapshot = 0) {
  const out = await callCommit(client, plan(snapshot, [record(name, { rows })]), schema)
  assert.is(out.status, 'committed')
  if (out.status !== 'committed') throw new Error('not committed')
  return { id: out.ids[0], serial: out.serial }
}

/** The bytes of array `id` as of the newest commit: its blocks laid end to end. */
function assemble(changes: RemoteChanges, id: number): Uint8Array {
  const rec = changes.records.find((r) => r.id === id)
  const out = new Uint8Array((rec?.rows ?? 0) * ROW_BYTES)
  for (const b of changes.blocks) {
    if (b.arrayId === id && b.data) out.set(b.data.subarray(0, Math.max(0, out.length - b.index * BLOCK_BYTES)), b.index * BLOCK_BYTES)
  }
  return out
}

async function rejects(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (e) {
    return e
  }
  assert.unreachable('expected a rejection')
  return undefined
}

if ('skipped' in found) {
  console.log(`remote-protocol: skipped (${found.skipped})`)
  test.skip('PostgreSQL remote store protocol', () => undefined)
} else {
  test.after(async () => {
    for (const c of clients) await c.end().catch(() => undefined)
  })

  test('install is idempotent and concurrent installs make one store; another format is refused', async () => {
    const [a, b] = [await connect(), await connect()]
    const schema = `s_${randomBytes(5).toString('hex')}`
    const [idA, idB] = await Promise.all([install(a, schema), install(b, schema)])
    assert.is(idA, idB)
    assert.is(await install(a, schema), idA)
    await a.query(`UPDATE ${schema}.meta SET value = '{"name": "txarray-remote", "version": 99}' WHERE key = 'format'`)
    const err = await rejects(install(b, schema))
    assert.instance(err, FormatError)
    assert.match((err as Error).message, 'format 99')
  })

  test('a commit lands whole with the next serial; catch-up reads records, blocks and the change set', async () => {
    const { schema, machines: [a, b] } = await store(2)
    const first = await callCommit(a, plan(0, [record('x', { rows: 8 })], [
      { array: { record: 0 }, index: 0, data: blockOf(1) },
      { array: { record: 0 }, index: 1, data: blockOf(2).subarray(0, 10) },
    ]), schema)
    assert.is(first.status, 'committed')
    if (first.status !== 'committed') return
    assert.is(first.serial, 1)
    const id = first.ids[0]
    const seen = await readChangesSince(b, 0, schema)
    assert.is(seen.head, 1)
    assert.equal(seen.records.map((r) => [r.name, r.id, r.serial, r.rows, r.deleted]), [['x', id, 1, 8, false]])
    assert.equal(seen.records[0].body, Buffer.from('{x}'))
    assert.equal(seen.blocks.map((bl) => [bl.index, bl.serial, bl.data?.length]), [[0, 1, 64], [1, 1, 10]])
    assert.equal(seen.commits.map((c) => [c.serial, c.changes.get(id)]), [[1, {
      record: true, blocks: [[0, 0], [1, 1]], name: 'x', flags: 2, rowsBefore: 0, rowsAfter: 8, rowBytes: ROW_BYTES, blockBytes: BLOCK_BYTES,
    }]])
    assert.ok(Math.abs(seen.commits[0].timeMs - Date.now()) < 60_000, 'the commit carries the server\'s time')
    const second = await callCommit(a, plan(1, [], [{ array: id, index: 1, data: blockOf(3) }]), schema)
    assert.equal(second.status === 'committed' && second.serial, 2)
    const later = await readChangesSince(b, 1, schema)
    assert.equal(later.commits.map((c) => c.serial), [2])
    assert.equal(later.records, [], 'a block write leaves the record alone')
    assert.equal(later.blocks.map((bl) => [bl.index, bl.serial, bl.data?.[0]]), [[1, 2, 3]])
    assert.equal(later.commits[0].changes.get(id), {
      record: false, blocks: [[1, 1]], name: 'x', flags: 0, rowsBefore: 8, rowsAfter: 8, rowBytes: ROW_BYTES, blockBytes: BLOCK_BYTES,
    })
  })

  test('the first commit to write a block wins; the other gets the facts and writes nothing', async () => {
    const { schema, machines: [a, b, c] } = await store(3)
    const { id, serial } = await create(a, schema, 'x', 64)
    await create(a, schema, 'other', 0, serial)  // a commit between that touches nothing of x
    const won = await callCommit(a, plan(serial, [], [{ array: id, index: 3, data: blockOf(7) }, { array: id, index: 4, data: blockOf(7) }]), schema)
    assert.is(won.status, 'committed')
    const winner = won.status === 'committed' ? won.serial : 0
    const err = await rejects(callCommit(b, plan(serial, [], [
      { array: id, index: 4, data: blockOf(9) }, { array: id, index: 5, data: blockOf(9) },
    ]), schema))
    assert.instance(err, ConflictError)
    const conflict = err as ConflictError
    assert.is(conflict.code, 'TXA_CONFLICT')
    assert.is(conflict.array, 'x')
    assert.is(conflict.serial, winner)
    assert.is(conflict.metadata, false)
    assert.equal(conflict.blocks, [[4, 4]])
    assert.equal(conflict.rows, [[16, 19]])
    assert.match(conflict.message, `array 'x': commit ${winner} changed rows 16-19 (blocks 4)`)
    const after = await readChangesSince(c, winner - 1, schema)
    assert.is(after.head, winner, 'the losing commit took no serial')
    assert.ok(after.blocks.every((bl) => bl.data?.[0] !== 9), 'none of its blocks is visible')
    // Disjoint blocks from the same old snapshot do not conflict.
    const disjoint = await callCommit(b, plan(serial, [], [{ array: id, index: 5, data: blockOf(9) }]), schema)
    assert.equal(disjoint.status === 'committed' && disjoint.serial, winner + 1)
  })

  test('record conflicts: two creations of one name, two resizes, a write to a deleted array', async () => {
    const { schema, machines: [a, b] } = await store(2)
    const created = await Promise.allSettled([
      callCommit(a, plan(0, [record('same', { rows: 1 })]), schema),
      callCommit(b, plan(0, [record('same', { rows: 2 })]), schema),
    ])
    assert.equal(created.map((r) => r.status).sort(), ['fulfilled', 'rejected'])
    const lost = created.find((r) => r.status === 'rejected') as PromiseRejectedResult
    assert.instance(lost.reason, ConflictError)
    assert.is(lost.reason.metadata, true)
    assert.match(lost.reason.message, "array 'same' was created by commit 1")
    const won = (created.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ status: string; ids?: number[] }>).value
    const id = won.ids![0]
    await callCommit(a, plan(1, [record('same', { id, expectedSerial: 1, rows: 10 })]), schema)
    const resized = await rejects(callCommit(b, plan(1, [record('same', { id, expectedSerial: 1, rows: 20 })]), schema))
    assert.instance(resized, ConflictError)
    assert.is((resized as ConflictError).serial, 2)
    assert.match((resized as ConflictError).message, "array 'same' was changed by commit 2")
    await callCommit(a, plan(2, [record('same', { id, expectedSerial: 2, remove: true })]), schema)
    const orphan = await rejects(callCommit(b, plan(2, [], [{ array: id, index: 0, data: blockOf(1) }]), schema))
    assert.instance(orphan, ConflictError)
    assert.match((orphan as ConflictError).message, "array 'same' was deleted by commit 3")
    const gone = await readChangesSince(b, 2, schema)
    assert.equal(gone.records.map((r) => [r.name, r.deleted]), [['same', true]])
    assert.equal(gone.commits[0].changes.get(id), {
      record: true, blocks: [[0, null]], name: 'same', flags: 4, rowsBefore: 10, rowsAfter: 0, rowBytes: ROW_BYTES, blockBytes: BLOCK_BYTES,
    })
  })

  test('four machines appending concurrently from one old snapshot: every row once, each commit contiguous', async () => {
    const { schema, machines } = await store(5)
    const { id, serial } = await create(machines[0], schema, 'stream')
    const perMachine = 12
    const landed: { machine: number; k: number; rows: number; length: number }[] = []
    await Promise.all(machines.slice(1).map(async (m, machine) => {
      for (let k = 0; k < perMachine; k++) {
        const rows = 1 + ((machine + k) % 5)  // rows per commit vary: tails straddle blocks
        // Every commit claims the creation snapshot: each one is rebased at the locked head.
        const out = await callCommit(m, plan(serial, [record('stream', {
          id, expectedSerial: serial, append: rowsOf(rows, 1 + machine * perMachine + k),
        })]), schema)
        assert.is(out.status, 'committed')
        if (out.status === 'committed') landed.push({ machine, k, rows, length: out.lengths[0] })
      }
    }))
    const all = await readChangesSince(machines[0], 0, schema)
    assert.is(all.head, serial + 4 * perMachine)
    const bytes = assemble(all, id)
    const total = landed.reduce((n, l) => n + l.rows, 0)
    assert.is(bytes.length, total * ROW_BYTES)
    for (const l of landed) {
      const value = 1 + l.machine * perMachine + l.k
      const start = (l.length - l.rows) * ROW_BYTES
      const mine = bytes.subarray(start, l.length * ROW_BYTES)
      assert.ok(mine.every((v) => v === value), `commit ${value}'s rows are contiguous where the server said`)
    }
    const counts = new Map<number, number>()
    for (const v of bytes) counts.set(v, (counts.get(v) ?? 0) + 1)
    for (const l of landed) assert.is(counts.get(1 + l.machine * perMachine + l.k), l.rows * ROW_BYTES, 'every row exactly once')
  })

  test('an append of a deleted array conflicts', async () => {
    const { schema, machines: [a, b] } = await store(2)
    const { id, serial } = await create(a, schema, 's', 4)
    await callCommit(a, plan(serial, [record('s', { id, expectedSerial: serial, remove: true })]), schema)
    const err = await rejects(callCommit(b, plan(serial, [record('s', { id, expectedSerial: serial, append: rowsOf(1, 5) })]), schema))
    assert.instance(err, ConflictError)
    assert.match((err as ConflictError).message, "array 's' was deleted by commit 2")
  })

  test('catch-up reads a consistent prefix while commits land: serials 1..head, nothing newer', async () => {
    const { schema, machines: [a, b, reader] } = await store(3)
    const { id, serial } = await create(a, schema, 'p', 0)
    let stop = false
    const writers = [a, b].map(async (m, w) => {
      let n = 0
      while (!stop && n < 40) {
        await callCommit(m, plan(serial, [record('p', { id, expectedSerial: serial, append: rowsOf(1, 1 + w) })]), schema)
        n++
      }
    })
    let reads = 0
    while (reads < 25) {
      const seen = await readChangesSince(reader, 0, schema)
      assert.equal(seen.commits.map((c) => c.serial), Array.from({ length: seen.head }, (_, i) => i + 1))
      assert.ok(seen.blocks.every((bl) => bl.serial <= seen.head))
      const rows = seen.records.find((r) => r.id === id)?.rows ?? 0
      assert.is(rows, seen.head - serial, 'the record holds exactly the appends of commits 1..head')
      reads++
    }
    stop = true
    await Promise.all(writers)
  })

  test('one notification per commit, carrying its serial', async () => {
    const { schema, machines: [a, listener] } = await store(2)
    const serials: number[] = []
    const unlisten = await listenForCommits(listener, (s) => serials.push(s), schema)
    const { id, serial } = await create(a, schema, 'n', 0)
    const blocks = Array.from({ length: 5 }, (_, i) => ({ array: id, index: i, data: blockOf(i + 1) }))
    await callCommit(a, plan(serial, [], blocks), schema)
    await callCommit(a, plan(serial + 1, [record('n', { id, expectedSerial: serial, append: rowsOf(3, 1) })]), schema)
    const deadline = Date.now() + 5000
    while (serials.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    assert.equal(serials, [1, 2, 3])
    await unlisten()
  })

  test('a commit id lands at most once: a resend is answered with the first serial', async () => {
    const { schema, machines: [a, b] } = await store(2)
    const { id, serial } = await create(a, schema, 'i', 0)
    const p = plan(serial, [record('i', { id, expectedSerial: serial, append: rowsOf(2, 4) })])
    const first = await callCommit(a, p, schema)
    const again = await callCommit(b, p, schema)
    assert.equal(again, { status: 'duplicate', serial: first.status === 'committed' ? first.serial : -1 })
    const seen = await readChangesSince(a, 0, schema)
    assert.is(seen.head, serial + 1)
    assert.is(seen.records[0].rows, 2, 'the rows were appended once')
    assert.equal(seen.commits.at(-1)?.changes.get(id), {
      record: true, blocks: [[0, 0]], name: 'i', flags: 8, rowsBefore: 0, rowsAfter: 2, rowBytes: ROW_BYTES, blockBytes: BLOCK_BYTES,
    })
    assert.equal(await resolveCommit(b, p.commitId, p.snapshot, schema), { status: 'committed', serial: serial + 1 })
  })

  test('resolving an unknown outcome fences the id: the attempt can never land afterwards', async () => {
    const { schema, machines: [a, b] } = await store(2)
    const { id, serial } = await create(a, schema, 'f', 0)
    const p = plan(serial, [record('f', { id, expectedSerial: serial, append: rowsOf(1, 1) })])
    assert.equal(await resolveCommit(b, p.commitId, p.snapshot, schema), { status: 'abandoned' })
    assert.equal(await callCommit(a, p, schema), { status: 'abandoned' })
    const seen = await readChangesSince(a, serial, schema)
    assert.is(seen.head, serial, 'nothing was committed')
  })

  test('a connection lost mid-commit: the outcome is resolved by the commit id, both ways', async () => {
    const { schema, machines: [a, b, holder] } = await store(3)
    const { id, serial } = await create(a, schema, 'd', 0)
    // A transaction holding the array's row lock makes the commit wait inside the server.
    const blockCommit = async () => {
      await holder.query('BEGIN')
      await holder.query(`SELECT 1 FROM ${schema}.arrays WHERE id = $1 FOR UPDATE`, [id])
    }
    const waitForLockWaiter = async () => {
      if (!(await someoneWaitsForLock(b))) assert.unreachable('the commit never waited for the lock')
    }

    // 1. The client vanishes while its commit waits: the server still runs it to the end.
    const lost = await connect()
    const p1 = plan(serial, [record('d', { id, expectedSerial: serial, append: rowsOf(2, 1) })])
    await blockCommit()
    const inFlight = callCommit(lost, p1, schema).catch((e: Error) => e)
    await waitForLockWaiter()
    ;(lost as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy()
    assert.instance(await inFlight, Error, 'the caller saw the connection drop: outcome unknown')
    const resolving = resolveCommit(b, p1.commitId, p1.snapshot, schema)  // waits for the attempt to end
    await holder.query('COMMIT')
    assert.equal(await resolving, { status: 'committed', serial: serial + 1 })

    // 2. The server ends the connection (its backend is terminated) while the commit waits.
    const killed = await connect()
    const pid = (await killed.query('SELECT pg_backend_pid() AS pid')).rows[0].pid
    const p2 = plan(serial + 1, [record('d', { id, expectedSerial: serial + 1, append: rowsOf(2, 2) })])
    await blockCommit()
    const inFlight2 = callCommit(killed, p2, schema).catch((e: Error) => e)
    await waitForLockWaiter()
    await b.query('SELECT pg_terminate_backend($1)', [pid])
    assert.instance(await inFlight2, Error)
    await holder.query('COMMIT')
    assert.equal(await resolveCommit(b, p2.commitId, p2.snapshot, schema), { status: 'abandoned' })
    assert.equal(await callCommit(a, p2, schema), { status: 'abandoned' }, 'a late resend of the fenced id changes nothing')
    const seen = await readChangesSince(a, 0, schema)
    assert.is(seen.head, serial + 1)
    assert.is(seen.records.find((r) => r.id === id)?.rows, 2, 'only the first attempt\'s rows are there')
  })

  test('a shrink writes tombstones for the cut blocks; sync: false commits too', async () => {
    const { schema, machines: [a] } = await store(1)
    const made = await callCommit(a, plan(0, [record('t', { rows: 16 })],
      [0, 1, 2, 3].map((i) => ({ array: { record: 0 }, index: i, data: blockOf(i + 1) }))), schema)
    if (made.status !== 'committed') return assert.unreachable('not committed')
    const id = made.ids[0]
    const cut = await callCommit(a, { ...plan(1, [record('t', { id, expectedSerial: 1, rows: 6, shrinkFromBlock: 2, flags: 16 })]), sync: false }, schema)
    assert.equal(cut.status === 'committed' && cut.lengths, [6])
    const seen = await readChangesSince(a, 1, schema)
    assert.equal(seen.blocks.map((bl) => [bl.index, bl.data]), [[2, null], [3, null]])
    assert.equal(seen.commits[0].changes.get(id), {
      record: true, blocks: [[2, null]], name: 't', flags: 16, rowsBefore: 16, rowsAfter: 6, rowBytes: ROW_BYTES, blockBytes: BLOCK_BYTES,
    })
  })

  test('retention drops superseded versions, tombstones and deleted arrays before the horizon; older snapshots conflict', async () => {
    const { schema, machines: [a, b] } = await store(2)
    const { id, serial } = await create(a, schema, 'r', 8)
    const gone = await create(a, schema, 'gone', 4, serial)
    let head = gone.serial
    for (let k = 1; k <= 6; k++) {
      const out = await callCommit(a, plan(head, [], [{ array: id, index: 0, data: blockOf(k) }, { array: id, index: 1, data: k === 6 ? new Uint8Array(0) : blockOf(k) }]), schema)
      head = out.status === 'committed' ? out.serial : -1
    }
    const dropped = await callCommit(a, plan(head, [record('gone', { id: gone.id, expectedSerial: gone.serial, remove: true })]), schema)
    head = dropped.status === 'committed' ? dropped.serial : -1
    const before = await readChangesSince(b, 0, schema)
    const collected = await collectHistory(b, { keepCommits: 1 }, schema)
    assert.is(collected.horizon, head - 1)
    assert.is(collected.versions, 5 + 5, 'blocks 0 and 1 lose the versions commits 3-7 wrote; block 0 keeps its newest')
    assert.is(collected.tombstones, 1)
    assert.is(collected.records, 0, 'the deletion is the last commit: after the horizon')
    assert.is(collected.commits, head - 1)
    const after = await readChangesSince(b, 0, schema)
    assert.is(after.pruned, head - 1)
    assert.equal(after.commits.map((c) => c.serial), [head])
    assert.equal(assemble(after, id), assemble(before, id), 'the newest bytes are all there')
    const again = await collectHistory(b, { keepCommits: 0 }, schema)
    assert.is(again.records, 1, 'now the deleted array goes')
    const stale = await rejects(callCommit(a, plan(head - 2, [], [{ array: id, index: 5, data: blockOf(1) }]), schema))
    assert.instance(stale, ConflictError)
    assert.match((stale as ConflictError).message, 'older than the remote store')
    const fresh = await callCommit(a, plan(head, [], [{ array: id, index: 5, data: blockOf(1) }]), schema)
    assert.is(fresh.status, 'committed')
  })

  // Last: it restarts the server, which ends every connection.
  const crashTest = found.server.owned ? test : test.skip
  crashTest('the server stopped with -m immediate mid-stream: acknowledged commits survive, the in-flight one is resolved', async () => {
    const { schema, machines: [a, holder] } = await store(2)
    const { id, serial } = await create(a, schema, 'c', 0)
    let acknowledged = 0
    for (let k = 0; k < 20; k++) {
      await callCommit(a, { ...plan(serial, [record('c', { id, expectedSerial: serial, append: rowsOf(1, k + 1) })]) }, schema)
      acknowledged++
    }
    await holder.query('BEGIN')
    await holder.query(`SELECT 1 FROM ${schema}.arrays WHERE id = $1 FOR UPDATE`, [id])
    const p = plan(serial, [record('c', { id, expectedSerial: serial, append: rowsOf(1, 99) })])
    const inFlight = callCommit(a, p, schema).catch((e: Error) => e)
    assert.ok(await someoneWaitsForLock(holder), 'the in-flight commit reached the server and waits for the lock')
    found.server.stop('immediate')
    assert.instance(await inFlight, Error, 'the in-flight commit saw the connection drop')
    found.server.start()
    const b = await connect()
    assert.equal(await resolveCommit(b, p.commitId, p.snapshot, schema), { status: 'abandoned' })
    const seen = await readChangesSince(b, 0, schema)
    assert.is(seen.head, serial + acknowledged)
    const bytes = assemble(seen, id)
    assert.equal(Array.from(bytes.filter((_, i) => i % ROW_BYTES === 0)), Array.from({ length: acknowledged }, (_, k) => k + 1))
  })
}

test.run()
