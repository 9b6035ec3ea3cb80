/**
 * Blocking waits for commits (waitForCommitSync), in slices. A thread blocked in native
 * code cannot be stopped: worker.terminate() only interrupts JavaScript. So a wait runs as
 * a series of native waits of at most a slice each, with JavaScript in between; a commit
 * still wakes it at once (the native wait sleeps on the store's futex doorbell), the
 * slices only bound how long a terminate() waits. Waits that do not block the thread
 * (waitForCommit, waitForLength, watch) are woken by a follower thread instead (wait.ts).
 */
import type { NativeWaiter } from './binding'

/** Longest native wait of a blocking wait: a terminated worker ends within it. */
const SYNC_SLICE_MS = 200

/**
 * Blocks until a commit after `serial` exists (true) or `timeoutMs` passes (false);
 * timeoutMs < 0 waits forever.
 */
export function waitSliced(waiter: NativeWaiter, serial: number, timeoutMs: number): boolean {
  const deadline = timeoutMs < 0 ? Infinity : performance.now() + timeoutMs
  for (;;) {
    const left = deadline - performance.now()
    const slice = Math.max(0, Math.min(SYNC_SLICE_MS, Math.ceil(left)))
    if (waiter.waitSync(serial, slice)) return true
    if (left <= SYNC_SLICE_MS) return false
  }
}

