// Writers conflict only when they touch the same blocks or the same array's record; the
// loser's commit throws ConflictError and changes nothing; transact() retries.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ConflictError, type Store, open, slice } from '../src/index'
import { throwsCode } from './helpers/expect'
import { tempDir } from './helpers/tmp'

// float64 [64, 64] in 4096-byte blocks: block k holds rows 8k..8k+7.
function setup() {
  const dir = tempDir()
  const s1 = open(dir)
  const a = s1.create('a', { dtype: 'float64', shape: [64, 64], blockBytes: 4096, attrs: { v: 0 } })
  a.write(null, Float64Array.from({ length: 4096 }, (_, k) => k))
  s1.create('b', { dtype: 'float64', shape: [8] })
  s1.commit()
  const s2 = open(dir)
  return { dir, s1, s2 }
}

function committed(dir: string, name = 'a') {
  const s = open(dir)
  try {
    const a = s.array(name)
    return { shape: a.shape, data: [...a.read().data], attrs: a.attrs }
  } finally {
    s.close()
  }
}

function closeAll(...stores: Store[]) {
  for (const s of stores) s.close()
}

test('two handles writing the same block: the second commit throws TXA_CONFLICT and changes nothing', () => {
  const { dir, s1, s2 } = setup()
  s1.array('a', 'float64').write([1, 2], 100) // block 0
  s2.array('a', 'float64').write([7, 63], 200) // block 0 too, another element
  s2.array('b', 'float64').write([0], 1) // and something unrelated in the same transaction
  s1.commit()
  const before = committed(dir)
  const statsBefore = s2.stats()
  const err = throwsCode(() => s2.commit(), ConflictError, 'TXA_CONFLICT')
  assert.match(err.message, /block/)
  assert.equal(committed(dir), before, 'the losing commit wrote nothing')
  assert.equal([...committed(dir, 'b').data], new Array(8).fill(0), 'not even its other changes')
  assert.is(s2.stats().conflicts, statsBefore.conflicts + 1)
  assert.is(s2.stats().commits, statsBefore.commits)
  assert.is(s2.stats().bytesWritten, statsBefore.bytesWritten)
  // the loser keeps its transaction until it aborts; then it sees the winner's write
  assert.is(s2.dirty, true)
  assert.is(s2.array('a', 'float64').read([7, 63]).data[0], 200)
  s2.abort()
  assert.is(s2.array('a', 'float64').read([1, 2]).data[0], 100)
  assert.is(s2.array('a', 'float64').read([7, 63]).data[0], 7 * 64 + 63)
  // and a retry now succeeds
  s2.array('a', 'float64').write([7, 63], 200)
  s2.commit()
  const after = committed(dir)
  assert.is(after.data[1 * 64 + 2], 100)
  assert.is(after.data[7 * 64 + 63], 200)
  closeAll(s1, s2)
})

test('a commit conflicts even when the other commit came from a handle opened later', () => {
  const { dir, s1, s2 } = setup()
  s2.array('a', 'float64').write([0, 0], 1)
  const s3 = open(dir)
  s3.array('a', 'float64').write([0, 1], 2)
  s3.commit()
  throwsCode(() => s2.commit(), ConflictError, 'TXA_CONFLICT')
  closeAll(s1, s2, s3)
})

test('writing different blocks of the same array does not conflict', () => {
  const { dir, s1, s2 } = setup()
  s1.array('a', 'float64').write([0, 0], -1) // block 0
  s2.array('a', 'float64').write([63, 63], -2) // block 7
  s2.array('a', 'float64').write([8], new Float64Array(64).fill(-3)) // block 1
  s1.commit()
  s2.commit()
  const after = committed(dir)
  assert.is(after.data[0], -1)
  assert.is(after.data[4095], -2)
  assert.equal(after.data.slice(512, 576), new Array(64).fill(-3))
  assert.is(after.data[1], 1)
  // s2 committed last and reads both changes; s1 sees s2's once it moves on
  assert.is(s2.array('a', 'float64').read([0, 0]).data[0], -1)
  assert.is(s1.array('a', 'float64').read([63, 63]).data[0], 4095)
  s1.refresh()
  assert.is(s1.array('a', 'float64').read([63, 63]).data[0], -2)
  closeAll(s1, s2)
})

test('changes to different arrays do not conflict', () => {
  const { dir, s1, s2 } = setup()
  s1.array('a', 'float64').append(new Float64Array(64).fill(1))
  s2.array('b', 'float64').append(new Float64Array(3).fill(2))
  s1.commit()
  s2.commit()
  assert.equal(committed(dir).shape, [65, 64])
  assert.equal(committed(dir, 'b').shape, [11])
  closeAll(s1, s2)
})

