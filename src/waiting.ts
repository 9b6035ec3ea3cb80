/**
 * Waiting for commits, in slices. A thread blocked in native code cannot be stopped:
 * worker.terminate() only interrupts JavaScript, and a worker's teardown waits for its
 * pending pool work. So a wait runs as a series of native waits of at most a slice each,
 * with JavaScript in between; a commit still wakes it at once (the native wait sleeps on
 * the store's futex doorbell), the slices only bound how long a terminate() waits.
 */
import { isMainThread } from 'node:worker_threads'
import type { NativeWaiter } from './binding'

/** Longest native wait of a blocking wait: a terminated worker ends within it. */
const SYNC_SLICE_MS = 200
/**
 * Longest native wait of an asynchronous wait: in a worker, what terminate() may wait for;
 * on the main thread (never terminated; process 'exit' interrupts it) the store's own
 * one-second re-check.
 */
const ASYNC_SLICE_MS = isMainThread ? 1000 : 250

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

/** The same without blocking the thread: one libuv pool thread per pending wait. */
export async function nextSliced(waiter: NativeWaiter, serial: number, timeoutMs: number): Promise<boolean> {
  const deadline = timeoutMs < 0 ? Infinity : performance.now() + timeoutMs
  for (;;) {
    const left = deadline - performance.now()
    const slice = Math.max(0, Math.min(ASYNC_SLICE_MS, Math.ceil(left)))
    if (await waiter.wait(serial, slice)) return true
    if (left <= ASYNC_SLICE_MS) return false
  }
}
