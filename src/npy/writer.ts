/**
 * NpyWriter: a C-order .npy file that grows along axis 0 and is a valid .npy after every
 * append. Its header is written with room for axis 0 to reach 20 digits; an append
 * writes the rows after the data first and then rewrites the header in place with the
 * new shape, so a reader sees either the old shape or the new one, never a shape
 * longer than the data.
 */
import * as fs from 'node:fs'
import { type DType, type TypedArrayFor, checkData, checkDType, itemBytes } from '../dtype'
import { ArgumentError, ClosedError, ShapeError } from '../errors'
import { checkShape, sizeOf } from '../shape'
import { encodeHeader, resizedHeader } from './header'

export interface NpyWriterOptions<D extends DType = DType> {
  dtype: D
  /** Shape of the file's start; axis 0 grows with append(). Usually [0, ...row shape]. */
  shape: readonly number[]
}

export class NpyWriter<D extends DType = DType> {
  readonly path: string
  readonly dtype: D
  #shape: number[]
  #fd: number | null
  #header: Uint8Array
  #end: number
  readonly #rowBytes: number

  private constructor(path: string, dtype: D, shape: number[], fd: number, header: Uint8Array) {
    this.path = path
    this.dtype = dtype
    this.#shape = shape
    this.#fd = fd
    this.#header = header
    this.#end = header.length
    this.#rowBytes = sizeOf(shape.slice(1)) * itemBytes(dtype)
  }

  /**
   * Creates (or replaces) the file at `path` holding `shape[0]` zero rows. Its header
   * leaves room for the shape to grow in place. The file appears with its header
   * complete (it is written under a temporary name and renamed).
   */
  static create<D extends DType>(path: string, options: NpyWriterOptions<D>): NpyWriter<D> {
    if (typeof path !== 'string' || path.length === 0) throw new ArgumentError('path must be a non-empty string')
    if (options === null || typeof options !== 'object') throw new ArgumentError('NpyWriter.create() needs options { dtype, shape }')
    const dtype = checkDType(options.dtype) as D
    const shape = checkShape(options.shape)
    const header = encodeHeader(dtype, shape, true)
    // written under a temporary name and renamed: the file never exists without its header
    const temp = `${path}.${process.pid}.tmp`
    const fd = fs.openSync(temp, 'w')
    try {
      fs.writeSync(fd, header, 0, header.length, 0)
      const bytes = sizeOf(shape) * itemBytes(dtype)
      if (bytes > 0) fs.ftruncateSync(fd, header.length + bytes)
      fs.renameSync(temp, path)
    } catch (e) {
      fs.closeSync(fd)
      fs.rmSync(temp, { force: true })
      throw e
    }
    const w = new NpyWriter(path, dtype, shape, fd, header)
    w.#end = header.length + sizeOf(shape) * itemBytes(dtype)
    return w
  }

  /** The shape the file's header shows now (a copy). */
  get shape(): number[] {
    return [...this.#shape]
  }

  /** Rows written: the length of axis 0. */
  get rows(): number {
    return this.#shape[0]
  }

  #open(): number {
    if (this.#fd === null) throw new ClosedError('the NpyWriter is closed')
    return this.#fd
  }

  /** Appends whole rows (a TypedArray of the dtype, C order), then updates the header. */
  append(data: TypedArrayFor[D]): void {
    const src = checkData(this.dtype, data)
    const bytes = new Uint8Array(src.buffer, src.byteOffset, src.byteLength)
    if (this.#rowBytes === 0 ? bytes.length !== 0 : bytes.length % this.#rowBytes !== 0) {
      throw new ShapeError(`data holds ${src.length} elements, not a whole number of rows`)
    }
    if (bytes.length === 0) return
    this.appendRows(bytes, bytes.length / this.#rowBytes)
  }

  /** @internal Appends `rows` rows given as raw little-endian bytes. */
  appendRows(bytes: Uint8Array, rows: number): void {
    const fd = this.#open()
    let done = 0
    while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done, this.#end + done)
    this.#end += bytes.length
    this.#setRows(this.#shape[0] + rows)
  }

  #setRows(rows: number): void {
    const shape = [rows, ...this.#shape.slice(1)]
    const header = resizedHeader(this.#header, this.dtype, shape)
    fs.writeSync(this.#open(), header, 0, header.length, 0)
    this.#header = header
    this.#shape = shape
  }

  /** Forces the file's data and header to disk. */
  sync(): void {
    fs.fsyncSync(this.#open())
  }

  /** Closes the file. Idempotent. */
  close(): void {
    const fd = this.#fd
    this.#fd = null
    if (fd !== null) fs.closeSync(fd)
  }

  [Symbol.dispose](): void {
    this.close()
  }
}