test('writing blocks far from where another handle appended does not conflict', () => {
  const { dir, s1, s2 } = setup()
  s1.array('a', 'float64').append(new Float64Array(64).fill(1)) // touches block 8 and the record
  s2.array('a', 'float64').write([0, 0], -1) // block 0 only
  s1.commit()
  s2.commit()
  const after = committed(dir)
  assert.equal(after.shape, [65, 64])
  assert.is(after.data[0], -1)
  assert.equal(after.data.slice(4096), new Array(64).fill(1))
  // s2 now sees the appended row too
  assert.is(s2.array('a').rows, 65)
  assert.equal([...s2.array('a', 'float64').read([-1]).data], new Array(64).fill(1))
  assert.is(s2.array('a', 'float64').read([0, 0]).data[0], -1)
  closeAll(s1, s2)
})

// Rows of 64 float64 are 512 bytes: 8 rows a 4096-byte block.
const row = (v: number, n = 1) => new Float64Array(64 * n).fill(v)

test('concurrent appends to the same array do not conflict: the later commit is rebased onto the newer end', () => {
  const { dir, s1, s2 } = setup()
  s1.array('a', 'float64').append(row(1))
  s2.array('a', 'float64').append(row(2, 2))
  s1.commit()
  s2.commit() // rebased: its rows go after s1's
  const c = committed(dir)
  assert.equal(c.shape, [67, 64])
  assert.equal(c.data.slice(64 * 64), [...row(1), ...row(2, 2)])
  assert.equal(c.data.slice(0, 64 * 64), Array.from({ length: 4096 }, (_, k) => k), 'old rows untouched')
  assert.equal(s2.array('a').shape, [67, 64], 'the rebased handle sees the new length')
  assert.equal([...s2.array('a', 'float64').read([slice(64, 67), 0]).data], [1, 2, 2])
  assert.equal(s2.stats().conflicts, 0)
  closeAll(s1, s2)
})

test('a rebased append lands in the middle of a block, keeping the rows committed before it', () => {
  const { dir, s1, s2 } = setup()
  // Both start at 65 rows: the end is inside block 8.
  s1.array('a', 'float64').append(row(5))
  s1.commit()
  s2.refresh()
  s1.array('a', 'float64').append(row(6, 3)) // rows 65..67
  s2.array('a', 'float64').append(row(7, 2)) // rows 65..66 in s2's snapshot
  s1.commit()
  s2.commit()
  const c = committed(dir)
  assert.equal(c.shape, [70, 64])
  assert.equal(c.data.slice(64 * 64), [...row(5), ...row(6, 3), ...row(7, 2)])
  closeAll(s1, s2)
})

test('a rebase keeps attributes another commit set, and appends after a concurrent shrink', () => {
  const { dir, s1, s2 } = setup()
  s1.array('a').setAttrs({ v: 9 })
  s2.array('a', 'float64').append(row(3))
  s1.commit()
  s2.commit()
  assert.equal(committed(dir).attrs, { v: 9 })
  assert.equal(committed(dir).shape, [65, 64])
  s1.refresh()
  s1.array('a').resize([5, 64])
  s2.array('a', 'float64').append(row(4))
  s1.commit()
  s2.commit()
  const c = committed(dir)
  assert.equal(c.shape, [6, 64])
  assert.equal(c.data.slice(5 * 64), [...row(4)], 'appended after the new end')
  closeAll(s1, s2)
})

test('an append is not rebased when the transaction also changed rows below the old end', () => {
  const { dir, s1, s2 } = setup()
  s1.array('a', 'float64').append(row(1))
  const a2 = s2.array('a', 'float64')
  a2.write([63, 0], -1) // the last committed row: same block as the append
  a2.append(row(2))
  s1.commit()
  throwsCode(() => s2.commit(), ConflictError, 'TXA_CONFLICT')
  s2.abort()
  // written through a view below the end: also not an append-only change
  s1.array('a', 'float64').append(row(1))
  s2.array('a', 'float64').view(10, 11)[0] = -1
  s2.array('a', 'float64').append(row(2))
  s1.commit()
  throwsCode(() => s2.commit(), ConflictError, 'TXA_CONFLICT')
  assert.equal(committed(dir).shape, [66, 64])
  closeAll(s1, s2)
})

test('an append is not rebased onto a deleted array, nor with a resize or attrs in the same transaction', () => {
  const { s1, s2 } = setup()
  s1.delete('a')
  s2.array('a', 'float64').append(row(1))
  s1.commit()
  throwsCode(() => s2.commit(), ConflictError, 'TXA_CONFLICT')
  s2.abort()
  s1.create('a', { dtype: 'float64', shape: [0, 64], blockBytes: 4096 })
  s1.commit()
  s2.refresh()
  s1.array('a', 'float64').append(row(1))
  const a2 = s2.array('a', 'float64')
  a2.append(row(2))
  a2.setAttrs({ mine: true })
  s1.commit()
  throwsCode(() => s2.commit(), ConflictError, 'TXA_CONFLICT')
  closeAll(s1, s2)
})

