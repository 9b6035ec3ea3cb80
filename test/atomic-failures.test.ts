// Every mutating call is all-or-nothing: a failed append(), write(), resize(), setAttrs()
// or create() throws a coded error and leaves the transaction exactly as it was, and the
// next commit stores only what succeeded.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  ArgumentError, type BigArray, BoundsError, DTypeError, ShapeError, type Store, TooLargeError, TxarrayError, open, slice,
} from '../src/index'
import { throwsCode } from './helpers/expect'
import { tempDir } from './helpers/tmp'

/** A committed int32 array [rows, 3] whose element k holds k. */
function setup(rows = 4) {
  const dir = tempDir()
  const store = open(dir)
  const a = store.create<'int32'>('a', { dtype: 'int32', shape: [rows, 3], blockBytes: 4096, attrs: { unit: 'mV' } })
  a.write(null, Int32Array.from({ length: rows * 3 }, (_, k) => k))
  store.commit()
  return { dir, store, a }
}

/** Everything a caller can observe of the array and the transaction. */
function observe(store: Store, a: BigArray<'int32'>) {
  return { shape: a.shape, attrs: a.attrs, dirty: store.dirty, data: Array.from(a.read().data), list: store.list() }
}

function unchangedAfter(store: Store, a: BigArray<'int32'>, fn: () => unknown, cls: abstract new (...args: never[]) => TxarrayError, code: string) {
  const before = observe(store, a)
  throwsCode(fn, cls, code)
  assert.equal(observe(store, a), before, `state after a failed call (${code})`)
}

test('append() that fails validation changes nothing: wrong type, Proxy, lying length, partial row', () => {
  const { store, a } = setup()
  class Lying extends Int32Array {
    override get length(): number { return 3 }
  }
  unchangedAfter(store, a, () => a.append(new Float32Array(3) as never), DTypeError, 'TXA_DTYPE')
  unchangedAfter(store, a, () => a.append(new Proxy(new Int32Array(3), {}) as never), DTypeError, 'TXA_DTYPE')
  unchangedAfter(store, a, () => a.append(new Lying(2)), ShapeError, 'TXA_SHAPE')
  unchangedAfter(store, a, () => a.append(new Int32Array(4)), ShapeError, 'TXA_SHAPE')
  unchangedAfter(store, a, () => a.append(null as never), DTypeError, 'TXA_DTYPE')
  store.close()
})

test('append() whose copy fails after the array grew puts the length back (a source view detached by the growth)', () => {
  const { store, a } = setup()
  // Grow to just under the address range the array reserves for its views; the next append
  // moves the region to a bigger reservation, which detaches every view, the source included.
  const source = a.view(0, 2)
  assert.is(source.length, 6)
  const rowsNearLimit = Math.floor((a.viewStats().reservedBytes - 1) / 12)
  a.resize([rowsNearLimit, 3])
  const rowsBefore = a.rows
  const err = throwsCode(() => a.append(source), BoundsError, 'TXA_BOUNDS')
  assert.match(err.message, /smaller/)
  assert.is(a.rows, rowsBefore, 'the append did not happen')
  assert.equal(Array.from(a.read([slice(0, 4), null]).data), Array.from({ length: 12 }, (_, k) => k))
  assert.equal(Array.from(a.read([slice(rowsBefore - 1, null), null]).data), [0, 0, 0], 'no row past the end appeared')
  a.append(new Int32Array([7, 8, 9]))
  assert.is(a.rows, rowsBefore + 1)
  store.abort()
  assert.is(a.rows, 4)
  store.close()
})

test('write() that fails changes nothing: bad selection, wrong length, wrong type, unfillable scalar', () => {
  const { store, a } = setup()
  a.write([0, 0], 100) // an earlier successful change stays
  unchangedAfter(store, a, () => a.write([9], 1), BoundsError, 'TXA_BOUNDS')
  unchangedAfter(store, a, () => a.write([slice(0, 2)], new Int32Array(5)), ShapeError, 'TXA_SHAPE')
  unchangedAfter(store, a, () => a.write(null, new Float64Array(12) as never), DTypeError, 'TXA_DTYPE')
  unchangedAfter(store, a, () => a.write(null, 5n as never), ArgumentError, 'TXA_ARGUMENT')
  unchangedAfter(store, a, () => a.write([1.5], 1), ArgumentError, 'TXA_ARGUMENT')
  unchangedAfter(store, a, () => a.write('x' as never, 1), ArgumentError, 'TXA_ARGUMENT')
  store.commit()
  assert.is(a.read([0, 0]).data[0], 100)
  assert.equal(Array.from(a.read([slice(1, null), null]).data), Array.from({ length: 9 }, (_, k) => k + 3))
  store.close()
})

test('resize() that fails changes nothing', () => {
  const { store, a } = setup()
  unchangedAfter(store, a, () => a.resize([4, 4]), ShapeError, 'TXA_SHAPE')
  unchangedAfter(store, a, () => a.resize([-1, 3]), ShapeError, 'TXA_SHAPE')
  unchangedAfter(store, a, () => a.resize([NaN, 3]), ShapeError, 'TXA_SHAPE')
  unchangedAfter(store, a, () => a.resize([2 ** 52, 3]), TooLargeError, 'TXA_TOO_LARGE')
  unchangedAfter(store, a, () => a.resize(null as never), ShapeError, 'TXA_SHAPE')
  store.close()
})

test('setAttrs() with attrs msgpack cannot encode is refused at the call, and the next commit works', () => {
  const { dir, store, a } = setup()
  const cyclic: Record<string, unknown> = { a: 1 }
  cyclic.self = cyclic
  const deep: Record<string, unknown> = {}
  let at = deep
  for (let i = 0; i < 2000; i++) at = (at.d = {}) as Record<string, unknown>
  const bad: unknown[] = [
    cyclic, { f: () => 1 }, { s: Symbol('x') }, { big: 2n ** 64n }, { neg: -(2n ** 63n) - 1n }, { nested: [1, { f() {} }] },
    deep, null, [1, 2], 'text', 5, new Map([['k', () => 1]]),
  ]
  for (const attrs of bad) unchangedAfter(store, a, () => a.setAttrs(attrs as never), ArgumentError, 'TXA_ARGUMENT')
  a.setAttrs({ unit: 'V', big: 2n ** 64n - 1n, when: new Date(0), list: [1, 'two', null] })
  store.commit()
  store.close()
  const again = open(dir)
  assert.equal(again.array('a').attrs, { unit: 'V', big: 2n ** 64n - 1n, when: new Date(0), list: [1, 'two', null] })
  again.close()
})

test('attrs are kept as they will be stored: what attrs shows before commit is what a reopen shows', () => {
  const { dir, store, a } = setup()
  a.setAttrs({ drop: undefined, kept: 1, nested: { x: [1, 2] } })
  const shown = a.attrs
  store.commit()
  store.close()
  const again = open(dir)
  assert.equal(again.array('a').attrs, shown)
  again.close()
})

test('create() that fails adds nothing: unencodable attrs, huge shape', () => {
  const { store, a } = setup()
  unchangedAfter(store, a, () => store.create('x', { dtype: 'int8', shape: [1], attrs: { f: () => 1 } as never }), ArgumentError, 'TXA_ARGUMENT')
  unchangedAfter(store, a, () => store.create('x', { dtype: 'float64', shape: [2 ** 40, 2 ** 20] }), TooLargeError, 'TXA_TOO_LARGE')
  assert.is(store.has('x'), false)
  store.close()
})

test.run()
