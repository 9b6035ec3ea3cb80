// Each machine's local store caches the remote store: catch-up writes the remote commits
// into it, one local log entry per remote commit, so an ordinary handle on the cache
// sees another machine's commit after refresh() and not before, its views included,
// and local waiters wake when a followed commit arrives.
import { randomBytes, randomUUID } from 'node:crypto'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Client } from 'pg'
import { FormatError, open } from '../src/index'
import { CacheWriter } from '../src/remote/cache-writer'
import { listenForCommits } from '../src/remote/commit-notifications'
import type { CommitPlan, PlannedBlock, PlannedRecord } from '../src/remote/commit-plan'
import { RemoteLink } from '../src/remote/remote-link'
import { collectHistory } from '../src/remote/retention'
import { encodeMeta } from '../src/metadata'
import { testPostgres } from './helpers/postgres'
import { tempDir } from './helpers/tmp'

const found = testPostgres()
let database = ''
const closers: (() => Promise<void> | void)[] = []

// float64 [rows, 4] in 4096-byte blocks: block k holds rows 128k..128k+127.
const ROW_BYTES = 32
const BLOCK_BYTES = 4096
const RPB = BLOCK_BYTES / ROW_BYTES

async function machines() {
  if (!database && 'server' in found) database = await found.server.freshDatabase()
  const schema = `c_${randomBytes(5).toString('hex')}`
  const a = new RemoteLink(database, { schema })
  const b = new RemoteLink(database, { schema })
  closers.push(() => a.close(), () => b.close())
  const storeId = a.openSync()
  const cache = tempDir()
  const writer = new CacheWriter(cache, storeId)
  closers.push(() => writer.close())
  /** Machine B's catch-up: everything after its cache's serial. */
  const catchUp = () => writer.catchUp((after) => b.changesSinceSync(after))
  return { schema, a, b, storeId, cache, writer, catchUp }
}

function record(name: string, rows: number, fields: Partial<PlannedRecord> = {}): PlannedRecord {
  const body = encodeMeta({ dtype: 'float64', shape: [rows, 4], blockBytes: BLOCK_BYTES, attrs: {}, created: 0 })
  return { name, id: 0, expectedSerial: 0, rows, rowBytes: ROW_BYTES, blockBytes: BLOCK_BYTES, body, ...fields }
}

/** Block `index` (rows RPB·index..) filled with `value`. */
function block(array: PlannedBlock['array'], index: number, value: number): PlannedBlock {
  return { array, index, data: new Uint8Array(new Float64Array(BLOCK_BYTES / 8).fill(value).buffer) }
}

function plan(snapshot: number, records: PlannedRecord[], blocks: PlannedBlock[] = []): CommitPlan {
  return { commitId: randomUUID(), snapshot, records, blocks }
}

