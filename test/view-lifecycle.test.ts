// What happens to views around the array's and the store's life: close() and the
// deletion of an array detach them (byteLength 0, touching them is harmless); views()
// covers any array in order; a view too large for one TypedArray throws TooLargeError;
// growing past the array's address-space reservation moves it (old views detached, the
// transaction's data kept).
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ArgumentError, ClosedError, MAX_VIEW_BYTES, NotFoundError, TooLargeError, open, slice } from '../src/index'
import { allBytes, sameBytes } from './helpers/bytes'
import { throwsCode } from './helpers/expect'
import { tempDir } from './helpers/tmp'

function ramp(n: number, offset = 0): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => i + offset)
}

function setup(n = 20_000) {
  const dir = tempDir()
  const store = open(dir, { sync: false })
  const a = store.create<'float64'>('a', { dtype: 'float64', shape: [0], blockBytes: 4096 })
  a.append(ramp(n))
  store.commit()
  return { dir, store, a }
}

function touchAll(v: Float64Array): void {
  // element reads and writes: undefined and no-ops
  assert.is(v[0], undefined)
  v[0] = 1
  v[12_345] = 2
  assert.is(v[0], undefined)
  assert.is(v[12_345], undefined)
  // TypedArray methods throw a TypeError on a detached buffer: a JavaScript exception,
  // never a crash
  const uses = [() => v.fill(3), () => v.set([1]), () => v.subarray(0, 10), () => [...v], () => v.reduce((x, y) => x + y, 0)]
  for (const use of uses) assert.throws(use, (e: unknown) => e instanceof TypeError || e instanceof RangeError)
}

test('close() detaches every view: length and byteLength 0, touching them never crashes', () => {
  const { store, a } = setup()
  const views = [a.view(), a.view(100, 200), a.view(0, 1)]
  const sub = views[0].subarray(5, 50)
  views[0][7] = -7 // one dirty, one clean, one never touched
  assert.is(views[1][0], 100)
  const gen = a.views(1000)
  const first = gen.next().value as Float64Array
  assert.is(first.length, 1000)
  store.close()
  for (const v of [...views, first, sub]) {
    assert.is(v.length, 0)
    assert.is(v.byteLength, 0)
    assert.is(v.buffer.byteLength, 0)
    touchAll(v)
  }
  throwsCode(() => a.view(), ClosedError, 'TXA_CLOSED')
  throwsCode(() => gen.next(), ClosedError, 'TXA_CLOSED')
  throwsCode(() => a.views(), ClosedError, 'TXA_CLOSED')
  store.close() // idempotent
})

test('close() ends the snapshot even while detached views are alive: other writers reuse freed pages', () => {
  const dir = tempDir()
  const s = open(dir)
  const a = s.create('a', { dtype: 'float64', shape: [1024, 8] }) // one 64 KiB block
  a.write(null, 1)
  s.commit()
  const kept = a.view(0, 1) // stays referenced (not collected) for the whole test
  s.close()
  assert.is(kept.byteLength, 0)
  const w = open(dir)
  for (let i = 0; i < 200; i++) {
    w.array('a', 'float64').write(null, i)
    w.commit({ sync: false })
  }
  w.close()
  // A reader pinned at the first snapshot would keep all 200 old versions of the block
  // (17 pages each: ~13 MB); without it LMDB reuses the same few pages.
  const size = fs.statSync(path.join(dir, 'data.mdb')).size
  assert.ok(size < 2 * 2 ** 20, `data.mdb grew to ${size} bytes`)
  assert.is(kept.length, 0)
})

test('a store closed with uncommitted view writes stores nothing', () => {
  const { dir, store, a } = setup()
  a.view().fill(-1)
  store.close()
  const again = open(dir)
  sameBytes(again.array('a', 'float64').view(), ramp(20_000), 'committed data only')
  again.close()
})

