// A commit writes only the blocks it changed, trimmed to the array's end: an append of one
// small row costs at most one tail block, a one-element change exactly one block.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { open, slice } from '../src/index'
import { tempDir } from './helpers/tmp'

const ROW = 16 // float32: 64 bytes per row

test('1000 commits of one 64-byte row each write at most 2*64 + 64 KiB per commit', () => {
  const dir = tempDir()
  const store = open(dir, { sync: false })
  const a = store.create<'float32'>('s', { dtype: 'float32', shape: [0, ROW] }) // default 64 KiB blocks
  assert.is(a.blockBytes, 65536)
  store.commit()
  let prev = store.stats()
  let total = 0
  for (let i = 0; i < 1000; i++) {
    a.append(Float32Array.from({ length: ROW }, (_, k) => i * ROW + k + 1))
    store.commit()
    const now = store.stats()
    const grew = now.bytesWritten - prev.bytesWritten
    if (grew > 2 * 64 + 65536) assert.unreachable(`commit ${i} wrote ${grew} bytes`)
    if (grew < 64) assert.unreachable(`commit ${i} wrote only ${grew} bytes: the row is not stored`)
    const blocks = now.blocksWritten - prev.blocksWritten
    if (blocks !== 1) assert.unreachable(`commit ${i} wrote ${blocks} blocks`)
    assert.is(now.commits, prev.commits + 1)
    total += grew
    prev = now
  }
  // The tail block is stored trimmed to the rows it holds, so the total is far below
  // 1000 full blocks: about the sum of the tail lengths.
  assert.ok(total < 1000 * 65536 / 2, `wrote ${total} bytes in total`)
  const reopened = open(dir)
  const data = reopened.array('s', 'float32').read().data
  assert.is(data.length, 1000 * ROW)
  for (let k = 0; k < data.length; k++) if (data[k] !== k + 1) assert.unreachable(`element ${k} is ${data[k]}`)
  reopened.close()
  store.close()
})

test('a commit that changes one element of a large committed array writes exactly one block', () => {
  const store = open(tempDir(), { sync: false })
  const a = store.create<'float64'>('big', { dtype: 'float64', shape: [1024, 512] }) // 4 MiB, 64 blocks
  a.write(null, Float64Array.from({ length: 1024 * 512 }, (_, k) => k + 1))
  store.commit()
  for (const [row, col] of [[0, 0], [517, 301], [1023, 511]]) {
    const before = store.stats()
    a.write([row, col], -1)
    store.commit()
    const after = store.stats()
    assert.is(after.blocksWritten - before.blocksWritten, 1, `[${row}, ${col}]: blocks written`)
    const bytes = after.bytesWritten - before.bytesWritten
    assert.ok(bytes > 0 && bytes <= a.blockBytes, `[${row}, ${col}]: ${bytes} bytes written`)
    assert.is(a.read([row, col]).data[0], -1)
  }
  store.close()
})

test('writing a strided column of a committed array writes only the blocks the column crosses', () => {
  const store = open(tempDir(), { sync: false })
  // int32 [256, 64] in 4 KiB blocks: 16 rows per block, 16 blocks.
  const a = store.create<'int32'>('m', { dtype: 'int32', shape: [256, 64], blockBytes: 4096 })
  a.write(null, Int32Array.from({ length: 256 * 64 }, (_, k) => k + 1))
  store.commit()
  const before = store.stats()
  a.write([slice(40, 72), 3], 0) // rows 40..71: blocks 2, 3, 4
  store.commit()
  assert.is(store.stats().blocksWritten - before.blocksWritten, 3)
  store.close()
})

test('a stored block takes one header page plus its data rounded up to whole pages', () => {
  const store = open(tempDir(), { sync: false })
  const a = store.create<'uint8'>('b', { dtype: 'uint8', shape: [0] }) // 64 KiB blocks
  a.append(new Uint8Array(65536).fill(7))
  store.commit()
  const full = store.stats()
  // valueBytesWritten = (pageSize - 16) + 65536: a 64 KiB block spans 17 LMDB pages
  const pageSize = full.valueBytesWritten - 65536 + 16
  assert.ok(pageSize >= 4096 && (pageSize & (pageSize - 1)) === 0, `page size ${pageSize}`)
  assert.is(full.bytesWritten, 65536)
  assert.is(Math.ceil((full.valueBytesWritten + 16) / pageSize), 17, 'LMDB pages of a 64 KiB block')
  a.append(new Uint8Array(64).fill(1)) // block 1 holds 64 bytes: one data page
  store.commit()
  const tail = store.stats()
  assert.is(tail.bytesWritten - full.bytesWritten, 64)
  assert.is(tail.valueBytesWritten - full.valueBytesWritten, pageSize - 16 + pageSize)
  store.close()
})

test('a commit with no changes writes nothing; an abort writes nothing', () => {
  const store = open(tempDir())
  const a = store.create<'int32'>('m', { dtype: 'int32', shape: [10] })
  store.commit()
  const before = store.stats()
  store.commit()
  a.write(null, 5)
  store.abort()
  const after = store.stats()
  assert.is(after.blocksWritten, before.blocksWritten)
  assert.is(after.bytesWritten, before.bytesWritten)
  assert.is(after.valueBytesWritten, before.valueBytesWritten)
  store.close()
})

test.run()
