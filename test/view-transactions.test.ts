// Writes through a view belong to the store's transaction: commit() stores them (only the
// blocks they touched), abort() drops them and the same view shows the committed values
// again. A view keeps its length when the array grows or shrinks.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { open, slice } from '../src/index'
import { sameBytes } from './helpers/bytes'
import { tempDir } from './helpers/tmp'

const N = 50_000 // float64: 400 000 bytes, ~98 blocks of 4 KiB

function ramp(n: number, offset = 0): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => i + offset)
}

function make(blockBytes = 4096) {
  const dir = tempDir()
  const store = open(dir, { sync: false })
  const a = store.create<'float64'>('a', { dtype: 'float64', shape: [0], blockBytes })
  a.append(ramp(N))
  store.commit()
  return { dir, store, a }
}

test('writes through a view survive commit() and a reopen', () => {
  const { dir, store, a } = make()
  const v = a.view()
  const expected = ramp(N)
  for (let i = 3; i < N; i += 997) {
    v[i] = -i
    expected[i] = -i
  }
  v.fill(7.5, 20_000, 20_100)
  expected.fill(7.5, 20_000, 20_100)
  assert.ok(store.dirty, 'a write through a view is a change')
  store.commit()
  assert.not.ok(store.dirty)
  sameBytes(v, expected, 'the view after commit')
  sameBytes(a.read().data, expected, 'read() after commit')
  store.close()
  const again = open(dir)
  sameBytes(again.array('a', 'float64').view(), expected, 'a view after reopen')
  sameBytes(again.array('a', 'float64').read().data, expected, 'read() after reopen')
  again.close()
})

test('abort() drops writes through a view: the same view shows the committed values again', () => {
  const { store, a } = make()
  const v = a.view()
  const other = a.view(100, 200)
  v.fill(-1)
  assert.is(other[0], -1, 'two views of the same rows share memory')
  assert.ok(store.dirty)
  store.abort()
  assert.not.ok(store.dirty)
  sameBytes(v, ramp(N), 'the view after abort')
  sameBytes(other, ramp(100, 100), 'the other view after abort')
  sameBytes(a.read().data, ramp(N), 'read() after abort')
  // and the view tracks writes again in the next transaction
  v[12345] = 0.5
  assert.ok(store.dirty)
  store.commit()
  const expected = ramp(N)
  expected[12345] = 0.5
  sameBytes(a.read().data, expected, 'after a write and commit following the abort')
  store.close()
})

test('after commit, a block is write-tracked again: a second write to it is committed too', () => {
  const { dir, store, a } = make()
  const v = a.view()
  v[10] = -10
  store.commit()
  v[11] = -11 // same block, now clean again
  assert.ok(store.dirty, 'the second write to a committed block is a change')
  store.commit()
  v[12] = -12
  store.abort()
  store.close()
  const again = open(dir)
  assert.equal([...again.array('a', 'float64').read([slice(9, 14)]).data], [9, -10, -11, 12, 13])
  again.close()
})

for (const blockBytes of [4096, 65536]) {
  test(`one element written through a view commits exactly one block (blockBytes ${blockBytes})`, () => {
    const { store, a } = make(blockBytes)
    for (const index of [0, 12_345, N - 1]) {
      const v = a.view()
      void v[(index + N / 2) % N] // reading elsewhere does not make anything dirty
      const before = store.stats()
      v[index] = -1
      store.commit()
      const after = store.stats()
      assert.is(after.blocksWritten - before.blocksWritten, 1, `blocks written for element ${index}`)
      const bytes = after.bytesWritten - before.bytesWritten
      assert.ok(bytes > 0 && bytes <= blockBytes, `bytes written for element ${index}: ${bytes}`)
      assert.is(a.read([index]).data[0], -1)
    }
    // a read-only pass over a view commits nothing
    let sum = 0
    for (const x of a.view()) sum += x
    // the ramp 0..N-1 with elements 0, 12 345 and N-1 set to -1
    assert.is(sum, (N * (N - 1)) / 2 - 12_345 - (N - 1) - 3)
    assert.not.ok(store.dirty, 'reading through a view is not a change')
    const before = store.stats()
    store.commit()
    assert.is(store.stats().blocksWritten, before.blocksWritten)
    store.close()
  })
}

test('a view of an array created in this transaction: written, committed, reopened', () => {
  const dir = tempDir()
  const store = open(dir)
  const a = store.create<'int32'>('fresh', { dtype: 'int32', shape: [1000, 3], blockBytes: 4096 })
  const v = a.view()
  assert.is(v.length, 3000)
  assert.is(v[2999], 0, 'a new array reads as zeros')
  for (let i = 0; i < v.length; i++) v[i] = i * 3
  store.commit()
  v[0] = -5 // still tracked after the array got its id at commit
  store.commit()
  store.close()
  const again = open(dir)
  const b = again.array('fresh', 'int32').read().data
  assert.is(b[0], -5)
  for (let i = 1; i < b.length; i++) if (b[i] !== i * 3) assert.unreachable(`element ${i} is ${b[i]}`)
  again.close()
})

test('a view made before append() or resize() keeps its length; a new view shows the appended rows', () => {
  const { store, a } = make()
  const before = a.view()
  const tail = a.view(N - 10)
  a.append(ramp(1000, N))
  assert.is(before.length, N, 'after append')
  assert.is(tail.length, 10)
  sameBytes(before, ramp(N), 'old rows through the old view')
  const grown = a.view()
  assert.is(grown.length, N + 1000)
  sameBytes(grown, ramp(N + 1000), 'a new view after append (uncommitted)')
  store.commit()
  sameBytes(a.view(), ramp(N + 1000), 'a new view after committing the append')
  assert.is(before.length, N, 'after commit')
  a.resize([N + 5000])
  assert.is(grown.length, N + 1000, 'after resize up')
  const big = a.view()
  assert.is(big.length, N + 5000)
  sameBytes(big.subarray(0, N + 1000), ramp(N + 1000), 'old rows after growing')
  sameBytes(big.subarray(N + 1000), new Float64Array(4000), 'grown rows read as zeros')
  a.resize([100])
  assert.is(big.length, N + 5000, 'after resize down')
  assert.is(before.length, N)
  sameBytes(a.view(), ramp(100), 'a view after shrinking')
  sameBytes(before.subarray(0, 100), ramp(100), 'the rows kept, through an old view')
  store.abort()
  assert.is(a.rows, N + 1000)
  sameBytes(a.view(), ramp(N + 1000), 'abort undid the resizes')
  store.close()
})

test('rows appended by append() then changed through a view are committed with the change', () => {
  const dir = tempDir()
  const store = open(dir, { sync: false })
  const a = store.create<'uint8'>('s', { dtype: 'uint8', shape: [0, 100], blockBytes: 4096 })
  const expected: number[] = []
  for (let c = 0; c < 30; c++) {
    const rows = Uint8Array.from({ length: 100 * 7 }, (_, i) => (c * 7 + i) & 0xff)
    a.append(rows)
    const v = a.view(a.rows - 7) // the rows just appended
    v[0] = 255 - c
    rows[0] = 255 - c
    expected.push(...rows)
    if (c % 3 === 2) store.commit()
  }
  store.commit()
  store.close()
  const again = open(dir)
  assert.equal([...again.array('s', 'uint8').view()], expected)
  again.close()
})

test.run()
