/**
 * store.importNpy(): streams a .npy file into a new array in bounded memory. The file is
 * read in chunks of `chunkBytes`; the transaction is committed at row boundaries once
 * `commitBytes` are pending, so neither the process nor the transaction ever holds the
 * whole file.
 */
import * as fs from 'node:fs'
import { arrayState } from '../array'
import type { BigArray } from '../array'
import { type DType, itemBytes } from '../dtype'
import { ArgumentError, NpyFormatError, TransactionError } from '../errors'
import type { Store } from '../store'
import type { NpyHeader } from './header'
import { readFully, readHeader } from './read-header'
import { fortranToC } from './transpose'

export interface ImportNpyOptions {
  /** Bytes read from the file at a time (the read buffer). Default 4 MiB. */
  chunkBytes?: number
  /** Commit once this many bytes are pending (at the next row boundary). Default 64 MiB. */
  commitBytes?: number
  /** blockBytes of the new array (see create()). */
  blockBytes?: number
  /** attrs of the new array. */
  attrs?: Record<string, unknown>
  /** Durability of the import's commits. Default: the store's. */
  sync?: boolean
  /** Called after each chunk with the data bytes done and the total. */
  onProgress?: (doneBytes: number, totalBytes: number) => void
}

export interface ImportNpyResult {
  name: string
  dtype: DType
  shape: number[]
  /** Bytes of element data imported. */
  bytes: number
  /** The file's format version, e.g. "1.0". */
  version: string
  bigEndian: boolean
  fortranOrder: boolean
  commits: number
}

/** Rows of a Fortran-order file are gathered from all over the file: one row must fit in memory. */
export const MAX_FORTRAN_ROW_BYTES = 64 * 2 ** 20

const DEFAULT_CHUNK_BYTES = 4 * 2 ** 20
const DEFAULT_COMMIT_BYTES = 64 * 2 ** 20

function positive(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value <= 0) throw new ArgumentError(`${what} must be a positive integer`)
  return value
}

/** Swaps every element's bytes in place (big-endian file → little-endian store). */
function swapBytes(bytes: Uint8Array, size: number): void {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (size === 2) b.swap16()
  else if (size === 4) b.swap32()
  else if (size === 8) b.swap64()
}

export function importNpy(store: Store, name: string, path: string, options: ImportNpyOptions = {}): ImportNpyResult {
  if (options === null || typeof options !== 'object') throw new ArgumentError('options must be an object')
  if (typeof path !== 'string' || path.length === 0) throw new ArgumentError('path must be a non-empty string')
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw new ArgumentError('onProgress must be a function')
  const chunkBytes = positive(options.chunkBytes, DEFAULT_CHUNK_BYTES, 'chunkBytes')
  const commitBytes = positive(options.commitBytes, DEFAULT_COMMIT_BYTES, 'commitBytes')
  if (store.dirty) throw new TransactionError('importNpy() commits: commit() or abort() the changes of this transaction first')
  const fd = fs.openSync(path, 'r')
  try {
    const header = readHeader(fd)
    if (header.shape.length === 0) throw new NpyFormatError('.npy shape () (a 0-d scalar) cannot be imported: txarray arrays have 1 to 32 axes')
    const sync = options.sync
    const array = store.create(name, {
      dtype: header.dtype,
      shape: [0, ...header.shape.slice(1)],
      blockBytes: options.blockBytes,
      attrs: options.attrs,
    })
    let commits = 0
    const commit = () => {
      store.commit(sync === undefined ? {} : { sync })
      commits++
    }
    try {
      commit()
      const job = { store, array, fd, header, chunkBytes, commitBytes, commit, onProgress: options.onProgress }
      if (header.fortranOrder && header.shape.length > 1) importFortran(job)
      else importC(job)
      if (array.rows !== header.shape[0]) array.resize(header.shape)
      if (store.dirty) commit()
    } catch (e) {
      // Leave nothing behind when we can: the committed prefix is deleted in one commit.
      try {
        store.abort()
        if (store.has(name)) {
          store.delete(name)
          store.commit()
        }
      } catch {
        // the store itself failed: the array keeps the committed prefix (see docs)
      }
      throw e
    }
    return {
      name, dtype: header.dtype, shape: [...header.shape], bytes: header.dataBytes,
      version: `${header.version[0]}.${header.version[1]}`, bigEndian: header.bigEndian,
      fortranOrder: header.fortranOrder, commits,
    }
  } finally {
    fs.closeSync(fd)
  }
}

interface Job {
  store: Store
  array: BigArray
  fd: number
  header: NpyHeader
  chunkBytes: number
  commitBytes: number
  commit: () => void
  onProgress?: (doneBytes: number, totalBytes: number) => void
}

