// A copy whose source and destination overlap (a view of the same array as the data of
// write(), or as the `out` of read()/take()) behaves as numpy and TypedArray.prototype.set
// do: as if the source were copied first.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { open, slice } from '../src/index'
import { tempDir } from './helpers/tmp'

const N = 10

/** The expected result, computed with plain arrays: the source is copied first. */
function model(values: number[], dst: number[], src: number[]): number[] {
  const copy = src.map((i) => values[i])
  const out = [...values]
  dst.forEach((d, k) => { out[d] = copy[k] })
  return out
}

const range = (start: number, stop: number, step = 1) => {
  const r: number[] = []
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) r.push(i)
  return r
}

for (const dirty of [false, true]) {
  const how = dirty ? 'uncommitted' : 'committed'
  function setup(blockBytes = 4096) {
    const store = open(tempDir())
    const a = store.create<'int32'>('a', { dtype: 'int32', shape: [N], blockBytes })
    const values = range(0, N)
    a.write(null, Int32Array.from(values))
    if (!dirty) store.commit()
    return { store, a, values }
  }

  test(`write() of a reversed selection from a view of the same array (${how} data)`, () => {
    const { store, a, values } = setup()
    a.write([slice(null, null, -1)], a.view())
    assert.equal(Array.from(a.read().data), model(values, range(N - 1, -1, -1), range(0, N)))
    assert.equal(Array.from(a.read().data), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    store.close()
  })

  test(`write() shifted by one, both ways, and with a step (${how} data)`, () => {
    const { store, a, values } = setup()
    a.write([slice(1, N)], a.view(0, N - 1))
    const right = model(values, range(1, N), range(0, N - 1))
    assert.equal(Array.from(a.read().data), right)
    a.write([slice(0, N - 1)], a.view(1, N))
    const left = model(right, range(0, N - 1), range(1, N))
    assert.equal(Array.from(a.read().data), left)
    a.write([slice(0, N, 2)], a.view(3, 8))
    assert.equal(Array.from(a.read().data), model(left, range(0, N, 2), range(3, 8)))
    store.close()
  })

  test(`read(selection, out) with out a view of the same array (${how} data)`, () => {
    const { store, a, values } = setup()
    const v = a.view()
    a.read([slice(null, null, -1)], v)
    assert.equal(Array.from(v), model(values, range(0, N), range(N - 1, -1, -1)))
    const w = a.view(2, N)
    const before = Array.from(a.read().data)
    a.read([slice(0, 8)], w)
    assert.equal(Array.from(a.read().data), model(before, range(2, N), range(0, 8)))
    store.close()
  })

  test(`take(starts, rows, out) with out a view of the same array (${how} data)`, () => {
    const { store, a, values } = setup()
    a.take([5, 0], 5, a.view())
    assert.equal(Array.from(a.read().data), model(values, range(0, N), [...range(5, 10), ...range(0, 5)]))
    store.close()
  })
}

test('overlap across block boundaries of a large array (reversed, 3 blocks)', () => {
  const store = open(tempDir())
  const n = 3 * 1024 + 17
  const a = store.create<'int32'>('a', { dtype: 'int32', shape: [n], blockBytes: 4096 })
  a.write(null, Int32Array.from({ length: n }, (_, i) => i))
  store.commit()
  a.write([slice(null, null, -1)], a.view())
  const data = a.read().data
  for (let i = 0; i < n; i++) if (data[i] !== n - 1 - i) assert.unreachable(`element ${i} is ${data[i]}`)
  store.commit()
  a.write([slice(100, null)], a.view(0, n - 100))
  const shifted = a.read().data
  for (let i = 100; i < n; i++) if (shifted[i] !== n - 1 - (i - 100)) assert.unreachable(`shifted element ${i} is ${shifted[i]}`)
  store.close()
})

test.run()