test('views outlive a garbage-collected store handle that was never closed', async () => {
  const { setFlagsFromString } = await import('node:v8')
  const { runInNewContext } = await import('node:vm')
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const dir = tempDir()
  let v: Float64Array
  {
    const s = open(dir)
    const a = s.create<'float64'>('a', { dtype: 'float64', shape: [0], blockBytes: 4096 })
    a.append(ramp(5000))
    s.commit()
    v = open(dir).array('a', 'float64').view() // its store handle is dropped at once
  }
  for (let i = 0; i < 5; i++) {
    gc()
    await new Promise((r) => setTimeout(r, 5))
  }
  let sum = 0
  for (let i = 0; i < v.length; i++) sum += v[i]
  assert.is(sum, (5000 * 4999) / 2)
})

test('a deleted array: its views read as before until the delete is committed; abort() brings it back', () => {
  const { store, a } = setup()
  const v = a.view()
  assert.is(v[5], 5)
  store.delete('a')
  throwsCode(() => a.view(), NotFoundError, 'TXA_NOT_FOUND')
  throwsCode(() => a.views(), NotFoundError, 'TXA_NOT_FOUND')
  throwsCode(() => a.take([0], 1), NotFoundError, 'TXA_NOT_FOUND')
  assert.is(v[5], 5, 'pending delete: the view still reads')
  store.abort()
  sameBytes(v, ramp(20_000), 'after abort() of the delete')
  assert.is(a.view(5, 6)[0], 5)
  store.close()
})

test('once the delete is committed, views are detached and writes through them are never stored', () => {
  const { dir, store, a } = setup()
  const b = store.create<'float64'>('b', { dtype: 'float64', shape: [10], blockBytes: 4096 })
  store.commit()
  const v = a.view()
  const w = a.view(10_000, 10_005)
  assert.is(v[5], 5)
  store.delete('a')
  store.commit()
  for (const x of [v, w]) {
    assert.is(x.byteLength, 0, 'a view of a deleted array is detached')
    touchAll(x)
  }
  assert.not.ok(store.dirty)
  const before = store.stats().blocksWritten
  b.write([0], 1)
  store.commit()
  assert.is(store.stats().blocksWritten - before, 1, "only b's block is written")
  store.close()
  const again = open(dir)
  assert.not.ok(again.has('a'))
  again.close()
})

test('an array deleted by another handle: our views are detached when we move past the delete', () => {
  const { dir, store, a } = setup()
  const v = a.view()
  assert.is(v[100], 100)
  const other = open(dir)
  other.delete('a')
  other.commit()
  other.close()
  assert.is(v[100], 100, 'our snapshot still has the array')
  assert.is(v[15_000], 15_000, 'even pages we had not loaded')
  store.refresh()
  assert.is(v.byteLength, 0)
  touchAll(v)
  throwsCode(() => a.view(), NotFoundError, 'TXA_NOT_FOUND')
  store.close()
})

test('an array created and aborted (or deleted) in one transaction: its views are detached', () => {
  const store = open(tempDir())
  const a = store.create<'int16'>('x', { dtype: 'int16', shape: [5000], blockBytes: 4096 })
  const v = a.view()
  v[0] = 1
  store.abort()
  assert.is(v.byteLength, 0)
  const b = store.create<'int16'>('y', { dtype: 'int16', shape: [5000], blockBytes: 4096 })
  const w = b.view()
  w[1] = 2
  store.delete('y')
  assert.is(w.byteLength, 0)
  assert.not.ok(store.dirty)
  store.close()
})

