import { show } from './show'
import { types } from 'node:util'
import { DTypeError, TooLargeError } from './errors'

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
    throw new DTypeError(`unknown dtype ${show(value)}; expected one of ${dtypes.join(', ')}`)
  }
  return value as DType
}

/** Bytes per element. */
export function itemBytes(dtype: DType): number {
  return constructors[dtype].BYTES_PER_ELEMENT
}

/**
 * A zeroed TypedArray of `length` elements. Throws TooLargeError when the engine cannot
 * hold or allocate that many (a selection of 2^40 elements, say).
 */
export function allocate<D extends DType>(dtype: D, length: number): TypedArrayFor[D] {
  try {
    return new constructors[dtype](length) as TypedArrayFor[D]
  } catch (e) {
    if (!(e instanceof RangeError)) throw e
    throw new TooLargeError(`cannot allocate ${length} elements of ${dtype} (${e.message}): select less, or pass \`out\``)
  }
}

/** A TypedArray of `dtype` over existing memory. */
export function wrap<D extends DType>(dtype: D, buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArrayFor[D] {
  return new constructors[dtype](buffer, byteOffset, length) as TypedArrayFor[D]
}

// The intrinsic getters of %TypedArray%.prototype: they read the internal slots, so a
// subclass that overrides `length`, a Proxy (which has no slots) or an object that only
// inherits from a TypedArray prototype cannot pass for what it is not.
const typedArrayProto = Object.getPrototypeOf(Int8Array.prototype) as object
function intrinsicGetter(key: PropertyKey): (this: unknown) => unknown {
  const getter = Object.getOwnPropertyDescriptor(typedArrayProto, key)?.get
  if (!getter) throw new Error(`this JavaScript engine lacks %TypedArray%.prototype[${String(key)}]`)
  return getter as (this: unknown) => unknown
}
const typedArrayName = intrinsicGetter(Symbol.toStringTag)
const typedArrayLength = intrinsicGetter('length')

/** The TypedArray kind of `value` ('Int32Array', ...) read from its internal slot, or undefined. */
export function typedArrayKind(value: unknown): string | undefined {
  return typedArrayName.call(value) as string | undefined
}

/** The element count of a real TypedArray (0 once its buffer is detached). */
export function lengthOf(data: AnyTypedArray): number {
  return typedArrayLength.call(data) as number
}

/**
 * Throws DTypeError unless `data` is a real TypedArray of `dtype` (over an ArrayBuffer or a
 * SharedArrayBuffer, of any realm; a Proxy of one is refused).
 */
export function checkData<D extends DType>(dtype: D, data: unknown, what = 'data'): TypedArrayFor[D] {
  const expected = constructors[dtype].name
  const kind = typedArrayKind(data)
  if (kind !== expected) {
    const got = kind ?? (data === null ? 'null' : typeof data === 'object' ? describeObject(data as object) : typeof data)
    throw new DTypeError(`${what} must be a ${expected} for dtype ${dtype}, got ${got}`)
  }
  return data as TypedArrayFor[D]
}

function describeObject(value: object): string {
  if (types.isProxy(value)) return 'a Proxy'
  if (ArrayBuffer.isView(value)) return value.constructor?.name ?? 'an ArrayBuffer view'
  try {
    return value.constructor?.name ?? 'an object'
  } catch {
    return 'an object'  // a Proxy whose traps throw
  }
}
