import { ArgumentError, ShapeError } from './errors'

/** Largest rank accepted (numpy's limit). */
export const MAX_NDIM = 32

/** Throws ShapeError unless `shape` is a list of 1..32 non-negative safe integers. */
export function checkShape(shape: unknown, what = 'shape'): number[] {
  if (!Array.isArray(shape) || shape.length < 1 || shape.length > MAX_NDIM) {
    throw new ShapeError(`${what} must be an array of 1 to ${MAX_NDIM} lengths`)
  }
  for (const n of shape) {
    if (!Number.isSafeInteger(n) || n < 0) throw new ShapeError(`${what} has a bad length: ${String(n)}`)
  }
  return [...shape]
}

/** Product of the lengths. */
export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1)
}

/** Default storage unit: small enough that an append rewrites little, see README. */
export const DEFAULT_BLOCK_BYTES = 64 * 1024

/** Throws ArgumentError unless `value` is a power of two from 4 KiB to 64 MiB. */
export function checkBlockBytes(value: unknown): number {
  if (value === undefined) return DEFAULT_BLOCK_BYTES
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 4096 || value > 64 * 2 ** 20 || (value & (value - 1)) !== 0) {
    throw new ArgumentError(`blockBytes must be a power of two from 4096 to 67108864, got ${String(value)}`)
  }
  return value
}
