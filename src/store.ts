/**
 * Store: one handle on an LMDB-backed store of arrays. A handle is always inside a
 * transaction: it reads one snapshot plus its own changes until commit() or abort().
 */
import { show } from './show'
import { addon, type NativeSession, type NativeStats, type NativeStub } from './binding'
import { type ArrayContext, BigArray } from './array'
import { checkAttrs } from './attrs'
import { type DType, checkDType, itemBytes } from './dtype'
import {
  AlreadyExistsError, ArgumentError, ClosedError, ConflictError, DTypeError, FormatError, NotFoundError, ReadOnlyError,
  TransactionError,
} from './errors'
import { checkStore } from './check'
import type { CheckReport } from './check-report'
import { checkFormat, encodeFormat } from './metadata'
import { checkBlockBytes, checkByteLength, checkShape } from './shape'
import { type ArrayState, Transaction } from './transaction'
import type { CommitEvent, WaitOptions, WatchOptions } from './stream-types'
import { CommitFeed } from './wait'
import { CommitStream, checkWatchOptions } from './watch'
import { waitSliced } from './waiting'
import { type ImportNpyOptions, type ImportNpyResult, importNpy } from './npy/import'
import { checkCacheFiles, prepareCacheFiles } from './remote/cache-files'
import { RemoteHandle } from './remote/remote-handle'
import { cacheMayHoldStubs } from './remote/cache-writer'
import { fetchStubsOf, fetchUnderViews } from './remote/lazy-blocks'
import { faultMode } from './fault-mode'

export interface OpenOptions {
  /**
   * Create the store (and its directory, not the directory's parents) if it does not
   * exist. false: a missing store is a NotFoundError. Default true.
   */
  create?: boolean
  /**
   * Open without write access: nothing is written to the store, every change throws
   * ReadOnlyError. Works on a read-only directory or file system. Default false.
   */
  readOnly?: boolean
  /**
   * The most memory mappings (VMAs, counted against the process's vm.max_map_count) the
   * views of this handle hold at once, in a budget of the handle's own. A mapped block costs
   * 0 to 2 mappings: one of its own, plus one where it splits an unmapped stretch (blocks
   * mapped side by side share the cost). Beyond the budget the least recently used clean
   * blocks are unmapped. It bounds mappings, not RAM: clean pages are the kernel's page
   * cache. Default: the handle shares the process's budget with every other handle that
   * sets none, three quarters of vm.max_map_count (49 146 of the usual 65 530); TXARRAY_MAPPINGS or
   * setProcessMappings() sets that one.
   */
  mappings?: number
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
  /**
   * A PostgreSQL connection string (`postgres://user@host:port/db`): the store lives on
   * that server, shared by every machine that opens it, and `path` is this machine's
   * local cache of it (created if missing). Commits go to the server; reads, views and
   * page faults are served from the cache, which follows every machine's commits. The
   * server is needed at open (RemoteUnavailableError otherwise). See README "Several
   * machines" and docs/scale-out.md.
   */
  remote?: string
  /** The PostgreSQL schema holding the store (created if missing). Default `txarray`. */
  remoteSchema?: string
  /** How long one call to the server may take before it fails. Default 60 000 ms. */
  remoteTimeoutMs?: number
  /**
   * How the cache receives the blocks of other machines' commits. `'eager'` (default):
   * every block's bytes as its commit arrives, so reads, views and faults never wait for
   * the server and keep working while it is away. `'lazy'`: only the block versions
   * (stubs); a block's bytes are fetched from the server when this handle first reads it
   * — read(), take(), exports and writes fetch what they touch, view() fetches its
   * range before it returns — and kept in the cache for later snapshots. For machines
   * that read a small part of large arrays. See docs/scale-out.md, "Blocks fetched on demand".
   */
  remoteBlocks?: 'eager' | 'lazy'
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

/** Figures of the store as a whole (all arrays, all processes), from storageStats(). */
export interface StorageStats {
  /** Size of the data file (data.mdb). */
  fileBytes: number
  /** Size of the memory map (address space; grows by doubling when full). */
  mapBytes: number
  pageBytes: number
  /** Pages of the file in use (the highest page number + 1). */
  usedPages: number
  /** Of those, pages free for reuse by later commits. */
  freePages: number
  /** Reader slots held now (snapshots open in all processes) and the most there can be. */
  readers: number
  maxReaders: number
  /** Arrays in the newest commit. */
  arrays: number
  /** Stored block values (blocks never written or all zeros take none). */
  blocks: number
  /** Pages holding block values, and the bytes of those pages. */
  blockPages: number
  blockPageBytes: number
  /** Entries of the commit log. */
  logEntries: number
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
  /** Seconds this handle's commits spent computing the checksums of the blocks they wrote. */
  checksumSeconds: number
  /**
   * Block data bytes those commits read to compute the checksums: a commit that continues
   * a block this handle committed last (a stream of appends) reads only the bytes it added.
   */
  checksumBytes: number
  /**
   * The most mappings (VMAs) the handle's mapping budget allows: OpenOptions.mappings, or
   * the process's budget, which every handle that sets none shares.
   */
  mappingsLimit: number
  /** Mappings the budget's views hold now (every handle sharing the budget). */
  mappings: number
  /** Blocks the budget's views map now (every handle sharing the budget). */
  mappedBlocks: number
  /** Clean blocks unmapped so far to stay within the budget. */
  evictedBlocks: number
  /** Written (uncommitted) blocks unmapped so far to stay within the budget: their bytes
   * wait in memory outside the mapping budget until commit() or abort(). */
  spilledBlocks: number
  /** Serial of the snapshot this handle reads. */
  serial: number
  /**
   * Block versions this handle fetched from the server on demand (a remote store opened
   * with `remoteBlocks: 'lazy'`, or whose cache holds stubs), and their bytes. 0 otherwise.
   */
  blocksFetched: number
  bytesFetched: number
}

const MAX_NAME_BYTES = 255
const MIN_LOG_RETENTION = 64
// A UTF-16 code unit of a surrogate pair standing alone: it has no UTF-8 encoding.
const LONE_SURROGATE = /\p{Surrogate}/u

/**
 * Throws ArgumentError unless `name` is a valid array name: a string of 1 to 255 UTF-8
 * bytes that is well-formed UTF-16 (no lone surrogate: it would be stored as U+FFFD, so
 * two different names would alias one array).
 */
function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw new ArgumentError(`an array name is a non-empty string of at most ${MAX_NAME_BYTES} UTF-8 bytes`)
  }
  if (LONE_SURROGATE.test(name)) {
    throw new ArgumentError('an array name must be well-formed Unicode: it holds a lone UTF-16 surrogate')
  }
  return name
}

