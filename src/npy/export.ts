/**
 * array.exportNpy(): writes an array, or a selection of it, as a C-order little-endian
 * .npy in bounded memory; or (follow) keeps a .npy growing with the array's appends.
 */
import * as fs from 'node:fs'
import { type BigArray, arrayState, arrayStorePath } from '../array'
import { type DType, itemBytes, wrap } from '../dtype'
import { ArgumentError, NotFoundError, ShapeError, TimeoutError } from '../errors'
import { type Selection, resolveSelection } from '../selection'
import { sizeOf } from '../shape'
import { open } from '../store'
import { pieces } from './chunks'
import { encodeHeader } from './header'
import { NpyWriter } from './writer'

export interface ExportNpyOptions {
  /** The part to export (see Selections); default everything. Not with `follow`. */
  selection?: Selection | null
  /** Bytes copied at a time (the copy buffer). Default 4 MiB. */
  chunkBytes?: number
  /** Called after each chunk with the data bytes done and the total. */
  onProgress?: (doneBytes: number, totalBytes: number) => void
  /**
   * Check each stored block against its checksum as it is copied (CorruptionError on a
   * mismatch). Default true: an export reads every block once, and a damaged block must
   * not end up in a file that outlives the store.
   */
  verifyChecksums?: boolean
}

export interface FollowNpyOptions extends Omit<ExportNpyOptions, 'selection'> {
  /** Keep the file growing with rows appended to the array, until `signal` aborts. */
  follow: true
  /** Stops following when it aborts (an AbortSignal); the promise then resolves. */
  signal?: { readonly aborted: boolean }
  /** Called after each append to the file with its new shape. */
  onAppend?: (shape: number[]) => void
}

export interface ExportNpyResult {
  path: string
  dtype: DType
  shape: number[]
  /** Bytes of element data written. */
  bytes: number
}

const DEFAULT_CHUNK_BYTES = 4 * 2 ** 20
/** How much an export copies between two releases of the map pages it read. */
const RELEASE_EVERY_BYTES = 32 * 2 ** 20

function chunkElements(options: { chunkBytes?: number }, ib: number): number {
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0) throw new ArgumentError('chunkBytes must be a positive integer')
  return Math.max(1, Math.floor(chunkBytes / ib))
}

function verifyOption(options: { verifyChecksums?: boolean }): boolean {
  const v = options.verifyChecksums
  if (v !== undefined && typeof v !== 'boolean') throw new ArgumentError('verifyChecksums must be a boolean')
  return v ?? true
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done, position + done)
}

/** Writes the selection as a .npy (through a temporary file renamed into place). */
export function exportNpy(array: BigArray, path: string, options: ExportNpyOptions = {}): ExportNpyResult {
  if (typeof path !== 'string' || path.length === 0) throw new ArgumentError('path must be a non-empty string')
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw new ArgumentError('onProgress must be a function')
  const state = arrayState(array)
  const dtype = state.meta.dtype
  const ib = itemBytes(dtype)
  const maxElements = chunkElements(options, ib)
  const sel = resolveSelection(options.selection, state.meta.shape)
  const verify = verifyOption(options)
  const total = sizeOf(sel.shape) * ib
  const header = encodeHeader(dtype, sel.shape)
  const temp = `${path}.${process.pid}.tmp`
  const fd = fs.openSync(temp, 'w')
  try {
    writeAll(fd, header, 0)
    const buffer = new Uint8Array(new ArrayBuffer(Math.min(maxElements, Math.max(1, sizeOf(sel.shape))) * ib))
    let done = 0
    let sinceRelease = 0
    for (const p of pieces(sel.offset, sel.shape, sel.steps, maxElements)) {
      const out = wrap(dtype, buffer.buffer, 0, p.elements)
      state.native.gather(p.offset * ib, p.counts, p.steps.map((x) => x * ib), ib, out, verify)
      writeAll(fd, buffer.subarray(0, p.elements * ib), header.length + done)
      done += p.elements * ib
      sinceRelease += p.elements * ib
      // the copy reads through the store's map: let go of the pages it touched as it goes
      if (sinceRelease >= RELEASE_EVERY_BYTES) {
        state.native.releaseMappedPages()
        sinceRelease = 0
      }
      options.onProgress?.(done, total)
    }
    if (done >= RELEASE_EVERY_BYTES) state.native.releaseMappedPages()
    fs.closeSync(fd)
    fs.renameSync(temp, path)
  } catch (e) {
    try { fs.closeSync(fd) } catch { /* closed already */ }
    fs.rmSync(temp, { force: true })
    throw e
  }
  return { path, dtype, shape: sel.shape, bytes: total }
}

