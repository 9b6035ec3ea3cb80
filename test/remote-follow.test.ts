// A link with a cache follows the remote store into it: every machine's commits arrive in
// the local store by themselves (LISTEN, then catch-up), local waiters wake, and after the
// server restarts the follower reconnects and catches up what it missed.
import { randomBytes, randomUUID } from 'node:crypto'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { open } from '../src/index'
import type { CommitPlan, PlannedRecord } from '../src/remote/commit-plan'
import { RemoteLink } from '../src/remote/remote-link'
import { encodeMeta } from '../src/metadata'
import { testPostgres } from './helpers/postgres'
import { tempDir } from './helpers/tmp'

const found = testPostgres()
const closers: (() => Promise<void> | void)[] = []

const ROW_BYTES = 32
const BLOCK_BYTES = 4096

function record(name: string, rows: number, fields: Partial<PlannedRecord> = {}): PlannedRecord {
  const body = encodeMeta({ dtype: 'float64', shape: [rows, 4], blockBytes: BLOCK_BYTES, attrs: {}, created: 0 })
  return { name, id: 0, expectedSerial: 0, rows, rowBytes: ROW_BYTES, blockBytes: BLOCK_BYTES, body, ...fields }
}

const rowsOf = (n: number, value: number) => new Uint8Array(new Float64Array(n * 4).fill(value).buffer)

function plan(snapshot: number, records: PlannedRecord[]): CommitPlan {
  return { commitId: randomUUID(), snapshot, records, blocks: [] }
}

if ('skipped' in found) {
  console.log(`remote-follow: skipped (${found.skipped})`)
  test.skip('following a remote store into a local cache', () => undefined)
} else {
  let database = ''
  const machines = async () => {
    database ||= await found.server.freshDatabase()
    const schema = `f_${randomBytes(5).toString('hex')}`
    const a = new RemoteLink(database, { schema, connectTimeoutMs: 2000 })
    const cache = tempDir()
    const b = new RemoteLink(database, { schema, cache, connectTimeoutMs: 2000 })
    closers.push(() => a.close(), () => b.close())
    a.openSync()
    return { a, b, cache }
  }
  test.after(async () => {
    for (const close of closers.reverse()) await close()
  })

  test("machine B's cache receives machine A's commits by itself; B's waiters wake", async () => {
    const { a, b, cache } = await machines()
    const made = a.commitSync(plan(0, [record('s', 0)]))
    const id = made.status === 'committed' ? made.ids[0] : 0
    b.openSync()  // catches up, then follows
    const store = open(cache, { readOnly: true })
    closers.push(() => store.close())
    assert.is(store.serial, 1)
    for (let k = 0; k < 5; k++) {
      const woke = store.waitForCommit({ timeoutMs: 10_000, keepAlive: true }).then(() => true)
      await a.commit(plan(1, [record('s', 0, { id, expectedSerial: 1, append: rowsOf(2, k + 1) })]))
      assert.is(await woke, true, `commit ${k + 2} woke B`)
      store.refresh()
      if (store.serial < k + 2) { // two notifications may arrive as one catch-up; wait for the rest
        assert.is(await store.waitForCommit({ timeoutMs: 10_000, keepAlive: true }).then(() => true), true)
        store.refresh()
      }
      assert.is(store.serial, k + 2)
      assert.is(store.array('s', 'float64').shape[0], 2 * (k + 1))
    }
    assert.is(b.catchUpSync(), 6)
  })

  test("watch() on machine B reports machine A's commits once each, in order, with what they changed", async () => {
    const { a, b, cache } = await machines()
    const made = a.commitSync(plan(0, [record('w', 0)]))
    const id = made.status === 'committed' ? made.ids[0] : 0
    b.openSync()
    const store = open(cache, { readOnly: true })
    closers.push(() => store.close())
    const events = store.watch({ keepAlive: true })
    for (let k = 0; k < 3; k++) await a.commit(plan(1, [record('w', 0, { id, expectedSerial: 1, append: rowsOf(k + 1, 1) })]))
    const seen: { serial: number; appended: [number, number] | null; rows: number; created: boolean }[] = []
    for await (const e of events) {
      const w = e.arrays.w
      seen.push({ serial: e.serial, appended: w.appended, rows: w.rows, created: w.created })
      assert.ok(Math.abs(e.time - Date.now()) < 60_000, "the event carries the server's commit time")
      if (seen.length === 3) break
    }
    assert.equal(seen, [
      { serial: 2, appended: [0, 1], rows: 1, created: false },
      { serial: 3, appended: [1, 3], rows: 3, created: false },
      { serial: 4, appended: [3, 6], rows: 6, created: false },
    ])
  })

  const restartTest = found.server.owned ? test : test.skip
  restartTest('after the server restarts, the follower reconnects and catches up what was committed since', async () => {
    const { a, b, cache } = await machines()
    const made = a.commitSync(plan(0, [record('r', 0)]))
    const id = made.status === 'committed' ? made.ids[0] : 0
    b.openSync()
    const store = open(cache, { readOnly: true })
    closers.push(() => store.close())
    found.server.stop('immediate')
    found.server.start()
    const woke = store.waitForCommit({ timeoutMs: 20_000, keepAlive: true }).then(() => true)
    let landed = false
    for (let i = 0; i < 50 && !landed; i++) {  // A's link reconnects at its next call
      try {
        a.commitSync(plan(1, [record('r', 0, { id, expectedSerial: 1, append: rowsOf(3, 9) })]))
        landed = true
      } catch {
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    assert.ok(landed, 'A committed after the restart')
    assert.is(await woke, true, 'B caught up without being asked')
    store.refresh()
    assert.is(store.serial, 2)
    assert.equal(Array.from(store.array('r', 'float64').read().data.filter((_, i) => i % 4 === 0)), [9, 9, 9])
  })
}

test.run()
