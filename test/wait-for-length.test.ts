// a.waitForLength(n): resolves once the array, as committed by any handle in any process,
// has at least n rows; it never moves the handle's snapshot.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { AbortError, ArgumentError, ClosedError, NotFoundError, TimeoutError, open } from '../src/index'
import { runChild, startChild, startWorker } from './helpers/child'
import { storeWithEmptyArray as store } from './helpers/stream-store'
import { rejectsCode } from './helpers/expect'



function append(dir: string, values: number[]): void {
  const o = open(dir)
  o.array('x', 'int32').append(new Int32Array(values))
  o.commit()
  o.close()
}

test('resolves at once with the committed length when it is long enough already', async () => {
  const { dir, s } = store()
  append(dir, [1, 2, 3])
  assert.is(await s.array('x').waitForLength(2), 3)
  assert.is(await s.array('x').waitForLength(0), 3)
  assert.is(s.array('x').rows, 0, 'the snapshot did not move')
  s.close()
})

test('waits through commits that are too short, and resolves on the one that is long enough', async () => {
  const { dir, s } = store()
  const pending = s.array('x').waitForLength(5, { keepAlive: true, timeoutMs: 20_000 })
  let settled = false
  void pending.then(() => (settled = true), () => (settled = true))
  append(dir, [1, 2])
  await new Promise((r) => setTimeout(r, 50))
  assert.is(settled, false, 'two rows are not five')
  append(dir, [3, 4, 5, 6])
  assert.is(await pending, 6)
  s.close()
})

test('wakes on an append of another process', async () => {
  const { dir, s } = store()
  const waiter = startChild('follow.child.ts', ['wait-length', dir, '3'])
  let out = ''
  const ready = new Promise<void>((resolve) => waiter.stdout!.on('data', (d) => {
    out += d
    if (out.includes('ready')) resolve()
  }))
  const exited = new Promise<number | null>((r) => waiter.on('exit', r))
  await ready
  await new Promise((r) => setTimeout(r, 100))
  s.array('x', 'int32').append(new Int32Array([1, 2, 3]))
  s.commit()
  assert.is(await exited, 0)
  assert.match(out, 'length 3')
  s.close()
})

test('rejects with TimeoutError, AbortError, NotFoundError (deleted), ClosedError', async () => {
  const { dir, s } = store()
  const x = s.array('x')
  await rejectsCode(x.waitForLength(1, { timeoutMs: 20, keepAlive: true }), TimeoutError, 'TXA_TIMEOUT')
  const controller = new AbortController()
  const aborted = x.waitForLength(1, { signal: controller.signal, keepAlive: true })
  controller.abort()
  await rejectsCode(aborted, AbortError, 'TXA_ABORTED')
  await rejectsCode(x.waitForLength(-1), ArgumentError, 'TXA_ARGUMENT')
  await rejectsCode(x.waitForLength(1.5), ArgumentError, 'TXA_ARGUMENT')

  const deleted = x.waitForLength(10, { keepAlive: true, timeoutMs: 20_000 })
  const o = open(dir)
  o.delete('x')
  o.commit()
  o.close()
  await rejectsCode(deleted, NotFoundError, 'TXA_NOT_FOUND')

  const s2 = open(dir)
  s2.create('y', { dtype: 'uint8', shape: [0] })
  s2.commit()
  const closed = s2.array('y').waitForLength(1, { keepAlive: true })
  s2.close()
  await rejectsCode(closed, ClosedError, 'TXA_CLOSED')
  s.close()
})

test('many waits on one handle share one follower and each resolves at its own length', async () => {
  const { dir, s } = store()
  const x = s.array('x')
  const waits = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => x.waitForLength(n, { keepAlive: true, timeoutMs: 20_000 }))
  for (let i = 0; i < 8; i++) append(dir, [i])
  const lengths = await Promise.all(waits)
  lengths.forEach((rows, i) => assert.ok(rows >= i + 1, `wait ${i + 1} resolved with ${rows}`))
  s.close()
})

test('process.exit() and worker.terminate() end promptly with keepAlive waits pending', async () => {
  const { dir, s } = store()
  let started = Date.now()
  assert.match(runChild('follow.child.ts', ['pending-forever', dir]), 'waiting')
  assert.ok(Date.now() - started < 20_000)
  const worker = startWorker('follow.child.ts', ['pending-forever', dir])
  await new Promise((resolve, reject) => {
    worker.on('message', resolve)
    worker.on('error', reject)
  })
  started = Date.now()
  await worker.terminate()
  assert.ok(Date.now() - started < 2000, `terminate() took ${Date.now() - started} ms`)
  // the store still works for the main thread, and a commit does not touch the dead worker
  append(dir, [1])
  assert.is(await s.array('x').waitForLength(1, { keepAlive: true, timeoutMs: 10_000 }), 1)
  s.close()
})

test.run()
