// Readers follow a stream: waitForCommit() (a promise) and waitForCommitSync() (blocking)
// wake when any handle, in any process, commits; the reader then refresh()es to see it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { AbortError, ArgumentError, ClosedError, TimeoutError, open } from '../src/index'
import { runChild, startChild, startWorker } from './helpers/child'
import { rejectsCode, throwsCode } from './helpers/expect'
import { tempDir } from './helpers/tmp'
import { storeWithEmptyArray as store } from './helpers/stream-store'



test('waitForCommitSync returns false when nothing is committed before the timeout', () => {
  const { s } = store()
  assert.is(s.waitForCommitSync(30), false)
  assert.is(s.waitForCommitSync(0), false)
  s.close()
})

test('waitForCommitSync returns true at once when a commit newer than the snapshot exists', () => {
  const { dir, s } = store()
  const other = open(dir)
  other.array('x', 'int32').append(new Int32Array([5]))
  other.commit()
  assert.is(s.waitForCommitSync(), true, 'no wait: the commit is already there')
  assert.is(s.array('x').rows, 0, 'the snapshot did not move by itself')
  s.refresh()
  assert.is(s.array('x').rows, 1)
  assert.is(s.waitForCommitSync(0), false, 'after refresh there is nothing newer')
  other.close()
  s.close()
})

test('waitForCommit resolves with the new serial when another process commits, without blocking the event loop', async () => {
  const { dir, s } = store()
  const before = s.serial
  const child = startChild('waiter.child.ts', ['append', dir, '200'])
  const exited = new Promise((r) => child.on('exit', r))
  let ticks = 0
  const timer = setInterval(() => ticks++, 10)
  const serial = await s.waitForCommit({ timeoutMs: 20_000, keepAlive: true })
  clearInterval(timer)
  assert.is(serial, before + 1)
  assert.ok(ticks > 0, 'the event loop ran while waiting')
  s.refresh()
  assert.is(s.array('x').rows, 1)
  await exited
  await rejectsCode(s.waitForCommit({ timeoutMs: 10, keepAlive: true }), TimeoutError, 'TXA_TIMEOUT')
  s.close()
})

test('waitForCommit resolves at once when the commit already exists', async () => {
  const { dir, s } = store()
  const other = open(dir)
  other.array('x', 'int32').append(new Int32Array([5]))
  other.commit()
  assert.is(await s.waitForCommit({ timeoutMs: 0 }), other.serial)
  other.close()
  s.close()
})

test('a worker blocked in waitForCommitSync wakes on a commit of the main thread', async () => {
  const { dir, s } = store()
  const worker = startWorker('waiter.child.ts', ['wait', dir, '20000'])
  const messages: Array<{ woke?: boolean; length?: number; ready?: boolean }> = []
  const done = new Promise<void>((resolve, reject) => {
    worker.on('message', (m) => {
      messages.push(m)
      if (m.ready) {
        setTimeout(() => {
          s.array('x', 'int32').append(new Int32Array([1, 2]))
          s.commit()
        }, 50)
      } else resolve()
    })
    worker.on('error', reject)
  })
  await done
  await worker.terminate()
  assert.equal(messages.at(-1), { woke: true, length: 2 })
  s.close()
})

test('bad timeouts throw TXA_ARGUMENT; a closed store throws TXA_CLOSED', async () => {
  const { s } = store()
  throwsCode(() => s.waitForCommitSync(-1), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => s.waitForCommitSync(NaN), ArgumentError, 'TXA_ARGUMENT')
  await rejectsCode(s.waitForCommit({ timeoutMs: '1' as unknown as number }), ArgumentError, 'TXA_ARGUMENT')
  await rejectsCode(s.waitForCommit({ timeoutMs: -1 }), ArgumentError, 'TXA_ARGUMENT')
  await rejectsCode(s.waitForCommit({ signal: {} as AbortSignal }), ArgumentError, 'TXA_ARGUMENT')
  s.close()
  throwsCode(() => s.waitForCommitSync(1), ClosedError, 'TXA_CLOSED')
  await rejectsCode(s.waitForCommit({ timeoutMs: 1 }), ClosedError, 'TXA_CLOSED')
})

test('a pending waitForCommit rejects with ClosedError when its store closes', async () => {
  const { s } = store()
  const pending = s.waitForCommit()
  s.close()
  await rejectsCode(pending, ClosedError, 'TXA_CLOSED')
})

test('waitForCommit rejects with AbortError (cause: the reason) when its signal aborts', async () => {
  const { s } = store()
  const controller = new AbortController()
  const pending = s.waitForCommit({ signal: controller.signal, keepAlive: true })
  setTimeout(() => controller.abort('enough'), 20)
  const e = await rejectsCode(pending, AbortError, 'TXA_ABORTED')
  assert.is(e.name, 'AbortError')
  assert.is((e as { cause?: unknown }).cause, 'enough')
  await rejectsCode(s.waitForCommit({ signal: AbortSignal.abort() }), AbortError, 'TXA_ABORTED')
  s.close()
})

test('a timeout beyond what setTimeout holds (2^31 ms and far more) still waits', async () => {
  const { s } = store()
  const controller = new AbortController()
  const pending = s.waitForCommit({ timeoutMs: 9.3e12, signal: controller.signal, keepAlive: true })
  const outcome = await Promise.race([pending.then(() => 'settled', () => 'settled'), new Promise((r) => setTimeout(() => r('waiting'), 100))])
  assert.is(outcome, 'waiting', 'a huge timeout did not fire at once')
  controller.abort()
  await rejectsCode(pending, AbortError, 'TXA_ABORTED')
  s.close()
})

test('a pending wait does not keep the process alive; keepAlive: true does', () => {
  const dir = tempDir()
  const s = open(dir)
  s.create('x', { dtype: 'int32', shape: [0] })
  s.commit()
  s.close()
  const started = Date.now()
  const out = runChild('follow.child.ts', ['pending-exit', dir])
  assert.ok(Date.now() - started < 15_000)
  assert.match(out, 'exited with the wait pending')
  const kept = runChild('follow.child.ts', ['pending-keepalive', dir])
  assert.match(kept, 'woke with 1 rows')
})

test.run()
