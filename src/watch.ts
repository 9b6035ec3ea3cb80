/**
 * Store.watch(): the commits of every process as an async iterator of events, read from
 * the commit log in serial order, each commit once.
 */
import type { NativeCommit, NativeLogArray, NativeSession } from './binding'
import { ArgumentError, ClosedError, LogPrunedError } from './errors'
import type { ArrayChangeEvent, CommitEvent, RowRange, WaitOptions, WatchOptions } from './stream-types'
import { type CommitFeed, checkWaitOptions } from './wait'

const FLAG_CREATED = 2
const FLAG_DELETED = 4
const FLAG_APPEND_ONLY = 8
const FLAG_RESIZED = 16
const FLAG_ATTRS = 32
const FLAG_SEGMENTS = 64
const BATCH = 256

function rowsOfBlocks(a: NativeLogArray): RowRange[] {
  const limit = Math.min(a.rowsBefore, a.rowsAfter)  // rows that exist before and after
  if (a.flags & (FLAG_APPEND_ONLY | FLAG_CREATED) || a.rowBytes === 0 || limit === 0) return []
  const ranges: RowRange[] = []
  for (let i = 0; i < a.blocks.length; i += 2) {
    const first = a.blocks[i]
    const last = a.blocks[i + 1]
    if (last === -1) continue  // blocks past a new end, deleted: the shrink is `resized`
    const from = Math.floor((first * a.blockBytes) / a.rowBytes)
    const to = Math.min(limit, Math.ceil(((last + 1) * a.blockBytes) / a.rowBytes))
    if (from < to) ranges.push([from, to])
  }
  ranges.sort((x, y) => x[0] - y[0])
  const merged: RowRange[] = []
  for (const r of ranges) {
    const top = merged[merged.length - 1]
    if (top && r[0] <= top[1]) top[1] = Math.max(top[1], r[1])
    else merged.push([r[0], r[1]])
  }
  return merged
}

export function toEvent(commit: NativeCommit, only: ReadonlySet<string> | null): CommitEvent | null {
  const arrays: Record<string, ArrayChangeEvent> = {}
  let any = false
  for (const a of commit.arrays) {
    if (only && !only.has(a.name)) continue
    const deleted = (a.flags & FLAG_DELETED) !== 0
    const change: ArrayChangeEvent = {
      appended: !deleted && a.rowsAfter > a.rowsBefore ? [a.rowsBefore, a.rowsAfter] : null,
      changed: deleted ? [] : rowsOfBlocks(a),
      rows: deleted ? 0 : a.rowsAfter,
      resized: (a.flags & FLAG_RESIZED) !== 0,
      attrs: (a.flags & FLAG_ATTRS) !== 0,
      segments: (a.flags & FLAG_SEGMENTS) !== 0,
      created: (a.flags & FLAG_CREATED) !== 0,
      deleted,
    }
    // One commit may delete an array and create another of the same name.
    const before = arrays[a.name]
    arrays[a.name] = before && before.deleted ? { ...change, deleted: true } : change
    any = true
  }
  if (only && !any) return null
  return { serial: commit.serial, time: commit.time, arrays }
}

export function checkWatchOptions(options: WatchOptions | undefined, serial: number): { after: number; only: Set<string> | null } {
  if (options !== undefined && (options === null || typeof options !== 'object')) throw new ArgumentError('options must be an object')
  checkWaitOptions({ signal: options?.signal, keepAlive: options?.keepAlive })
  const since = options?.since ?? serial
  if (!Number.isSafeInteger(since) || since < 0) throw new ArgumentError('since must be a non-negative integer serial')
  let only: Set<string> | null = null
  if (options?.arrays !== undefined) {
    if (!Array.isArray(options.arrays) || options.arrays.some((n) => typeof n !== 'string')) {
      throw new ArgumentError('arrays must be an array of array names')
    }
    only = new Set(options.arrays)
  }
  return { after: since, only }
}

/** The iterator behind store.watch(). */
export class CommitStream implements AsyncIterableIterator<CommitEvent> {
  readonly #session: () => NativeSession
  readonly #feed: CommitFeed
  readonly #only: ReadonlySet<string> | null
  readonly #options: WaitOptions
  readonly #stop = new AbortController()
  #after: number
  #buffer: CommitEvent[] = []
  #done = false
  #pending: Promise<IteratorResult<CommitEvent>> | null = null

  constructor(session: () => NativeSession, feed: CommitFeed, after: number, only: ReadonlySet<string> | null, options: WaitOptions) {
    this.#session = session
    this.#feed = feed
    this.#after = after
    this.#only = only
    // Waits go through this stream's own signal: the caller's aborts it (with its reason),
    // and so does return(), which ends a pending wait.
    const outer = options.signal
    if (outer?.aborted) this.#stop.abort(outer.reason)
    else outer?.addEventListener('abort', () => this.#stop.abort(outer.reason), { once: true })
    this.#options = { ...options, signal: this.#stop.signal }
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  /** Serial of the last commit this stream has read (yielded or filtered out). */
  get serial(): number {
    return this.#after
  }

  next(): Promise<IteratorResult<CommitEvent>> {
    // Calls are served one after the other, so events stay in order whatever the caller does.
    const run = (): Promise<IteratorResult<CommitEvent>> => this.#next()
    this.#pending = this.#pending ? this.#pending.then(run, run) : run()
    return this.#pending
  }

  async #next(): Promise<IteratorResult<CommitEvent>> {
    for (;;) {
      if (this.#done) return { done: true, value: undefined }
      const event = this.#buffer.shift()
      if (event) return { done: false, value: event }
      try {
        await this.#feed.wait(() => (this.#read() ? true : undefined), this.#options, 'watch()')
      } catch (e) {
        const ended = this.#done
        this.#done = true
        if (ended || e instanceof ClosedError) return { done: true, value: undefined }
        throw e
      }
    }
  }

  // Reads the next commits of the log into the buffer; true if it read any.
  #read(): boolean {
    const commits = this.#session().readCommits(this.#after, BATCH)
    if (commits === null) {
      throw new LogPrunedError(`the commit log no longer reaches back to the commit after serial ${this.#after}: resynchronise from a snapshot and watch from its serial`)
    }
    for (const commit of commits) {
      this.#after = commit.serial
      const event = toEvent(commit, this.#only)
      if (event) this.#buffer.push(event)
    }
    return commits.length > 0
  }

  async return(): Promise<IteratorResult<CommitEvent>> {
    this.#done = true
    this.#buffer = []
    this.#stop.abort()
    return { done: true, value: undefined }
  }
}
