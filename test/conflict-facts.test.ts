// A ConflictError carries the facts of the conflict: the array, the blocks both commits
// wrote and the rows those blocks hold, whether both changed the array's metadata, and
// the serial of the commit that won; its message says the same.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ConflictError, type Store, open, slice } from '../src/index'
import { throwsCode } from './helpers/expect'
import { tempDir } from './helpers/tmp'

// float64 [64, 64] in 4096-byte blocks: block k holds rows 8k..8k+7.
function setup() {
  const dir = tempDir()
  const s1 = open(dir)
  s1.create('a', { dtype: 'float64', shape: [64, 64], blockBytes: 4096 })
  s1.create('b', { dtype: 'float64', shape: [8] })
  s1.commit()
  return { dir, s1, s2: open(dir) }
}

function closeAll(...stores: Store[]) {
  for (const s of stores) s.close()
}

const row = (value: number) => new Float64Array(64).fill(value)

test('a conflict on one block names the array, the block, its rows and the winning commit', () => {
  const { s1, s2 } = setup()
  s1.array('a', 'float64').write([1, 2], 100)
  s2.array('a', 'float64').write([7, 63], 200)
  s1.commit()
  const err = throwsCode(() => s2.commit(), ConflictError, 'TXA_CONFLICT')
  assert.is(err.array, 'a')
  assert.is(err.serial, s1.serial)
  assert.is(err.metadata, false)
  assert.equal(err.blocks, [[0, 0]])
  assert.equal(err.rows, [[0, 7]])
  assert.match(err.message, `array 'a': commit ${s1.serial} changed rows 0-7 (blocks 0)`)
  closeAll(s1, s2)
})

test('only the blocks both wrote are named, as ranges', () => {
  const { s1, s2 } = setup()
  const a1 = s1.array('a', 'float64')
  a1.write([slice(8, 24)], new Float64Array(16 * 64).fill(1)) // blocks 1-2
  a1.write([40], row(1)) // block 5
  s1.commit()
  s2.array('a', 'float64').write([slice(16, 48)], new Float64Array(32 * 64).fill(2)) // blocks 2-5
  const err = throwsCode(() => s2.commit(), ConflictError, 'TXA_CONFLICT')
  assert.equal(err.blocks, [[2, 2], [5, 5]])
  assert.equal(err.rows, [[16, 23], [40, 47]])
  closeAll(s1, s2)
})

test('rows of blocks that split rows: a block names every row it holds a part of', () => {
  const dir = tempDir()
  const s1 = open(dir)
  // float32 [1000, 7]: 28-byte rows, so block 1 (bytes 4096-8191) holds parts of rows 146-292
  s1.create('odd', { dtype: 'float32', shape: [1000, 7], blockBytes: 4096 })
  s1.commit()
  const s2 = open(dir)
  s1.array('odd', 'float32').write([200, 3], 1)
  s1.commit()
  s2.array('odd', 'float32').write([150, 0], 2)
  const err = throwsCode(() => s2.commit(), ConflictError, 'TXA_CONFLICT')
  assert.equal(err.blocks, [[1, 1]])
  assert.equal(err.rows, [[146, 292]])
  closeAll(s1, s2)
})

test('the serial is the first conflicting commit, not the first commit since the snapshot', () => {
  const { dir, s1, s2 } = setup()
  s2.array('a', 'float64').write([60, 0], 1) // block 7
  s1.array('b', 'float64').write([0], 1) // unrelated
  s1.commit()
  const unrelated = s1.serial
  const s3 = open(dir)
  s3.array('a', 'float64').write([63, 63], 3) // block 7
  s3.commit()
  const winner = s3.serial
  s1.refresh()
  s1.array('a', 'float64').write([56, 1], 4) // block 7 again, later
  s1.commit()
  assert.ok(winner > unrelated && s1.serial > winner)
  const err = throwsCode(() => s2.commit(), ConflictError, 'TXA_CONFLICT')
  assert.is(err.serial, winner)
  assert.equal(err.blocks, [[7, 7]])
  assert.equal(err.rows, [[56, 63]])
  closeAll(s1, s2, s3)
})

