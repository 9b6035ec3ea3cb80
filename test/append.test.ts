// append() grows axis 0 by whole rows, across block boundaries, with or without commits
// in between; appended rows are what a reopened store reads.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ShapeError, DTypeError, open } from '../src/index'
import { throwsCode } from './helpers/expect'
import { Rng } from './helpers/random'
import { tempDir } from './helpers/tmp'

const COLS = 7 // 28-byte float32 rows: 4096-byte blocks never hold a whole number of rows

/** Row i holds i*COLS .. i*COLS+COLS-1 (exact in float32 for the sizes used here). */
function rows(first: number, count: number): Float32Array {
  return Float32Array.from({ length: count * COLS }, (_, k) => first * COLS + k)
}

function checkRows(data: Float32Array, count: number, what: string): void {
  assert.is(data.length, count * COLS, `${what}: element count`)
  for (let k = 0; k < data.length; k++) {
    if (data[k] !== k) assert.unreachable(`${what}: element ${k} (row ${Math.floor(k / COLS)}) is ${data[k]}`)
  }
}

test('many appends in one transaction cross block boundaries and survive commit and reopen', () => {
  const dir = tempDir()
  const rng = new Rng(99)
  let store = open(dir)
  const a = store.create('s', { dtype: 'float32', shape: [0, COLS], blockBytes: 4096 })
  let n = 0
  for (let i = 0; i < 500; i++) {
    const k = rng.int(1, 9)
    a.append(rows(n, k))
    n += k
    assert.is(a.rows, n)
  }
  assert.ok(n * COLS * 4 > 12 * 4096, 'spans many blocks')
  checkRows(a.read().data, n, 'before commit')
  store.commit()
  checkRows(a.read().data, n, 'after commit')
  store.close()
  store = open(dir)
  assert.equal(store.array('s').shape, [n, COLS])
  checkRows(store.array('s', 'float32').read().data, n, 'after reopen')
  store.close()
})

test('appends with a commit after each one add up exactly', () => {
  const dir = tempDir()
  const rng = new Rng(5)
  let store = open(dir, { sync: false })
  const a = store.create('s', { dtype: 'float32', shape: [0, COLS], blockBytes: 4096 })
  store.commit()
  let n = 0
  for (let i = 0; i < 300; i++) {
    const k = rng.int(1, 40)
    a.append(rows(n, k))
    n += k
    store.commit()
  }
  checkRows(a.read().data, n, 'same handle')
  store.close()
  store = open(dir)
  checkRows(store.array('s', 'float32').read().data, n, 'after reopen')
  store.close()
})

test('appends mixed with commits, aborts and reopens keep exactly the committed rows', () => {
  const dir = tempDir()
  const rng = new Rng(17)
  let store = open(dir, { sync: false })
  store.create('s', { dtype: 'float32', shape: [0, COLS], blockBytes: 4096 })
  store.commit()
  let committed = 0
  let pending = 0
  for (let i = 0; i < 400; i++) {
    const a = store.array('s', 'float32')
    const k = rng.int(1, 150)
    a.append(rows(committed + pending, k))
    pending += k
    const r = rng.next()
    if (r < 0.3) {
      store.commit()
      committed += pending
      pending = 0
    } else if (r < 0.4) {
      store.abort()
      pending = 0
      assert.is(a.rows, committed, 'abort drops the pending rows')
    } else if (r < 0.45) {
      store.close() // uncommitted rows are lost with the handle
      pending = 0
      store = open(dir, { sync: false })
    }
    assert.is(store.array('s').rows, committed + pending)
  }
  store.commit()
  committed += pending
  checkRows(store.array('s', 'float32').read().data, committed, 'final')
  store.close()
  store = open(dir)
  checkRows(store.array('s', 'float32').read().data, committed, 'after reopen')
  store.close()
})

test('a 1-D array appends single elements across blocks', () => {
  const store = open(tempDir(), { sync: false })
  const a = store.create('v', { dtype: 'int16', shape: [0], blockBytes: 4096 })
  for (let i = 0; i < 5000; i++) {
    a.append(Int16Array.of(i))
    if (i % 97 === 0) store.commit()
  }
  store.commit()
  const got = a.read().data
  assert.is(got.length, 5000)
  for (let i = 0; i < 5000; i++) if (got[i] !== i) assert.unreachable(`element ${i} is ${got[i]}`)
  store.close()
})

test('append() after existing rows leaves them untouched; empty data appends nothing', () => {
  const store = open(tempDir())
  const a = store.create('s', { dtype: 'int32', shape: [2, 3] })
  a.write(null, Int32Array.of(1, 2, 3, 4, 5, 6))
  store.commit()
  a.append(new Int32Array(0))
  assert.is(store.dirty, false)
  assert.equal(a.shape, [2, 3])
  a.append(Int32Array.of(7, 8, 9, 10, 11, 12))
  assert.equal(a.shape, [4, 3])
  assert.equal([...a.read().data], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
  store.close()
})

test('append() takes whole rows of the array\'s dtype only', () => {
  const store = open(tempDir())
  const a = store.create('s', { dtype: 'int32', shape: [0, 3] })
  store.commit()
  throwsCode(() => a.append(new Int32Array(4)), ShapeError, 'TXA_SHAPE')
  throwsCode(() => a.append(new Int32Array(2)), ShapeError, 'TXA_SHAPE')
  throwsCode(() => a.append(new Float32Array(3) as never), DTypeError, 'TXA_DTYPE')
  throwsCode(() => a.append([1, 2, 3] as never), DTypeError, 'TXA_DTYPE')
  assert.is(a.rows, 0)
  assert.is(store.dirty, false)
  store.close()
})

test('appending after a shrink places rows at the new end, with nothing stale between', () => {
  const store = open(tempDir())
  const a = store.create('s', { dtype: 'float32', shape: [0, COLS], blockBytes: 4096 })
  a.append(rows(0, 400))
  store.commit()
  a.resize([100, COLS])
  a.append(rows(100, 50))
  checkRows(a.read().data, 150, 'same transaction')
  store.commit()
  checkRows(a.read().data, 150, 'committed')
  a.resize([400, COLS])
  const tail = a.read([{ kind: 'slice', start: 150, stop: null, step: null }]).data
  assert.ok(tail.every((v) => v === 0), 'rows past the appended ones read as zeros')
  store.close()
})

test.run()
