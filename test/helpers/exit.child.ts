/**
 * Child script for wait-interrupt.test.ts (TXA_CHILD set), run as a process:
 *   next DIR      : leaves store.waitForCommit() pending forever (keepAlive), then calls process.exit(3)
 *   worker DIR    : starts a worker blocked in waitForCommitSync() forever, then process.exit(4)
 * It prints "exiting" just before process.exit, so that the test measures the exit alone.
 */
import { open } from '../../src/index'
import { startWorker } from './child'

function main(args: string[]): void {
  const [cmd, dir] = args
  const store = open(dir)
  if (cmd === 'next') {
    store.waitForCommit({ keepAlive: true }).catch(() => undefined)
    setTimeout(() => {
      console.log('exiting')
      process.exit(3)
    }, 100)
  } else if (cmd === 'worker') {
    const worker = startWorker('waiter.child.ts', ['wait', dir, 'Infinity'])
    worker.on('message', (m: { ready?: boolean }) => {
      if (!m.ready) return
      setTimeout(() => {
        console.log('exiting')
        process.exit(4)
      }, 100)
    })
  }
}

if (process.env.TXA_CHILD) main(process.argv.slice(2))
