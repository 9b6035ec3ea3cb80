/**
 * Waiting for commits of any process, in the event loop: one native follower thread per
 * Store handle sleeps on the store's commit doorbell and calls back after each commit;
 * every pending wait then re-checks its condition against the newest commit. Nothing
 * spins: between commits the thread sleeps in the kernel (it calls back once a second
 * without a commit, in case a committer died between its commit and its ring).
 *
 * A pending wait keeps the process alive only when asked (keepAlive: true): by default a
 * process whose only remaining work is a wait exits, as with an unref()'d timer.
 */
import type { NativeFollower, NativeSession } from './binding'
import { AbortError, ArgumentError, ClosedError, TimeoutError } from './errors'
import type { AbortSignalLike, WaitOptions } from './stream-types'


interface CheckedWait {
  timeoutMs: number
  signal: AbortSignalLike | undefined
  keepAlive: boolean
}

export function checkWaitOptions(options: WaitOptions | undefined): CheckedWait {
  if (options === undefined) return { timeoutMs: Infinity, signal: undefined, keepAlive: false }
  if (options === null || typeof options !== 'object') throw new ArgumentError('options must be an object')
  const timeoutMs = options.timeoutMs === undefined ? Infinity : options.timeoutMs
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
    throw new ArgumentError('timeoutMs must be a non-negative number or Infinity')
  }
  const signal = options.signal
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new ArgumentError('signal must be an AbortSignal')
  return { timeoutMs, signal, keepAlive: options.keepAlive === true }
}

export function abortError(signal: AbortSignalLike): AbortError {
  const error = new AbortError('the wait was aborted')
  ;(error as { cause?: unknown }).cause = signal.reason
  return error
}

// setTimeout fires at once for delays above 2^31 - 1 ms: longer ones are chained.
const MAX_TIMER_MS = 2 ** 31 - 1

class Deadline {
  #timer: NodeJS.Timeout | null = null
  constructor(ms: number, keepAlive: boolean, onExpire: () => void) {
    const arm = (left: number): void => {
      const step = Math.min(left, MAX_TIMER_MS)
      this.#timer = setTimeout(() => (left > step ? arm(left - step) : onExpire()), step)
      if (!keepAlive) this.#timer.unref()
    }
    arm(ms)
  }
  cancel(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
  }
}

interface Waiter {
  keepAlive: boolean
  /** Re-checks after a commit. */
  wake(): void
  /** The store closed. */
  close(error: Error): void
}

/** The waits of one Store handle and the follower thread that wakes them. */
export class CommitFeed {
  readonly #session: NativeSession
  #follower: NativeFollower | null = null
  #running = false
  #refs = 0
  readonly #waiters = new Set<Waiter>()
  #closed = false

  constructor(session: NativeSession) {
    this.#session = session
  }

  /**
   * Resolves with poll()'s first result other than undefined: poll runs now, then after
   * every commit of any process. Rejects with what poll throws, TimeoutError, AbortError,
   * or ClosedError when the store closes.
   */
  wait<T>(poll: () => T | undefined, options: WaitOptions | undefined, what: string): Promise<T> {
    let checked: CheckedWait
    try {
      checked = checkWaitOptions(options)
      if (this.#closed) throw new ClosedError('the store is closed')
      if (checked.signal?.aborted) throw abortError(checked.signal)
      // Follow first, then look: a commit after the look is reported by the follower.
      this.#ensureRunning()
      const now = poll()
      if (now !== undefined) return Promise.resolve(now)
    } catch (e) {
      return Promise.reject(e)
    }
    const { timeoutMs, signal, keepAlive } = checked
    return new Promise<T>((resolve, reject) => {
      let deadline: Deadline | null = null
      const onAbort = (): void => settle(() => reject(abortError(signal!)))
      const settle = (then: () => void): void => {
        if (!this.#waiters.delete(waiter)) return
        if (waiter.keepAlive) this.#unref()
        deadline?.cancel()
        signal?.removeEventListener('abort', onAbort)
        then()
      }
      const waiter: Waiter = {
        keepAlive,
        wake: () => {
          let value: T | undefined
          try {
            value = poll()
          } catch (e) {
            settle(() => reject(e))
            return
          }
          if (value !== undefined) settle(() => resolve(value as T))
        },
        close: (error) => settle(() => reject(error)),
      }
      this.#waiters.add(waiter)
      if (keepAlive) this.#ref()
      if (timeoutMs !== Infinity) {
        deadline = new Deadline(timeoutMs, keepAlive, () => settle(() => reject(new TimeoutError(`${what}: no result within ${timeoutMs} ms`))))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Rejects every pending wait with ClosedError and ends the follower thread. */
  close(): void {
    this.#closed = true
    const error = new ClosedError('the store was closed while waiting')
    for (const waiter of [...this.#waiters]) waiter.close(error)
    this.#follower?.close()
    this.#follower = null
  }

  #ensureRunning(): void {
    if (this.#running) return
    this.#follower ??= this.#session.follower(() => this.#onCommit())
    this.#follower.start()
    this.#running = true
  }

  #onCommit(): void {
    if (this.#waiters.size === 0) {
      // Nobody waits: end the thread until the next wait (it costs a thread and a
      // callback per commit otherwise).
      this.#follower?.stop()
      this.#running = false
      return
    }
    for (const waiter of [...this.#waiters]) waiter.wake()
  }

  #ref(): void {
    if (this.#refs++ === 0) this.#follower?.ref(true)
  }

  #unref(): void {
    if (--this.#refs === 0) this.#follower?.ref(false)
  }
}
