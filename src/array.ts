/**
 * BigArray: one persistent N-dimensional array of a Store, read and written through
 * selections inside the store's current transaction.
 */
import { show } from './show'
import { checkAttrs, copyAttrs } from './attrs'
import { type AnyTypedArray, type DType, type ScalarFor, type TypedArrayFor, allocate, checkData, itemBytes, lengthOf, wrap } from './dtype'
import type { NativeSegment, NativeSession } from './binding'
import {
  AlreadyExistsError, ArgumentError, BoundsError, ClosedError, NotFoundError, ReadOnlyError, ShapeError, TooLargeError,
} from './errors'
import { type Selection, cStrides, resolveSelection, slice, sliceIndices } from './selection'
import { checkByteLength, checkShape, sizeOf } from './shape'
import type { ArrayState } from './transaction'
import type { WaitOptions } from './stream-types'
import type { CommitFeed } from './wait'
import { type ExportNpyOptions, type ExportNpyResult, type FollowNpyOptions, exportNpy, followNpy } from './npy/export'

/** A dense copy of a selection: zarrita.js's chunk shape. */
export interface Chunk<D extends DType = DType> {
  data: TypedArrayFor[D]
  shape: number[]
  /** Element strides of `data` per axis (C order). */
  stride: number[]
}

/**
 * Largest view: Node 20's N-API refuses external buffers above 4 GiB (and a TypedArray
 * holds at most 2^32 elements). Larger spans are reached through views().
 */
export const MAX_VIEW_BYTES = 2 ** 32

/** The destination of a copy of `n` elements: `out` (checked) when given, else a new array. */
function output<D extends DType>(dtype: D, n: number, out: TypedArrayFor[D] | undefined): TypedArrayFor[D] {
  if (out === undefined) return allocate(dtype, n)
  const data = checkData(dtype, out, 'out')
  const length = lengthOf(data)
  if (length < n) throw new ShapeError(`out holds ${length} elements, the copy needs ${n}`)
  return data
}

/** Options of read() and take(). */
/** How one handle's views of one array use mappings (BigArray.viewStats()). */
export interface ViewStats {
  /** Faults served: each maps a window of blocks at a view's first touch. */
  faults: number
  /** Blocks mapped so far: from the data file's page cache, or copied (not page-aligned, or clipped by a shrink). */
  blocksMapped: number
  fileBlocks: number
  copiedBlocks: number
  /** Blocks mapped now, and blocks holding this transaction's writes (mapped or spilled). */
  mappedBlocks: number
  dirtyBlocks: number
  /** Clean blocks unmapped to stay within the handle's mapping budget (OpenOptions.mappings). */
  evictions: number
  /** Written blocks unmapped so far to stay within it (their bytes kept until commit or
   * abort), and blocks whose bytes are kept so now. */
  spills: number
  spilledBlocks: number
  /** Write scans (finding written pages without faults) and unmap system calls so far. */
  scans: number
  unmapCalls: number
  /**
   * Scan windows loaded by views(): 4 MiB huge-page copies of blocks that a sequential
   * scan reads (see docs/vmem.md), and of them those opened by a write through a view.
   */
  scanWindows: number
  scanWindowsOpened: number
  /**
   * Scan windows whose huge page was reused for a later window (instead of freed), and
   * scan windows loaded ahead of the reader (uffd fault mode).
   */
  scanWindowsRecycled: number
  scanWindowsPrefetched: number
  /** Address space reserved for the array's views. */
  reservedBytes: number
}

/** Options of view(). */
export interface ViewOptions {
  /** Map every block of the view now (for system calls on it in SIGSEGV mode). Default false. */
  populate?: boolean
}

export interface ReadOptions {
  /**
   * Check each stored block the copy reads against its checksum first; a mismatch throws
   * CorruptionError naming the array and block. Default: the store's `verifyChecksums`.
   */
  verifyChecksums?: boolean
}

