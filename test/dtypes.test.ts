// Every dtype round-trips bit for bit: through the transaction's own writes, a commit,
// and a reopen of the store; extreme values included.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type DType, dtypes, open } from '../src/index'
import { Rng } from './helpers/random'
import { tempDir } from './helpers/tmp'

type Typed = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array
  | BigInt64Array | BigUint64Array | Float32Array | Float64Array

const ctor: Record<DType, { new (n: number | ArrayBufferLike): Typed; BYTES_PER_ELEMENT: number; from(v: Iterable<unknown>): Typed }> = {
  int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array, int32: Int32Array,
  uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array, float32: Float32Array, float64: Float64Array,
} as never

/**
 * The extremes as a TypedArray. For the float types the last element is then overwritten
 * byte-wise with a NaN carrying a payload (a signalling-NaN bit pattern): the store copies
 * bytes, so the payload must survive untouched.
 */
function extremeValues(dtype: DType): Typed {
  const values = ctor[dtype].from([...(extremes[dtype] as Iterable<unknown>), ...(dtype.startsWith('float') ? [0] : [])])
  const dv = new DataView(values.buffer)
  if (dtype === 'float64') {
    dv.setUint32(values.byteLength - 4, 0x7ff12345, true)
    dv.setUint32(values.byteLength - 8, 0x00000001, true)
    assert.ok(Number.isNaN(values[values.length - 1]))
  } else if (dtype === 'float32') {
    dv.setUint32(values.byteLength - 4, 0x7f812345, true)
    assert.ok(Number.isNaN(values[values.length - 1]))
  }
  return values
}

const extremes: Record<DType, unknown[]> = {
  int8: [0, 1, -1, 127, -128, 42, -42],
  uint8: [0, 1, 255, 128, 127],
  int16: [0, -1, 32767, -32768, 256, -256],
  uint16: [0, 65535, 32768, 1, 255],
  int32: [0, -1, 2147483647, -2147483648, 65536, -65536],
  uint32: [0, 4294967295, 2147483648, 1, 65535],
  int64: [0n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n + 1n, -(2n ** 53n) - 1n, 1n],
  uint64: [0n, 2n ** 64n - 1n, 2n ** 63n, 2n ** 63n - 1n, 2n ** 53n + 1n, 1n],
  float32: [0, -0, NaN, Infinity, -Infinity, 3.4028234663852886e38, -3.4028234663852886e38,
    1.401298464324817e-45, 1.1754943508222875e-38, -1.5, 0.1],
  float64: [0, -0, NaN, Infinity, -Infinity, Number.MAX_VALUE, -Number.MAX_VALUE,
    Number.MIN_VALUE, Number.EPSILON, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 0.1],
}

function bytesOf(a: Typed): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength)
}

/** Element-wise identity (Object.is: -0 and NaN count) plus byte identity. */
function assertSame(actual: Typed, expected: Typed, what: string): void {
  assert.is(actual.constructor, expected.constructor, `${what}: TypedArray type`)
  assert.is(actual.length, expected.length, `${what}: length`)
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) assert.unreachable(`${what}: element ${i} is ${String(actual[i])}, expected ${String(expected[i])}`)
  }
  assert.equal(bytesOf(actual), bytesOf(expected), `${what}: bytes`)
}

test('there are exactly the ten documented dtypes', () => {
  assert.equal([...dtypes].sort(), ['float32', 'float64', 'int16', 'int32', 'int64', 'int8', 'uint16', 'uint32', 'uint64', 'uint8'])
})

