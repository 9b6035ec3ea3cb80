/**
 * Child script for wait-for-commit.test.ts, run as a process or a worker (TXA_CHILD set).
 *   append DIR DELAY_MS     : after DELAY_MS, append one row [1] to 'x' and commit
 *   wait DIR TIMEOUT_MS     : (worker) waitForCommitSync, then print/post whether it woke and x's length
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads'
import { open } from '../../src/index'

function main(args: string[]): void {
  const [cmd, dir, ms] = args
  if (cmd === 'append') {
    setTimeout(() => {
      const s = open(dir)
      s.array('x', 'int32').append(new Int32Array([1]))
      s.commit()
      s.close()
    }, Number(ms))
  } else if (cmd === 'wait') {
    const s = open(dir)
    parentPort?.postMessage({ ready: true })
    const woke = s.waitForCommitSync(Number(ms))
    s.refresh()
    const result = { woke, length: s.array('x').rows }
    s.close()
    if (parentPort) parentPort.postMessage(result)
    else console.log(JSON.stringify(result))
  }
}

if (process.env.TXA_CHILD) main(isMainThread ? process.argv.slice(2) : (workerData as string[]))
