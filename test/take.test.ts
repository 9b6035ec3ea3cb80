// take(starts, rows, out): many row windows copied back to back in one call — the
// random-window workload. It equals the read() of each window, concatenated; reuses a
// preallocated `out`; checks its arguments; and reads this transaction's own writes.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ArgumentError, type BigArray, BoundsError, DTypeError, NotFoundError, ShapeError, ClosedError, open, slice } from '../src/index'
import { sameBytes } from './helpers/bytes'
import { throwsCode } from './helpers/expect'
import { Rng } from './helpers/random'
import { tempDir } from './helpers/tmp'

const COLS = 6

function setup(rows = 30_000, blockBytes = 4096) {
  const store = open(tempDir(), { sync: false })
  const a = store.create<'float32'>('s', { dtype: 'float32', shape: [0, COLS], blockBytes })
  const data = Float32Array.from({ length: rows * COLS }, (_, i) => i * 0.5 - 7)
  a.append(data.subarray(0, (rows >> 1) * COLS))
  store.commit()
  a.append(data.subarray((rows >> 1) * COLS)) // half committed, half this transaction's
  return { store, a, data, rows }
}

function expectWindows(got: Float32Array, a: BigArray<'float32'>, starts: ArrayLike<number>, rows: number, what: string) {
  const parts = Array.from(starts, (s) => a.read([slice(s, s + rows)]).data)
  const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    all.set(p, at)
    at += p.length
  }
  sameBytes(got.subarray(0, all.length), all, what)
}

test('take() equals the concatenated read() windows for random starts (several block sizes)', () => {
  const rng = new Rng(5)
  for (const blockBytes of [4096, 65536, 1 << 20]) {
    const { store, a, rows } = setup(30_000, blockBytes)
    for (let k = 0; k < 20; k++) {
      const w = rng.int(0, 40)
      const starts = Array.from({ length: rng.int(0, 200) }, () => rng.int(0, rows - w))
      const chunk = a.take(starts, w)
      assert.equal(chunk.shape, [starts.length, w, COLS])
      assert.equal(chunk.stride, [w * COLS, COLS, 1])
      assert.instance(chunk.data, Float32Array)
      assert.is(chunk.data.length, starts.length * w * COLS)
      expectWindows(chunk.data, a, starts, w, `blockBytes ${blockBytes}, case ${k}`)
    }
    // starts may be typed arrays too, in any order, overlapping, at both ends
    const starts = [rows - 16, 0, 5, 5, 12_345, 14_990]
    for (const s of [starts, Float64Array.from(starts), Int32Array.from(starts), Uint32Array.from(starts)]) {
      expectWindows(a.take(s, 16).data, a, starts, 16, `starts as ${s.constructor.name}`)
    }
    store.close()
  }
})

test('take() into a preallocated out, reused: returns out itself and allocates no new array', () => {
  const { store, a, rows } = setup()
  const rng = new Rng(9)
  const out = new Float32Array(100 * 16 * COLS + 5)
  out[out.length - 1] = 123
  for (let k = 0; k < 10; k++) {
    const starts = Array.from({ length: 100 }, () => rng.int(0, rows - 16))
    const chunk = a.take(starts, 16, out)
    assert.ok(chunk.data === out, 'data is out')
    expectWindows(out, a, starts, 16, `round ${k}`)
    assert.is(out[out.length - 1], 123, 'elements past the windows are left alone')
  }
  // out may be a view, even of the same array
  const target = store.create<'float32'>('t', { dtype: 'float32', shape: [10 * 8, COLS] })
  const starts = [0, 100, 200, 300, 400, 500, 600, 700, 800, 900]
  a.take(starts, 8, target.view())
  expectWindows(target.read().data, a, starts, 8, 'into a view of another array')
  // into a view of the same array, not overlapping the windows (untouched pages: the copy
  // faults them in while take() reads)
  const before = a.read([slice(1000, 2000)]).data
  const far = [1000, 1200, 1400, 1600, 1800]
  a.take(far, 10, a.view(0, 50))
  const expected = new Float32Array(50 * COLS)
  far.forEach((s, i) => expected.set(before.subarray((s - 1000) * COLS, (s - 1000 + 10) * COLS), i * 10 * COLS))
  sameBytes(a.read([slice(0, 50)]).data, expected, 'into a view of the same array')
  store.close()
})