test('views(rowsPerView) covers the whole array in order, the last one shorter', () => {
  const dir = tempDir()
  const store = open(dir)
  const a = store.create<'int32'>('m', { dtype: 'int32', shape: [0, 3, 7], blockBytes: 4096 })
  const rows = 1001
  a.append(Int32Array.from({ length: rows * 21 }, (_, i) => i * 7 - 3))
  for (const per of [1, 3, 64, 1000, 1001, 5000]) {
    const parts = [...a.views(per)]
    assert.is(parts.length, Math.ceil(rows / per), `rowsPerView ${per}`)
    parts.forEach((p, i) => {
      assert.instance(p, Int32Array)
      assert.is(p.length, Math.min(per, rows - i * per) * 21)
      sameBytes(p, a.read([slice(i * per, (i + 1) * per)]).data, `rowsPerView ${per}, view ${i}`)
    })
  }
  const all = [...a.views()]
  assert.is(all.length, 1, 'by default as many rows as fit in one view')
  sameBytes(all[0], a.read().data, 'the default views()')
  for (const bad of [0, -1, 1.5, NaN, Infinity]) {
    throwsCode(() => a.views(bad), ArgumentError, 'TXA_ARGUMENT')
  }
  assert.equal([...store.create('empty', { dtype: 'int8', shape: [0, 5] }).views(2)], [])
  store.close()
})

test('a view larger than MAX_VIEW_BYTES throws TooLargeError; views() reaches the whole array lazily', () => {
  const dir = tempDir()
  const store = open(dir, { sync: false })
  const a = store.create<'uint8'>('wide', { dtype: 'uint8', shape: [0, 8192] })
  a.resize([2 ** 20, 8192]) // 8 GiB of zeros, nothing written
  assert.is(a.nbytes, 2 ** 33)
  assert.is(MAX_VIEW_BYTES, 2 ** 32)
  throwsCode(() => a.view(), TooLargeError, 'TXA_TOO_LARGE')
  throwsCode(() => a.view(0, 2 ** 19 + 1), TooLargeError, 'TXA_TOO_LARGE')
  const small = a.view(2 ** 20 - 2) // two rows at the end
  assert.is(small.length, 16384)
  let n = 0
  for (const v of a.views()) {
    assert.ok(v.byteLength <= MAX_VIEW_BYTES)
    assert.is(v.length, 2 ** 32) // 2^19 rows of 8192 bytes each
    assert.is(v[0], 0)
    assert.is(v[v.length - 1], 0)
    v[n * 1000 + 1] = 10 + n // one write per view
    n++
  }
  assert.is(n, 2)
  const views = [...a.views(2 ** 18)]
  assert.is(views.length, 4)
  assert.is(views[2][1000 + 1], 11, 'the write to the second 4 GiB view, seen through a 2 GiB one')
  assert.equal([...a.read([slice(2 ** 19, 2 ** 19 + 1), slice(0, 4)]).data], [0, 0, 0, 0])
  assert.equal([...a.read([0, slice(0, 3)]).data], [0, 10, 0])
  assert.equal([...a.read([2 ** 19, slice(1000, 1003)]).data], [0, 11, 0])
  // each chunk's first window and the windows of the elements touched (scan windows of 64
  // blocks: 6 of them), not the 131 072 blocks of the array
  assert.ok(store.stats().mappedBlocks <= 6 * 64, `only the windows around touched elements are mapped: ${store.stats().mappedBlocks}`)
  const before = store.stats().blocksWritten
  store.commit()
  assert.is(store.stats().blocksWritten - before, 2, 'two blocks written')
  store.close()
})

