// Page faults that wait for a fetch (userfaultfd mode; docs/scale-out.md, "A fault that
// waits for a fetch"): a view of a lazily cached remote store is made without fetching,
// and a fault on a block the cache holds only as a stub waits — the faulting thread runs
// no JavaScript — while the handle's link thread fetches the block (with the other stubs
// of the fault's 256 KiB window, four 64 KiB blocks here) and hands the bytes back. One
// real PostgreSQL server; in SIGSEGV mode every case is skipped (views fetch when made
// there: test/remote-lazy.test.ts).
import { randomBytes } from 'node:crypto'
import { closeSync, openSync, readFileSync, readSync, write, writeSync } from 'node:fs'
import * as path from 'node:path'
import { Client } from 'pg'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { faultMode, open, slice, StorageError, type Store } from '../src/index'
import { finished, startChild, startWorker, workerDone } from './helpers/child'
import { throwsCode } from './helpers/expect'
import { testPostgres } from './helpers/postgres'
import { tempDir } from './helpers/tmp'
import { until } from './helpers/until'

const found = testPostgres()
const BLOCK = 65536
const PER_BLOCK = BLOCK / 8  // float64 elements per block
const WINDOW = 4  // blocks one first fault fetches: its 256 KiB window
const BLOCKS = 64