test('take() reads this transaction writes, whichever path wrote them, and the committed data after abort', () => {
  const { store, a, data } = setup(2000)
  a.write([slice(10, 12)], new Float32Array(2 * COLS).fill(1))
  const v = a.view()
  v.fill(2, 500 * COLS, 502 * COLS)
  v[1999 * COLS] = 3
  const got = a.take([10, 500, 1999], 1).data
  assert.equal([...got], [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, ...data.subarray(1999 * COLS + 1, 2000 * COLS)])
  store.commit()
  assert.equal([...a.take([500], 1).data], [2, 2, 2, 2, 2, 2])
  v[500 * COLS] = 9
  store.abort()
  assert.equal([...a.take([500], 1).data], [2, 2, 2, 2, 2, 2], 'after abort')
  // rows past a shrink read as zeros when grown again
  a.resize([100, COLS])
  a.resize([2000, COLS])
  assert.equal([...a.take([1999], 1).data], [0, 0, 0, 0, 0, 0])
  store.close()
})

/** Bytes of `file` mapped into this process (its mappings' Rss in /proc/self/smaps). */
function mappedBytesOf(file: string): number {
  let total = 0
  let inFile = false
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inFile = line.endsWith(` ${file}`)
    const rss = /^Rss:\s+(\d+) kB/.exec(line)
    if (rss && inFile) total += Number(rss[1]) * 1024
  }
  return total
}

test('a copy of several MiB (read by several threads) equals the per-window reads; committed blocks written in many commits, so runs are many', () => {
  const store = open(tempDir(), { sync: false })
  const rows = 200_000
  const a = store.create<'float32'>('big', { dtype: 'float32', shape: [0, COLS], blockBytes: 16384 })
  const data = Float32Array.from({ length: rows * COLS }, (_, i) => (i % 9973) - i * 1e-3)
  for (let r = 0; r < rows; r += 7_000) {
    a.append(data.subarray(r * COLS, Math.min(rows, r + 7_000) * COLS))
    store.commit()
  }
  a.write([slice(100, 200)], -1) // dirty blocks of this transaction among the committed ones
  const rng = new Rng(11)
  const starts = Array.from({ length: 400 }, () => rng.int(0, rows - 1000))
  const got = a.take(starts, 1000).data // 400 windows of 24 000 bytes: 9.6 MB
  expectWindows(got, a, starts, 1000, 'take of 9.6 MB')
  sameBytes(a.read().data, Float32Array.from(data, (v, i) => (i >= 100 * COLS && i < 200 * COLS ? -1 : v)), 'read of the whole 4.8 MB')
  store.close()
})

test('a large take() into a view of another array lands where the view shows it (faults on untouched view pages in every mode)', () => {
  const store = open(tempDir(), { sync: false })
  const rows = 100_000
  const src = store.create<'float32'>('src', { dtype: 'float32', shape: [rows, COLS], blockBytes: 65536 })
  src.write(null, Float32Array.from({ length: rows * COLS }, (_, i) => i))
  const dst = store.create<'float32'>('dst', { dtype: 'float32', shape: [rows, COLS], blockBytes: 65536 })
  dst.write(null, 3)
  store.commit()
  const starts = Array.from({ length: 50 }, (_, i) => i * 1900)
  const view = dst.view() // untouched: every page of it faults when the copy writes it
  src.take(starts, 1500, view.subarray(0, 50 * 1500 * COLS))
  expectWindows(view.subarray(0, 50 * 1500 * COLS), src, starts, 1500, 'take into a view')
  assert.is(view[50 * 1500 * COLS], 3, 'the view past the windows keeps its committed value')
  store.commit()
  expectWindows(dst.read([slice(0, 50 * 1500)]).data, src, starts, 1500, 'committed through the view')
  store.close()
})

test('take() and read() of committed blocks map none of the store: its mapped pages do not grow by the bytes read', () => {
  // Clean blocks are read with pread at their offsets in the data file, and a block is
  // located without touching its pages in LMDB's map: a copy adds no file-backed page to
  // the process (the page cache holds them once, for every process).
  const dir = tempDir()
  const MiB = 2 ** 20
  const cols = 4096 // 32 KiB rows of float64
  const rows = 2048 // 64 MiB
  const w = open(dir, { sync: false })
  // 1 MiB blocks: 64 values, one B-tree leaf page. (The page cache holds large folios, up
  // to 2 MiB, and a fault on one page of LMDB's map maps its whole folio: the B-tree pages
  // a lookup reads bring their neighbours along.)
  const a = w.create<'float64'>('big', { dtype: 'float64', shape: [0, cols], blockBytes: MiB })
  const chunk = new Float64Array(256 * cols)
  for (let r = 0; r < rows; r += 256) {
    for (let i = 0; i < chunk.length; i++) chunk[i] = r * cols + i
    a.append(chunk)
  }
  w.commit()
  w.close()
  const store = open(dir)
  const b = store.array('big', 'float64')
  const starts = Array.from({ length: rows / 16 }, (_, i) => i * 16)
  const out = new Float64Array(rows * cols).fill(-1)
  const dataFile = path.join(fs.realpathSync(dir), 'data.mdb')
  const before = mappedBytesOf(dataFile)
  b.take(starts, 16, out)
  for (let r = 0; r < rows; r += 128) b.read([slice(r, r + 128), null], out.subarray(r * cols, (r + 128) * cols))
  const grown = mappedBytesOf(dataFile) - before
  for (let i = 0; i < out.length; i += 4093) if (out[i] !== i) assert.unreachable(`element ${i} is ${out[i]}`)
  assert.ok(grown < 8 * MiB, `pages of data.mdb mapped grew ${(grown / MiB).toFixed(1)} MiB reading 64 MiB twice`)
  store.close()
})

