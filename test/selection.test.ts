// Selections (integers, slices, null) behave like numpy basic indexing, checked against an
// independent reference: index arithmetic over a plain JS array, with CPython's slice rules.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type AxisSelection, ArgumentError, BoundsError, type DType, type Selection, ShapeError, DTypeError, open, slice,
} from '../src/index'
import { throwsCode } from './helpers/expect'
import { Rng } from './helpers/random'
import { tempDir } from './helpers/tmp'

// ---------------------------------------------------------------- reference implementation

/** A selection entry in plain terms, turned into a txarray selection only at the call. */
type RefAxis = { t: 'all' } | { t: 'index'; i: number } | { t: 'slice'; start: number | null; stop: number | null; step: number | null; short: boolean }

/** CPython's PySlice_AdjustIndices, then the indices it yields. */
function refSliceIndices(start: number | null, stop: number | null, step: number | null, length: number): number[] {
  const st = step ?? 1
  const lower = st < 0 ? -1 : 0
  const upper = st < 0 ? length - 1 : length
  let a: number
  if (start === null) a = st < 0 ? upper : lower
  else if (start < 0) a = Math.max(start + length, lower)
  else a = Math.min(start, upper)
  let b: number
  if (stop === null) b = st < 0 ? lower : upper
  else if (stop < 0) b = Math.max(stop + length, lower)
  else b = Math.min(stop, upper)
  const out: number[] = []
  for (let i = a; st > 0 ? i < b : i > b; i += st) out.push(i)
  return out
}

/**
 * The flat indices (C order) a selection picks from an array of `shape`, and the shape of
 * the result; 'bounds' when an integer index is out of range.
 */
function refSelect(shape: number[], sel: RefAxis[]): { flat: number[]; shape: number[] } | 'bounds' {
  const perAxis: number[][] = []
  const outShape: number[] = []
  for (let axis = 0; axis < shape.length; axis++) {
    const s: RefAxis = sel[axis] ?? { t: 'all' }
    const n = shape[axis]
    if (s.t === 'all') {
      perAxis.push(Array.from({ length: n }, (_, i) => i))
      outShape.push(n)
    } else if (s.t === 'index') {
      const i = s.i < 0 ? s.i + n : s.i
      if (i < 0 || i >= n) return 'bounds'
      perAxis.push([i])
    } else {
      const idx = refSliceIndices(s.start, s.stop, s.step, n)
      perAxis.push(idx)
      outShape.push(idx.length)
    }
  }
  // Cartesian product in C order (last axis fastest).
  let flat = [0]
  for (let axis = 0; axis < shape.length; axis++) {
    const stride = shape.slice(axis + 1).reduce((x, y) => x * y, 1)
    const next: number[] = []
    for (const base of flat) for (const i of perAxis[axis]) next.push(base + i * stride)
    flat = next
  }
  return { flat, shape: outShape }
}

function toSelection(sel: RefAxis[]): Selection {
  return sel.map((s): AxisSelection => {
    if (s.t === 'all') return null
    if (s.t === 'index') return s.i
    return s.short ? slice(s.stop) : slice(s.start, s.stop, s.step)
  })
}

function describe(shape: number[], sel: RefAxis[]): string {
  const parts = sel.map((s) => s.t === 'all' ? ':' : s.t === 'index' ? String(s.i)
    : s.short ? `:${s.stop ?? ''}` : `${s.start ?? ''}:${s.stop ?? ''}:${s.step ?? ''}`)
  return `shape [${shape.join(', ')}] [${parts.join(', ')}]`
}

// ---------------------------------------------------------------- sanity of the reference

