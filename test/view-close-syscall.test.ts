// A system call still running on a view's memory when close() unmaps it (an async
// fs.write on the libuv pool) ends early: it reports the bytes it wrote before the unmap,
// with no error, or EFAULT if it wrote none. Nothing crashes. (docs/api.md, view caveats)
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { open } from '../src/index'
import { tempDir } from './helpers/tmp'

test('an async fs.write of a view blocked on a full pipe when close() runs: a short count without error', async () => {
  const dir = tempDir()
  const fifo = path.join(dir, 'pipe')
  execFileSync('mkfifo', [fifo])
  const readFd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  const writeFd = fs.openSync(fifo, fs.constants.O_WRONLY)
  const store = open(path.join(dir, 'store'))
  const a = store.create('a', { dtype: 'uint8', shape: [4 << 20] })
  a.write(null, 7)
  store.commit()
  const view = a.view()
  for (let i = 0; i < view.length; i += 4096) assert.is(view[i], 7) // every page loaded
  const total = view.byteLength
  const done = new Promise<{ err: NodeJS.ErrnoException | null; written: number }>((resolve) => {
    fs.write(writeFd, view, 0, total, null, (err, written) => resolve({ err, written }))
  })
  // the pool thread fills the pipe (64 KiB) and blocks in write()
  await new Promise((resolve) => setTimeout(resolve, 200))
  store.close()
  assert.is(view.byteLength, 0, 'close() detached the view')
  const received: Buffer[] = []
  let outcome: { err: NodeJS.ErrnoException | null; written: number } | null = null
  void done.then((o) => { outcome = o })
  const until = Date.now() + 10_000
  while (outcome === null && Date.now() < until) {
    const chunk = Buffer.alloc(1 << 16)
    try {
      const n = fs.readSync(readFd, chunk)
      if (n > 0) received.push(chunk.subarray(0, n))
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e
    }
    await new Promise((resolve) => setImmediate(resolve))
  }
  const result = outcome as { err: NodeJS.ErrnoException | null; written: number } | null
  assert.ok(result, 'the write finished')
  for (;;) { // what is left in the pipe
    const chunk = Buffer.alloc(1 << 16)
    let n = 0
    try { n = fs.readSync(readFd, chunk) } catch { n = 0 }
    if (n <= 0) break
    received.push(chunk.subarray(0, n))
  }
  const bytes = Buffer.concat(received)
  if (result.err) {
    assert.is(result.err.code, 'EFAULT')
    assert.is(bytes.length, 0, 'EFAULT only when nothing was written')
  } else {
    assert.ok(result.written > 0 && result.written < total, `a short count: ${result.written} of ${total}`)
    assert.is(bytes.length, result.written, 'the count is what the pipe received')
    assert.ok(bytes.every((b) => b === 7), 'what was written is the view\'s data')
  }
  fs.closeSync(readFd)
  fs.closeSync(writeFd)
})

test.run()