if ('skipped' in found) {
  console.log(`remote-fault-fetch: skipped (${found.skipped})`)
  test.skip('faults wait for fetches', () => undefined)
} else if (faultMode().mode !== 'uffd') {
  console.log('remote-fault-fetch: skipped (faults wait for fetches in userfaultfd mode only)')
  test.skip('faults wait for fetches', () => undefined)
} else {
  const server = found.server
  let database: string | null = null

  /** A fresh remote store whose machine A committed `x`: BLOCKS blocks of float64 i + 0.5. */
  async function storeWithArray() {
    const url = (database ??= await server.freshDatabase())
    const schema = `f_${randomBytes(5).toString('hex')}`
    const a = open(tempDir(), { remote: url, remoteSchema: schema })
    const expected = new Float64Array(BLOCKS * PER_BLOCK).map((_, i) => i + 0.5)
    a.create('x', { dtype: 'float64', shape: [expected.length], blockBytes: BLOCK }).write(null, expected)
    a.commit()
    const lazy = (options: { remoteTimeoutMs?: number } = {}): Store =>
      open(tempDir(), { remote: url, remoteSchema: schema, remoteBlocks: 'lazy', ...options })
    return { url, schema, a, expected, lazy }
  }

  /**
   * Waits until `b` has fetched at least `blocks` blocks: a fault returns once its own block
   * is fetched, while the rest of its window may still be read ahead. The caller asserts
   * the exact count (a timeout here leaves that assertion to report what was fetched).
   */
  async function windowFetched(b: Store, blocks: number): Promise<void> {
    await until(`${blocks} blocks were fetched`, () => b.stats().blocksFetched >= blocks).catch(() => undefined)
  }

  test('a view of a whole lazy array is made without fetching; one element fetches its window; values equal read() and take()', async () => {
    const { a, lazy, expected } = await storeWithArray()
    const b = lazy()
    const x = b.array('x', 'float64')
    const view = x.view()
    assert.is(view.length, BLOCKS * PER_BLOCK)
    assert.is(b.stats().blocksFetched, 0, 'nothing fetched to make the view')
    assert.is(view[21 * PER_BLOCK + 5], 21 * PER_BLOCK + 5.5)
    // The window's stubs are posted with the fault's block; a link that took the requests
    // while the fault was still posting them (a loaded machine) fetches the rest next.
    await windowFetched(b, WINDOW)
    assert.is(b.stats().blocksFetched, WINDOW, 'the faulting block and the stubs of its window (blocks 20-23)')
    assert.is(b.stats().bytesFetched, WINDOW * BLOCK)
    assert.is(view[23 * PER_BLOCK + PER_BLOCK - 1], 24 * PER_BLOCK - 0.5, 'a neighbour came with it: no fetch')
    assert.is(b.stats().blocksFetched, WINDOW)
    // Rows far apart: each fault fetches its own window (or its block alone once faults scatter).
    const rows = [2 * PER_BLOCK + 3, 40 * PER_BLOCK + 9, 63 * PER_BLOCK + 100]
    const seen = rows.map((r) => view[r])
    assert.equal(seen, rows.map((r) => r + 0.5))
    assert.equal(seen, Array.from(x.take(rows, 1).data))
    assert.equal(seen, rows.map((r) => x.read([slice(r, r + 1)]).data[0]))
    assert.ok(b.stats().blocksFetched <= WINDOW * 4 && b.stats().blocksFetched >= WINDOW + 3)
    // The whole view reads what A wrote, and what read() returns.
    assert.equal(view, expected)
    assert.is(b.stats().blocksFetched, BLOCKS, 'every block fetched once')
    assert.equal(x.read().data, view)
    a.close()
    b.close()
  })

  test('faults on one stub from two threads and two views fetch it once', async () => {
    if (!faultMode().systemCalls) return  // a libuv thread's write(2) faults here: EFAULT without kernel faults
    const { a, lazy } = await storeWithArray()
    const b = lazy()
    const x = b.array('x', 'float64')
    const v1 = x.view(8 * PER_BLOCK, 12 * PER_BLOCK)
    const v2 = x.view(9 * PER_BLOCK, 10 * PER_BLOCK)
    assert.is(b.stats().blocksFetched, 0)
    const file = path.join(tempDir(), 'block9')
    const fd = openSync(file, 'w')
    // A libuv thread copies block 9 to a file (a fault inside write(2), on that thread)
    // while this thread reads it through the other view.
    const written = new Promise<number>((resolve, reject) => {
      write(fd, new Uint8Array(v2.buffer, v2.byteOffset, BLOCK), (e, n) => (e ? reject(e) : resolve(n)))
    })
    assert.is(v1[PER_BLOCK + 7], 9 * PER_BLOCK + 7.5)
    assert.is(await written, BLOCK)
    closeSync(fd)
    assert.equal(new Float64Array(readFileSync(file).buffer.slice(0)), Float64Array.from({ length: PER_BLOCK }, (_, i) => 9 * PER_BLOCK + i + 0.5))
    // Block 9 is fetched by now; 8, 10 and 11 are read ahead and may still be on their way.
    await windowFetched(b, WINDOW)
    assert.is(b.stats().blocksFetched, WINDOW, 'blocks 8-11, once')
    assert.is(v2[0], v1[PER_BLOCK])
    a.close()
    b.close()
  })

  test('fs.writeSync(fd, view) over untouched lazy blocks writes what A wrote', async () => {
    if (!faultMode().systemCalls) return  // system calls fail with EFAULT on unmapped pages there
    const { a, lazy, expected } = await storeWithArray()
    const b = lazy()
    const view = b.array('x', 'float64').view(30 * PER_BLOCK, 38 * PER_BLOCK)
    const file = path.join(tempDir(), 'x.bin')
    const fd = openSync(file, 'w')
    // The kernel's faults wait (this thread blocked in write(2)), the link thread fetches.
    assert.is(writeSync(fd, view), 8 * BLOCK)
    closeSync(fd)
    assert.equal(new Float64Array(readFileSync(file).buffer.slice(0)), expected.slice(30 * PER_BLOCK, 38 * PER_BLOCK))
    // Windows as read-ahead maps them: 28-31 (the first fault's), then 32-35 and 36-43
    // (a sequential reader's window doubles, up to 4 MiB): fetched with their faults; the
    // blocks no fault waits for (28, 29, 38-43) are read ahead and may still be on their way.
    await windowFetched(b, 16)
    assert.is(b.stats().blocksFetched, 16)
    a.close()
    b.close()
  })

  test('a write through a view onto a stub block commits; the other machine reads it', async () => {
    const { a, lazy, expected } = await storeWithArray()
    const b = lazy()
    const view = b.array('x', 'float64').view()
    view[50 * PER_BLOCK + 17] = -1  // a write fault on a stub: waits for the fetch, then lands
    view[50 * PER_BLOCK + 18] += 1000
    b.commit()
    a.refresh()
    const want = expected.slice()
    want[50 * PER_BLOCK + 17] = -1
    want[50 * PER_BLOCK + 18] += 1000
    assert.equal(a.array('x', 'float64').read().data, want)
    assert.is(view[50 * PER_BLOCK + 16], 50 * PER_BLOCK + 16.5)
    a.close()
    b.close()
  })

  test('worker threads with lazy handles of their own: their faults wait for their own links', async () => {
    const { url, schema, a } = await storeWithArray()
    const blocks = [[1, 17, 33], [2, 18, 62]]
    const results = await Promise.all(blocks.map((list) =>
      workerDone<{ before: number; values: number[]; fetched: number }>(
        startWorker('fault-fetch.child.ts', { url, schema, blocks: list, perBlock: PER_BLOCK }))))
    results.forEach(([r], i) => {
      assert.is(r.before, 0)
      assert.equal(r.values, blocks[i].map((blk) => blk * PER_BLOCK + 0.5))
      assert.ok(r.fetched >= 3 && r.fetched <= 3 * WINDOW, `fetched ${r.fetched}`)
    })
    a.close()
  })

  test('the server away while a fault waits: the fault reads zeros after the retries, commit refuses, the next move recovers', async () => {
    const { a, lazy } = await storeWithArray()
    const b = lazy({ remoteTimeoutMs: 800 })
    const x = b.array('x', 'float64')
    const view = x.view()
    assert.is(view[0], 0.5)
    a.close()
    server.stop('immediate')
    let stillThere: number
    const t0 = Date.now()
    try {
      stillThere = view[12 * PER_BLOCK + 1]  // waits while the link tries again, ~0.8 s
    } finally {
      server.start()
    }
    const waited = Date.now() - t0
    assert.is(stillThere, 0, 'served as an unreadable block')
    assert.ok(waited >= 500 && waited < 15_000, `waited ${waited} ms`)
    assert.is(view[1], 1.5, 'what was fetched still reads')
    view[2] = 7
    const e = throwsCode(() => b.commit(), StorageError, 'TXA_STORAGE')
    assert.match(e.message, /could not be read/)
    throwsCode(() => b.commit(), StorageError, 'TXA_STORAGE')
    throwsCode(() => x.write([slice(3, 4)], 7), StorageError, 'TXA_STORAGE')
    b.abort()  // the next move: the zeros go, the block faults (and is fetched) again
    assert.is(view[12 * PER_BLOCK + 1], 12 * PER_BLOCK + 1.5)
    assert.is(view[2], 2.5)
    view[2] = 7
    b.commit()
    assert.is(x.read([slice(2, 3)]).data[0], 7)
    b.close()
  })

  test('a fault waiting while the handle moves to a newer version of its block is served the newer bytes, never the older', async () => {
    if (!faultMode().systemCalls) return  // a libuv thread's write(2) faults here: EFAULT without kernel faults
    const { a, lazy } = await storeWithArray()
    const b = lazy()
    const view = b.array('x', 'float64').view()
    assert.is(view[0], 0.5)
    // A rewrites block 40; B's cache follows (a stub of the new version), B's snapshot stays.
    a.array('x', 'float64').write([slice(40 * PER_BLOCK, 41 * PER_BLOCK)], -40)
    a.commit()
    await b.waitForCommit({ timeoutMs: 10_000, keepAlive: true })
    a.close()
    server.stop('immediate')
    let written: Promise<number> | null = null
    const fd = openSync(path.join(tempDir(), 'block40'), 'w+')
    try {
      // A libuv thread's write(2) faults on block 40 (the old version in B's snapshot) and
      // waits while the link tries to fetch it; meanwhile B moves (abort(): to what its
      // cache holds, the server being away) to the snapshot naming the new version.
      written = new Promise<number>((resolve, reject) => {
        write(fd, new Uint8Array(view.buffer, view.byteOffset + 40 * BLOCK, BLOCK), 0, (e, n) => (e ? reject(e) : resolve(n)))
      })
      await new Promise((r) => setTimeout(r, 100))
      b.abort()
      assert.is(b.serial, 2)
    } finally {
      server.start()
    }
    assert.is(await written, BLOCK)
    const bytes = Buffer.alloc(BLOCK)
    assert.is(readSync(fd, bytes, 0, BLOCK, 0), BLOCK)
    closeSync(fd)
    assert.equal(new Float64Array(bytes.buffer, bytes.byteOffset, PER_BLOCK), new Float64Array(PER_BLOCK).fill(-40))
    assert.is(view[40 * PER_BLOCK + 5], -40)
    b.close()
  })

  test('close() while a fault waits for a fetch answers it: nothing hangs', async () => {
    if (!faultMode().systemCalls) return  // a libuv thread's write(2) faults here: EFAULT without kernel faults
    const { url, schema, a, lazy } = await storeWithArray()
    const b = lazy()
    const view = b.array('x', 'float64').view()
    // A fetch that cannot finish: the blocks table locked by another connection.
    const locker = new Client(url)
    await locker.connect()
    try {
      await locker.query('BEGIN')
      await locker.query(`LOCK TABLE ${schema}.blocks IN ACCESS EXCLUSIVE MODE`)
      const fd = openSync(path.join(tempDir(), 'out'), 'w')
      // A libuv thread's write(2) faults on the view and waits for the fetch.
      const done = new Promise<string>((resolve) => {
        write(fd, new Uint8Array(view.buffer, view.byteOffset + 5 * BLOCK, BLOCK), (e, n) => resolve(e ? (e as NodeJS.ErrnoException).code ?? 'error' : `wrote ${n}`))
      })
      await until('the fetch waits for the lock', async () => (await locker.query(`SELECT 1 FROM pg_locks WHERE relation = '${schema}.blocks'::regclass AND NOT granted`)).rowCount! > 0)
      const t0 = Date.now()
      b.close()
      const outcome = await done
      assert.ok(Date.now() - t0 < 3000, `answered ${Date.now() - t0} ms after close()`)
      assert.ok(outcome === 'EFAULT' || outcome === `wrote ${BLOCK}`, outcome)
      closeSync(fd)
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined)
      await locker.end()
    }
    a.close()
  })

  test('a thread that stops listening while the relay waits to hand it requests is not held up', async () => {
    const { a, lazy } = await storeWithArray()
    const b = lazy()
    const dir = b.path
    b.close()
    const child = startChild('fault-listener.child.ts', [dir, String(BLOCK)])
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    try {
      const out = await finished(child)
      assert.match(out, /unlistened\nclosed\ndone 0\n/)
    } finally {
      clearTimeout(timer)
    }
    a.close()
  })

  test('take() into a view of stubs while the cache map grows: every fault gets its bytes, none waits out its time', async () => {
    const { url, schema, a, expected } = await storeWithArray()
    a.create('y', { dtype: 'float64', shape: [expected.length], blockBytes: BLOCK }).write(null, expected.map((v) => -v))
    a.commit()
    // A small map: the cache writes of the faults' fetches grow it while take() copies.
    const b = open(tempDir(), { remote: url, remoteSchema: schema, remoteBlocks: 'lazy', remoteTimeoutMs: 1000, mapSize: 1 << 20 })
    const out = b.array('y', 'float64').view()
    // x's first block, once per block of y: every block of the view is written (and faults).
    const starts = Array.from({ length: BLOCKS }, () => 0)
    const t0 = performance.now()
    b.array('x', 'float64').take(starts, PER_BLOCK, out)
    const ms = performance.now() - t0
    assert.ok(ms < 5000, `take() took ${Math.round(ms)} ms`)
    assert.equal(out, new Float64Array(expected.length).map((_, i) => (i % PER_BLOCK) + 0.5))
    b.commit()
    a.refresh()
    assert.equal(a.array('y', 'float64').read().data, out)
    b.close()
    a.close()
  })

  test('write() from a view of stubs while the cache map grows: every fault gets its bytes, none waits out its time', async () => {
    const { url, schema, a, expected } = await storeWithArray()
    const b = open(tempDir(), { remote: url, remoteSchema: schema, remoteBlocks: 'lazy', remoteTimeoutMs: 1000, mapSize: 1 << 20 })
    const z = b.create('z', { dtype: 'float64', shape: [expected.length], blockBytes: BLOCK })
    z.view()  // the region exists: write() goes through it
    const t0 = performance.now()
    z.write(null, b.array('x', 'float64').view())
    const ms = performance.now() - t0
    assert.ok(ms < 5000, `write() took ${Math.round(ms)} ms`)
    assert.equal(z.read().data, expected)
    b.close()
    a.close()
  })
}

test.run()
