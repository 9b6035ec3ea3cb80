import { DTypeError } from './errors'

/** The element types an array can hold; all little-endian. */
export type DType =
  | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32'
  | 'int64' | 'uint64' | 'float32' | 'float64'

/** The TypedArray that holds elements of each dtype. */
export interface TypedArrayFor {
  int8: Int8Array
  uint8: Uint8Array
  int16: Int16Array
  uint16: Uint16Array
  int32: Int32Array
  uint32: Uint32Array
  int64: BigInt64Array
  uint64: BigUint64Array
  float32: Float32Array
  float64: Float64Array
}

export type AnyTypedArray = TypedArrayFor[DType]

/** A scalar of a dtype: bigint for the 64-bit integer types, number otherwise. */
export type ScalarFor<D extends DType> = D extends 'int64' | 'uint64' ? bigint : number

interface TypedArrayConstructorLike {
  new (length: number): AnyTypedArray
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): AnyTypedArray
  readonly BYTES_PER_ELEMENT: number
}

const constructors: Record<DType, TypedArrayConstructorLike> = {
  int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array,
  int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array,
  float32: Float32Array, float64: Float64Array,
}

/** All supported dtype names. */
export const dtypes = Object.keys(constructors) as DType[]

/** Throws DTypeError unless `value` names a supported dtype. */
export function checkDType(value: unknown): DType {
  if (typeof value !== 'string' || !(value in constructors)) {
    throw new DTypeError(`unknown dtype ${JSON.stringify(value)}; expected one of ${dtypes.join(', ')}`)
  }
  return value as DType
}

/** Bytes per element. */
export function itemBytes(dtype: DType): number {
  return constructors[dtype].BYTES_PER_ELEMENT
}

/** A zeroed TypedArray of `length` elements. */
export function allocate<D extends DType>(dtype: D, length: number): TypedArrayFor[D] {
  return new constructors[dtype](length) as TypedArrayFor[D]
}

/** A TypedArray of `dtype` over existing memory. */
export function wrap<D extends DType>(dtype: D, buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArrayFor[D] {
  return new constructors[dtype](buffer, byteOffset, length) as TypedArrayFor[D]
}

/** Throws DTypeError unless `data` is the TypedArray of `dtype`. */
export function checkData<D extends DType>(dtype: D, data: unknown, what = 'data'): TypedArrayFor[D] {
  if (!(data instanceof constructors[dtype])) {
    const got = data === null ? 'null' : typeof data === 'object' ? (data as object).constructor?.name : typeof data
    throw new DTypeError(`${what} must be a ${constructors[dtype].name} for dtype ${dtype}, got ${got}`)
  }
  return data as TypedArrayFor[D]
}
