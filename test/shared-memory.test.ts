// TypedArrays over a SharedArrayBuffer are ordinary memory: write(), append(), read(out)
// and take(out) accept them, on the main thread and in workers.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { open, slice } from '../src/index'
import { startWorker, workerDone } from './helpers/child'
import { tempDir } from './helpers/tmp'

function shared<T>(make: (b: SharedArrayBuffer) => T, bytes: number): T {
  return make(new SharedArrayBuffer(bytes))
}

test('write, append, read(out) and take(out) with SharedArrayBuffer-backed arrays', () => {
  const dir = tempDir()
  const store = open(dir)
  const a = store.create<'float64'>('a', { dtype: 'float64', shape: [0, 2] })
  const rows = shared((b) => new Float64Array(b, 16, 6), 128)
  rows.set([1, 2, 3, 4, 5, 6])
  a.append(rows)
  a.write([1], shared((b) => new Float64Array(b).fill(9), 16))
  store.commit()
  store.close()
  const again = open(dir)
  const b = again.array('a', 'float64')
  assert.equal(Array.from(b.read().data), [1, 2, 9, 9, 5, 6])
  const out = shared((buf) => new Float64Array(buf, 8, 6), 64)
  assert.is(b.read(null, out).data, out)
  assert.equal(Array.from(out), [1, 2, 9, 9, 5, 6])
  const windows = shared((buf) => new Float64Array(buf), 32)
  b.take([2, 0], 1, windows)
  assert.equal(Array.from(windows), [5, 6, 1, 2])
  b.take(shared((buf) => new Uint32Array(buf).fill(1), 8), 1, windows)
  assert.equal(Array.from(windows), [9, 9, 9, 9])
  b.write([slice(0, 1)], shared((buf) => new Float64Array(buf, 0, 2), 16))
  assert.equal(Array.from(b.read([0]).data), [0, 0])
  again.close()
})

test('a worker appends from, reads into and takes into memory it shares with the main thread', async () => {
  const dir = tempDir()
  const store = open(dir)
  store.create('a', { dtype: 'int32', shape: [0] }).append(new Int32Array([100, 101]))
  store.commit()
  const sharedBuffer = new SharedArrayBuffer(64 * 4)
  const view = new Int32Array(sharedBuffer)
  for (let i = 0; i < 8; i++) view[i] = i
  const [message] = await workerDone<{ rows: number }>(startWorker('shared-memory.child.ts', { dir, shared: sharedBuffer }))
  assert.is(message.rows, 10)
  assert.equal(Array.from(view.subarray(16, 26)), [100, 101, 0, 1, 2, 3, 4, 5, 6, 7], 'read(out) filled the shared memory')
  assert.equal(Array.from(view.subarray(48, 52)), [100, 101, 2, 3], 'take(out) filled the shared memory')
  store.refresh()
  assert.equal(Array.from(store.array('a', 'int32').read().data), [100, 101, 0, 1, 2, 3, 4, 5, 6, 7])
  store.close()
})

test.run()
