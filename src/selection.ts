import { show } from './show'
import { ArgumentError, BoundsError } from './errors'

/** A numpy/CPython slice: `null` bounds mean "from the start" / "to the end". */
export interface Slice {
  readonly kind: 'slice'
  readonly start: number | null
  readonly stop: number | null
  readonly step: number | null
}

/**
 * `slice(stop)`, `slice(start, stop)` or `slice(start, stop, step)`, as in Python.
 * Negative values count from the end; `step` may be negative, never 0.
 */
export function slice(stop: number | null): Slice
export function slice(start: number | null, stop: number | null, step?: number | null): Slice
export function slice(a: number | null, b?: number | null, c?: number | null): Slice {
  const s: Slice = b === undefined
    ? { kind: 'slice', start: null, stop: a, step: null }
    : { kind: 'slice', start: a, stop: b, step: c ?? null }
  return checkSlice(s)
}

/**
 * Throws ArgumentError unless the bounds are integers or null and the step is not 0.
 * resolveSelection() checks again: a Slice is a plain object that callers may build
 * without slice(), and no step of 0 or fractional bound may reach the index arithmetic.
 */
function checkSlice(s: Slice): Slice {
  for (const v of [s.start, s.stop, s.step]) {
    if (v !== null && v !== undefined && !Number.isSafeInteger(v)) {
      throw new ArgumentError(`slice bounds must be integers or null, got ${show(v)}`)
    }
  }
  if (s.step === 0) throw new ArgumentError('slice step cannot be zero')
  return s
}

/** One axis of a selection: an index (drops the axis), a slice, or null for all of it. */
export type AxisSelection = number | Slice | null

/** A selection: one entry per leading axis; missing trailing axes are taken whole. */
export type Selection = readonly AxisSelection[]

/** A selection resolved against a shape: where it starts and how it steps per axis. */
export interface ResolvedSelection {
  /** Flat element index of the first selected element. */
  offset: number
  /** Elements per kept axis (the result's shape). */
  shape: number[]
  /** Flat element step per kept axis (may be negative). */
  steps: number[]
}

/** Python's slice.indices(length): [start, stop, step, count]. */
export function sliceIndices(s: Slice, length: number): [number, number, number, number] {
  const step = s.step ?? 1
  const clamp = (v: number | null, fallback: number): number => {
    if (v === null || v === undefined) return fallback // undefined: a hand-built Slice without the field
    if (v < 0) {
      v += length
      if (v < 0) return step < 0 ? -1 : 0
    } else if (v >= length) {
      return step < 0 ? length - 1 : length
    }
    return v
  }
  const start = clamp(s.start, step < 0 ? length - 1 : 0)
  const stop = clamp(s.stop, step < 0 ? -1 : length)
  let count = 0
  if (step < 0) {
    if (stop < start) count = Math.floor((start - stop - 1) / -step) + 1
  } else if (start < stop) {
    count = Math.floor((stop - start - 1) / step) + 1
  }
  return [start, stop, step, count]
}

/** C-order element strides of `shape`. */
export function cStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length)
  let s = 1
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s
    s *= shape[i]
  }
  return strides
}

/** Resolves `selection` against `shape` (throws ArgumentError / BoundsError). */
export function resolveSelection(selection: Selection | undefined | null, shape: readonly number[]): ResolvedSelection {
  const sel = selection ?? []
  if (!Array.isArray(sel)) throw new ArgumentError('a selection is an array with one entry per axis')
  if (sel.length > shape.length) {
    throw new ArgumentError(`selection has ${sel.length} entries but the array has ${shape.length} axes`)
  }
  const strides = cStrides(shape)
  const out: ResolvedSelection = { offset: 0, shape: [], steps: [] }
  for (let axis = 0; axis < shape.length; axis++) {
    const item = axis < sel.length ? sel[axis] : null
    const length = shape[axis]
    if (item === null || item === undefined) {
      out.shape.push(length)
      out.steps.push(strides[axis])
    } else if (typeof item === 'number') {
      if (!Number.isSafeInteger(item)) throw new ArgumentError(`index must be an integer, got ${item}`)
      const index = item < 0 ? item + length : item
      if (index < 0 || index >= length) {
        throw new BoundsError(`index ${item} is out of bounds for axis ${axis} with length ${length}`)
      }
      out.offset += index * strides[axis]
    } else if (typeof item === 'object' && item.kind === 'slice') {
      const [start, , step, count] = sliceIndices(checkSlice(item), length)
      out.shape.push(count)
      out.steps.push(step * strides[axis])
      if (count > 0) out.offset += start * strides[axis]
    } else {
      throw new ArgumentError(`axis ${axis}: expected an integer, slice() or null`)
    }
  }
  return out
}