/** How often a follower looks at its signal while no commit arrives. */
const FOLLOW_POLL_MS = 200

/**
 * Exports the array's rows to an appendable .npy, then appends the rows later commits
 * (of any process) add, until `signal` aborts. It reads through a handle of its own on
 * the store, so the caller's transaction is untouched. Rejects if the array is deleted
 * or loses rows.
 */
export async function followNpy(array: BigArray, path: string, options: FollowNpyOptions): Promise<ExportNpyResult> {
  if (typeof path !== 'string' || path.length === 0) throw new ArgumentError('path must be a non-empty string')
  if ('selection' in options && (options as ExportNpyOptions).selection != null) throw new ArgumentError('follow exports whole rows: selection is not allowed with follow')
  const signal = options.signal
  if (signal !== undefined && (signal === null || typeof signal.aborted !== 'boolean')) throw new ArgumentError('signal must be an AbortSignal')
  const name = array.name
  const dtype = array.dtype
  const ib = itemBytes(dtype)
  const maxElements = chunkElements(options, ib)
  const verify = verifyOption(options)
  const store = open(arrayStorePath(array))
  try {
    const source = () => {
      if (!store.has(name)) throw new NotFoundError(`array '${name}' was deleted while it was followed`)
      return store.array(name)
    }
    const first = source()
    const writer = NpyWriter.create(path, { dtype, shape: [0, ...first.shape.slice(1)] })
    try {
      const copyRows = (a: BigArray, from: number, to: number) => {
        const state = arrayState(a)
        const rowShape = state.meta.shape.slice(1)
        const rowElements = sizeOf(rowShape)
        // whole rows per append, so that the file is valid after each one
        const perAppend = Math.max(1, Math.floor(maxElements / Math.max(1, rowElements)))
        for (let r = from; r < to; r += perAppend) {
          const n = Math.min(perAppend, to - r)
          const out = wrap(dtype, new ArrayBuffer(n * rowElements * ib), 0, n * rowElements)
          const sel = resolveSelection([{ kind: 'slice', start: r, stop: r + n, step: 1 }], state.meta.shape)
          state.native.gather(sel.offset * ib, sel.shape, sel.steps.map((x) => x * ib), ib, out, verify)
          writer.appendRows(new Uint8Array(out.buffer, 0, out.byteLength), n)
          options.onProgress?.(writer.rows * rowElements * ib, to * rowElements * ib)
        }
        if (to > from) options.onAppend?.(writer.shape)
      }
      copyRows(first, 0, first.rows)
      while (!signal?.aborted) {
        const woke = await store.waitForCommit({ timeoutMs: FOLLOW_POLL_MS, keepAlive: true }).then(
          () => true,
          (e: unknown) => {
            if (e instanceof TimeoutError) return false
            throw e
          },
        )
        if (signal?.aborted) break
        if (!woke) continue
        store.refresh()
        const a = source()
        if (a.rows < writer.rows) throw new ShapeError(`array '${name}' shrank from ${writer.rows} to ${a.rows} rows while it was followed`)
        copyRows(a, writer.rows, a.rows)
      }
      return { path, dtype, shape: writer.shape, bytes: sizeOf(writer.shape) * ib }
    } finally {
      writer.close()
    }
  } finally {
    store.close()
  }
}