test('the reference follows Python: list(range(10))[a:b:c]', () => {
  const r = (a: number | null, b: number | null, c: number | null, n = 10) => refSliceIndices(a, b, c, n)
  assert.equal(r(null, null, -1), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
  assert.equal(r(-3, null, null), [7, 8, 9])
  assert.equal(r(null, -3, null), [0, 1, 2, 3, 4, 5, 6])
  assert.equal(r(8, 2, -2), [8, 6, 4])
  assert.equal(r(100, -100, -3), [9, 6, 3, 0])
  assert.equal(r(-100, 100, 4), [0, 4, 8])
  assert.equal(r(5, 5, 1), [])
  assert.equal(r(2, 8, -1), [])
  assert.equal(r(null, null, 3, 0), [])
  assert.equal(r(-1, -11, -1), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
  assert.equal(r(-1, -10, -1), [9, 8, 7, 6, 5, 4, 3, 2, 1])
})

// ---------------------------------------------------------------- random cases

const DTYPES: DType[] = ['float64', 'int32', 'int16', 'uint8']

function randomShape(rng: Rng): number[] {
  const ndim = rng.int(1, 4)
  const target = rng.pick([50, 500, 4000, 12000])
  const edge = Math.ceil(2 * target ** (1 / ndim))
  return Array.from({ length: ndim }, () => (rng.chance(0.03) ? 0 : rng.int(1, edge)))
}

function randomAxis(rng: Rng, n: number, allowBadIndex: boolean): RefAxis {
  const r = rng.next()
  if (r < 0.15) return { t: 'all' }
  if (r < 0.4) {
    if (allowBadIndex && rng.chance(0.1)) return { t: 'index', i: rng.chance(0.5) ? n + rng.int(0, 3) : -n - 1 - rng.int(0, 3) }
    if (n === 0) return { t: 'all' }
    return { t: 'index', i: rng.int(-n, n - 1) }
  }
  const bound = (): number | null => (rng.chance(0.3) ? null : rng.int(-n - 3, n + 3))
  if (rng.chance(0.1)) return { t: 'slice', start: null, stop: bound(), step: null, short: true }
  const step = rng.chance(0.3) ? null : rng.pick([1, 2, 3, 4, -1, -2, -3, -4, 7, -7])
  return { t: 'slice', start: bound(), stop: bound(), step, short: false }
}

function randomSelection(rng: Rng, shape: number[], allowBadIndex: boolean): RefAxis[] {
  const k = rng.int(0, shape.length) // trailing axes may be left out
  return Array.from({ length: k }, (_, axis) => randomAxis(rng, shape[axis], allowBadIndex))
}

function valuesFor(dtype: DType, rng: Rng, n: number): number[] {
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    out.push(dtype === 'float64' ? rng.int(-1e6, 1e6) / 8 : dtype === 'int32' ? rng.int(-2e9, 2e9)
      : dtype === 'int16' ? rng.int(-32768, 32767) : rng.int(0, 255))
  }
  return out
}

const typed = (dtype: DType, v: number[]) => dtype === 'float64' ? Float64Array.from(v) : dtype === 'int32' ? Int32Array.from(v)
  : dtype === 'int16' ? Int16Array.from(v) : Uint8Array.from(v)

test('read() and write() match the reference on hundreds of random shapes and selections (small blocks)', () => {
  const rng = new Rng(20240611)
  const dir = tempDir()
  let store = open(dir, { sync: false })
  const refs = new Map<string, { ref: number[]; shape: number[]; dtype: DType }>()
  let cases = 0
  let boundsCases = 0
  let multiBlock = 0
  for (let arrayNo = 0; arrayNo < 70; arrayNo++) {
    const shape = randomShape(rng)
    const dtype = rng.pick(DTYPES)
    const size = shape.reduce((x, y) => x * y, 1)
    const name = `a${arrayNo}`
    const a = store.create(name, { dtype, shape, blockBytes: 4096 })
    const ref = valuesFor(dtype, rng, size)
    a.write(null, typed(dtype, ref) as never)
    if (a.nbytes > 2 * 4096) multiBlock++
    if (rng.chance(0.7)) store.commit() // some selections then read committed blocks, some dirty ones
    for (let k = 0; k < 8; k++) {
      const sel = randomSelection(rng, shape, true)
      const what = `${name} ${dtype} ${describe(shape, sel)}`
      const expected = refSelect(shape, sel)
      cases++
      if (expected === 'bounds') {
        boundsCases++
        throwsCode(() => a.read(toSelection(sel)), BoundsError, 'TXA_BOUNDS')
        throwsCode(() => a.write(toSelection(sel), 0), BoundsError, 'TXA_BOUNDS')
        continue
      }
      // read
      const got = a.read(toSelection(sel))
      assert.equal(got.shape, expected.shape, `${what}: shape`)
      const strides = expected.shape.map((_, i) => expected.shape.slice(i + 1).reduce((x, y) => x * y, 1))
      assert.equal(got.stride, strides, `${what}: stride`)
      assert.equal([...(got.data as Float64Array)], expected.flat.map((i) => ref[i]), `${what}: read`)
      // read into a preallocated, longer out: the selection lands at the front, the rest is untouched
      const out = typed(dtype, new Array(expected.flat.length + 3).fill(7))
      const into = a.read(toSelection(sel), out as never)
      assert.is(into.data, out, `${what}: read(sel, out) returns out`)
      assert.equal([...out.subarray(0, expected.flat.length)], expected.flat.map((i) => ref[i]), `${what}: read into out`)
      assert.equal([...out.subarray(expected.flat.length)], [7, 7, 7], `${what}: out past the selection untouched`)
      // write random data into the selection, then compare the whole array
      const data = valuesFor(dtype, rng, expected.flat.length)
      a.write(toSelection(sel), typed(dtype, data) as never)
      expected.flat.forEach((flatIndex, j) => { ref[flatIndex] = data[j] })
      assert.equal([...(a.read().data as Float64Array)], ref, `${what}: whole array after write`)
      if (rng.chance(0.2)) store.commit()
    }
    refs.set(name, { ref, shape, dtype })
  }
  assert.ok(cases >= 500, `${cases} cases`)
  assert.ok(boundsCases > 10, `${boundsCases} out-of-bounds cases`)
  assert.ok(multiBlock > 10, `${multiBlock} arrays span several blocks`)
  store.commit()
  store.close()
  // Everything written through selections was committed where the reference says.
  store = open(dir)
  for (const [name, { ref, shape, dtype }] of refs) {
    const a = store.array(name)
    assert.equal(a.shape, shape)
    assert.is(a.dtype, dtype)
    assert.equal([...(a.read().data as Float64Array)], ref, `${name} after reopen`)
  }
  store.close()
})

test('large strided selections cross many block boundaries both ways', () => {
  const rng = new Rng(7)
  const store = open(tempDir(), { sync: false })
  const shape = [300, 7, 9] // 18900 float64 = 37 blocks of 4 KiB
  const size = shape[0] * shape[1] * shape[2]
  const ref = Array.from({ length: size }, (_, i) => i)
  const a = store.create('big', { dtype: 'float64', shape, blockBytes: 4096 })
  a.write(null, Float64Array.from(ref))
  store.commit()
  const sels: RefAxis[][] = [
    [{ t: 'slice', start: null, stop: null, step: -1, short: false }],
    [{ t: 'slice', start: -1, stop: null, step: -13, short: false }, { t: 'index', i: -1 }, { t: 'slice', start: null, stop: null, step: -2, short: false }],
    [{ t: 'all' }, { t: 'index', i: 3 }, { t: 'index', i: 4 }],
    [{ t: 'slice', start: 5, stop: 290, step: 3, short: false }, { t: 'slice', start: 1, stop: -1, step: null, short: false }],
    [{ t: 'all' }, { t: 'all' }, { t: 'slice', start: null, stop: null, step: 8, short: false }],
  ]
  for (const sel of sels) {
    const expected = refSelect(shape, sel)
    assert.ok(expected !== 'bounds')
    const got = a.read(toSelection(sel))
    assert.equal(got.shape, expected.shape, describe(shape, sel))
    assert.equal([...got.data as Float64Array], expected.flat.map((i) => ref[i]), describe(shape, sel))
    const data = Float64Array.from(expected.flat, () => rng.int(-1000, 1000))
    a.write(toSelection(sel), data)
    expected.flat.forEach((f, j) => { ref[f] = data[j] })
    store.commit()
    assert.equal([...a.read().data as Float64Array], ref, `${describe(shape, sel)}: after write + commit`)
  }
  store.close()
})

// ---------------------------------------------------------------- specified examples

test('an axis given as null, or left out, is taken whole', () => {
  const store = open(tempDir())
  const a = store.create('x', { dtype: 'int32', shape: [3, 4] })
  a.write(null, Int32Array.from({ length: 12 }, (_, i) => i))
  assert.equal([...a.read([null, 1]).data], [1, 5, 9])
  assert.equal([...a.read([1]).data], [4, 5, 6, 7])
  assert.equal(a.read([1]).shape, [4])
  assert.equal([...a.read([]).data], [...a.read().data])
  assert.equal(a.read(null).shape, [3, 4])
  store.close()
})

test('integer indices drop their axis; negative ones count from the end', () => {
  const store = open(tempDir())
  const a = store.create('x', { dtype: 'int32', shape: [3, 4] })
  a.write(null, Int32Array.from({ length: 12 }, (_, i) => i))
  const r = a.read([-1, -2])
  assert.equal(r.shape, [])
  assert.equal(r.stride, [])
  assert.equal([...r.data], [10])
  assert.equal([...a.read([-3]).data], [0, 1, 2, 3])
  store.close()
})

test('slice(stop), slice(start, stop) and slice(start, stop, step) follow Python', () => {
  const store = open(tempDir())
  const a = store.create('x', { dtype: 'uint8', shape: [10] })
  a.write(null, Uint8Array.from({ length: 10 }, (_, i) => i))
  assert.equal([...a.read([slice(3)]).data], [0, 1, 2])
  assert.equal([...a.read([slice(-3, null)]).data], [7, 8, 9])
  assert.equal([...a.read([slice(null, null, -3)]).data], [9, 6, 3, 0])
  assert.equal([...a.read([slice(8, 2, -2)]).data], [8, 6, 4])
  assert.equal(a.read([slice(5, 2)]).shape, [0])
  assert.equal(a.read([slice(5, 2)]).data.length, 0)
  store.close()
})

test('a Slice built by hand (without slice()) works, and is checked like one from slice()', () => {
  const store = open(tempDir())
  const a = store.create('x', { dtype: 'uint8', shape: [10] })
  a.write(null, Uint8Array.from({ length: 10 }, (_, i) => i))
  assert.equal([...a.read([{ kind: 'slice', start: null, stop: 3, step: null }]).data], [0, 1, 2])
  assert.equal([...a.read([{ kind: 'slice', start: -2, stop: null, step: -4 }]).data], [8, 4, 0])
  // fields left out count as null
  assert.equal([...a.read([{ kind: 'slice', stop: 3 } as never]).data], [0, 1, 2])
  assert.equal([...a.read([{ kind: 'slice', step: -3 } as never]).data], [9, 6, 3, 0])
  throwsCode(() => a.read([{ kind: 'slice', start: 0, stop: 5, step: 0 }]), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => a.write([{ kind: 'slice', start: 0.5, stop: 5, step: 1 }], 1), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => a.read([{ kind: 'slice', start: 0, stop: Infinity, step: 1 }]), ArgumentError, 'TXA_ARGUMENT')
  store.close()
})

test('a selection with an empty axis reads and writes nothing', () => {
  const store = open(tempDir())
  const a = store.create('x', { dtype: 'float32', shape: [4, 0, 3] })
  store.commit()
  assert.equal(a.read().shape, [4, 0, 3])
  assert.is(a.read().data.length, 0)
  a.write([slice(1, 3)], new Float32Array(0))
  assert.is(store.dirty, false)
  store.close()
})

test('write() wants exactly the selection\'s element count, of the array\'s dtype', () => {
  const store = open(tempDir())
  const a = store.create('x', { dtype: 'int16', shape: [4, 4] })
  store.commit()
  throwsCode(() => a.write([slice(0, 2)], new Int16Array(7)), ShapeError, 'TXA_SHAPE')
  throwsCode(() => a.write([slice(0, 2)], new Int16Array(9)), ShapeError, 'TXA_SHAPE')
  throwsCode(() => a.write([slice(0, 2)], new Int32Array(8) as never), DTypeError, 'TXA_DTYPE')
  throwsCode(() => a.read([1], new Int16Array(3)), ShapeError, 'TXA_SHAPE')
  throwsCode(() => a.read([1], new Uint16Array(4) as never), DTypeError, 'TXA_DTYPE')
  assert.is(store.dirty, false)
  store.close()
})

test('malformed selections are rejected', () => {
  const store = open(tempDir())
  const a = store.create('x', { dtype: 'int16', shape: [4, 4] })
  throwsCode(() => slice(0, 4, 0), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => slice(0.5, 4), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => a.read([1.5]), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => a.read([NaN]), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => a.read([0, 0, 0]), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => a.read(['1' as never]), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => a.read({ length: 1 } as never), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => a.read([4]), BoundsError, 'TXA_BOUNDS')
  throwsCode(() => a.read([-5]), BoundsError, 'TXA_BOUNDS')
  throwsCode(() => a.read([0, 4]), BoundsError, 'TXA_BOUNDS')
  store.close()
})

test.run()
