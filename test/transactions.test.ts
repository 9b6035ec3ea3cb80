// A Store handle is always inside a transaction: commit() saves every change at once,
// abort() returns to the committed state exactly, transact() wraps both.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ArgumentError, NotFoundError, TransactionError, open } from '../src/index'
import { throwsCode } from './helpers/expect'
import { tempDir } from './helpers/tmp'

function seeded(dir = tempDir()) {
  const store = open(dir)
  const a = store.create<'float64'>('a', { dtype: 'float64', shape: [100, 10], blockBytes: 4096, attrs: { unit: 'V', n: 1 } })
  a.write(null, Float64Array.from({ length: 1000 }, (_, k) => k))
  const b = store.create<'int8'>('b', { dtype: 'int8', shape: [4] })
  b.write(null, Int8Array.of(1, 2, 3, 4))
  store.commit()
  return { dir, store, a, b }
}

const seq = (n: number) => Array.from({ length: n }, (_, k) => k)

test('a fresh handle has no changes; every kind of change makes it dirty until commit', () => {
  const { store, a, b } = seeded()
  assert.is(store.dirty, false)
  const changes: Array<() => void> = [
    () => a.write([0, 0], 5),
    () => a.append(new Float64Array(10)),
    () => a.resize([50, 10]),
    () => a.setAttrs({ x: 1 }),
    () => store.create('c', { dtype: 'uint8', shape: [1] }),
    () => store.delete('b'),
  ]
  for (const change of changes) {
    change()
    assert.is(store.dirty, true)
    store.commit()
    assert.is(store.dirty, false)
  }
  assert.equal(a.attrs, { x: 1 })
  assert.is(store.has('b'), false)
  void b
  store.close()
})

test('abort() restores committed data, shape and attrs', () => {
  const { store, a } = seeded()
  a.write([slice3()], new Float64Array(30).fill(-1))
  a.write([99, 9], 42)
  a.append(new Float64Array(20).fill(7))
  a.setAttrs({ unit: 'A' })
  assert.equal(a.shape, [102, 10])
  store.abort()
  assert.is(store.dirty, false)
  assert.equal(a.shape, [100, 10])
  assert.equal(a.attrs, { unit: 'V', n: 1 })
  assert.equal([...a.read().data], seq(1000))
  // and the committed state is still what a new handle sees
  const other = open(store.path)
  assert.equal([...other.array('a').read().data], seq(1000))
  other.close()
  store.close()
})

function slice3() {
  return { kind: 'slice' as const, start: 10, stop: 13, step: null }
}

test('abort() after a shrink and regrow brings back the old rows', () => {
  const { store, a } = seeded()
  a.resize([5, 10])
  a.resize([100, 10])
  store.abort()
  assert.equal([...a.read().data], seq(1000))
  store.close()
})

test('abort() makes arrays created in the transaction vanish', () => {
  const { store } = seeded()
  const c = store.create('c', { dtype: 'int32', shape: [3] })
  c.write(null, Int32Array.of(1, 2, 3))
  assert.equal(store.list(), ['a', 'b', 'c'])
  store.abort()
  assert.equal(store.list(), ['a', 'b'])
  assert.is(store.has('c'), false)
  throwsCode(() => store.array('c'), NotFoundError, 'TXA_NOT_FOUND')
  throwsCode(() => c.read(), NotFoundError, 'TXA_NOT_FOUND')
  // the name is free again, and a new array of that name starts empty
  const c2 = store.create('c', { dtype: 'uint8', shape: [3] })
  store.commit()
  assert.equal([...c2.read().data], [0, 0, 0])
  store.close()
})

test('abort() brings deleted arrays back, with their data, through the old handle too', () => {
  const { store, a, b } = seeded()
  store.delete('a')
  store.delete('b')
  assert.equal(store.list(), [])
  assert.is(store.has('a'), false)
  throwsCode(() => a.read(), NotFoundError, 'TXA_NOT_FOUND')
  throwsCode(() => store.array('a'), NotFoundError, 'TXA_NOT_FOUND')
  store.abort()
  assert.equal(store.list(), ['a', 'b'])
  assert.equal([...a.read().data], seq(1000))
  assert.equal([...store.array('b').read().data], [1, 2, 3, 4])
  assert.equal([...b.read().data], [1, 2, 3, 4])
  assert.equal(a.attrs, { unit: 'V', n: 1 })
  store.close()
})

test('a committed delete removes the array for every handle and reopen', () => {
  const { dir, store, a } = seeded()
  store.delete('a')
  store.commit()
  throwsCode(() => a.read(), NotFoundError, 'TXA_NOT_FOUND')
  assert.equal(store.list(), ['b'])
  store.close()
  const again = open(dir)
  assert.equal(again.list(), ['b'])
  assert.is(again.has('a'), false)
  again.close()
})

