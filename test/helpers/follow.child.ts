/**
 * Child script for the follow tests, run as a process (TXA_CHILD set).
 *   pending-exit DIR       : starts a waitForLength that nothing satisfies and returns from
 *                            main; prints 'exited with the wait pending' on exit
 *   pending-keepalive DIR  : waits (keepAlive) for 1 row of x while a timer 100 ms later
 *                            appends it through another handle, with the timer unref()'d:
 *                            only the wait keeps the process alive
 *   wait-length DIR N      : prints the length once x has N rows (keepAlive)
 *   pending-forever DIR    : (process or worker) starts a keepAlive waitForLength and a
 *                            watch() that nothing satisfies, says 'waiting' (stdout or
 *                            a message), then, as a process, calls process.exit(0)
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads'
import { open } from '../../src/index'

async function main(args: string[]): Promise<void> {
  const [cmd, dir, arg] = args
  const s = open(dir)
  if (cmd === 'pending-exit') {
    process.on('exit', () => console.log('exited with the wait pending'))
    s.array('x').waitForLength(1_000_000).then(() => console.log('woke?'), (e) => console.log(`rejected ${e}`))
  } else if (cmd === 'pending-keepalive') {
    setTimeout(() => {
      const other = open(dir)
      other.array('x', 'int32').append(new Int32Array([1]))
      other.commit()
      other.close()
    }, 100).unref()
    const rows = await s.array('x').waitForLength(1, { keepAlive: true })
    console.log(`woke with ${rows} rows`)
    s.close()
  } else if (cmd === 'pending-forever') {
    void s.array('x').waitForLength(1_000_000, { keepAlive: true }).catch(() => {})
    const w = s.watch({ arrays: ['nothing'], keepAlive: true })
    void w.next().catch(() => {})
    await new Promise((r) => setTimeout(r, 50))
    if (parentPort) parentPort.postMessage('waiting')
    else {
      console.log('waiting')
      process.exit(0)
    }
  } else if (cmd === 'wait-length') {
    console.log('ready')
    const rows = await s.array('x').waitForLength(Number(arg), { keepAlive: true, timeoutMs: 30_000 })
    console.log(`length ${rows}`)
    s.close()
  }
}

if (process.env.TXA_CHILD) void main(isMainThread ? process.argv.slice(2) : (workerData as string[]))
