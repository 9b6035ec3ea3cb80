// Readers follow a stream: waitForCommit() and nextCommit() wake when any handle, in any
// process, commits; the reader then refresh()es to see the new rows.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ArgumentError, ClosedError, open } from '../src/index'
import { startChild, startWorker } from './helpers/child'
import { throwsCode } from './helpers/expect'
import { tempDir } from './helpers/tmp'

function store() {
  const dir = tempDir()
  const s = open(dir)
  s.create('x', { dtype: 'int32', shape: [0] })
  s.commit()
  return { dir, s }
}

test('waitForCommit returns false when nothing is committed before the timeout', () => {
  const { s } = store()
  assert.is(s.waitForCommit(30), false)
  assert.is(s.waitForCommit(0), false)
  s.close()
})

test('waitForCommit returns true at once when a commit newer than the snapshot exists', () => {
  const { dir, s } = store()
  const other = open(dir)
  other.array('x', 'int32').append(new Int32Array([5]))
  other.commit()
  assert.is(s.waitForCommit(), true, 'no wait: the commit is already there')
  assert.is(s.array('x').rows, 0, 'the snapshot did not move by itself')
  s.refresh()
  assert.is(s.array('x').rows, 1)
  assert.is(s.waitForCommit(0), false, 'after refresh there is nothing newer')
  other.close()
  s.close()
})

test('nextCommit resolves when another process commits, without blocking the event loop', async () => {
  const { dir, s } = store()
  const child = startChild('waiter.child.ts', ['append', dir, '200'])
  let ticks = 0
  const timer = setInterval(() => ticks++, 10)
  const woke = await s.nextCommit(20_000)
  clearInterval(timer)
  assert.is(woke, true)
  assert.ok(ticks > 0, 'the event loop ran while waiting')
  s.refresh()
  assert.is(s.array('x').rows, 1)
  await new Promise((r) => child.on('exit', r))
  assert.is(await s.nextCommit(10), false, 'then times out: nothing newer')
  s.close()
})

test('a worker blocked in waitForCommit wakes on a commit of the main thread', async () => {
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
  throwsCode(() => s.waitForCommit(-1), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => s.waitForCommit(NaN), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => s.nextCommit('1' as unknown as number), ArgumentError, 'TXA_ARGUMENT')
  s.close()
  throwsCode(() => s.waitForCommit(1), ClosedError, 'TXA_CLOSED')
  throwsCode(() => s.nextCommit(1), ClosedError, 'TXA_CLOSED')
})

test('a pending nextCommit survives close() of its store and still resolves', async () => {
  const { dir, s } = store()
  const pending = s.nextCommit(5_000)
  s.close()
  const other = open(dir)
  other.array('x', 'int32').append(new Int32Array([1]))
  other.commit()
  assert.is(await pending, true)
  other.close()
})

test.run()