test('delete then create of the same name in one transaction commits a new, empty array', () => {
  const { dir, store } = seeded()
  store.delete('a')
  const a2 = store.create('a', { dtype: 'uint16', shape: [2, 2] })
  a2.write([0], Uint16Array.of(1, 2))
  store.commit()
  store.close()
  const again = open(dir)
  const a = again.array('a')
  assert.is(a.dtype, 'uint16')
  assert.equal([...a.read().data], [1, 2, 0, 0])
  assert.equal(a.attrs, {})
  again.close()
})

test('delete then create of the same name, aborted, restores the old array', () => {
  const { store } = seeded()
  store.delete('a')
  store.create('a', { dtype: 'uint16', shape: [2, 2] })
  store.abort()
  const a = store.array('a')
  assert.is(a.dtype, 'float64')
  assert.equal([...a.read().data], seq(1000))
  store.close()
})

test('attrs are copies: changing a returned object changes nothing stored', () => {
  const { dir, store, a } = seeded()
  const attrs = a.attrs
  attrs.unit = 'X'
  assert.equal(a.attrs, { unit: 'V', n: 1 })
  const mine = { nested: { k: [1, 2] } }
  a.setAttrs(mine)
  mine.nested.k.push(3)
  store.commit()
  store.close()
  const again = open(dir)
  assert.equal(again.array('a').attrs, { nested: { k: [1, 2] } })
  again.close()
})

test('commit() moves the handle to the newest snapshot, serial one past the last commit', () => {
  const { store, a } = seeded()
  const s0 = store.serial
  a.write([0, 0], 1)
  store.commit()
  assert.is(store.serial, s0 + 1)
  assert.is(store.stats().serial, s0 + 1)
  store.commit() // nothing to commit: no new serial
  assert.is(store.serial, s0 + 1)
  store.close()
})

test('transact() runs fn, commits and returns its value', () => {
  const { dir, store, a } = seeded()
  const r = store.transact((s) => {
    s.array('a', 'float64').write([0, 0], -5)
    return 'done'
  })
  assert.is(r, 'done')
  assert.is(store.dirty, false)
  assert.is(a.read([0, 0]).data[0], -5)
  const other = open(dir)
  assert.is(other.array('a').read([0, 0]).data[0], -5)
  other.close()
  store.close()
})

test('transact() aborts and rethrows when fn throws', () => {
  const { store, a } = seeded()
  const boom = new Error('boom')
  try {
    store.transact(() => {
      a.write([0, 0], -5)
      store.create('tmp', { dtype: 'int8', shape: [1] })
      throw boom
    })
    assert.unreachable('should throw')
  } catch (e) {
    assert.is(e, boom)
  }
  assert.is(store.dirty, false)
  assert.is(a.read([0, 0]).data[0], 0)
  assert.is(store.has('tmp'), false)
  store.close()
})

test('transact() refuses nesting, async functions and pending changes', () => {
  const { store, a } = seeded()
  throwsCode(() => store.transact(() => store.transact(() => 1)), TransactionError, 'TXA_TRANSACTION')
  throwsCode(() => store.transact((async () => { a.write([1, 1], 9) }) as never), TransactionError, 'TXA_TRANSACTION')
  assert.is(a.read([1, 1]).data[0], 11, 'the async function\'s changes were aborted')
  a.write([0, 0], 3)
  throwsCode(() => store.transact(() => 1), TransactionError, 'TXA_TRANSACTION')
  assert.is(store.dirty, true, 'pending changes are kept')
  throwsCode(() => store.transact('no' as never), ArgumentError, 'TXA_ARGUMENT')
  store.abort()
  // not left stuck "inside" transact after those errors
  assert.is(store.transact(() => 2), 2)
  store.close()
})

test('abort() undoes changes made to an array before deleting it in the same transaction', () => {
  const dir = tempDir()
  const s = open(dir)
  const a = s.create('x', { dtype: 'int32', shape: [8], attrs: { tag: 'old' } })
  a.write(null, Int32Array.from({ length: 8 }, (_, i) => i + 1))
  s.commit()
  a.resize([4])
  a.setAttrs({ tag: 'new' })
  s.delete('x')
  s.abort()
  assert.equal(a.shape, [8])
  assert.equal(a.attrs, { tag: 'old' })
  assert.is(s.dirty, false)
  assert.equal([...a.read().data], [1, 2, 3, 4, 5, 6, 7, 8])
  s.commit()
  a.resize([4])
  a.resize([8])
  assert.equal([...a.read().data], [1, 2, 3, 4, 0, 0, 0, 0], 'growing after a shrink still reads zeros')
  s.close()
})

test.run()
