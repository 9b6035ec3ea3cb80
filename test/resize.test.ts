// resize() changes axis 0 only; shrinking hides rows, and growing again shows zeros, never
// the old data: within one transaction, across commits and after a reopen.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ShapeError, open, slice } from '../src/index'
import { throwsCode } from './helpers/expect'
import { tempDir } from './helpers/tmp'

const COLS = 5 // 20-byte int32 rows in 4096-byte blocks: the cut falls inside a block

function filled(nrows: number): Int32Array {
  return Int32Array.from({ length: nrows * COLS }, (_, k) => k + 1) // no zeros
}

function expectPrefixThenZeros(data: Int32Array, keepRows: number, what: string): void {
  for (let k = 0; k < data.length; k++) {
    const expected = k < keepRows * COLS ? k + 1 : 0
    if (data[k] !== expected) assert.unreachable(`${what}: element ${k} is ${data[k]}, expected ${expected}`)
  }
}

function make(dir: string, nrows = 1000) {
  const store = open(dir)
  const a = store.create<'int32'>('a', { dtype: 'int32', shape: [nrows, COLS], blockBytes: 4096 })
  a.write(null, filled(nrows))
  store.commit()
  return { store, a }
}

test('shrink then grow in one transaction reads zeros past the cut', () => {
  const { store, a } = make(tempDir())
  a.resize([333, COLS])
  assert.equal(a.shape, [333, COLS])
  a.resize([1000, COLS])
  expectPrefixThenZeros(a.read().data, 333, 'uncommitted')
  store.commit()
  expectPrefixThenZeros(a.read().data, 333, 'committed')
  store.close()
})

test('shrink committed, then grow committed, reads zeros; also after reopen', () => {
  const dir = tempDir()
  const { store, a } = make(dir)
  a.resize([333, COLS])
  store.commit()
  assert.equal(a.shape, [333, COLS])
  expectPrefixThenZeros(a.read().data, 333, 'shrunk')
  a.resize([1000, COLS])
  expectPrefixThenZeros(a.read().data, 333, 'grown, uncommitted')
  store.commit()
  expectPrefixThenZeros(a.read().data, 333, 'grown, committed')
  store.close()
  const again = open(dir)
  const b = again.array('a', 'int32')
  assert.equal(b.shape, [1000, COLS])
  expectPrefixThenZeros(b.read().data, 333, 'reopened')
  again.close()
})

test('shrink committed, reopen, then grow reads zeros', () => {
  const dir = tempDir()
  const { store, a } = make(dir)
  a.resize([10, COLS])
  store.commit()
  store.close()
  const again = open(dir)
  const b = again.array('a', 'int32')
  assert.equal(b.shape, [10, COLS])
  b.resize([1000, COLS])
  expectPrefixThenZeros(b.read().data, 10, 'grown after reopen')
  again.commit()
  again.close()
})

test('several shrinks and grows in one transaction keep the smallest cut', () => {
  const { store, a } = make(tempDir())
  a.resize([700, COLS])
  a.resize([900, COLS])
  a.resize([200, COLS])
  a.resize([1000, COLS])
  a.resize([600, COLS])
  expectPrefixThenZeros(a.read().data, 200, 'uncommitted')
  store.commit()
  a.resize([1000, COLS])
  expectPrefixThenZeros(a.read().data, 200, 'committed and grown')
  store.close()
})

test('shrinking to a block boundary and growing reads zeros', () => {
  // 4096-byte blocks of int32 [n, 4]: 256 rows per block.
  const store = open(tempDir())
  const a = store.create('b', { dtype: 'int32', shape: [1024, 4], blockBytes: 4096 })
  a.write(null, Int32Array.from({ length: 4096 }, (_, k) => k + 1))
  store.commit()
  a.resize([512, 4])
  store.commit()
  a.resize([1024, 4])
  const d = a.read().data
  for (let k = 0; k < d.length; k++) if (d[k] !== (k < 2048 ? k + 1 : 0)) assert.unreachable(`element ${k} is ${d[k]}`)
  store.close()
})

test('shrink to 0 rows, then grow: all zeros', () => {
  const dir = tempDir()
  const { store, a } = make(dir)
  a.resize([0, COLS])
  assert.equal(a.read().shape, [0, COLS])
  assert.is(a.read().data.length, 0)
  store.commit()
  assert.is(a.rows, 0)
  a.resize([50, COLS])
  expectPrefixThenZeros(a.read().data, 0, 'same handle')
  store.commit()
  store.close()
  const again = open(dir)
  expectPrefixThenZeros(again.array('a', 'int32').read().data, 0, 'reopened')
  again.close()
})

test('writing into regrown rows keeps the zeros around them', () => {
  const { store, a } = make(tempDir())
  a.resize([100, COLS])
  a.resize([300, COLS])
  a.write([150], Int32Array.of(9, 9, 9, 9, 9))
  store.commit()
  const d = a.read().data
  for (let k = 0; k < d.length; k++) {
    const expected = k < 500 ? k + 1 : k >= 750 && k < 755 ? 9 : 0
    if (d[k] !== expected) assert.unreachable(`element ${k} is ${d[k]}, expected ${expected}`)
  }
  store.close()
})

test('growing keeps existing rows and adds zeros', () => {
  const { store, a } = make(tempDir(), 10)
  a.resize([2000, COLS])
  expectPrefixThenZeros(a.read().data, 10, 'grown')
  assert.equal([...a.read([slice(-1, null)]).data], [0, 0, 0, 0, 0])
  store.commit()
  expectPrefixThenZeros(a.read().data, 10, 'committed')
  store.close()
})

test('aborting a shrink brings the rows back', () => {
  const { store, a } = make(tempDir())
  a.resize([3, COLS])
  store.abort()
  assert.equal(a.shape, [1000, COLS])
  expectPrefixThenZeros(a.read().data, 1000, 'after abort')
  store.close()
})

test('resizing to the current shape changes nothing', () => {
  const { store, a } = make(tempDir(), 4)
  a.resize([4, COLS])
  assert.is(store.dirty, false)
  store.close()
})

test('only axis 0 can be resized, and the rank cannot change', () => {
  const { store, a } = make(tempDir(), 4)
  throwsCode(() => a.resize([4, COLS + 1]), ShapeError, 'TXA_SHAPE')
  throwsCode(() => a.resize([8, COLS - 1]), ShapeError, 'TXA_SHAPE')
  throwsCode(() => a.resize([4]), ShapeError, 'TXA_SHAPE')
  throwsCode(() => a.resize([4, COLS, 1]), ShapeError, 'TXA_SHAPE')
  throwsCode(() => a.resize([-1, COLS]), ShapeError, 'TXA_SHAPE')
  throwsCode(() => a.resize([1.5, COLS]), ShapeError, 'TXA_SHAPE')
  assert.equal(a.shape, [4, COLS])
  assert.is(store.dirty, false)
  store.close()
})

test.run()
