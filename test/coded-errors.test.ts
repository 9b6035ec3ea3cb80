// Every error a caller can provoke, with any argument, is a TxarrayError with a code:
// huge selections, hostile options, Proxies, detached buffers, unencodable attrs.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  ArgumentError, DTypeError, ShapeError, TooLargeError, TxarrayError, open, slice,
} from '../src/index'
import { rejectsCode, throwsCode } from './helpers/expect'
import { tempDir } from './helpers/tmp'

function setup() {
  const store = open(tempDir())
  const a = store.create<'float64'>('a', { dtype: 'float64', shape: [8, 2] })
  a.write(null, Float64Array.from({ length: 16 }, (_, k) => k))
  store.commit()
  return { store, a }
}

test('a selection too large for one TypedArray is TooLargeError, not RangeError', () => {
  const store = open(tempDir())
  const big = store.create('big', { dtype: 'int8', shape: [2 ** 40] })
  throwsCode(() => big.read(), TooLargeError, 'TXA_TOO_LARGE')
  throwsCode(() => big.read([slice(0, 2 ** 33)]), TooLargeError, 'TXA_TOO_LARGE')
  throwsCode(() => big.write(null, 1), TooLargeError, 'TXA_TOO_LARGE')
  throwsCode(() => big.take([0], 2 ** 33), TooLargeError, 'TXA_TOO_LARGE')
  assert.is(big.read([slice(5, 8)]).data.length, 3, 'a small selection of the same array works')
  store.close()
})

test('commit(), transact() and open() options of the wrong type are ArgumentError', () => {
  const { store } = setup()
  for (const options of [null, 'sync', 5, { sync: 'yes' }, { sync: 1 }]) {
    throwsCode(() => store.commit(options as never), ArgumentError, 'TXA_ARGUMENT')
    throwsCode(() => store.transact(() => 1, options as never), ArgumentError, 'TXA_ARGUMENT')
  }
  for (const retries of [-1, 1.5, NaN, '3']) {
    throwsCode(() => store.transact(() => 1, { retries: retries as never }), ArgumentError, 'TXA_ARGUMENT')
  }
  throwsCode(() => open(tempDir(), { sync: 'no' as never }), ArgumentError, 'TXA_ARGUMENT')
  store.commit({})
  store.commit(undefined)
  store.close()
})

test('Proxies of TypedArrays and arrays are refused with a code', () => {
  const { store, a } = setup()
  const proxy = new Proxy(new Float64Array(16), {})
  throwsCode(() => a.write(null, proxy), DTypeError, 'TXA_DTYPE')
  throwsCode(() => a.append(proxy), DTypeError, 'TXA_DTYPE')
  throwsCode(() => a.read(null, proxy), DTypeError, 'TXA_DTYPE')
  throwsCode(() => a.take([0], 1, proxy), DTypeError, 'TXA_DTYPE')
  throwsCode(() => a.take(new Proxy([0, 1], {}), 1), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => a.take(new Proxy(new Uint32Array(2), {}) as never, 1), ArgumentError, 'TXA_ARGUMENT')
  assert.equal(Array.from(a.read(new Proxy([1], {})).data), [2, 3], 'a Proxy of a selection list is read like the list')
  store.close()
})

test('detached buffers are refused by length, never read', () => {
  const { store, a } = setup()
  const data = new Float64Array(16)
  structuredClone(data.buffer, { transfer: [data.buffer] })
  assert.is(data.length, 0)
  throwsCode(() => a.write(null, data), ShapeError, 'TXA_SHAPE')
  throwsCode(() => a.read(null, data), ShapeError, 'TXA_SHAPE')
  a.append(data) // zero rows: nothing to do
  assert.is(a.rows, 8)
  store.close()
})

test('take() starts that are not a list of row indexes are ArgumentError', () => {
  const { store, a } = setup()
  for (const starts of [null, undefined, 5, 'abc', { length: 2 }, { length: 1.5 }, new DataView(new ArrayBuffer(8)), [0.5], [-1], [NaN], ['1']]) {
    throwsCode(() => a.take(starts as never, 1), ArgumentError, 'TXA_ARGUMENT')
  }
  throwsCode(() => a.take(new Int8Array(2) as never, 1), ArgumentError, 'TXA_ARGUMENT')
  store.close()
})

