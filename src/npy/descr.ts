/**
 * numpy dtype descriptors (`'<f8'`, `'>i2'`, `'|u1'`) of the dtypes txarray has, and back.
 * txarray stores little-endian; a big-endian descriptor is converted on import.
 */
import { type DType, itemBytes } from '../dtype'
import { NpyFormatError } from '../errors'

const CODES: Record<DType, string> = {
  int8: 'i1', uint8: 'u1', int16: 'i2', uint16: 'u2', int32: 'i4', uint32: 'u4',
  int64: 'i8', uint64: 'u8', float32: 'f4', float64: 'f8',
}

const BY_CODE = new Map(Object.entries(CODES).map(([dtype, code]) => [code, dtype as DType]))

/** What a descriptor says about the elements. */
export interface NpyElement {
  dtype: DType
  /** The file holds big-endian elements: bytes are swapped on the way in. */
  bigEndian: boolean
}

/** numpy's descriptor of `dtype` as txarray stores it (little-endian; `|` for one byte). */
export function descrOf(dtype: DType): string {
  return (itemBytes(dtype) === 1 ? '|' : '<') + CODES[dtype]
}

/** The element a descriptor string names. Throws NpyFormatError for any other dtype. */
export function parseDescr(descr: string): NpyElement {
  const m = /^([<>|=]?)([a-zA-Z])(\d{1,3})$/.exec(descr)
  const dtype = m ? BY_CODE.get(m[2] + m[3]) : undefined
  if (!m || !dtype) {
    throw new NpyFormatError(`.npy dtype ${JSON.stringify(descr)} is not supported; txarray reads ${Object.values(CODES).join(', ')} (with < > | or =)`)
  }
  const order = m[1]
  const single = itemBytes(dtype) === 1
  if (order === '|' && !single) throw new NpyFormatError(`.npy dtype ${JSON.stringify(descr)}: '|' (no byte order) on a multi-byte type`)
  // '=' is the writer's native order; numpy writes it out as < or >, and this host is little-endian.
  return { dtype, bigEndian: order === '>' && !single }
}