for (const dtype of Object.keys(extremes) as DType[]) {
  test(`${dtype}: extreme values round-trip bit for bit (uncommitted, committed, reopened)`, () => {
    const dir = tempDir()
    const values = extremeValues(dtype)
    let store = open(dir)
    const a = store.create(dtype, { dtype, shape: [values.length] })
    assert.is(a.dtype, dtype)
    assert.is(a.nbytes, values.length * ctor[dtype].BYTES_PER_ELEMENT)
    a.write(null, values as never)
    assertSame(a.read().data as Typed, values, 'before commit')
    store.commit()
    assertSame(a.read().data as Typed, values, 'after commit')
    store.close()
    store = open(dir)
    const b = store.array(dtype)
    assert.is(b.dtype, dtype)
    const got = b.read().data as Typed
    assert.instance(got, ctor[dtype])
    assertSame(got, values, 'after reopen')
    // Element by element too (selection of one element returns a 0-d chunk).
    for (let i = 0; i < values.length; i++) {
      const one = b.read([i])
      assert.equal(one.shape, [])
      assert.ok(Object.is(one.data[0], values[i]), `element ${i}`)
    }
    store.close()
  })

  test(`${dtype}: random bytes over many blocks round-trip, stored little-endian in C order`, () => {
    const dir = tempDir()
    const rng = new Rng(1234 + dtype.length)
    const item = ctor[dtype].BYTES_PER_ELEMENT
    const shape = [37, 5, 11] // 2035 elements: 1..4 blocks of 4096 bytes, rows straddle blocks
    const n = shape[0] * shape[1] * shape[2]
    const raw = rng.bytes(n * item)
    const values = new ctor[dtype](raw.slice().buffer)
    let store = open(dir, { sync: false })
    const a = store.create('x', { dtype, shape, blockBytes: 4096 })
    a.write(null, values as never)
    store.commit()
    store.close()
    store = open(dir)
    const got = store.array('x').read()
    assert.equal(got.shape, shape)
    assert.equal(got.stride, [55, 11, 1])
    assert.equal(bytesOf(got.data as Typed), raw)
    // Little-endian element layout, independent of the TypedArray: element k's bytes.
    const dv = new DataView(raw.buffer)
    const k = 1234
    const el = store.array('x').read([Math.floor(k / 55), Math.floor(k / 11) % 5, k % 11]).data as Typed
    const expectedEl = item === 8
      ? (dtype === 'int64' ? dv.getBigInt64(k * 8, true) : dtype === 'uint64' ? dv.getBigUint64(k * 8, true) : dv.getFloat64(k * 8, true))
      : dtype === 'float32' ? dv.getFloat32(k * 4, true)
      : item === 4 ? (dtype === 'int32' ? dv.getInt32(k * 4, true) : dv.getUint32(k * 4, true))
      : item === 2 ? (dtype === 'int16' ? dv.getInt16(k * 2, true) : dv.getUint16(k * 2, true))
      : (dtype === 'int8' ? dv.getInt8(k) : dv.getUint8(k))
    assert.ok(Object.is(el[0], expectedEl), `element ${k}: ${String(el[0])} vs ${String(expectedEl)}`)
    store.close()
  })

  test(`${dtype}: a scalar fills a selection`, () => {
    const store = open(tempDir())
    const a = store.create('x', { dtype, shape: [4, 3] })
    const big = dtype === 'int64' || dtype === 'uint64'
    const v = extremes[dtype][1]
    a.write([1], v as never)
    a.write([3, 2], (big ? 7n : 7) as never)
    store.commit()
    const got = a.read().data as Typed
    for (let i = 0; i < 12; i++) {
      const expected = i >= 3 && i < 6 ? v : i === 11 ? (big ? 7n : 7) : big ? 0n : 0
      assert.ok(Object.is(got[i], ctor[dtype].from([expected])[0]), `element ${i} is ${String(got[i])}`)
    }
    store.close()
  })
}

test('int64/uint64 arrays take BigInt64Array/BigUint64Array and hand them back', () => {
  const store = open(tempDir())
  const s = store.create('s', { dtype: 'int64', shape: [2] })
  const u = store.create('u', { dtype: 'uint64', shape: [2] })
  s.write(null, new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]))
  u.write(null, new BigUint64Array([2n ** 64n - 1n, 0n]))
  store.commit()
  assert.instance(s.read().data, BigInt64Array)
  assert.instance(u.read().data, BigUint64Array)
  assert.equal([...s.read().data], [-(2n ** 63n), 2n ** 63n - 1n])
  assert.equal([...u.read().data], [2n ** 64n - 1n, 0n])
  store.close()
})

test.run()
