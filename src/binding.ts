/**
 * Loads the native addon and describes its interface. Nothing outside this file knows
 * the addon's shape; the rest of the library talks to these interfaces.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { errorClassesByCode } from './errors'

export interface NativeRecord {
  id: number
  serial: number
  /** Length of axis 0 (authoritative: the body's shape[0] may be stale after a rebase). */
  rows: number
  rowBytes: number
  body: Uint8Array
}

export interface NativeOutcome {
  serial: number
  /** For each record change of a commit, the id the array got (0 for removals). */
  assignedIds: number[]
  /** Ids of arrays whose records other handles changed since the previous snapshot. */
  recordsChanged: number[]
  /** True when the commit log no longer reaches back: assume every array changed. */
  unknown: boolean
  /** Set when a commit succeeded but the handle could not move to the new snapshot: why. */
  stale?: string
}

export interface NativeRecordChange {
  name: string
  expectedSerial: number
  remove: boolean
  body?: Uint8Array
  rows?: number
  rowBytes?: number
  /** The transaction only appended to this array: rebase instead of conflicting. */
  appendOnly?: boolean
  /** For the commit log: the attributes were replaced. */
  attrsChanged?: boolean
  /** For the commit log: the length was set by resize(). */
  resized?: boolean
  array?: NativeArray
}

/** Named segments one transaction adds to or deletes from one array. */
export interface NativeSegmentChange {
  array: NativeArray
  /** start: first row as the transaction sees the array (moved if the append is rebased). */
  puts: { name: string; start: number; rows: number }[]
  /** The range the transaction saw: the commit fails with a conflict if it changed. */
  deletes: { name: string; start: number; stop: number }[]
}

export interface NativeSegment {
  name: string
  start: number
  stop: number
}

/** One array's part of a commit, as the log records it (keys.h). */
export interface NativeLogArray {
  id: number
  name: string
  /** Log flags: 1 record, 2 created, 4 deleted, 8 append only, 16 resized, 32 attrs, 64 segments. */
  flags: number
  rowsBefore: number
  rowsAfter: number
  rowBytes: number
  blockBytes: number
  /** Inclusive block ranges, flattened [first, last, ...]; last -1 means "to the end". */
  blocks: number[]
}

export interface NativeCommit {
  serial: number
  /** Wall-clock time of the commit, ms since the epoch. */
  time: number
  arrays: NativeLogArray[]
}

/**
 * A thread asleep on the store's commit doorbell; calls back on the JavaScript thread after
 * each commit of any process (and once a second, in case a committer died before ringing).
 */
export interface NativeFollower {
  start(): void
  stop(): void
  /** Whether it keeps the event loop alive. */
  ref(keepAlive: boolean): void
  close(): void
}

export interface NativeStats {
  commits: number
  conflicts: number
  blocksWritten: number
  bytesWritten: number
  valueBytesWritten: number
  blocksRead: number
  checksumSeconds: number
  checksumBytes: number
  /** The most mappings (VMAs) the handle's budget allows (its own, or the process's). */
  mappingsLimit: number
  /** Mappings the budget's mapped blocks cost now, all arrays of the budget. */
  mappings: number
  /** Blocks mapped now, all arrays of the budget. */
  mappedBlocks: number
  /** Clean blocks unmapped to stay within the budget. */
  evictedBlocks: number
  /** Written blocks unmapped to the spill file to stay within the budget. */
  spilledBlocks: number
}

export interface NativeDbFigures {
  entries: number
  /** Branch, leaf and overflow pages. */
  pages: number
}

export interface NativeEnvFigures {
  mapBytes: number
  pageBytes: number
  usedPages: number
  freePages: number
  fileBytes: number
  readers: number
  maxReaders: number
  meta: NativeDbFigures
  arrays: NativeDbFigures
  blocks: NativeDbFigures
  log: NativeDbFigures
}

