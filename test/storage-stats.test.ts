// store.storageStats(): figures of the whole store, read in a fresh snapshot, that move
// as arrays are written, deleted and readers come and go.
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ClosedError, open } from '../src/index'
import { throwsCode } from './helpers/expect'
import { tempDir } from './helpers/tmp'

test('counts arrays, stored blocks and their pages; pages freed by a delete become free pages', () => {
  const dir = path.join(tempDir(), 'store')
  const store = open(dir, { sync: false })
  const empty = store.storageStats()
  assert.is(empty.arrays, 0)
  assert.is(empty.blocks, 0)
  assert.is(empty.pageBytes, 4096)
  assert.ok(empty.mapBytes >= 2 ** 30)
  assert.ok(empty.fileBytes > 0)
  assert.ok(empty.readers >= 1 && empty.readers <= empty.maxReaders, `readers ${empty.readers}`)
  const a = store.create<'float64'>('a', { dtype: 'float64', shape: [0], blockBytes: 4096 })
  a.append(Float64Array.from({ length: 4096 }, (_, i) => i + 1))  // 32 KiB: 8 blocks
  store.create('sparse', { dtype: 'int8', shape: [10 ** 6] })      // never written: no blocks
  store.commit()
  const full = store.storageStats()
  assert.is(full.arrays, 2)
  assert.is(full.blocks, 8)
  assert.ok(full.blockPages >= 8 && full.blockPageBytes === full.blockPages * 4096)
  assert.ok(full.usedPages > empty.usedPages)
  assert.ok(full.logEntries >= 1)
  store.delete('a')
  store.commit()
  store.commit()  // a second commit lets LMDB list the first one's freed pages
  const after = store.storageStats()
  assert.is(after.arrays, 1)
  assert.is(after.blocks, 0)
  assert.ok(after.freePages > 0, `free pages ${after.freePages}`)
  assert.ok(after.freePages <= after.usedPages)
  store.close()
  throwsCode(() => store.storageStats(), ClosedError, 'TXA_CLOSED')
})

test('readers: each open handle holds a reader slot', () => {
  const dir = path.join(tempDir(), 'store')
  const one = open(dir)
  const before = one.storageStats().readers
  const two = open(dir)
  const three = open(dir)
  assert.ok(one.storageStats().readers >= before + 2, `${one.storageStats().readers} vs ${before}`)
  two.close()
  three.close()
  one.close()
})

test.run()
