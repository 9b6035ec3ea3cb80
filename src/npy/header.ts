/**
 * The .npy header: magic, version, header length, and the Python-literal dict
 * `{'descr': ..., 'fortran_order': ..., 'shape': (...)}`. Decoding reads a bounded
 * prefix of the file and checks everything before any data is touched; encoding writes
 * version 1.0 (2.0 when the dict needs it), padded to a multiple of 64 bytes, optionally
 * with spare room so that the shape can grow in place.
 */
import { type DType, itemBytes } from '../dtype'
import { NpyFormatError } from '../errors'
import { MAX_NDIM } from '../shape'
import { descrOf, parseDescr } from './descr'
import { type PyValue, parseLiteral } from './literal'

export const MAGIC: Uint8Array = Uint8Array.of(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59) // \x93NUMPY

/** Largest header dict accepted, in bytes (numpy's own reader refuses more than 10 000 by default). */
export const MAX_HEADER_BYTES = 16 * 1024

/** Header alignment numpy writes (so that the data of a mapped file is aligned). */
export const HEADER_ALIGN = 64

/** A decoded header. */
export interface NpyHeader {
  version: [number, number]
  dtype: DType
  bigEndian: boolean
  fortranOrder: boolean
  shape: number[]
  /** Byte offset of the first element. */
  dataOffset: number
  /** Bytes of data the shape calls for. */
  dataBytes: number
}

/** Bytes of the fixed prefix: magic, version, and the length field (2 bytes in 1.0, 4 after). */
export function prefixBytes(major: number): number {
  return major === 1 ? 10 : 12
}

/**
 * Decodes the header from the first bytes of a file, `fileBytes` long. `head` holds at
 * least the prefix and, when the file has them, the header bytes it declares (read
 * with readHeaderBytes()). Throws NpyFormatError.
 */
export function decodeHeader(head: Uint8Array, fileBytes: number): NpyHeader {
  if (head.length < 10 || !Buffer.from(head.subarray(0, 6)).equals(MAGIC)) throw new NpyFormatError('not a .npy file (no \\x93NUMPY magic)')
  const major = head[6]
  const minor = head[7]
  if (major < 1 || major > 3 || minor !== 0) throw new NpyFormatError(`.npy format version ${major}.${minor} is not supported (1.0, 2.0, 3.0 are)`)
  const prefix = prefixBytes(major)
  if (head.length < prefix) throw new NpyFormatError('.npy file truncated inside its header')
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength)
  const headerBytes = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true)
  if (headerBytes > MAX_HEADER_BYTES) throw new NpyFormatError(`.npy header of ${headerBytes} bytes is longer than the limit of ${MAX_HEADER_BYTES}`)
  const dataOffset = prefix + headerBytes
  if (dataOffset > fileBytes || head.length < dataOffset) throw new NpyFormatError('.npy file truncated inside its header')
  const dict = head.subarray(prefix, dataOffset)
  for (const byte of dict) {
    if (byte >= 0x80) throw new NpyFormatError('.npy header holds a non-ASCII byte (only ASCII dtypes are supported)')
    if (byte < 0x20 && byte !== 0x0a && byte !== 0x09 && byte !== 0x0d) throw new NpyFormatError(`.npy header holds control byte 0x${byte.toString(16).padStart(2, '0')}`)
  }
  const fields = headerFields(parseLiteral(Buffer.from(dict).toString('latin1')))
  const { dtype, bigEndian } = parseDescr(fields.descr)
  const shape = fields.shape
  let size = 1
  for (const n of shape) size *= n
  const dataBytes = size * itemBytes(dtype)
  if (!Number.isSafeInteger(dataBytes)) throw new NpyFormatError(`.npy shape (${shape.join(', ')}) is too large`)
  const present = fileBytes - dataOffset
  if (present < dataBytes) throw new NpyFormatError(`.npy file truncated: shape (${shape.join(', ')}) needs ${dataBytes} data bytes, the file holds ${present}`)
  if (present > dataBytes) throw new NpyFormatError(`.npy file has ${present - dataBytes} bytes after its data`)
  return { version: [major, minor], dtype, bigEndian, fortranOrder: fields.fortranOrder, shape, dataOffset, dataBytes }
}

