import { show } from './show'
import { ArgumentError, ShapeError, TooLargeError } from './errors'

/** Largest rank accepted (numpy's limit). */
export const MAX_NDIM = 32

/** Throws ShapeError unless `shape` is a list of 1..32 non-negative safe integers. */
export function checkShape(shape: unknown, what = 'shape'): number[] {
  if (!Array.isArray(shape) || shape.length < 1 || shape.length > MAX_NDIM) {
    throw new ShapeError(`${what} must be an array of 1 to ${MAX_NDIM} lengths`)
  }
  for (const n of shape) {
    if (!Number.isSafeInteger(n) || n < 0) throw new ShapeError(`${what} has a bad length: ${show(n)}`)
  }
  return [...shape]
}

/** Product of the lengths. */
export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1)
}

/**
 * Throws TooLargeError unless an array of `shape` with elements of `itemBytes` bytes
 * holds at most 2^53 - 1 bytes (offsets beyond are not exact in a JavaScript number).
 */
export function checkByteLength(shape: readonly number[], itemBytes: number): number {
  const bytes = sizeOf(shape) * itemBytes
  if (!Number.isSafeInteger(bytes)) {
    throw new TooLargeError(`an array of shape [${shape.join(', ')}] would hold ${bytes} bytes, more than 2^53 - 1`)
  }
  return bytes
}

/** Default storage unit: small enough that an append rewrites little, see README. */
export const DEFAULT_BLOCK_BYTES = 64 * 1024

/** Throws ArgumentError unless `value` is a power of two from 4 KiB to 64 MiB. */
export function checkBlockBytes(value: unknown): number {
  if (value === undefined) return DEFAULT_BLOCK_BYTES
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 4096 || value > 64 * 2 ** 20 || (value & (value - 1)) !== 0) {
    throw new ArgumentError(`blockBytes must be a power of two from 4096 to 67108864, got ${show(value)}`)
  }
  return value
}