export interface NativeMemoryStats {
  /** Faults served (one per window of blocks mapped). */
  faults: number
  /** Blocks mapped so far: from the data file, or copied (not page-aligned, or clipped). */
  blocksMapped: number
  fileBlocks: number
  copiedBlocks: number
  /** Blocks mapped now, and of them those holding uncommitted writes. */
  mappedBlocks: number
  dirtyBlocks: number
  /** Clean blocks unmapped by the mapping budget. */
  evictions: number
  /** Written blocks unmapped to the spill file so far, and blocks held there now. */
  spills: number
  spilledBlocks: number
  /** Write scans (PAGEMAP_SCAN or /proc/self/pagemap) and unmap system calls so far. */
  scans: number
  unmapCalls: number
  /** Scan windows (4 MiB huge-page copies) loaded for views() scans, and opened by a write. */
  scanWindows: number
  scanWindowsOpened: number
  scanWindowsRecycled: number
  scanWindowsPrefetched: number
  reservedBytes: number
}

export interface NativeFaultMode {
  mode: 'uffd' | 'sigsegv'
  userfaultfd: boolean
  /** System calls on pages of a view not mapped yet work (else they fail with EFAULT). */
  systemCalls: boolean
  /** How writes through views are found at commit. */
  writeScan: 'PAGEMAP_SCAN' | 'pagemap'
  pageBytes: number
  error?: string
}

export interface NativeArray {
  readonly id: number
  readonly byteLength: number
  readonly hasChanges: boolean
  /** verify: check each committed block's checksum before copying from it. */
  gather(base: number, counts: number[], strides: number[], itemBytes: number, out: ArrayBufferView, verify: boolean): void
  scatter(base: number, counts: number[], strides: number[], itemBytes: number, data: ArrayBufferView): void
  resize(byteLength: number): void
  adoptCommittedLength(byteLength: number): void
  /** sequential: a views() scan; loads the scan windows the range reaches as huge-page copies. */
  view(byteOffset: number, byteLength: number, populate?: boolean, sequential?: boolean): ArrayBuffer
  take(starts: ArrayLike<number>, rows: number, rowBytes: number, out: ArrayBufferView, verify: boolean): void
  /** The stubs (not fetched by the snapshot) among the committed blocks a gather/scatter of the selection reads. */
  stubsIn(base: number, counts: number[], strides: number[], itemBytes: number): NativeStub[]
  /** The same for a take() of these windows. */
  stubsInWindows(starts: ArrayLike<number>, rows: number, rowBytes: number): NativeStub[]
  /** The same for the ranges the array's live views cover. */
  stubsInViews(): NativeStub[]
  memoryStats(): NativeMemoryStats
  /** Drops this process's page-table entries of the store's map (data stays in the page cache). */
  releaseMappedPages(): void
  /** The array is gone for this handle: detaches its views and unmaps it. Idempotent. */
  release(): void
  /** This transaction's changes as values (the plan of a commit to a remote store). */
  plan(): NativePlanned
  /**
   * This transaction's changes were committed by a remote store (from plan()): they leave
   * the array, a created array takes id `assignedId` (0: keep its id); session.refresh()
   * then moves to a local snapshot that holds them.
   */
  afterCommitElsewhere(assignedId: number): void
}

/** An array's uncommitted changes as values: what a remote commit sends. */
export interface NativePlanned {
  /** Dirty blocks: their bytes up to the array's end, trailing zeros trimmed. */
  blocks: { index: number; data: Uint8Array }[]
  /** The first block a shrink cuts; -1 for none. */
  shrinkFromBlock: number
  /** The transaction only appended: `appended` holds the bytes (and `blocks` is empty). */
  appendOnly: boolean
  appended: Uint8Array | null
}

export interface NativeCheckReport {
  problems: { array: string; block: number | null; kind: string; message: string }[]
  arrays: number
  blocks: number
  bytes: number
  /** Of the blocks, stubs whose bytes are on a remote server. */
  onServer: number
}

/**
 * Blocking waits on one store's commits; made by session.waiter(), it keeps working after
 * the session is closed. A commit "after" a serial is one whose serial is greater.
 * timeoutMs < 0 waits forever; it returns false at once after addon.interruptWaits().
 * A wait blocks the caller's thread, which nothing else can interrupt: callers wait in
 * slices (see src/waiting.ts). Waits that do not block use session.follower() (src/wait.ts).
 */