test('take() bounds: windows up to the end are fine, one row further is BoundsError', () => {
  const { store, a, rows } = setup(1000)
  assert.is(a.take([rows - 5], 5).data.length, 5 * COLS)
  assert.is(a.take([rows], 0).data.length, 0, 'an empty window at the end')
  assert.is(a.take([], 7).data.length, 0)
  throwsCode(() => a.take([rows - 4], 5), BoundsError, 'TXA_BOUNDS')
  throwsCode(() => a.take([0, 3, rows], 1), BoundsError, 'TXA_BOUNDS')
  throwsCode(() => a.take([2 ** 52], 1), BoundsError, 'TXA_BOUNDS')
  throwsCode(() => a.take([0], rows + 1), BoundsError, 'TXA_BOUNDS')
  store.close()
})

test('take() argument errors: starts, rows, out', () => {
  const { store, a } = setup(1000)
  for (const bad of [[-1], [1.5], [NaN], ['3'], [null]] as unknown as number[][]) {
    throwsCode(() => a.take(bad, 1), ArgumentError, 'TXA_ARGUMENT')
  }
  for (const bad of [null, undefined, 5, 'abc', {}] as unknown as number[][]) {
    throwsCode(() => a.take(bad, 1), ArgumentError, 'TXA_ARGUMENT')
  }
  throwsCode(() => a.take(new Int8Array([1]) as unknown as number[], 1), ArgumentError, 'TXA_ARGUMENT')
  for (const bad of [-1, 1.5, NaN, Infinity, '2'] as unknown as number[]) {
    throwsCode(() => a.take([0], bad), ArgumentError, 'TXA_ARGUMENT')
  }
  throwsCode(() => a.take([0, 1], 4, new Float32Array(2 * 4 * COLS - 1)), ShapeError, 'TXA_SHAPE')
  throwsCode(() => a.take([0], 4, new Float64Array(4 * COLS) as unknown as Float32Array), DTypeError, 'TXA_DTYPE')
  throwsCode(() => a.take([0], 4, [0, 0] as unknown as Float32Array), DTypeError, 'TXA_DTYPE')
  store.delete('s')
  throwsCode(() => a.take([0], 1), NotFoundError, 'TXA_NOT_FOUND')
  store.abort()
  store.close()
  throwsCode(() => a.take([0], 1), ClosedError, 'TXA_CLOSED')
})

test('take() of 64-bit and 3-D arrays: window shape follows the trailing axes', () => {
  const store = open(tempDir())
  const a = store.create<'int64'>('c', { dtype: 'int64', shape: [0, 2, 3], blockBytes: 4096 })
  a.append(BigInt64Array.from({ length: 500 * 6 }, (_, i) => BigInt(i) * -3n))
  const chunk = a.take([7, 400], 2)
  assert.equal(chunk.shape, [2, 2, 2, 3])
  assert.equal(chunk.stride, [12, 6, 3, 1])
  assert.equal([...chunk.data], [...a.read([slice(7, 9)]).data, ...a.read([slice(400, 402)]).data])
  store.close()
})

test('take() rejects starts so large that their byte offset would wrap around', () => {
  const s = open(tempDir())
  const a = s.create('a', { dtype: 'uint8', shape: [4, 65536] })
  a.write(null, 1)
  throwsCode(() => a.take([2 ** 48], 1), BoundsError, 'TXA_BOUNDS')
  throwsCode(() => a.take([2 ** 48 + 1], 1), BoundsError, 'TXA_BOUNDS')
  throwsCode(() => a.take([2 ** 60], 1), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => a.take(new Float64Array([2 ** 70]), 1), ArgumentError, 'TXA_ARGUMENT')
  s.close()
})

test.run()
