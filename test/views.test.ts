// A view is a real TypedArray over the array's memory: it shows exactly what read() shows
// for the same rows, in every dtype and block size, and whichever path wrote the data
// (write(), append(), or another view) this transaction reads its own writes.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type DType, type TypedArrayFor, dtypes, open, slice } from '../src/index'
import { bytesOf, sameBytes } from './helpers/bytes'
import { Rng } from './helpers/random'
import { tempDir } from './helpers/tmp'

const ctor: Record<DType, { new (b: ArrayBufferLike, o?: number, n?: number): TypedArrayFor[DType]; BYTES_PER_ELEMENT: number }> = {
  int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array, int32: Int32Array,
  uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array, float32: Float32Array, float64: Float64Array,
}

function randomOf<D extends DType>(dtype: D, n: number, rng: Rng): TypedArrayFor[D] {
  const bytes = rng.bytes(n * ctor[dtype].BYTES_PER_ELEMENT)
  return new ctor[dtype](bytes.buffer, 0, n) as TypedArrayFor[D]
}

// Shapes whose rows do not divide the block: rows straddle block boundaries.
const layouts: { shape: number[]; blockBytes: number }[] = [
  { shape: [0, 7], blockBytes: 4096 },
  { shape: [0], blockBytes: 4096 },
  { shape: [0, 3, 5], blockBytes: 65536 },
]

for (const dtype of dtypes) {
  test(`${dtype}: view(start, stop) equals read() for random row ranges`, () => {
    const rng = new Rng(dtypes.indexOf(dtype) + 1)
    const dir = tempDir()
    const store = open(dir, { sync: false })
    for (const [li, { shape, blockBytes }] of layouts.entries()) {
      const name = `a${li}`
      const a = store.create(name, { dtype, shape, blockBytes })
      const rowSize = shape.slice(1).reduce((x, y) => x * y, 1)
      const rowBytes = rowSize * ctor[dtype].BYTES_PER_ELEMENT
      // spans many blocks: at least 20, written in three commits plus an uncommitted tail
      const rows = Math.ceil((20 * blockBytes) / rowBytes) + rng.int(0, 50)
      const cuts = [0, Math.floor(rows / 3), Math.floor(rows / 2), Math.floor((rows * 4) / 5), rows]
      for (let c = 0; c + 1 < cuts.length; c++) {
        a.append(randomOf(dtype, (cuts[c + 1] - cuts[c]) * rowSize, rng))
        if (c < 3) store.commit()
      }
      assert.is(a.rows, rows)
      const whole = a.read().data
      sameBytes(a.view(), whole, `${name}: the whole-array view`)
      for (let k = 0; k < 25; k++) {
        const start = rng.int(0, rows)
        const stop = rng.chance(0.2) ? start + rng.int(0, 3) : rng.int(start, rows)
        const v = a.view(start, stop)
        assert.is(v.length, (Math.min(stop, rows) - start) * rowSize, `${name}: view(${start}, ${stop}) length`)
        assert.instance(v, ctor[dtype])
        sameBytes(v, a.read([slice(start, stop)]).data, `${name}: view(${start}, ${stop})`)
      }
      // Python slice bounds: negative from the end, clipped when out of range
      for (const [start, stop] of [[-5, null], [null, -3], [-rows - 10, 4], [rows - 2, rows + 100], [5, 2]] as const) {
        sameBytes(a.view(start, stop), a.read([slice(start, stop)]).data, `${name}: view(${start}, ${stop})`)
      }
      void rowBytes
    }
    store.close()
  })
}