test('wait timeouts of the wrong type are ArgumentError', async () => {
  const { store } = setup()
  for (const t of [-1, NaN, '5', null, {}]) {
    throwsCode(() => store.waitForCommitSync(t as never), ArgumentError, 'TXA_ARGUMENT')
    await rejectsCode(store.waitForCommit({ timeoutMs: t as never }), ArgumentError, 'TXA_ARGUMENT')
  }
  store.close()
})

// A sweep of hostile values through every call that takes arguments: whatever is thrown
// must be a TxarrayError with a TXA_ code.
test('hostile arguments to every call give coded errors only', () => {
  const { store, a } = setup()
  const detached = new Float64Array(4)
  structuredClone(detached.buffer, { transfer: [detached.buffer] })
  const hostile: unknown[] = [
    undefined, null, NaN, Infinity, -Infinity, -1, 0.5, 2 ** 53, 2 ** 64, -(2 ** 60), '', 'x', '0', true, 5n, -5n, 2n ** 70n,
    Symbol('s'), {}, [], [[]], [null, null, null], [NaN], [2 ** 60], [{ kind: 'slice', start: 0, stop: 2 ** 60, step: null }], [{ kind: 'slice', start: 0, stop: 1, step: 0 }],
    [{ kind: 'slice', start: 0.5, stop: null, step: null }], new Proxy({}, {}), new Proxy([], {}), new Float64Array(3),
    new Float64Array(new SharedArrayBuffer(16 * 8)), detached, new Float32Array(16), new DataView(new ArrayBuffer(8)),
    () => 1, new Date(), new Map(), Object.create(null), { sync: 'x' }, { dtype: 'float64', shape: [1] },
    { dtype: 'float64', shape: [2 ** 60] }, { dtype: 'nope', shape: [1] }, { dtype: 'int8', shape: [1], blockBytes: 3 },
  ]
  const calls: Array<[string, (x: unknown) => unknown]> = [
    ['create', (x) => store.create('n', x as never)],
    ['create name', (x) => store.create(x as never, { dtype: 'int8', shape: [1] })],
    ['array', (x) => store.array(x as never)],
    ['has', (x) => store.has(x as never)],
    ['delete', (x) => store.delete(x as never)],
    ['commit', (x) => store.commit(x as never)],
    ['transact', (x) => store.transact(x as never)],
    ['waitForCommitSync', (x) => store.waitForCommitSync(x === undefined || (typeof x === 'number' && x > 0) ? 0 : x as never)],
    ['view', (x) => a.view(x as never)],
    ['view stop', (x) => a.view(0, x as never)],
    ['views', (x) => [...a.views(x as never)]],
    ['read', (x) => a.read(x as never)],
    ['read out', (x) => a.read(null, x as never)],
    ['take', (x) => a.take(x as never, 1)],
    ['take rows', (x) => a.take([0], x as never)],
    ['take out', (x) => a.take([0], 1, x as never)],
    ['write', (x) => a.write(x as never, 1)],
    ['write data', (x) => a.write(null, x as never)],
    ['append', (x) => a.append(x as never)],
    ['resize', (x) => a.resize(x as never)],
    ['resize axis', (x) => a.resize([x as never, 2])],
    ['setAttrs', (x) => a.setAttrs(x as never)],
    ['setAttrs value', (x) => a.setAttrs({ v: x })],
    ['slice', (x) => slice(x as never, 1)],
  ]
  let thrown = 0
  for (const [name, call] of calls) {
    for (const [i, x] of hostile.entries()) {
      if (process.env.TXA_TRACE) console.error(name, i)
      try {
        call(x)
      } catch (e) {
        thrown++
        if (!(e instanceof TxarrayError) || !/^TXA_[A-Z_]+$/.test(e.code)) {
          assert.unreachable(`${name}(hostile[${i}]) threw an uncoded ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`)
        }
      }
      store.abort()
    }
  }
  assert.ok(thrown > calls.length * 10, `most hostile calls are refused (${thrown})`)
  store.close()
})

test.run()