export interface NativeWaiter {
  waitSync(afterSerial: number, timeoutMs: number): boolean
}

export interface NativeSession {
  readonly serial: number
  getRecord(name: string): NativeRecord | null
  listRecords(): Uint8Array[]
  getMeta(key: string): Uint8Array | null
  track(id: number, blockBytes: number, byteLength: number, name: string): NativeArray
  commit(records: NativeRecordChange[], meta: { key: string; value: Uint8Array }[], segments: NativeSegmentChange[], sync: boolean): NativeOutcome
  refresh(): NativeOutcome
  flush(): void
  /** The newest commit's serial (a fresh read, not this handle's snapshot). */
  latestSerial(): number
  /** The record of `name` in the newest commit (not this handle's snapshot). */
  latestRecord(name: string): { id: number; serial: number; rows: number; rowBytes: number } | null
  /** Commits after `after` in the newest snapshot, at most `limit`; null when pruned. */
  readCommits(after: number, limit: number): NativeCommit[] | null
  getSegment(arrayId: number, name: string): NativeSegment | null
  listSegments(arrayId: number, after: { start: number; name: string } | null, limit: number): NativeSegment[]
  follower(onCommit: () => void): NativeFollower
  /** Blocking waits on this store's commits, usable after close(). */
  waiter(): NativeWaiter
  stats(): NativeStats
  /** Walks the session's snapshot; blockBytes: each record's block size as its body says. */
  check(blockBytes: Record<string, number>): NativeCheckReport
  envFigures(): NativeEnvFigures
  /** Writes a remote store's commits into this (cache) store; returns the local serial after. */
  applyRemote(batch: NativeRemoteBatch): number
  /** Makes the cache's unflushed commits durable; false if there were none. */
  flushRemoteCache(): boolean
  /** The stubs among blocks `indexes` of array `arrayId` that this snapshot has not fetched. */
  blocksOnServer(arrayId: number, indexes: readonly number[]): NativeStub[]
  /** Gives the snapshot fetched versions of its stubs; returns how many it took. */
  addFetched(arrayId: number, blocks: readonly { index: number; serial: number; data: Uint8Array }[]): number
  /**
   * Faults of this session's views on stubs post the versions they wait for to fetch
   * channel `id` (userfaultfd mode; the link's thread answers: deliverFetched/failFetched).
   */
  attachFetchChannel(id: number): void
  /** Which of the blocks this snapshot holds in full (neither missing nor a stub). */
  heldInFull(blocks: readonly { arrayId: number; index: number }[]): boolean[]
  /** Writes fetched versions over the store's stubs of the same versions; returns how many. */
  fillStubs(blocks: readonly { arrayId: number; index: number; serial: number; data: Uint8Array }[]): number
  close(): void
}

/** A block version whose bytes are on the remote server (a stub of the cache). */
export interface NativeStub {
  index: number
  serial: number
  /** Its bytes on the server (trailing zeros trimmed). */
  length: number
}

/** A remote store's state at `head`, as catch-up writes it into a local cache store. */
export interface NativeRemoteBatch {
  head: number
  commits: {
    serial: number
    /** The server's commit time (ms since the Unix epoch), for the local log. */
    timeMs: number
    /** Per array what the local log records: blocks' last -1 means "to the end". */
    changes: {
      id: number; record: boolean; blocks: [number, number][]
      name: string; flags: number; rowsBefore: number; rowsAfter: number; rowBytes: number; blockBytes: number
    }[]
  }[]
  records: { name: string; id: number; serial: number; rows: number; rowBytes: number; body: Uint8Array; deleted: boolean }[]
  /** data null with a `length`: a stub of the version, its `length` bytes on the server. */
  blocks: { arrayId: number; index: number; serial: number; blockBytes: number; data: Uint8Array | null; length?: number }[]
  /** Named segments added (their range) or deleted since the cache's serial; name: UTF-8 bytes. */
  segments?: { arrayId: number; name: Uint8Array; start: number; stop: number; deleted: boolean }[]
  /** Stored under the cache's meta key "remote". */
  remoteMeta: Uint8Array
  /** The batch is the whole remote state: every local record, block and segment goes first. */
  replaceAll?: boolean
  /**
   * Flush the cache to disk (default true); false: written without fsync under the
   * cache's unflushed mark, made durable by flushRemoteCache() (cache_flush.h).
   */
  sync?: boolean
}