test('concurrent attribute changes or resizes: a metadata conflict, without blocks', () => {
  const { s1, s2 } = setup()
  s1.array('a').setAttrs({ v: 1 })
  s2.array('a').setAttrs({ v: 2 })
  s1.commit()
  let err = throwsCode(() => s2.commit(), ConflictError, 'TXA_CONFLICT')
  assert.is(err.array, 'a')
  assert.is(err.serial, s1.serial)
  assert.is(err.metadata, true)
  assert.equal(err.blocks, [])
  assert.equal(err.rows, [])
  assert.match(err.message, `array 'a': commit ${s1.serial} changed its shape, attributes or existence`)
  s2.abort()
  s1.array('a').resize([10, 64])
  s2.array('a').resize([100, 64])
  s1.commit()
  err = throwsCode(() => s2.commit(), ConflictError, 'TXA_CONFLICT')
  assert.is(err.metadata, true)
  assert.is(err.serial, s1.serial)
  closeAll(s1, s2)
})

test('a write to an array another commit deleted names the array, its rows and the delete', () => {
  const { s1, s2 } = setup()
  s1.delete('a')
  s2.array('a', 'float64').write([20, 5], 1) // block 2
  s1.commit()
  const err = throwsCode(() => s2.commit(), ConflictError, 'TXA_CONFLICT')
  assert.is(err.array, 'a')
  assert.is(err.serial, s1.serial)
  assert.equal(err.blocks, [[2, 2]])
  assert.equal(err.rows, [[16, 23]])
  closeAll(s1, s2)
})

test('an append to an array another commit deleted, and a name two handles created', () => {
  const { s1, s2 } = setup()
  s1.delete('a')
  s2.array('a', 'float64').append(row(1))
  s1.commit()
  let err = throwsCode(() => s2.commit(), ConflictError, 'TXA_CONFLICT')
  assert.is(err.array, 'a')
  assert.is(err.serial, s1.serial)
  assert.is(err.metadata, true)
  assert.match(err.message, `array 'a' was deleted by commit ${s1.serial}`)
  s2.abort()
  s1.create('c', { dtype: 'int8', shape: [1] })
  s2.create('c', { dtype: 'int8', shape: [1] })
  s1.commit()
  err = throwsCode(() => s2.commit(), ConflictError, 'TXA_CONFLICT')
  assert.is(err.array, 'c')
  assert.is(err.serial, s1.serial)
  assert.is(err.metadata, true)
  assert.match(err.message, `array 'c' was created by commit ${s1.serial}`)
  closeAll(s1, s2)
})

test('transact() hands the facts of its last conflict to the caller', () => {
  const { dir, s1, s2 } = setup()
  const other = open(dir)
  const err = (() => {
    try {
      s2.transact((s) => {
        s.array('a', 'float64').write([0, 0], 1)
        other.array('a', 'float64').write([1, 1], 2)
        other.commit()
      }, { retries: 2 })
    } catch (e) {
      return e
    }
  })()
  assert.instance(err, ConflictError)
  const conflict = err as ConflictError
  assert.is(conflict.array, 'a')
  assert.is(conflict.serial, other.serial)
  assert.equal(conflict.rows, [[0, 7]])
  closeAll(s1, s2, other)
})

test('a ConflictError built in JavaScript has no facts but the empty defaults', () => {
  const err = new ConflictError('by hand')
  assert.is(err.code, 'TXA_CONFLICT')
  assert.is(err.array, undefined)
  assert.is(err.serial, undefined)
  assert.is(err.metadata, false)
  assert.equal(err.blocks, [])
  assert.equal(err.rows, [])
})

test.run()