test('views see write() and append(); read() and take() see writes through views; all agree with a model', () => {
  const rng = new Rng(77)
  for (const blockBytes of [4096, 65536]) {
    const dir = tempDir()
    const store = open(dir, { sync: false })
    const COLS = 9 // 36-byte rows: windows straddle blocks
    const rows = Math.ceil((24 * blockBytes) / (COLS * 4))
    const a = store.create<'int32'>('m', { dtype: 'int32', shape: [0, COLS], blockBytes })
    const model = randomOf('int32', rows * COLS, rng)
    a.append(model.slice(0, (rows >> 1) * COLS))
    store.commit()
    a.append(model.slice((rows >> 1) * COLS))
    const early = a.view() // made before every later write: must follow them all
    for (let step = 0; step < 200; step++) {
      const start = rng.int(0, rows - 1)
      const n = rng.int(1, Math.min(rows - start, rng.chance(0.5) ? 3 : 300))
      const data = randomOf('int32', n * COLS, rng)
      const how = rng.int(0, 3)
      if (how === 0) {
        a.write([slice(start, start + n)], data)
      } else if (how === 1) {
        a.view(start, start + n).set(data)
      } else if (how === 2) {
        // element by element through a view of the whole array
        const v = a.view()
        for (let i = 0; i < data.length; i++) v[start * COLS + i] = data[i]
      } else {
        // a single column via write(): a strided selection
        const col = rng.int(0, COLS - 1)
        const colData = randomOf('int32', n, rng)
        a.write([slice(start, start + n), col], colData)
        for (let r = 0; r < n; r++) data[r * COLS + col] = colData[r]
        for (let r = 0; r < n; r++) for (let c = 0; c < COLS; c++) if (c !== col) data[r * COLS + c] = model[(start + r) * COLS + c]
      }
      model.set(data, start * COLS)
      if (step % 50 === 49) {
        sameBytes(a.read().data, model, `read() after step ${step}`)
        sameBytes(early, model, `the early view after step ${step}`)
        const starts = Array.from({ length: 20 }, () => rng.int(0, rows - 5))
        const got = a.take(starts, 5).data
        for (let w = 0; w < starts.length; w++) {
          sameBytes(got.subarray(w * 5 * COLS, (w + 1) * 5 * COLS), model.subarray(starts[w] * COLS, (starts[w] + 5) * COLS), `take() window ${w}`)
        }
      }
      if (step === 99) store.commit()
      if (step === 149) {
        store.commit()
        // a view made now, after the commit, and the early one both show the model
        sameBytes(a.view(), model, 'a new view after commit')
      }
    }
    store.commit()
    store.close()
    const again = open(dir)
    const b = again.array('m', 'int32')
    sameBytes(b.view(), model, `blockBytes ${blockBytes}: a view after reopening`)
    sameBytes(b.read().data, model, `blockBytes ${blockBytes}: read() after reopening`)
    again.close()
  }
})

test('64-bit and float views hold exact values (bigint, NaN payloads, -0)', () => {
  const store = open(tempDir(), { sync: false })
  const i64 = store.create<'int64'>('i', { dtype: 'int64', shape: [0], blockBytes: 4096 })
  i64.append(BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n, -1n, 0n, 12345678901234567n]))
  store.commit()
  assert.equal([...i64.view()], [-(2n ** 63n), 2n ** 63n - 1n, -1n, 0n, 12345678901234567n])
  i64.view(2, 3)[0] = 42n
  assert.equal([...i64.read([2]).data], [42n])
  const f64 = store.create<'float64'>('f', { dtype: 'float64', shape: [0], blockBytes: 4096 })
  const nanBits = new Float64Array(new BigUint64Array([0x7ff8dead_beef0001n]).buffer)
  f64.append(Float64Array.of(-0, Infinity, nanBits[0], 1e-310))
  store.commit()
  const v = f64.view()
  assert.ok(Object.is(v[0], -0))
  assert.is(v[1], Infinity)
  assert.equal([...bytesOf(v.subarray(2, 3))], [...bytesOf(nanBits)], 'the NaN payload survives')
  assert.is(v[3], 1e-310)
  store.close()
})

test('an empty array or an empty range gives an empty view of the dtype', () => {
  const store = open(tempDir())
  const a = store.create<'float32'>('e', { dtype: 'float32', shape: [0, 4] })
  const v = a.view()
  assert.instance(v, Float32Array)
  assert.is(v.length, 0)
  a.append(new Float32Array(40))
  assert.is(a.view(3, 3).length, 0)
  assert.is(a.view(8, 2).length, 0)
  assert.instance(a.view(8, 2), Float32Array)
  assert.equal([...a.views(3)].map((w) => w.length), [12, 12, 12, 4])
  store.close()
})

test.run()