function rowBytesOf(header: NpyHeader): number {
  return header.shape.slice(1).reduce((a, b) => a * b, 1) * itemBytes(header.dtype)
}

/** Writes `bytes` at byte `offset` of the array, growing it to `rows` rows first. */
function put(job: Job, rows: number, offset: number, bytes: Uint8Array): void {
  if (job.array.rows < rows) job.array.resize([rows, ...job.header.shape.slice(1)])
  arrayState(job.array).native.scatter(offset, [bytes.length], [1], 1, bytes)
}

/** C order: the file's data is the array's bytes, copied through in chunks. */
function importC(job: Job): void {
  const { header, fd } = job
  const ib = itemBytes(header.dtype)
  const rowBytes = rowBytesOf(header)
  if (header.dataBytes === 0) return
  // whole rows per chunk when a row fits, so commits fall on row boundaries
  const step = rowBytes <= job.chunkBytes ? Math.floor(job.chunkBytes / rowBytes) * rowBytes : Math.max(ib, Math.floor(job.chunkBytes / ib) * ib)
  const buffer = new Uint8Array(new ArrayBuffer(Math.min(step, header.dataBytes)))
  let pending = 0
  for (let done = 0; done < header.dataBytes;) {
    const length = Math.min(step, header.dataBytes - done)
    const got = readFully(fd, buffer, length, header.dataOffset + done)
    if (got !== length) throw new NpyFormatError('.npy file shrank while it was read')
    const chunk = buffer.subarray(0, length)
    if (header.bigEndian) swapBytes(chunk, ib)
    put(job, Math.ceil((done + length) / rowBytes), done, chunk)
    done += length
    pending += length
    if (pending >= job.commitBytes && done % rowBytes === 0) {
      job.commit()
      pending = 0
    }
    job.onProgress?.(done, header.dataBytes)
  }
}

/**
 * Fortran order: rows [a, a+R) of the C-order array are gathered from the file (for each
 * position of the other axes, R elements along axis 0 are adjacent), reordered into C
 * order, and written. The file is read in windows of up to chunkBytes spanning several
 * columns, so short runs cost one read per window rather than one per run.
 */
function importFortran(job: Job): void {
  const { header, fd } = job
  const ib = itemBytes(header.dtype)
  const rows = header.shape[0]
  const rowBytes = rowBytesOf(header)
  if (header.dataBytes === 0) return
  const columns = rowBytes / ib  // elements per row: the file's runs along axis 0
  if (rowBytes > Math.max(job.chunkBytes, MAX_FORTRAN_ROW_BYTES)) {
    throw new NpyFormatError(`Fortran-order .npy with rows of ${rowBytes} bytes: transposing needs one row in memory, the limit is ${MAX_FORTRAN_ROW_BYTES}; convert it to C order (numpy.ascontiguousarray) first`)
  }
  const perChunk = Math.max(1, Math.floor(Math.max(job.chunkBytes, rowBytes) / rowBytes))
  const gathered = new Uint8Array(new ArrayBuffer(Math.min(perChunk, rows) * rowBytes))
  const ordered = new Uint8Array(new ArrayBuffer(gathered.length))
  const window = new Uint8Array(new ArrayBuffer(Math.max(job.chunkBytes, Math.min(perChunk, rows) * ib)))
  const columnBytes = rows * ib
  let pending = 0
  for (let first = 0; first < rows; first += perChunk) {
    const count = Math.min(perChunk, rows - first)
    const runBytes = count * ib
    // columns per window read: the span from column j's run to column j+k-1's run end
    const perWindow = Math.max(1, Math.floor((window.length - runBytes) / columnBytes) + 1)
    for (let j = 0; j < columns; j += perWindow) {
      const k = Math.min(perWindow, columns - j)
      const start = header.dataOffset + (j * rows + first) * ib
      const span = (k - 1) * columnBytes + runBytes
      if (readFully(fd, window, span, start) !== span) throw new NpyFormatError('.npy file shrank while it was read')
      for (let c = 0; c < k; c++) {
        gathered.set(window.subarray(c * columnBytes, c * columnBytes + runBytes), (j + c) * runBytes)
      }
    }
    const chunk = ordered.subarray(0, count * rowBytes)
    // gathered is Fortran order of shape [count, ...other axes]
    fortranToC(gathered.subarray(0, chunk.length), chunk, [count, ...header.shape.slice(1)], ib)
    if (header.bigEndian) swapBytes(chunk, ib)
    put(job, first + count, first * rowBytes, chunk)
    pending += chunk.length
    if (pending >= job.commitBytes) {
      job.commit()
      pending = 0
    }
    job.onProgress?.((first + count) * rowBytes, header.dataBytes)
  }
}