// Longest finite wait that is still a wait: beyond it (about 285 000 years) means forever.
const FOREVER_MS = 2 ** 53

/** Milliseconds for a wait: Infinity and anything from 2^53 up mean forever (-1). */
function checkTimeout(ms: unknown): number {
  if (typeof ms !== 'number' || Number.isNaN(ms) || ms < 0) {
    throw new ArgumentError(`timeoutMs must be a non-negative number or Infinity, got ${show(ms)}`)
  }
  return ms >= FOREVER_MS ? -1 : Math.ceil(ms)
}

/** Throws ArgumentError unless `options` is undefined or an object whose `sync` is a boolean or undefined. */
function checkCommitOptions<T extends CommitOptions>(options: T | undefined, what: string): T {
  if (options === undefined) return {} as T
  if (options === null || typeof options !== 'object') throw new ArgumentError(`${what} options must be an object`)
  if (options.sync !== undefined && typeof options.sync !== 'boolean') {
    throw new ArgumentError(`${what} option sync must be a boolean, got ${show(options.sync)}`)
  }
  return options
}

// A short blocking pause between conflict retries, so contending writers spread out.
const pauseCell = new Int32Array(new SharedArrayBuffer(4))
function pause(ms: number): void {
  Atomics.wait(pauseCell, 0, 0, ms)
}

/** Calls fn(store); a promise back means fn was async, which transact() cannot retry. */
function runSynchronous<T>(fn: (store: Store) => T, store: Store, name: string): T {
  const result = fn(store)
  if (result && typeof (result as { then?: unknown }).then === 'function') {
    throw new TransactionError(`${name} takes a synchronous function`)
  }
  return result
}

