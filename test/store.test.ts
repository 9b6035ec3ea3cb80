// Store lifecycle: open, reopen, close, dispose, and several handles on one path.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ClosedError, open, slice } from '../src/index'
import { throwsCode } from './helpers/expect'
import { tempDir } from './helpers/tmp'

test('a created array survives commit, close and reopen', () => {
  const dir = tempDir()
  const store = open(dir)
  const a = store.create('x', { dtype: 'int32', shape: [3, 2] })
  a.write(null, new Int32Array([1, 2, 3, 4, 5, 6]))
  store.commit()
  store.close()
  const again = open(dir)
  assert.equal(again.list(), ['x'])
  assert.equal([...again.array('x').read().data], [1, 2, 3, 4, 5, 6])
  again.close()
})

test('open() creates the directory of a new store', () => {
  const dir = `${tempDir()}/nested-new`
  const store = open(dir)
  assert.equal(store.list(), [])
  assert.is(store.path, dir)
  store.close()
})

test('reopening after close sees committed data only: uncommitted changes are lost', () => {
  const dir = tempDir()
  const store = open(dir)
  const a = store.create('kept', { dtype: 'float32', shape: [0, 2], attrs: { a: 1 } })
  a.append(Float32Array.of(1, 2))
  store.commit()
  a.append(Float32Array.of(3, 4))
  a.write([0], Float32Array.of(9, 9))
  a.setAttrs({ a: 2 })
  store.create('lost', { dtype: 'int8', shape: [1] })
  store.delete('kept')
  store.create('kept', { dtype: 'int8', shape: [1] })
  store.close()
  const again = open(dir)
  assert.equal(again.list(), ['kept'])
  const k = again.array('kept')
  assert.is(k.dtype, 'float32')
  assert.equal(k.shape, [1, 2])
  assert.equal([...k.read().data], [1, 2])
  assert.equal(k.attrs, { a: 1 })
  assert.is(again.dirty, false)
  again.close()
})

test('close() is idempotent and [Symbol.dispose] closes', () => {
  const dir = tempDir()
  const store = open(dir)
  assert.is(store.closed, false)
  store.close()
  assert.is(store.closed, true)
  store.close()
  assert.is(store.closed, true)
  {
    using disposable = open(dir)
    disposable.create('x', { dtype: 'uint8', shape: [1] })
    disposable.commit()
    assert.is(disposable.closed, false)
    var leaked = disposable // eslint-disable-line no-var
  }
  assert.is(leaked.closed, true)
  const explicit = open(dir)
  explicit[Symbol.dispose]()
  assert.is(explicit.closed, true)
  explicit[Symbol.dispose]()
  // the store is usable by a new handle after all that
  const again = open(dir)
  assert.equal(again.list(), ['x'])
  again.close()
})

test('every method of a closed store, and of its arrays, throws ClosedError', () => {
  const dir = tempDir()
  const store = open(dir)
  const a = store.create('x', { dtype: 'int32', shape: [4] })
  store.create('y', { dtype: 'int32', shape: [4] })
  store.commit()
  store.delete('y') // a pending change of a kind that lives only in TypeScript
  store.close()
  const calls: Record<string, () => unknown> = {
    create: () => store.create('z', { dtype: 'int8', shape: [1] }),
    array: () => store.array('x'),
    has: () => store.has('x'),
    list: () => store.list(),
    delete: () => store.delete('x'),
    commit: () => store.commit(),
    abort: () => store.abort(),
    refresh: () => store.refresh(),
    transact: () => store.transact(() => 1),
    flush: () => store.flush(),
    stats: () => store.stats(),
    serial: () => store.serial,
    dirty: () => store.dirty,
    'array.read': () => a.read(),
    'array.read(sel)': () => a.read([slice(0, 2)]),
    'array.write': () => a.write(null, 1),
    'array.append': () => a.append(new Int32Array(1)),
    'array.resize': () => a.resize([8]),
    'array.setAttrs': () => a.setAttrs({}),
    'array.attrs': () => a.attrs,
    'array.shape': () => a.shape,
    'array.length': () => a.rows,
    'array.dtype': () => a.dtype,
    'array.nbytes': () => a.nbytes,
  }
  for (const [what, call] of Object.entries(calls)) {
    try {
      call()
      assert.unreachable(`${what} did not throw`)
    } catch (e) {
      assert.instance(e, ClosedError, what)
      assert.is((e as ClosedError).code, 'TXA_CLOSED', what)
    }
  }
  throwsCode(() => store.commit(), ClosedError, 'TXA_CLOSED')
  // and nothing of the pending delete reached the disk
  const again = open(dir)
  assert.equal(again.list(), ['x', 'y'])
  again.close()
})

test('two open() calls on one path share the environment and see each other\'s commits after refresh', () => {
  const dir = tempDir()
  const s1 = open(dir)
  const s2 = open(dir)
  const a = s1.create('x', { dtype: 'int16', shape: [2] })
  a.write(null, Int16Array.of(1, 2))
  s1.commit()
  assert.is(s2.has('x'), false)
  s2.refresh()
  assert.equal([...s2.array('x').read().data], [1, 2])
  s2.array('x', 'int16').write([1], 5)
  s2.commit()
  assert.equal([...a.read().data], [1, 2])
  s1.refresh()
  assert.equal([...a.read().data], [1, 5])
  // closing one handle leaves the other working
  s1.close()
  s2.array('x', 'int16').append(Int16Array.of(7))
  s2.commit()
  const s3 = open(dir)
  assert.equal([...s3.array('x').read().data], [1, 5, 7])
  s2.close()
  s3.close()
})

test('a path given another way (relative, trailing slash) is the same store', () => {
  const dir = tempDir()
  const s1 = open(dir)
  s1.create('x', { dtype: 'int8', shape: [1] })
  s1.commit()
  const rel = require('node:path').relative(process.cwd(), dir) + '/'
  const s2 = open(rel)
  assert.equal(s2.list(), ['x'])
  s2.create('y', { dtype: 'int8', shape: [1] })
  s2.commit()
  s1.refresh()
  assert.equal(s1.list(), ['x', 'y'])
  s1.close()
  s2.close()
})

test('a small initial map grows by itself as data is committed', () => {
  const dir = tempDir()
  const store = open(dir, { mapSize: 1 << 20, sync: false })
  const a = store.create('big', { dtype: 'float64', shape: [0, 1024], blockBytes: 65536 })
  const row = Float64Array.from({ length: 1024 * 64 }, (_, k) => k % 1000 + 1) // 512 KiB
  a.append(row)
  store.commit()
  const early = open(dir) // holds a snapshot while the map is re-mapped under it
  for (let i = 1; i < 12; i++) {
    a.append(row)
    store.commit()
    assert.equal([...early.array('big', 'float64').read().data], [...row], `early snapshot, commit ${i}`)
  }
  early.close()
  const reader = open(dir)
  const got = reader.array('big', 'float64').read([slice(-64, null)]).data
  assert.equal([...got], [...row])
  assert.is(reader.array('big').rows, 64 * 12)
  reader.close()
  store.close()
})

test('commit({ sync: false }) and flush() keep data like a synced commit', () => {
  const dir = tempDir()
  const store = open(dir)
  const a = store.create('x', { dtype: 'uint32', shape: [3] })
  a.write(null, Uint32Array.of(1, 2, 3))
  store.commit({ sync: false })
  store.flush()
  store.close()
  const again = open(dir, { sync: false })
  assert.equal([...again.array('x').read().data], [1, 2, 3])
  again.close()
})

test.run()