if ('skipped' in found) {
  console.log(`remote-cache: skipped (${found.skipped})`)
  test.skip('local caches of a remote store', () => undefined)
} else {
  test.after(async () => {
    for (const close of closers.reverse()) await close()
  })

  test("a view on machine B sees machine A's commit after catch-up and refresh, and not before", () => {
    const { a, cache, catchUp } = machines_sync()
    const made = a.commitSync(plan(0, [record('x', 4 * RPB)], [block({ record: 0 }, 0, 1), block({ record: 0 }, 2, 3)]))
    const id = made.status === 'committed' ? made.ids[0] : 0
    assert.is(catchUp(), 1)
    const store = open(cache, { readOnly: true })
    closers.push(() => store.close())
    assert.is(store.serial, 1, 'the cache serial is the remote serial')
    const x = store.array('x', 'float64')
    assert.equal(x.shape, [4 * RPB, 4])
    const view = x.view()
    const at = (row: number, col = 0) => view[row * 4 + col]
    assert.equal([at(0), at(RPB), at(2 * RPB), at(4 * RPB - 1)], [1, 0, 3, 0])

    a.commitSync(plan(1, [], [block(id, 0, 7), block(id, 3, 9)]))
    assert.is(view[0], 1, 'not before catch-up')
    assert.is(catchUp(), 2)
    assert.is(view[0], 1, 'not before refresh')
    assert.is(store.serial, 1)
    store.refresh()
    assert.is(store.serial, 2)
    assert.equal([at(0), at(RPB - 1, 3), at(2 * RPB), at(3 * RPB), at(4 * RPB - 1, 3)], [7, 7, 3, 9, 9])
    assert.equal(Array.from(x.read().data.subarray(0, 4)), [7, 7, 7, 7])
  })

  test("appends and a deletion arrive; a second catch-up of the same commits changes nothing", () => {
    const { a, b, cache, catchUp, writer } = machines_sync()
    const made = a.commitSync(plan(0, [record('s', 0)]))
    const id = made.status === 'committed' ? made.ids[0] : 0
    const rows = (n: number, v: number) => new Uint8Array(new Float64Array(n * 4).fill(v).buffer)
    a.commitSync(plan(1, [record('s', 0, { id, expectedSerial: 1, append: rows(3, 1) })]))
    b.commitSync(plan(1, [record('s', 0, { id, expectedSerial: 1, append: rows(6, 2) })]))  // rebased after A's
    assert.is(catchUp(), 3)
    const store = open(cache, { readOnly: true })
    closers.push(() => store.close())
    const s = store.array('s', 'float64')
    assert.is(s.shape[0], 9)
    assert.equal(Array.from(s.read().data.filter((_, i) => i % 4 === 0)), [1, 1, 1, 2, 2, 2, 2, 2, 2])
    assert.is(writer.apply(b.changesSinceSync(0)), 3, 'an old batch is skipped')
    store.refresh()
    assert.is(store.array('s', 'float64').shape[0], 9)
    a.commitSync(plan(3, [record('s', 9, { id, expectedSerial: 3, remove: true })]))
    catchUp()
    store.refresh()
    assert.is(store.has('s'), false)
  })

  test('a local waiter wakes when a followed commit arrives', async () => {
    const { a, schema, cache, catchUp } = machines_sync()
    a.commitSync(plan(0, [record('w', 2 * RPB)]))
    catchUp()
    const store = open(cache, { readOnly: true })
    closers.push(() => store.close())
    const listener = new Client({ connectionString: database })
    await listener.connect()
    closers.push(() => listener.end())
    const seen: number[] = []
    await listenForCommits(listener, (serial) => { seen.push(serial); catchUp() }, schema)
    const woke = store.waitForCommit({ timeoutMs: 10_000, keepAlive: true }).then(() => true)
    a.commitSync(plan(1, [], [block(1, 1, 5)]))
    assert.is(await woke, true)
    store.refresh()
    assert.equal(seen, [2])
    assert.is(store.serial, 2)
    assert.is(store.array('w', 'float64').read().data[RPB * 4], 5)
  })

  test('a cache older than the remote history is rebuilt from the whole remote state, deletions included', async () => {
    const { a, schema, cache, catchUp, writer, b } = machines_sync()
    const made = a.commitSync(plan(0, [record('keep', 2 * RPB), record('gone', RPB)], [block({ record: 0 }, 0, 4), block({ record: 0 }, 1, 6)]))
    const [keep, gone] = made.status === 'committed' ? made.ids : []
    assert.is(catchUp(), 1)
    const store = open(cache, { readOnly: true })
    closers.push(() => store.close())
    const view = store.array('keep', 'float64').view()
    assert.equal([view[0], view[RPB * 4]], [4, 6])
    a.commitSync(plan(1, [record('gone', RPB, { id: gone, expectedSerial: 1, remove: true })]))
    a.commitSync(plan(2, [], [{ array: keep, index: 1, data: new Uint8Array(0) }, block(keep, 0, 8)]))
    const admin = new Client({ connectionString: database })
    await admin.connect()
    await collectHistory(admin, { keepCommits: 0 }, schema)
    await admin.end()
    assert.throws(() => writer.apply(b.changesSinceSync(1)), (e: unknown) => e instanceof FormatError, 'a partial catch-up is refused')
    assert.is(catchUp(), 3)
    store.refresh()
    assert.is(store.has('gone'), false)
    assert.equal([view[0], view[RPB * 4]], [8, 0], 'the zeroed block reads zeros, the views follow')
  })

  test('a cache of another remote store is refused', () => {
    const { a, cache, catchUp } = machines_sync()
    a.commitSync(plan(0, [record('o', 4)]))
    catchUp()
    assert.throws(() => new CacheWriter(cache, randomUUID()), (e: unknown) => e instanceof FormatError && /caches remote store/.test(e.message))
  })
}

/** Machines prepared before the tests (setting them up is asynchronous, the tests are not). */
function machines_sync(): Awaited<ReturnType<typeof machines>> {
  return setupCache.shift() ?? (() => { throw new Error('no prepared machines') })()
}
const setupCache: Awaited<ReturnType<typeof machines>>[] = []
if (!('skipped' in found)) {
  test.before(async () => {
    for (let i = 0; i < 6; i++) setupCache.push(await machines())
  })
}

test.run()