function verifyOption(options: ReadOptions | undefined, fallback: boolean): boolean {
  if (options === undefined) return fallback
  if (options === null || typeof options !== 'object') throw new ArgumentError('options must be an object')
  const v = options.verifyChecksums
  if (v !== undefined && typeof v !== 'boolean') throw new ArgumentError('verifyChecksums must be a boolean')
  return v ?? fallback
}

/** A named segment: rows [start, stop) of axis 0. */
export interface Segment {
  name: string
  start: number
  stop: number
}

/** What an array needs of its store besides its own state. @internal */
export interface ArrayContext {
  /** Throws when the store cannot take changes now (a remote commit in doubt, or running). */
  beforeChange(): void
  isClosed(): boolean
  session(): NativeSession
  feed(): CommitFeed
  /** The directory of the store. */
  readonly storePath: string
  readonly readOnly: boolean
}

const MAX_SEGMENT_NAME_BYTES = 255
const SEGMENT_BATCH = 4096
// A lone UTF-16 surrogate has no UTF-8 form: two such names would alias one segment.
const LONE_SURROGATE = /\p{Surrogate}/u

function checkSegmentName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > MAX_SEGMENT_NAME_BYTES || LONE_SURROGATE.test(name)) {
    throw new ArgumentError(`a segment name is a non-empty, well-formed string of at most ${MAX_SEGMENT_NAME_BYTES} UTF-8 bytes`)
  }
  return name
}

let liveStateOf: (a: BigArray) => ArrayState
let storePathOf: (a: BigArray) => string

/** @internal The live state of an array (for the .npy streaming code); throws like any method. */
export function arrayState(a: BigArray): ArrayState {
  return liveStateOf(a)
}

/** @internal The directory of the store the array belongs to. */
export function arrayStorePath(a: BigArray): string {
  return storePathOf(a)
}

export class BigArray<D extends DType = DType> {
  readonly #state: ArrayState
  readonly #context: ArrayContext
  readonly #verifyChecksums: boolean
  readonly #readOnly: boolean
  readonly #storePath: string

  static {
    liveStateOf = (a) => a.#live()
    storePathOf = (a) => a.#storePath
  }

  /** @internal Use store.create() or store.array(). */
  constructor(state: ArrayState, context: ArrayContext, verifyChecksums = false) {
    this.#state = state
    this.#context = context
    this.#verifyChecksums = verifyChecksums
    this.#storePath = context.storePath
    this.#readOnly = context.readOnly
  }