test('concurrent resizes of the same array conflict, and so does a resize against an append', () => {
  const { dir, s1, s2 } = setup()
  s1.array('a').resize([10, 64])
  s2.array('a').resize([100, 64])
  s1.commit()
  throwsCode(() => s2.commit(), ConflictError, 'TXA_CONFLICT')
  s2.abort()
  assert.equal(s2.array('a').shape, [10, 64])
  // resize() sets an absolute length: it is not rebased onto someone else's append
  s1.array('a', 'float64').append(row(1))
  s2.array('a').resize([20, 64])
  s1.commit()
  throwsCode(() => s2.commit(), ConflictError, 'TXA_CONFLICT')
  assert.equal(committed(dir).shape, [11, 64])
  closeAll(s1, s2)
})

test('concurrent attribute changes of the same array conflict', () => {
  const { dir, s1, s2 } = setup()
  s1.array('a').setAttrs({ v: 1 })
  s2.array('a').setAttrs({ v: 2 })
  s1.commit()
  throwsCode(() => s2.commit(), ConflictError, 'TXA_CONFLICT')
  assert.equal(committed(dir).attrs, { v: 1 })
  closeAll(s1, s2)
})

test('deleting an array conflicts with a concurrent write to it, either way round', () => {
  const { dir, s1, s2 } = setup()
  s1.delete('a')
  s2.array('a', 'float64').write([5, 5], 1)
  s1.commit()
  throwsCode(() => s2.commit(), ConflictError, 'TXA_CONFLICT')
  s2.abort()
  assert.is(s2.has('a'), false)
  s1.create('a', { dtype: 'int8', shape: [1] })
  s1.commit()
  s2.refresh()
  s2.array('a', 'int8').write([0], 1)
  s1.delete('a')
  s2.commit()
  throwsCode(() => s1.commit(), ConflictError, 'TXA_CONFLICT')
  assert.equal(committed(dir).data, [1])
  closeAll(s1, s2)
})

test('two handles creating the same name: the second commit conflicts', () => {
  const { dir, s1, s2 } = setup()
  s1.create('c', { dtype: 'int8', shape: [1] }).write([0], 1)
  s2.create('c', { dtype: 'int8', shape: [1] }).write([0], 2)
  s1.commit()
  throwsCode(() => s2.commit(), ConflictError, 'TXA_CONFLICT')
  assert.equal(committed(dir, 'c').data, [1])
  closeAll(s1, s2)
})

test('transact() retries after a conflict and both increments land', () => {
  const { dir, s1, s2 } = setup()
  const increment = (s: Store) => {
    const a = s.array('a', 'float64')
    a.write([0, 0], a.read([0, 0]).data[0] + 1)
  }
  let attempts = 0
  s1.transact((s) => {
    attempts++
    increment(s)
    if (attempts === 1) s2.transact(increment) // commits in between: s1's first try must conflict
  })
  assert.is(attempts, 2)
  assert.is(s1.stats().conflicts, 1)
  assert.is(committed(dir).data[0], 2)
  closeAll(s1, s2)
})

test('transact() gives up after `retries` and throws the ConflictError, leaving nothing behind', () => {
  const { dir, s1, s2 } = setup()
  let attempts = 0
  throwsCode(() => s1.transact((s) => {
    attempts++
    s.array('a', 'float64').write([0, 0], 100 + attempts)
    s2.array('a', 'float64').write([0, 1], attempts) // same block, committed first every time
    s2.commit()
  }, { retries: 2 }), ConflictError, 'TXA_CONFLICT')
  assert.is(attempts, 3)
  assert.is(s1.dirty, false)
  const after = committed(dir)
  assert.is(after.data[0], 0)
  assert.is(after.data[1], 3)
  closeAll(s1, s2)
})

test('after a rebase, the rebased handle\'s views and writes see the committed rows, not its old copy', () => {
  const { dir, s1, s2 } = setup()
  s1.array('a', 'float64').append(row(1))
  const a2 = s2.array('a', 'float64')
  a2.append(row(2, 2))
  const early = a2.view(64, 66) // rows s2 appended, at their pre-rebase places
  s1.commit()
  s2.commit() // rebased: rows 64 (s1), 65..66 (s2)
  assert.equal([...early.subarray(0, 1)], [1], 'an old view shows what is committed at its rows now')
  const v = a2.view(64, 67)
  assert.equal([v[0], v[64], v[128]], [1, 2, 2])
  v[128] = 7 // row 66 through a view after the rebase
  s2.commit()
  const c = committed(dir)
  assert.equal([c.data[64 * 64], c.data[65 * 64], c.data[66 * 64]], [1, 2, 7])
  closeAll(s1, s2)
})

test.run()
