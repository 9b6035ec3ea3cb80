/**
 * The public types of following a stream: the options of the waits and watch(), and the
 * commit events watch() yields.
 */

/** The part of an AbortSignal a wait uses (Node's AbortSignal). */
export interface AbortSignalLike {
  readonly aborted: boolean
  readonly reason?: unknown
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void
  removeEventListener(type: 'abort', listener: () => void): void
}

export interface WaitOptions {
  /** Reject with TimeoutError (code TXA_TIMEOUT) after this many ms. Default Infinity. */
  timeoutMs?: number
  /** Reject with AbortError (code TXA_ABORTED, cause: the signal's reason) when it aborts. */
  signal?: AbortSignalLike
  /** Keep the process alive while the wait is pending. Default false. */
  keepAlive?: boolean
}

/** A half-open row range [from, to). */
export type RowRange = [from: number, to: number]

/** What one commit did to one array. */
export interface ArrayChangeEvent {
  /** Rows that exist after the commit and did not before (the length grew), else null. */
  appended: RowRange | null
  /**
   * Ranges of rows that exist before and after the commit and whose data it may have
   * rewritten, in whole storage blocks (so a range may cover more rows than were written:
   * a shrink rewrites the new last block). Empty for a commit that only appended.
   */
  changed: RowRange[]
  /** Length of axis 0 after the commit (0 when deleted). */
  rows: number
  /** The length was set by resize() (it may have shrunk). */
  resized: boolean
  /** The attributes were replaced. */
  attrs: boolean
  /** Named segments were added or deleted. */
  segments: boolean
  created: boolean
  deleted: boolean
}

export interface CommitEvent {
  /** The commit's serial: pass it as `since` to resume after this commit. */
  serial: number
  /** Wall-clock time of the commit (ms since the epoch, the committing machine's clock). */
  time: number
  /** The arrays the commit changed (only those asked for with `arrays`), by name. */
  arrays: Record<string, ArrayChangeEvent>
}

export interface WatchOptions extends Pick<WaitOptions, 'signal' | 'keepAlive'> {
  /** Only commits that changed one of these arrays are yielded. Default: every commit. */
  arrays?: readonly string[]
  /** Yield the commits after this serial. Default: after this handle's snapshot (store.serial). */
  since?: number
}
