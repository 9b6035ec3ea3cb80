// Waiting never holds a process or a worker hostage: process.exit() returns while
// waitForCommit() is pending or a worker is blocked in waitForCommitSync(); a blocked or
// awaiting worker can be terminated; a huge timeout waits as long as it says, never
// returning at once.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Worker } from 'node:worker_threads'
import { TimeoutError, open } from '../src/index'
import { startChild, startWorker } from './helpers/child'
import { storeWithEmptyArray as store } from './helpers/stream-store'


/** Runs exit.child.ts; resolves with its exit code and how long it took after printing "exiting". */
function exitChild(cmd: string, dir: string, limitMs: number): Promise<{ code: number | null; exitMs: number }> {
  const child = startChild('exit.child.ts', [cmd, dir])
  let exitingAt = 0
  let out = ''
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString()
    if (!exitingAt && out.includes('exiting')) exitingAt = performance.now()
  })
  const killer = setTimeout(() => child.kill('SIGKILL'), limitMs)
  return new Promise((resolve) => child.on('exit', (code) => {
    clearTimeout(killer)
    resolve({ code, exitMs: exitingAt ? performance.now() - exitingAt : Infinity })
  }))
}

function readyWorker(dir: string, args: string[]): Promise<Worker> {
  const worker = startWorker('waiter.child.ts', args)
  return new Promise((resolve, reject) => {
    worker.on('message', (m: { ready?: boolean }) => m.ready && setTimeout(() => resolve(worker), 100))
    worker.on('error', reject)
  })
}

test('process.exit() does not hang while waitForCommit() is pending (keepAlive)', async () => {
  const { dir, s } = store()
  const { code, exitMs } = await exitChild('next', dir, 20_000)
  assert.is(code, 3, 'exited by itself with its own code (not killed)')
  assert.ok(exitMs < 5_000, `exit took ${exitMs.toFixed(0)} ms`)
  s.close()
})

test('process.exit() does not hang while a worker is blocked in waitForCommitSync()', async () => {
  const { dir, s } = store()
  const { code, exitMs } = await exitChild('worker', dir, 20_000)
  assert.is(code, 4, 'exited by itself with its own code (not killed)')
  assert.ok(exitMs < 5_000, `exit took ${exitMs.toFixed(0)} ms`)
  s.close()
})

test('a worker blocked in waitForCommitSync() can be terminated', async () => {
  const { dir, s } = store()
  const worker = await readyWorker(dir, ['wait', dir, 'Infinity'])
  const started = performance.now()
  await worker.terminate()
  const ms = performance.now() - started
  assert.ok(ms < 3_000, `terminate() took ${ms.toFixed(0)} ms`)
  s.close()
})

test('a worker awaiting waitForCommit() can be terminated', async () => {
  const { dir, s } = store()
  const worker = await readyWorker(dir, ['next', dir, 'Infinity'])
  const started = performance.now()
  await worker.terminate()
  const ms = performance.now() - started
  assert.ok(ms < 3_000, `terminate() took ${ms.toFixed(0)} ms`)
  s.close()
})

for (const timeout of [9.3e12, 2 ** 53, 1e300, Infinity]) {
  test(`waitForCommitSync(${timeout}) waits for a commit instead of returning at once`, async () => {
    const { dir, s } = store()
    const worker = await readyWorker(dir, ['wait', dir, String(timeout)])
    const result = new Promise<{ woke: boolean; length: number }>((resolve) => worker.on('message', resolve))
    const early = await Promise.race([result, new Promise((r) => setTimeout(() => r('still waiting'), 300))])
    assert.is(early, 'still waiting')
    s.array('x', 'int32').append(new Int32Array([1]))
    s.commit()
    assert.equal(await result, { woke: true, length: 1 })
    await worker.terminate()
    s.close()
  })

  test(`waitForCommit({ timeoutMs: ${timeout} }) waits for a commit instead of settling at once`, async () => {
    const { dir, s } = store()
    let settled: boolean | undefined
    const pending = s.waitForCommit({ timeoutMs: timeout, keepAlive: true }).then(() => (settled = true), () => (settled = false))
    await new Promise((r) => setTimeout(r, 300))
    assert.is(settled, undefined, 'still pending')
    const other = open(dir)
    other.array('x', 'int32').append(new Int32Array([1]))
    other.commit()
    other.close()
    await pending
    assert.is(settled, true)
    s.close()
  })
}

test('a wait of a few milliseconds still times out on time, in slices or not', async () => {
  const { s } = store()
  let t = performance.now()
  assert.is(s.waitForCommitSync(450), false)
  let ms = performance.now() - t
  assert.ok(ms >= 440 && ms < 2_000, `waitForCommitSync(450) took ${ms.toFixed(0)} ms`)
  t = performance.now()
  const timedOut = await s.waitForCommit({ timeoutMs: 1_300, keepAlive: true }).then(() => false, (e: unknown) => e instanceof TimeoutError)
  assert.ok(timedOut, 'rejected with TimeoutError')
  ms = performance.now() - t
  assert.ok(ms >= 1_290 && ms < 3_000, `waitForCommit({ timeoutMs: 1300 }) took ${ms.toFixed(0)} ms`)
  s.close()
})

test.run()
