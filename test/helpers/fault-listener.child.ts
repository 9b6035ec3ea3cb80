// A process whose own thread listens to a fetch channel and stops listening while the
// channel's relay has requests it could not hand over, for remote-fault-fetch.test.ts.
// Opens the lazy cache at argv[2] in a session of its own, attaches a fetch channel and
// listens to it on this thread, starts writes to /dev/null from a view of two blocks held
// as stubs (their faults, in the thread pool, post requests), keeps this thread busy so
// that no request is handed over, then stops listening and closes the channel. Prints
// "unlistened" and "closed"; exits 0 once the writes returned.
import { closeSync, openSync, write } from 'node:fs'
import { addon } from '../../src/binding'
import { encodeFormat } from '../../src/metadata'

if (process.env.TXA_CHILD) {
  const dir = process.argv[2]
  const block = Number(process.argv[3])
  const session = new addon.NativeSession(dir, undefined, undefined, 64, { create: false, readOnly: false, format: encodeFormat() })
  const record = session.getRecord('x')!
  const array = session.track(record.id, block, record.rows * record.rowBytes, 'x')
  const channel = addon.openFetchChannel(20_000)
  session.attachFetchChannel(channel)
  let calls = 0
  addon.listenFetchChannel(channel, () => { calls += 1 })
  const view = new Uint8Array(array.view(0, record.rows * record.rowBytes))
  const sink = openSync('/dev/null', 'w')
  const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
  // This thread stays busy throughout: the first fault's requests wake the relay, which
  // hands one call over (never taken); the second fault's wake it again, and it waits to
  // hand over the next.
  const writes = [0, 32].map((b) => {
    const written = new Promise<void>((resolve) => {
      write(sink, view.subarray(b * block, (b + 1) * block), () => resolve())
    })
    pause(300)
    return written
  })
  addon.unlistenFetchChannel(channel)
  console.log('unlistened')
  addon.closeFetchChannel(channel)
  console.log('closed')
  void Promise.all(writes).then(() => {
    closeSync(sink)
    session.close()
    console.log(`done ${calls}`)
  })
}
