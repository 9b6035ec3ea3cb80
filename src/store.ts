/**
 * Store: one handle on an LMDB-backed store of arrays. A handle is always inside a
 * transaction: it reads one snapshot plus its own changes until commit() or abort().
 */
import { addon, type NativeSession, type NativeStats } from './binding'
import { type ArrayContext, BigArray } from './array'
import { type DType, checkDType } from './dtype'
import {
  AlreadyExistsError, ArgumentError, ClosedError, ConflictError, DTypeError, NotFoundError, TransactionError,
} from './errors'
import { checkFormat, encodeFormat } from './metadata'
import { checkBlockBytes, checkShape } from './shape'
import { type ArrayState, Transaction } from './transaction'
import type { CommitEvent, WaitOptions, WatchOptions } from './stream-types'
import { CommitFeed } from './wait'
import { CommitStream, checkWatchOptions } from './watch'

export interface OpenOptions {
  /**
   * How many blocks the views of this handle map at once (each costs up to two of the
   * process's vm.max_map_count mappings, not RAM: clean pages are the kernel's page cache).
   * Beyond it the least recently mapped clean blocks are unmapped. Default 16384.
   */
  mappedBlocks?: number
  /** Initial LMDB map size in bytes (grows by itself when full). Default 64 GiB. */
  mapSize?: number
  /** Most snapshots open at once across all processes. Default 1022. */
  maxReaders?: number
  /** Default durability of commit(): true syncs to disk. Default true. */
  sync?: boolean
  /**
   * read() and take() check each stored block they copy against its checksum (CRC32C)
   * and throw CorruptionError on a mismatch. Per call: their `verifyChecksums` option.
   * Default false.
   */
  verifyChecksums?: boolean
  /**
   * Commits the log keeps (at least; pruned in batches of 64), a setting of the store:
   * given, it is saved for every process; omitted, the saved value (default 4096) holds.
   * watch() can resume from any serial the log still holds. Minimum 64.
   */
  logRetention?: number
}

export interface CreateOptions<D extends DType = DType> {
  dtype: D
  /** Lengths per axis; axis 0 grows with append(). */
  shape: readonly number[]
  /** Bytes per storage block, a power of two from 4 KiB to 64 MiB. Default 64 KiB. */
  blockBytes?: number
  /** User attributes, any msgpack-encodable object. */
  attrs?: Record<string, unknown>
}

export interface CommitOptions {
  /** false: faster, survives a process crash but maybe not an OS crash until flush(). */
  sync?: boolean
}

export interface TransactOptions extends CommitOptions {
  /** How many times to re-run fn after a ConflictError. Default 10. */
  retries?: number
}

/** Counters of one Store handle since it opened. */
export interface StoreStats {
  /** Commits this handle made. */
  commits: number
  /** Commits of this handle that failed with ConflictError. */
  conflicts: number
  /** Block values and bytes of block data this handle's commits wrote. */
  blocksWritten: number
  bytesWritten: number
  /** Bytes of the stored block values those commits wrote: header page and page rounding included. */
  valueBytesWritten: number
  /** Block values fetched from snapshots by read() and take(). */
  blocksRead: number
  /** The most blocks the handle's views map at once (the store's mappedBlocks). */
  mappedBlocksLimit: number
  /** Blocks the handle's views map now, all arrays. */
  mappedBlocks: number
  /** Clean blocks unmapped so far to stay within mappedBlocks. */
  evictedBlocks: number
  /** Serial of the snapshot this handle reads. */
  serial: number
}

const MAX_NAME_BYTES = 255
const MIN_LOG_RETENTION = 64

function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw new ArgumentError(`an array name is a non-empty string of at most ${MAX_NAME_BYTES} UTF-8 bytes`)
  }
  return name
}

// Milliseconds for the native wait: -1 is "forever".
function checkTimeout(ms: number): number {
  if (ms === Infinity) return -1
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw new ArgumentError('timeoutMs must be a non-negative number or Infinity')
  return Math.ceil(ms)
}

// A short blocking pause between conflict retries, so contending writers spread out.
const pauseCell = new Int32Array(new SharedArrayBuffer(4))
function pause(ms: number): void {
  Atomics.wait(pauseCell, 0, 0, ms)
}

export class Store {
  readonly path: string
  #session: NativeSession | null
  readonly #txn: Transaction
  readonly #handles = new WeakMap<ArrayState, BigArray>()
  readonly #sync: boolean
  readonly #verifyChecksums: boolean
  #inTransact = false
  #feed: CommitFeed | null = null
  readonly #context: ArrayContext