export interface NativeOpenMode {
  /** Create the directory and the store if missing. */
  create: boolean
  /** Open without write access. */
  readOnly: boolean
  /** The format record a new store is created with. */
  format: Uint8Array
}

interface Addon {
  NativeSession: new (path: string, mapSize: number | undefined, maxReaders: number | undefined, mappings: number | undefined, mode: NativeOpenMode) => NativeSession
  faultMode(): NativeFaultMode
  /** The process's shared mapping budget (vmem::processBudget()). */
  processMappings(): { limit: number, mappings: number, mappedBlocks: number, evictedBlocks: number, spilledBlocks: number }
  /** Its new limit: 1 to 2147483647 (TXA_ARGUMENT otherwise). */
  setProcessMappings(limit: number): void
  setErrorClasses(classes: Record<string, unknown>): void
  /** Ends every blocking wait of this thread, future ones too (they return false). */
  interruptWaits(): void
  /** A channel for the block versions views' faults wait for; a fault waits at most `waitMs`. */
  openFetchChannel(waitMs: number): number
  /** No fault waits for the channel any more: those waiting read as unreadable blocks. */
  closeFetchChannel(id: number): void
  /** `onRequests` runs on this thread whenever faults posted requests (takeFetchRequests). */
  listenFetchChannel(id: number, onRequests: () => void): void
  unlistenFetchChannel(id: number): void
  /** The requests posted since the last call (each is in flight until delivered or failed). */
  takeFetchRequests(id: number): NativeFetchRequest[]
  /** The fetched versions, for the snapshot that names them; serves the waiting faults. */
  deliverFetched(id: number, blocks: readonly { arrayId: number; index: number; serial: number; data: Uint8Array }[]): number
  /** These versions could not be fetched: their faults read zeros, commit refuses, until the handle moves. */
  failFetched(id: number, blocks: readonly { arrayId: number; index: number; serial: number }[]): void
  /** What was fetched through the channel. */
  fetchChannelStats(id: number): { blocks: number; bytes: number }
}

/** A block version a view's fault waits for. */
export interface NativeFetchRequest {
  arrayId: number
  index: number
  serial: number
  /** Its bytes on the server. */
  length: number
}

/** Modification time of a file in ms, or -1 when it is not there. */
function modified(file: string): number {
  try {
    return fs.statSync(file).mtimeMs
  } catch {
    return -1
  }
}

/**
 * The addon: the prebuilt one for this platform (shipped in the package), else the one
 * compiled at install (build/Release). A compiled addon newer than the prebuilt one (a
 * developer's build after `npm run prebuild`) goes first, so that a stale prebuilt addon
 * never shadows the code being worked on.
 */
function load(): Addon {
  const root = path.join(__dirname, '..')
  const prebuilt = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'txarray.node')
  const compiled = path.join(root, 'build', 'Release', 'txarray.node')
  const files = modified(compiled) > modified(prebuilt) && modified(prebuilt) >= 0 ? [compiled, prebuilt] : [prebuilt, compiled]
  const failures: string[] = []
  for (const file of files) {
    if (!fs.existsSync(file)) {
      failures.push(`${file}: not there`)
      continue
    }
    try {
      const addon = require(file) as Addon
      addon.setErrorClasses(errorClassesByCode)
      return addon
    } catch (e) {
      failures.push(`${file}: ${(e as Error).message}`)
    }
  }
  throw new Error(`txarray's native addon did not load (run \`npm install\` to build it):\n  ${failures.join('\n  ')}`)
}

export const addon: Addon = load()

// A blocking wait called from an 'exit' listener (in a worker too) returns at once. The
// follower threads of asynchronous waits are joined by the addon's cleanup hooks.
process.once('exit', () => addon.interruptWaits())
