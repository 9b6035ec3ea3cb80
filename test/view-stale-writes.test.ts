// Growing an array shows zeros past the old end, whatever a view taken before a shrink
// stored there; and arrays that are only read cost no address space.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { open } from '../src/index'
import { tempDir } from './helpers/tmp'

test('writes through a view taken before a shrink do not come back when the array grows again', () => {
  const dir = tempDir()
  const store = open(dir, { sync: false })
  const a = store.create('a', { dtype: 'int32', shape: [0], blockBytes: 4096 })
  a.append(Int32Array.from({ length: 3000 }, (_, i) => i + 1))
  store.commit()
  const v = a.view() // 3000 elements over 3 blocks
  a.resize([1500])
  v[1600] = 99 // past the new end, in the block holding it
  v[2500] = 77 // past the new end, in a block entirely past it
  a.resize([3000])
  assert.is(a.read([1600]).data[0], 0, 'the partial block reads zeros past the shrunk end')
  assert.is(a.read([2500]).data[0], 0, 'a whole block past the shrunk end reads zeros')
  assert.is(a.read([1499]).data[0], 1500, 'rows before the shrunk end keep their values')
  store.commit()
  store.close()
  const again = open(dir)
  const data = again.array('a', 'int32').read().data
  assert.is(data[1499], 1500)
  for (let i = 1500; i < 3000; i++) if (data[i] !== 0) assert.unreachable(`row ${i} is ${data[i]}, not 0`)
  again.close()
})

test('a handle writes and reads tens of thousands of arrays: only arrays with views keep address space', () => {
  const dir = tempDir()
  const store = open(dir, { sync: false })
  const n = 20_000
  for (let i = 0; i < n; i++) {
    store.create(`a${i}`, { dtype: 'float64', shape: [4] }).write([0], i)
    if (i % 2000 === 1999) store.commit() // a commit frees the reservations of arrays without views
  }
  store.close()
  const reader = open(dir)
  let sum = 0
  for (let i = 0; i < n; i++) sum += reader.array(`a${i}`, 'float64').read([0]).data[0]
  assert.is(sum, (n * (n - 1)) / 2)
  const v = reader.array('a7', 'float64').view()
  assert.is(v[0], 7, 'a view still works (its region is reserved now)')
  assert.ok(reader.array('a7', 'float64').viewStats().reservedBytes > 0)
  reader.close()
})

test.run()