function headerFields(v: PyValue): { descr: string; fortranOrder: boolean; shape: number[] } {
  if (v.kind !== 'dict') throw new NpyFormatError('.npy header is not a dict')
  const seen = new Map<string, PyValue>()
  for (const [k, value] of v.entries) {
    if (k.kind !== 'str') throw new NpyFormatError('.npy header has a key that is not a string')
    if (seen.has(k.value)) throw new NpyFormatError(`.npy header repeats key '${k.value}'`)
    seen.set(k.value, value)
  }
  const keys = [...seen.keys()].sort().join(', ')
  if (keys !== 'descr, fortran_order, shape') throw new NpyFormatError(`.npy header must have exactly the keys descr, fortran_order, shape; it has: ${keys || 'none'}`)
  const descr = seen.get('descr')!
  if (descr.kind !== 'str') throw new NpyFormatError('.npy descr is not a simple dtype string (structured dtypes are not supported)')
  const fortran = seen.get('fortran_order')!
  if (fortran.kind !== 'bool') throw new NpyFormatError('.npy fortran_order is not True or False')
  const shape = seen.get('shape')!
  if (shape.kind !== 'tuple') throw new NpyFormatError('.npy shape is not a tuple')
  if (shape.items.length > MAX_NDIM) throw new NpyFormatError(`.npy shape has ${shape.items.length} axes, more than ${MAX_NDIM}`)
  const lengths = shape.items.map((item) => {
    if (item.kind !== 'int') throw new NpyFormatError('.npy shape holds something other than integers')
    if (item.value < 0n) throw new NpyFormatError(`.npy shape has a negative length ${item.value}`)
    if (item.value > BigInt(Number.MAX_SAFE_INTEGER)) throw new NpyFormatError(`.npy shape has a length ${item.value} beyond 2^53`)
    return Number(item.value)
  })
  return { descr: descr.value, fortranOrder: fortran.value, shape: lengths }
}

/** Characters reserved for axis 0's length in an appendable header (2^63 has 19 digits). */
const GROWABLE_DIGITS = 20

/**
 * A complete header (prefix + dict + padding + newline) for a C-order array, its length
 * a multiple of 64. With `growable`, the dict leaves room for axis 0 to reach 20 digits,
 * so that rewriting the header with a longer shape never moves the data.
 */
export function encodeHeader(dtype: DType, shape: readonly number[], growable = false): Uint8Array {
  const dict = dictText(dtype, shape)
  const room = growable ? GROWABLE_DIGITS - String(shape[0]).length : 0
  // version 1.0 unless the dict outgrows its 2-byte length field
  const bare = 10 + dict.length + room + 1
  const major = bare + HEADER_ALIGN > 0xffff ? 2 : 1
  const prefix = prefixBytes(major)
  const total = Math.ceil((prefix + dict.length + room + 1) / HEADER_ALIGN) * HEADER_ALIGN
  const out = Buffer.alloc(total, 0x20)
  out.set(MAGIC, 0)
  out[6] = major
  out[7] = 0
  if (major === 1) out.writeUInt16LE(total - prefix, 8)
  else out.writeUInt32LE(total - prefix, 8)
  out.write(dict, prefix, 'latin1')
  out[total - 1] = 0x0a
  return out
}

/**
 * Rewrites the header of an appendable file for a new shape, keeping its length (the
 * data stays where it is). Throws NpyFormatError if the new dict does not fit.
 */
export function resizedHeader(previous: Uint8Array, dtype: DType, shape: readonly number[]): Uint8Array {
  const major = previous[6]
  const prefix = prefixBytes(major)
  const dict = dictText(dtype, shape)
  if (prefix + dict.length + 1 > previous.length) throw new NpyFormatError(`the .npy header has no room left for shape (${shape.join(', ')})`)
  const out = Buffer.from(previous)
  out.fill(0x20, prefix, out.length - 1)
  out.write(dict, prefix, 'latin1')
  return out
}

function dictText(dtype: DType, shape: readonly number[]): string {
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})` // () for a 0-d selection
  return `{'descr': '${descrOf(dtype)}', 'fortran_order': False, 'shape': ${tuple}, }`
}