  #live(): ArrayState {
    if (this.#context.isClosed()) throw new ClosedError('the store is closed')
    if (this.#state.status !== 'live') throw new NotFoundError(`array '${this.#state.name}' was deleted`)
    return this.#state
  }

  /** The state, for a call that changes the array: ReadOnlyError on a read-only store. */
  #writable(): ArrayState {
    const s = this.#live()
    if (this.#readOnly) throw new ReadOnlyError(`array '${s.name}' belongs to a store opened with readOnly: true`)
    this.#context.beforeChange()
    return s
  }

  get name(): string { return this.#state.name }
  get dtype(): D { return this.#live().meta.dtype as D }
  /** A copy of the shape; axis 0 is the one append() grows. */
  get shape(): number[] { return [...this.#live().meta.shape] }
  get ndim(): number { return this.#live().meta.shape.length }
  /** Rows: the length of axis 0 (a view's `length` counts elements instead). */
  get rows(): number { return this.#live().meta.shape[0] }
  /** Number of elements. */
  get size(): number { return sizeOf(this.#live().meta.shape) }
  /** Bytes of data (size × bytes per element). */
  get nbytes(): number { return this.#live().byteLength }
  /** Bytes per storage block. */
  get blockBytes(): number { return this.#live().meta.blockBytes }
  /** User attributes (a copy; change them with setAttrs). */
  get attrs(): Record<string, unknown> { return copyAttrs(this.#live().meta.attrs) }

  /**
   * Replaces the user attributes in this transaction. Throws ArgumentError, changing
   * nothing, unless msgpack can encode them (see checkAttrs).
   */
  setAttrs(attrs: Record<string, unknown>): void {
    const s = this.#writable()
    s.meta.attrs = checkAttrs(attrs)
    s.recordDirty = true
    s.appendOnly = false
    s.attrsChanged = true
  }

  /**
   * A TypedArray over rows [start, stop) of axis 0 (Python slice bounds: negative counts
   * from the end, out of range is clipped; default all rows), in O(1): pages are loaded
   * from the store when touched, and writes are tracked and belong to this transaction
   * (commit() saves them, abort() drops them). The view keeps its length if the array
   * is resized, and becomes empty (byteLength 0) when the store is closed.
   * Throws TooLargeError above MAX_VIEW_BYTES: use views() then.
   *
   * `options.populate` maps every block of the view now instead of at first touch, so that
   * system calls (fs.writeSync(fd, view), read(2) into it) work on it in a fault mode that
   * cannot serve them (faultMode().systemCalls false: SIGSEGV mode, as for most non-root
   * users). It costs one mapping per block now; blocks may be unmapped again later when the
   * handle's views need more mappings than its budget (OpenOptions.mappings).
   */
  view(start: number | null = null, stop: number | null = null, options: ViewOptions = {}): TypedArrayFor[D] {
    const s = this.#live()
    if (options === null || typeof options !== 'object') throw new ArgumentError('options must be an object')
    if (options.populate !== undefined && typeof options.populate !== 'boolean') throw new ArgumentError('populate must be a boolean')
    const [first, , , count] = sliceIndices(slice(start, stop), s.meta.shape[0])
    return this.#rowsView(s, first, count, options.populate ?? false)
  }

  /** How this handle's views of the array use mappings now (counters since it was opened). */
  viewStats(): ViewStats {
    return this.#live().native.memoryStats()
  }

  /**
   * Views covering the whole array in order, each of `rowsPerView` rows (the last may be
   * shorter; default: as many rows as fit in one view). For arrays of any size.
   */
  views(rowsPerView?: number): Generator<TypedArrayFor[D], void, undefined> {
    // Checked here, not in the generator (whose body only runs at the first next()):
    // views(0), or views() of a closed store or deleted array, throws at the call.
    const s = this.#live()
    const rowBytes = this.#rowBytes(s)
    const perView = rowsPerView ?? Math.max(1, Math.floor(MAX_VIEW_BYTES / Math.max(1, rowBytes)))
    if (!Number.isSafeInteger(perView) || perView < 1) throw new ArgumentError('rowsPerView must be a positive integer')
    return this.#viewsFrom(s.meta.shape[0], perView)
  }

  *#viewsFrom(rows: number, perView: number): Generator<TypedArrayFor[D], void, undefined> {
    for (let start = 0; start < rows; start += perView) {
      yield this.#rowsView(this.#live(), start, Math.min(perView, rows - start), false, true)
    }
  }

  #rowBytes(s: ArrayState): number {
    return sizeOf(s.meta.shape.slice(1)) * itemBytes(s.meta.dtype)
  }

  #rowsView(s: ArrayState, first: number, count: number, populate = false, sequential = false): TypedArrayFor[D] {
    const dtype = s.meta.dtype as D
    const rowBytes = this.#rowBytes(s)
    const byteLength = count * rowBytes
    if (byteLength === 0) return allocate(dtype, 0)
    if (byteLength > MAX_VIEW_BYTES) {
      throw new TooLargeError(`a view of ${byteLength} bytes is larger than ${MAX_VIEW_BYTES}: use views(rowsPerView)`)
    }
    const buffer = s.native.view(first * rowBytes, byteLength, populate, sequential)
    return wrap(dtype, buffer, 0, byteLength / itemBytes(dtype))
  }

  /**
   * Copies many windows of `rows` rows each, starting at rows `starts[i]` of axis 0, back
   * to back into one dense output (`out` when given, else a new TypedArray), in one native
   * call that allocates nothing per window: the random-window workload. Returns a chunk of
   * shape [starts.length, rows, ...other axes]. Throws BoundsError if a window reaches past
   * the end, CorruptionError if a block fails its checksum (with `verifyChecksums`).
   */
  take(starts: ArrayLike<number>, rows: number, out?: TypedArrayFor[D], options?: ReadOptions): Chunk<D> {
    const s = this.#live()
    const verify = verifyOption(options, this.#verifyChecksums)
    if (!Number.isSafeInteger(rows) || rows < 0) throw new ArgumentError('rows must be a non-negative integer')
    const dtype = s.meta.dtype as D
    const n = starts === null || typeof starts !== 'object' ? undefined : typedArrayOrArrayLength(starts)
    if (n === undefined) throw new ArgumentError('starts must be an Array, Float64Array, Int32Array or Uint32Array of row indexes')
    const shape = [n, rows, ...s.meta.shape.slice(1)]
    const data = output(dtype, sizeOf(shape), out)
    s.native.take(starts, rows, this.#rowBytes(s), data, verify)
    return { data, shape, stride: cStrides(shape) }
  }

  /**
   * Copies the selection (default: everything) into a dense C-order TypedArray: `out`
   * when given (at least as long as the selection), else a new one. Throws
   * CorruptionError if a block fails its checksum (with `verifyChecksums`).
   */
  read(selection?: Selection | null, out?: TypedArrayFor[D], options?: ReadOptions): Chunk<D> {
    const s = this.#live()
    const verify = verifyOption(options, this.#verifyChecksums)
    const sel = resolveSelection(selection, s.meta.shape)
    const dtype = s.meta.dtype as D
    const data = output(dtype, sizeOf(sel.shape), out)
    const ib = itemBytes(dtype)
    s.native.gather(sel.offset * ib, sel.shape, sel.steps.map((x) => x * ib), ib, data, verify)
    return { data, shape: sel.shape, stride: cStrides(sel.shape) }
  }

  /**
   * Writes `data` (a TypedArray of the dtype holding exactly the selection's elements in
   * C order, or one scalar to fill it with) into the selection, in this transaction.
   */
  write(selection: Selection | null, data: TypedArrayFor[D] | ScalarFor<D>): void {
    const s = this.#writable()
    const sel = resolveSelection(selection, s.meta.shape)
    const n = sizeOf(sel.shape)
    const dtype = s.meta.dtype as D
    const ib = itemBytes(dtype)
    let src: AnyTypedArray
    if (typeof data === 'number' || typeof data === 'bigint') {
      src = allocate(dtype, n)
      try {
        ;(src as { fill(v: unknown): unknown }).fill(data)
      } catch {
        throw new ArgumentError(`cannot fill a ${dtype} array with ${show(data)}`)
      }
    } else {
      src = checkData(dtype, data)
      const length = lengthOf(src)
      if (length !== n) throw new ShapeError(`data holds ${length} elements, the selection ${n}`)
    }
    s.native.scatter(sel.offset * ib, sel.shape, sel.steps.map((x) => x * ib), ib, src)
  }

  /**
   * Appends rows along axis 0. `data` holds whole rows (its length a multiple of the
   * product of the other axes). Costs O(rows appended).
   */
  append(data: TypedArrayFor[D]): void {
    const s = this.#writable()
    const src = checkData(s.meta.dtype, data)
    const length = lengthOf(src)
    const rowSize = sizeOf(s.meta.shape.slice(1))
    if (rowSize === 0 ? length !== 0 : length % rowSize !== 0) {
      throw new ShapeError(`data holds ${length} elements, not a whole number of rows of ${rowSize}`)
    }
    if (length === 0) return
    const start = s.meta.shape[0]
    const next = [start + length / rowSize, ...s.meta.shape.slice(1)]
    const ib = itemBytes(s.meta.dtype)
    checkByteLength(next, ib)
    // All-or-nothing: everything that can be checked was; if the copy still fails (the
    // store could not be read, memory ran out), the length and record go back as they were.
    const before = { shape: s.meta.shape, recordDirty: s.recordDirty, appendOnly: s.appendOnly }
    // Only appends so far: a concurrent commit to this array is rebased onto at commit.
    const appendOnly = !s.recordDirty || s.appendOnly
    this.#setLength(s, next[0])
    try {
      s.native.scatter(start * rowSize * ib, [length], [ib], ib, src)
    } catch (e) {
      s.native.resize(sizeOf(before.shape) * ib)
      Object.assign(s.meta, { shape: before.shape })
      s.recordDirty = before.recordDirty
      s.appendOnly = before.appendOnly
      throw e
    }
    s.appendOnly = appendOnly
  }

  /**
   * Writes the array, or `selection` of it, to a .npy file at `path` (C order,
   * little-endian, format 1.0), copying `chunkBytes` at a time: memory stays bounded
   * whatever the array's size. Reads this transaction's snapshot and changes. The file
   * appears complete or not at all (written under a temporary name, then renamed).
   *
   * With `follow: true`, returns a promise instead: the file is written with room in its
   * header for axis 0 to grow, then every commit (of any process) that appends rows to
   * the array appends them to the file, which is a valid .npy after each append; the
   * promise resolves when `signal` aborts.
   */
  exportNpy(path: string, options?: ExportNpyOptions): ExportNpyResult
  exportNpy(path: string, options: FollowNpyOptions): Promise<ExportNpyResult>
  exportNpy(path: string, options: ExportNpyOptions | FollowNpyOptions = {}): ExportNpyResult | Promise<ExportNpyResult> {
    if (options === null || typeof options !== 'object') throw new ArgumentError('options must be an object')
    if ('follow' in options && options.follow) return followNpy(this, path, options)
    return exportNpy(this, path, options)
  }

  /**
   * Changes the length of axis 0 (the other axes are fixed). O(1) in data: shrinking
   * hides the rows past the new end, growing adds rows that read as zeros.
   */
  resize(shape: readonly number[]): void {
    const s = this.#writable()
    const next = checkShape(shape)
    const cur = s.meta.shape
    if (next.length !== cur.length || next.some((n, i) => i > 0 && n !== cur[i])) {
      throw new ShapeError(`only axis 0 can be resized: [${cur.join(', ')}] -> [${next.join(', ')}]`)
    }
    if (next[0] === cur[0]) return
    checkByteLength(next, itemBytes(s.meta.dtype))
    this.#setLength(s, next[0])
    s.resized = true
  }

  #setLength(s: ArrayState, rows: number): void {
    const next = [rows, ...s.meta.shape.slice(1)]
    s.native.resize(sizeOf(next) * itemBytes(s.meta.dtype))
    s.meta.shape = next
    s.recordDirty = true
    s.appendOnly = false  // an absolute length: not rebased (append() sets it back)
  }

  /**
   * Resolves with the array's length once the array, as committed by any handle in any
   * process, has at least `rows` rows (at once if it already has). It does not move this
   * handle's snapshot: refresh() to read the rows. Rejects with TimeoutError after
   * `timeoutMs`, AbortError when `signal` aborts, NotFoundError if the array is deleted,
   * ClosedError if the store is closed. A pending wait does not keep the process alive
   * unless `keepAlive: true`.
   */
  waitForLength(rows: number, options?: WaitOptions): Promise<number> {
    let s: ArrayState
    try {
      s = this.#live()
      if (!Number.isSafeInteger(rows) || rows < 0) throw new ArgumentError('rows must be a non-negative integer')
    } catch (e) {
      return Promise.reject(e)
    }
    const session = this.#context.session()
    const name = s.name
    const id = s.native.id
    return this.#context.feed().wait(() => {
      const record = session.latestRecord(name)
      if (!record || (id !== 0 && record.id !== id)) throw new NotFoundError(`array '${name}' was deleted`)
      return record.rows >= rows ? record.rows : undefined
    }, options, `waitForLength(${rows}) of '${name}'`)
  }

  /**
   * Appends rows (as append() does) and names them: the segment `name` is rows
   * [start, stop) where they land. Concurrent segment appends of other handles and
   * processes do not conflict: at commit the rows are laid after the newest end and the
   * range moves with them. Names are unique per array: AlreadyExistsError at the call if
   * this transaction sees the name, or at commit if another commit took it first (the
   * commit then changes nothing; abort() and retry with another name).
   */
  appendSegment(name: string, data: TypedArrayFor[D]): void {
    const s = this.#writable()
    checkSegmentName(name)
    if (this.#findSegment(s, name)) throw new AlreadyExistsError(`segment '${name}' of array '${s.name}' already exists`)
    const start = s.meta.shape[0]
    this.append(data)
    s.segmentPuts.set(name, { start, rows: s.meta.shape[0] - start })
  }

  /**
   * The rows of segment `name` as a view (see view(): O(1), loaded when touched; writes
   * through it belong to this transaction; copy with .slice() to keep the values).
   * Throws NotFoundError if there is no such segment, BoundsError if the array was
   * shrunk below its end.
   */
  segment(name: string): TypedArrayFor[D] {
    const s = this.#live()
    const found = this.#findSegment(s, checkSegmentName(name))
    if (!found) throw new NotFoundError(`no segment '${name}' in array '${s.name}'`)
    if (found.stop > s.meta.shape[0]) throw new BoundsError(`segment '${name}' ends at row ${found.stop}, past the array's ${s.meta.shape[0]} rows`)
    return this.#rowsView(s, found.start, found.stop - found.start)
  }

  /** The range of segment `name`, or null if there is none. O(log n) in the segment count. */
  segmentRange(name: string): Segment | null {
    const s = this.#live()
    const found = this.#findSegment(s, checkSegmentName(name))
    return found ? { ...found } : null
  }

  /**
   * The segments in row order (committed ones first, then those added in this
   * transaction), read from the store in batches as the iteration goes.
   */
  *segments(): Generator<Segment, void, undefined> {
    const s = this.#live()
    const session = this.#context.session()
    const id = s.native.id
    let after: NativeSegment | null = null
    while (id !== 0) {
      const batch = session.listSegments(id, after, SEGMENT_BATCH)
      for (const segment of batch) {
        if (!s.segmentDeletes.has(segment.name)) yield { ...segment }
      }
      if (batch.length < SEGMENT_BATCH) break
      after = batch[batch.length - 1]
    }
    for (const [name, r] of [...s.segmentPuts]) yield { name, start: r.start, stop: r.start + r.rows }
  }

  /**
   * Deletes the segment's name in this transaction (its rows stay). Throws NotFoundError.
   * At commit, ConflictError if another commit deleted or replaced it meanwhile.
   */
  deleteSegment(name: string): void {
    const s = this.#writable()
    const found = this.#findSegment(s, checkSegmentName(name))
    if (!found) throw new NotFoundError(`no segment '${name}' in array '${s.name}'`)
    if (s.segmentPuts.delete(name)) return
    s.segmentDeletes.set(name, { start: found.start, stop: found.stop })
  }

  #findSegment(s: ArrayState, name: string): Segment | null {
    const pending = s.segmentPuts.get(name)
    if (pending) return { name, start: pending.start, stop: pending.start + pending.rows }
    if (s.segmentDeletes.has(name) || s.native.id === 0) return null
    return this.#context.session().getSegment(s.native.id, name)
  }
}

/** The element count of a TypedArray (from its slot) or an Array; undefined for anything else. */
function typedArrayOrArrayLength(value: object): number | undefined {
  if (Array.isArray(value)) return value.length
  return ArrayBuffer.isView(value) && !(value instanceof DataView) ? lengthOf(value as AnyTypedArray) : undefined
}