test('growing past the 64 GiB reservation moves the region: old views detached, uncommitted data kept', () => {
  const dir = tempDir()
  const store = open(dir, { sync: false })
  const a = store.create<'uint8'>('huge', { dtype: 'uint8', shape: [0, 2 ** 20] }) // 1 MiB rows
  const row0 = Uint8Array.from({ length: 2 ** 20 }, (_, i) => (i * 13) & 0xff)
  a.append(row0)
  store.commit()
  a.append(new Uint8Array(2 ** 20).fill(7)) // uncommitted row 1
  const v = a.view()
  v[5] = 200 // uncommitted write to a committed row, through a view
  const expected0 = Uint8Array.from(row0)
  expected0[5] = 200
  a.resize([2 ** 17, 2 ** 20]) // 128 GiB: past the 64 GiB reservation
  assert.is(v.byteLength, 0, 'a view of the old reservation is detached')
  touchAll(v as unknown as Float64Array)
  assert.is(a.nbytes, 2 ** 37)
  sameBytes(a.view(0, 1), expected0, 'row 0 (committed + uncommitted write) after the move')
  allBytes(a.view(1, 2), 7, 'row 1 (uncommitted append) after the move')
  allBytes(a.view(2 ** 17 - 1), 0, 'the last row reads as zeros')
  a.view(2 ** 17 - 1)[2 ** 20 - 1] = 1
  const before = store.stats().blocksWritten
  store.commit()
  assert.ok(store.stats().blocksWritten - before >= 17, 'rows 0 and 1 and the last block stored')
  store.close()
  const again = open(dir)
  const b = again.array('huge', 'uint8')
  assert.equal(b.shape, [2 ** 17, 2 ** 20])
  sameBytes(b.view(0, 1), expected0, 'row 0 after reopening')
  allBytes(b.view(1, 2), 7, 'row 1 after reopening')
  assert.is(b.view(2 ** 17 - 1)[2 ** 20 - 1], 1)
  assert.is(b.read([2 ** 16, 0]).data[0], 0)
  again.close()
})

test('a move to a bigger reservation in an uncommitted new array keeps its data; abort() then drops it', () => {
  const store = open(tempDir(), { sync: false })
  const a = store.create<'uint8'>('n', { dtype: 'uint8', shape: [4, 2 ** 20] })
  a.view(3, 4).fill(9)
  a.resize([2 ** 17, 2 ** 20])
  allBytes(a.view(3, 4), 9, 'row 3 after the move')
  store.commit()
  const b = store.array('n', 'uint8')
  b.view(3, 4)[0] = 1
  b.resize([2 ** 18, 2 ** 20]) // 256 GiB: moves again (reserved 2x the 128 GiB)
  assert.is(b.view(3, 4)[0], 1)
  store.abort()
  assert.equal(b.shape, [2 ** 17, 2 ** 20])
  assert.is(b.view(3, 4)[0], 9)
  store.close()
})

test('another handle grows the array past our reservation: our writes and views follow it', () => {
  const dir = tempDir()
  const s1 = open(dir)
  const a1 = s1.create('big', { dtype: 'uint8', shape: [0, 2 ** 20] })
  s1.commit()
  const s2 = open(dir)
  const a2 = s2.array('big', 'uint8') // reserved for an empty array: 64 GiB
  a1.resize([2 ** 17, 2 ** 20]) // 128 GiB, sparse
  a1.write([2 ** 17 - 1, 5], 9)
  s1.commit()
  s2.refresh()
  assert.equal(a2.shape, [2 ** 17, 2 ** 20])
  a2.write([2 ** 17 - 1, 6], 7) // past the old reservation: must not touch unmapped memory
  const v = a2.view(2 ** 17 - 1, 2 ** 17)
  assert.equal([v[5], v[6]], [9, 7])
  s2.commit()
  s1.refresh()
  assert.equal([...a1.read([2 ** 17 - 1, slice(5, 7)]).data], [9, 7])
  s1.close()
  s2.close()
})

test('a resize whose new reservation cannot be made fails cleanly and keeps the transaction', () => {
  const s = open(tempDir())
  const a = s.create('x', { dtype: 'uint8', shape: [16, 4096] })
  s.commit()
  a.write([0, 0], 42)
  const v = a.view(0, 1)
  throwsCode(() => a.resize([2 ** 36, 4096]), TooLargeError, 'TXA_TOO_LARGE') // 256 TiB
  assert.equal(a.shape, [16, 4096])
  assert.is(v[0], 42, 'views still work')
  assert.is(a.read([0, 0]).data[0], 42)
  assert.is(s.dirty, true)
  s.commit()
  assert.is(a.read([0, 0]).data[0], 42)
  s.close()
})

test.run()
