/**
 * Child script for wait-for-commit.test.ts, run as a process or a worker (TXA_CHILD set).
 *   append DIR DELAY_MS     : after DELAY_MS, append one row [1] to 'x' and commit
 *   wait DIR TIMEOUT_MS     : (worker) waitForCommitSync, then print/post whether it woke and x's length
 *   next DIR TIMEOUT_MS     : (worker) the same with await waitForCommit({ timeoutMs }) (woke: false on TimeoutError)
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads'
import { TimeoutError, open } from '../../src/index'

function main(args: string[]): void {
  const [cmd, dir, ms] = args
  if (cmd === 'append') {
    setTimeout(() => {
      const s = open(dir)
      s.array('x', 'int32').append(new Int32Array([1]))
      s.commit()
      s.close()
    }, Number(ms))
  } else if (cmd === 'wait' || cmd === 'next') {
    void follow(cmd, dir, Number(ms))
  }
}

async function follow(cmd: string, dir: string, ms: number): Promise<void> {
  const s = open(dir)
  parentPort?.postMessage({ ready: true })
  const woke = cmd === 'wait'
    ? s.waitForCommitSync(ms)
    : await s.waitForCommit({ timeoutMs: ms, keepAlive: true }).then(() => true, (e: unknown) => {
      if (e instanceof TimeoutError) return false
      throw e
    })
  s.refresh()
  const result = { woke, length: s.array('x').rows }
  s.close()
  if (parentPort) parentPort.postMessage(result)
  else console.log(JSON.stringify(result))
}

if (process.env.TXA_CHILD) main(isMainThread ? process.argv.slice(2) : (workerData as string[]))