export class Store {
  readonly path: string
  /** Opened with `readOnly: true`: every change throws ReadOnlyError. */
  readonly readOnly: boolean
  #session: NativeSession | null
  readonly #txn: Transaction
  readonly #handles = new WeakMap<ArrayState, BigArray>()
  readonly #sync: boolean
  readonly #verifyChecksums: boolean
  #inTransact = false
  #feed: CommitFeed | null = null
  readonly #context: ArrayContext
  #remote: RemoteHandle | null = null

  /** @internal Use open(). */
  constructor(path: string, options: OpenOptions = {}) {
    if (typeof path !== 'string' || path.length === 0) throw new ArgumentError('path must be a non-empty string')
    if (path.includes('\0')) throw new ArgumentError('path must not contain a NUL character')
    if (options === null || typeof options !== 'object') throw new ArgumentError('options must be an object')
    if ('mappedBlocks' in options) throw new ArgumentError('mappedBlocks is replaced by mappings: a budget of memory mappings (VMAs), not blocks; leave it out to share the process\'s budget')
    for (const key of ['mapSize', 'maxReaders', 'mappings'] as const) {
      const v = options[key]
      if (v !== undefined && (!Number.isSafeInteger(v) || v <= 0)) throw new ArgumentError(`${key} must be a positive integer`)
    }
    const logRetention = options.logRetention
    if (logRetention !== undefined && (!Number.isSafeInteger(logRetention) || logRetention < MIN_LOG_RETENTION)) {
      throw new ArgumentError(`logRetention must be an integer of at least ${MIN_LOG_RETENTION}`)
    }
    for (const key of ['create', 'readOnly'] as const) {
      const v = options[key]
      if (v !== undefined && typeof v !== 'boolean') throw new ArgumentError(`${key} must be a boolean`)
    }
    checkCommitOptions(options, 'open()')
    this.path = path
    if (options.verifyChecksums !== undefined && typeof options.verifyChecksums !== 'boolean') {
      throw new ArgumentError('verifyChecksums must be a boolean')
    }
    this.readOnly = options.readOnly ?? false
    this.#sync = options.sync ?? true
    this.#verifyChecksums = options.verifyChecksums ?? false
    const remote = checkRemoteOptions(options)
    if (remote && logRetention !== undefined) throw new ArgumentError('logRetention is a setting of a local store, not of the cache of a remote one')
    this.#context = {
      beforeChange: () => this.#remote?.beforeChange(),
      isClosed: () => this.#session === null,
      session: () => this.#native(),
      feed: () => this.#commitFeed(),
      storePath: path,
      readOnly: this.readOnly,
    }
    if (remote) prepareCacheFiles(path)
    else checkCacheFiles(path)
    // A remote store's cache is created when missing: the store itself is on the server.
    const mode = { create: remote ? true : options.create ?? true, readOnly: remote ? false : this.readOnly, format: encodeFormat() }
    this.#session = new addon.NativeSession(path, options.mapSize, options.maxReaders, options.mappings, mode)
    this.#txn = new Transaction(this.#session)
    try {
      // The native side created the record with a new store, and refused a store without one.
      const stamp = this.#session.getMeta('format')
      if (!stamp) throw new FormatError('the store has no format record')
      checkFormat(stamp)
      const isCache = this.#session.getMeta('remote') !== null
      if (remote) {
        if (!isCache && this.#session.latestSerial() > 0) {
          throw new FormatError(`${path} holds a local store, not the cache of a remote one: give remote stores a directory of their own`)
        }
        // In userfaultfd mode a view's fault on a stub waits while the link fetches it.
        const faultFetches = faultMode().mode === 'uffd'
        const handle = new RemoteHandle(remote.url, path, {
          schema: remote.schema, timeoutMs: remote.timeoutMs, lazy: remote.blocks === 'lazy', faultFetches,
        })
        this.#remote = handle
        handle.attachFaults(this.#session)
        this.#session.refresh()  // to what the cache caught up to
        // The handle's clients row follows its snapshot: retention keeps what it reads.
        handle.moved(this.#session.serial)
        this.#txn.onSerial = (serial) => handle.moved(serial)

        // Arrays of a cache that may hold stubs fetch the blocks they read (lazy-blocks.ts);
        // views fetch theirs when made, and after every move, only where faults cannot wait.
        const fetch = (arrayId: number, stubs: NativeStub[]) => handle.fetch(this.#native(), arrayId, stubs)
        const lazy = () => remote.blocks === 'lazy' || cacheMayHoldStubs(this.#native())
        this.#txn.onTrack = (native) => { if (lazy()) fetchStubsOf(native, fetch, { viewsFault: handle.faultsFetch }) }
        this.#txn.onMoved = (natives) => { if (lazy() && !handle.faultsFetch) fetchUnderViews(natives, fetch) }
      } else if (isCache && !this.readOnly) {
        throw new ArgumentError(`${path} is the local cache of a remote store: open it with { remote } (or readOnly: true to read what it holds)`)
      }
      if (logRetention !== undefined) this.#saveLogRetention(logRetention)
    } catch (e) {
      this.close()
      throw e
    }
  }

  /** Records the log retention in the store (a commit, only when it changes). */
  #saveLogRetention(logRetention: number): void {
    const value = Buffer.alloc(8)
    value.writeBigUInt64LE(BigInt(logRetention))
    const saved = this.#native().getMeta('logRetention')
    if (saved && Buffer.compare(Buffer.from(saved), value) === 0) return
    this.#writable('logRetention')
    this.#txn.commit(true, [{ key: 'logRetention', value }])
  }

  #commitFeed(): CommitFeed {
    return (this.#feed ??= new CommitFeed(this.#native()))
  }

  #writable(what: string): void {
    if (this.readOnly) throw new ReadOnlyError(`${what} on a store opened with readOnly: true`)
    this.#remote?.beforeChange()
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
    this.#writable('create()')
    if (options === null || typeof options !== 'object') throw new ArgumentError('create() needs options { dtype, shape }')
    const dtype = checkDType(options.dtype)
    const shape = checkShape(options.shape)
    const blockBytes = checkBlockBytes(options.blockBytes)
    checkByteLength(shape, itemBytes(dtype))
    // Only a missing attrs means {}: null is rejected, as setAttrs(null) is.
    const attrs = checkAttrs(options.attrs === undefined ? {} : options.attrs)
    if (this.#txn.open(name)) throw new AlreadyExistsError(`array '${name}' already exists`)
    const state = this.#txn.create(name, { dtype, shape, blockBytes, attrs, created: Date.now() })
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

  /**
   * Creates array `name` from the .npy file at `path`, streaming it in chunks of
   * `chunkBytes` and committing every `commitBytes` (at row boundaries), so files larger
   * than RAM import in bounded memory. Big-endian files are converted; Fortran-order
   * files are transposed into C order. Commits: the transaction must have no changes.
   * Throws NpyFormatError for a malformed file or a dtype txarray does not have. If the
   * import fails, the array is deleted; after a crash, the array holds a prefix of the
   * file's rows (each batch commit whole).
   */
  importNpy(name: string, path: string, options?: ImportNpyOptions): ImportNpyResult {
    this.#native()
    checkName(name)
    if (this.#txn.open(name)) throw new AlreadyExistsError(`array '${name}' already exists`)
    return importNpy(this, name, path, options)
  }

  /** Deletes an array (and its data) in this transaction. Throws NotFoundError. */
  delete(name: string): void {
    this.#native()
    const state = this.#txn.open(checkName(name))
    if (!state) throw new NotFoundError(`no array named '${name}'`)
    this.#writable('delete()')
    this.#txn.remove(state)
  }

  /**
   * Atomically saves every change of this transaction and moves to the newest snapshot.
   * Throws ConflictError (changing nothing) if another commit since this snapshot
   * changed the same blocks or the same array's shape: abort() and retry.
   */
  commit(options?: CommitOptions): void {
    this.#native()
    const sync = checkCommitOptions(options, 'commit()').sync ?? this.#sync
    // Writes through views are the only changes a read-only handle can hold.
    if (this.readOnly && this.#txn.hasChanges()) this.#writable('commit() of changes made through views')
    if (this.#remote) this.#remote.commit(this.#txn, sync)
    else this.#txn.commit(sync)
  }

  /**
   * commit() that does not block the thread on the network: on a remote store the
   * request, the wait for the server and the catch-up run on the link's thread, and the
   * promise settles when the handle has moved to its commit. Rejects as commit() throws.
   * Until it settles, changes through the API and commit(), abort(), refresh() throw
   * TransactionError; writes through views made meanwhile are not part of the commit and
   * are dropped when it settles. On a local store it commits at once (LMDB does not wait
   * on a network) and returns a settled promise.
   */
  commitAsync(options?: CommitOptions): Promise<void> {
    try {
      this.#native()
      const sync = checkCommitOptions(options, 'commitAsync()').sync ?? this.#sync
      if (this.readOnly && this.#txn.hasChanges()) this.#writable('commit() of changes made through views')
      if (this.#remote) return this.#remote.commitAsync(this.#txn, sync)
      this.#txn.commit(sync)
      return Promise.resolve()
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * refresh() that does not block the thread on the network (the catch-up of a remote
   * store's cache runs on the link's thread); on a local store it refreshes at once.
   */
  refreshAsync(): Promise<void> {
    try {
      this.#native()
      const settling = this.#remote?.unsettled ?? false
      if (this.#txn.hasChanges() && !settling) throw new TransactionError('refresh() with uncommitted changes: commit() or abort() first')
      if (this.#remote) return this.#remote.refreshAsync(this.#txn)
      this.#txn.abort()
      return Promise.resolve()
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * abort() that does not block the thread on the network (a remote store's catch-up runs
   * on the link's thread); on a local store it aborts at once.
   */
  abortAsync(): Promise<void> {
    try {
      this.#native()
      if (this.#remote) return this.#remote.abortAsync(this.#txn)
      this.#txn.abort()
      return Promise.resolve()
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * transact() with commitAsync() and abortAsync(): runs fn(store) (synchronous, as for
   * transact()) and commits without blocking the thread on the network; on ConflictError
   * it aborts, waits a few random milliseconds (a timer, not a blocking pause) and runs fn
   * again, up to `retries` times; on any other error it aborts and rethrows.
   */
  async transactAsync<T>(fn: (store: Store) => T, options?: TransactOptions): Promise<T> {
    const { opts, retries } = this.#startTransact('transactAsync()', fn, options)
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const result = runSynchronous(fn, this, 'transactAsync()')
          await this.commitAsync(opts)
          return result
        } catch (e) {
          if (this.#session) await this.abortAsync()
          if (!(e instanceof ConflictError) || attempt >= retries) throw e
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 ** attempt)))
        }
      }
    } finally {
      this.#inTransact = false
    }
  }

  /**
   * Checks transact()/transactAsync()'s arguments and state and marks the handle inside a
   * transact: the caller's `finally` clears #inTransact.
   */
  #startTransact(name: string, fn: unknown, options: TransactOptions | undefined): { opts: TransactOptions; retries: number } {
    this.#native()
    if (typeof fn !== 'function') throw new ArgumentError(`${name} takes a function`)
    const opts = checkCommitOptions(options, name)
    if (opts.retries !== undefined && (!Number.isSafeInteger(opts.retries) || opts.retries < 0)) {
      throw new ArgumentError(`${name} option retries must be a non-negative integer, got ${show(opts.retries)}`)
    }
    if (this.#inTransact) throw new TransactionError('transact() cannot be nested')
    if (this.#txn.hasChanges()) throw new TransactionError(`${name} with uncommitted changes: commit() or abort() first`)
    this.#inTransact = true
    return { opts, retries: opts.retries ?? 10 }
  }

  /** True for a store opened with `remote`: this handle's path is a cache of it. */
  get remote(): boolean {
    return this.#remote !== null
  }

  #abortTxn(): void {
    if (this.#remote) this.#remote.abort(this.#txn)
    else this.#txn.abort()
  }

  /** Drops every change of this transaction and moves to the newest snapshot. */
  abort(): void {
    this.#native()
    this.#abortTxn()
  }

  /** Moves to the newest snapshot. Throws TransactionError if there are uncommitted changes. */
  refresh(): void {
    this.#native()
    // A landed commit the handle has not moved to yet holds its changes until refresh() settles it.
    const settling = this.#remote?.unsettled ?? false
    if (this.#txn.hasChanges() && !settling) throw new TransactionError('refresh() with uncommitted changes: commit() or abort() first')
    if (this.#remote) this.#remote.refresh(this.#txn)
    else this.#txn.abort()
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
  transact<T>(fn: (store: Store) => T, options?: TransactOptions): T {
    const { opts, retries } = this.#startTransact('transact()', fn, options)
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const result = runSynchronous(fn, this, 'transact()')
          this.commit(opts)
          return result
        } catch (e) {
          if (this.#session) this.#abortTxn()
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
    const session = this.#native()
    const timeout = checkTimeout(timeoutMs)
    return waitSliced(session.waiter(), session.serial, timeout)
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
    const session = this.#native()
    if (!this.readOnly) session.flush()  // a read-only handle has nothing to flush
  }

  /** Counters of this handle: commits, conflicts, blocks and bytes written, blocks read. */
  stats(): StoreStats {
    const session = this.#native()
    const counted = session.stats()
    // A remote store's commits are made by the server: the handle counts them itself.
    if (this.#remote) Object.assign(counted, { commits: this.#remote.commits, conflicts: this.#remote.conflicts })
    return {
      ...counted, serial: session.serial,
      blocksFetched: this.#remote?.blocksFetched ?? 0, bytesFetched: this.#remote?.bytesFetched ?? 0,
    }
  }

  /**
   * Verifies the snapshot this handle reads (committed data only; refresh() first to check
   * the newest): the format stamp, every array record, every block (header, checksum,
   * place, size, index within its array) and the cross-references between blocks,
   * records and the commit log. Reports every problem found; changes nothing. Reads the
   * whole store: it takes as long as reading every block once.
   */
  check(): CheckReport {
    return checkStore(this.#native())
  }

  /**
   * Figures of the whole store, read in a fresh snapshot: file and map size, used and
   * free pages, reader slots in use, arrays, stored blocks and their pages.
   */
  storageStats(): StorageStats {
    const f = this.#native().envFigures()
    return {
      fileBytes: f.fileBytes, mapBytes: f.mapBytes, pageBytes: f.pageBytes,
      usedPages: f.usedPages, freePages: f.freePages, readers: f.readers, maxReaders: f.maxReaders,
      arrays: f.arrays.entries, blocks: f.blocks.entries, blockPages: f.blocks.pages,
      blockPageBytes: f.blocks.pages * f.pageBytes, logEntries: f.log.entries,
    }
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
    this.#remote?.close()
    this.#remote = null
    session?.close()
  }

  [Symbol.dispose](): void {
    this.close()
  }
}

/** The remote options, checked; null without `remote`. */
function checkRemoteOptions(options: OpenOptions): { url: string; schema?: string; timeoutMs?: number; blocks: 'eager' | 'lazy' } | null {
  const { remote, remoteSchema, remoteTimeoutMs, remoteBlocks } = options
  if (remote === undefined) {
    if (remoteSchema !== undefined || remoteTimeoutMs !== undefined || remoteBlocks !== undefined) {
      throw new ArgumentError('remoteSchema, remoteTimeoutMs and remoteBlocks need remote')
    }
    return null
  }
  if (typeof remote !== 'string' || !/^postgres(ql)?:\/\//.test(remote)) {
    throw new ArgumentError(`remote must be a PostgreSQL connection string (postgres://...), got ${show(remote)}`)
  }
  if (remoteSchema !== undefined && (typeof remoteSchema !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(remoteSchema))) {
    throw new ArgumentError(`remoteSchema must be a lower-case SQL identifier, got ${show(remoteSchema)}`)
  }
  if (remoteTimeoutMs !== undefined && (!Number.isSafeInteger(remoteTimeoutMs) || remoteTimeoutMs <= 0)) {
    throw new ArgumentError(`remoteTimeoutMs must be a positive integer, got ${show(remoteTimeoutMs)}`)
  }
  if (remoteBlocks !== undefined && remoteBlocks !== 'eager' && remoteBlocks !== 'lazy') {
    throw new ArgumentError(`remoteBlocks must be 'eager' or 'lazy', got ${show(remoteBlocks)}`)
  }
  return { url: remote, schema: remoteSchema, timeoutMs: remoteTimeoutMs, blocks: remoteBlocks ?? 'eager' }
}

/**
 * Opens the store in directory `path`, creating it (and the directory, not its parents)
 * unless `create: false` or `readOnly: true`.
 */
export function open(path: string, options?: OpenOptions): Store {
  return new Store(path, options)
}