  /** @internal Use open(). */
  constructor(path: string, options: OpenOptions = {}) {
    if (typeof path !== 'string' || path.length === 0) throw new ArgumentError('path must be a non-empty string')
    if (options === null || typeof options !== 'object') throw new ArgumentError('options must be an object')
    for (const key of ['mapSize', 'maxReaders', 'mappedBlocks'] as const) {
      const v = options[key]
      if (v !== undefined && (!Number.isSafeInteger(v) || v <= 0)) throw new ArgumentError(`${key} must be a positive integer`)
    }
    const logRetention = options.logRetention
    if (logRetention !== undefined && (!Number.isSafeInteger(logRetention) || logRetention < MIN_LOG_RETENTION)) {
      throw new ArgumentError(`logRetention must be an integer of at least ${MIN_LOG_RETENTION}`)
    }
    this.path = path
    if (options.verifyChecksums !== undefined && typeof options.verifyChecksums !== 'boolean') {
      throw new ArgumentError('verifyChecksums must be a boolean')
    }
    this.#sync = options.sync ?? true
    this.#verifyChecksums = options.verifyChecksums ?? false
    this.#context = {
      isClosed: () => this.#session === null,
      session: () => this.#native(),
      feed: () => this.#commitFeed(),
    }
    this.#session = new addon.NativeSession(path, options.mapSize, options.maxReaders, options.mappedBlocks ?? 16384)
    this.#txn = new Transaction(this.#session)
    try {
      this.#stampFormat(logRetention)
    } catch (e) {
      this.close()
      throw e
    }
  }

  #stampFormat(logRetention: number | undefined): void {
    const meta: { key: string; value: Uint8Array }[] = []
    const stamp = this.#native().getMeta('format')
    if (stamp) checkFormat(stamp)
    else meta.push({ key: 'format', value: encodeFormat() })
    if (logRetention !== undefined) {
      const value = Buffer.alloc(8)
      value.writeBigUInt64LE(BigInt(logRetention))
      const saved = this.#native().getMeta('logRetention')
      if (!saved || Buffer.compare(Buffer.from(saved), value) !== 0) meta.push({ key: 'logRetention', value })
    }
    if (meta.length > 0) this.#txn.commit(true, meta)
  }

  #commitFeed(): CommitFeed {
    return (this.#feed ??= new CommitFeed(this.#native()))
  }

  #native(): NativeSession {
    if (!this.#session) throw new ClosedError('the store is closed')
    return this.#session
  }

  #handle(state: ArrayState): BigArray {
    let handle = this.#handles.get(state)
    if (!handle) {
      handle = new BigArray(state, this.#context, this.#verifyChecksums)
      this.#handles.set(state, handle)
    }
    return handle
  }

  /** Creates an array in this transaction. Throws AlreadyExistsError if the name is taken. */
  create<D extends DType>(name: string, options: CreateOptions<D>): BigArray<D> {
    this.#native()
    checkName(name)
    if (options === null || typeof options !== 'object') throw new ArgumentError('create() needs options { dtype, shape }')
    const dtype = checkDType(options.dtype)
    const shape = checkShape(options.shape)
    const blockBytes = checkBlockBytes(options.blockBytes)
    // Only a missing attrs means {}: null is rejected below, as setAttrs(null) is.
    const attrs = options.attrs === undefined ? {} : options.attrs
    if (attrs === null || typeof attrs !== 'object' || Array.isArray(attrs)) throw new ArgumentError('attrs must be a plain object')
    if (this.#txn.open(name)) throw new AlreadyExistsError(`array '${name}' already exists`)
    const state = this.#txn.create(name, { dtype, shape, blockBytes, attrs: structuredClone(attrs), created: Date.now() })
    return this.#handle(state) as BigArray<D>
  }

  /**
   * The array called `name`. Throws NotFoundError. With `dtype`, the array is typed as
   * holding that dtype, which is checked: DTypeError names both dtypes when it holds
   * another.
   */
  array(name: string): BigArray
  array<D extends DType>(name: string, dtype: D): BigArray<D>
  array(name: string, dtype?: DType): BigArray {
    this.#native()
    const expected = dtype === undefined ? undefined : checkDType(dtype)
    const state = this.#txn.open(checkName(name))
    if (!state) throw new NotFoundError(`no array named '${name}'`)
    if (expected !== undefined && state.meta.dtype !== expected) {
      throw new DTypeError(`array '${name}' holds ${state.meta.dtype}, not ${expected}`)
    }
    return this.#handle(state)
  }

  /** True if an array called `name` exists in this transaction. */
  has(name: string): boolean {
    this.#native()
    return this.#txn.open(checkName(name)) !== null
  }

  /** Names of the arrays in this transaction, sorted. */
  list(): string[] {
    this.#native()
    return this.#txn.names()
  }

  /** Deletes an array (and its data) in this transaction. Throws NotFoundError. */
  delete(name: string): void {
    this.#native()
    const state = this.#txn.open(checkName(name))
    if (!state) throw new NotFoundError(`no array named '${name}'`)
    this.#txn.remove(state)
  }

  /**
   * Atomically saves every change of this transaction and moves to the newest snapshot.
   * Throws ConflictError (changing nothing) if another commit since this snapshot
   * changed the same blocks or the same array's shape: abort() and retry.
   */
  commit(options: CommitOptions = {}): void {
    this.#native()
    this.#txn.commit(options.sync ?? this.#sync)
  }

  /** Drops every change of this transaction and moves to the newest snapshot. */
  abort(): void {
    this.#native()
    this.#txn.abort()
  }

  /** Moves to the newest snapshot. Throws TransactionError if there are uncommitted changes. */
  refresh(): void {
    this.#native()
    if (this.#txn.hasChanges()) throw new TransactionError('refresh() with uncommitted changes: commit() or abort() first')
    this.#txn.abort()
  }

  /** True if this transaction has uncommitted changes. */
  get dirty(): boolean {
    // A closed store throws ClosedError, like `serial` (its Transaction still lists the
    // pending deletes close() dropped).
    this.#native()
    return this.#txn.hasChanges()
  }

  /**
   * Runs fn(store) and commits; on ConflictError aborts and runs it again (up to
   * `retries` times); on any other error aborts and rethrows. fn must be synchronous.
   */
  transact<T>(fn: (store: Store) => T, options: TransactOptions = {}): T {
    this.#native()
    if (typeof fn !== 'function') throw new ArgumentError('transact() takes a function')
    if (this.#inTransact) throw new TransactionError('transact() cannot be nested')
    if (this.#txn.hasChanges()) throw new TransactionError('transact() with uncommitted changes: commit() or abort() first')
    const retries = options.retries ?? 10
    this.#inTransact = true
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const result = fn(this)
          if (result && typeof (result as { then?: unknown }).then === 'function') {
            throw new TransactionError('transact() takes a synchronous function')
          }
          this.commit(options)
          return result
        } catch (e) {
          if (this.#session) this.#txn.abort()
          if (!(e instanceof ConflictError) || attempt >= retries) throw e
          pause(Math.random() * Math.min(50, 2 ** attempt))
        }
      }
    } finally {
      this.#inTransact = false
    }
  }

  /**
   * Resolves with the newest serial once some handle, in any process, has committed
   * after this handle's snapshot (at once if that already happened). It does not move the
   * snapshot: refresh() to see the commit. Rejects with TimeoutError after `timeoutMs`,
   * AbortError when `signal` aborts, ClosedError if the store is closed. A pending wait
   * does not keep the process alive unless `keepAlive: true`.
   *
   *     for (;;) { await store.waitForCommit(); store.refresh(); ...read the new rows... }
   */
  waitForCommit(options?: WaitOptions): Promise<number> {
    let session: NativeSession
    try {
      session = this.#native()
    } catch (e) {
      return Promise.reject(e)
    }
    const serial = session.serial
    return this.#commitFeed().wait(() => {
      const latest = session.latestSerial()
      return latest > serial ? latest : undefined
    }, options, 'waitForCommit()')
  }

  /**
   * Blocks this thread until some handle, in any process, has committed since this
   * handle's snapshot (true), or `timeoutMs` passes (false). Then refresh() to see it.
   * For a worker thread or a script; a thread that serves other work uses waitForCommit().
   * Default: wait forever.
   */
  waitForCommitSync(timeoutMs = Infinity): boolean {
    return this.#native().waitForCommit(checkTimeout(timeoutMs))
  }

  /**
   * The commits of every handle in every process, in serial order, each once, as an async
   * iterator of CommitEvent: after `since` (default: this handle's snapshot), only those
   * that changed one of `arrays` when given. It waits for new commits without end; stop it
   * with `break`, `signal` (AbortError) or close() (the iteration ends). Throws
   * LogPrunedError when the log no longer holds the commit after `since`. Reading it does
   * not move this handle's snapshot.
   */
  watch(options?: WatchOptions): AsyncIterableIterator<CommitEvent> {
    const session = this.#native()
    const { after, only } = checkWatchOptions(options, session.serial)
    return new CommitStream(() => this.#native(), this.#commitFeed(), after, only, {
      signal: options?.signal, keepAlive: options?.keepAlive,
    })
  }

  /** Forces commits made with sync: false to disk. */
  flush(): void {
    this.#native().flush()
  }

  /** Counters of this handle: commits, conflicts, blocks and bytes written, blocks read. */
  stats(): StoreStats {
    const session = this.#native()
    return { ...session.stats(), serial: session.serial }
  }

  /** Serial of the commit this handle's snapshot shows. */
  get serial(): number {
    return this.#native().serial
  }

  get closed(): boolean {
    return this.#session === null
  }

  /** Drops uncommitted changes and releases the store. Idempotent. */
  close(): void {
    const session = this.#session
    this.#session = null
    this.#feed?.close()
    this.#feed = null
    session?.close()
  }

  [Symbol.dispose](): void {
    this.close()
  }
}

/** Opens (creating if needed) the store in directory `path`. */
export function open(path: string, options?: OpenOptions): Store {
  return new Store(path, options)
}
