/**
 * The fuzzer's model of a store: plain JavaScript arrays of what each array holds, in the
 * committed state and in the current transaction. Selections are resolved here on their
 * own (Python's slice rules written out again, element by element), so that the model
 * does not share the library's index arithmetic.
 */
import type { DType } from '../../src/index'

export type Value = number | bigint

export interface ArrayModel {
  dtype: DType
  shape: number[]
  /** Elements in C order. */
  data: Value[]
  attrs: Record<string, unknown>
}

export type StoreModel = Map<string, ArrayModel>

export function cloneModel(m: StoreModel): StoreModel {
  const out: StoreModel = new Map()
  for (const [name, a] of m) out.set(name, { dtype: a.dtype, shape: [...a.shape], data: [...a.data], attrs: a.attrs })
  return out
}

export const isBig = (dtype: DType): boolean => dtype === 'int64' || dtype === 'uint64'
export const zero = (dtype: DType): Value => (isBig(dtype) ? 0n : 0)

/** One axis of a selection as the fuzzer builds it. */
export type AxisSpec = null | number | { start: number | null; stop: number | null; step: number | null }

/** The indexes a Python slice selects from an axis of `length`. */
export function sliceIndexes(length: number, start: number | null, stop: number | null, step: number | null): number[] {
  const s = step ?? 1
  const out: number[] = []
  if (s > 0) {
    const norm = (v: number | null, dflt: number) => (v === null ? dflt : Math.min(length, Math.max(0, v < 0 ? v + length : v)))
    for (let i = norm(start, 0); i < norm(stop, length); i += s) out.push(i)
  } else {
    const norm = (v: number | null, dflt: number) => (v === null ? dflt : Math.min(length - 1, Math.max(-1, v < 0 ? v + length : v)))
    for (let i = norm(start, length - 1); i > norm(stop, -1); i += s) out.push(i)
  }
  return out
}

export interface Resolved {
  /** Flat element indexes in C order of the selection. */
  flat: number[]
  shape: number[]
}

/** Resolves a selection; returns 'bounds' if an index is outside its axis. */
export function resolve(shape: readonly number[], sel: readonly AxisSpec[]): Resolved | 'bounds' {
  const perAxis: number[][] = []
  const kept: number[] = []
  for (let axis = 0; axis < shape.length; axis++) {
    const item = axis < sel.length ? sel[axis] : null
    const length = shape[axis]
    if (item === null) {
      perAxis.push(Array.from({ length }, (_, i) => i))
      kept.push(length)
    } else if (typeof item === 'number') {
      const i = item < 0 ? item + length : item
      if (i < 0 || i >= length) return 'bounds'
      perAxis.push([i])
    } else {
      const list = sliceIndexes(length, item.start, item.stop, item.step)
      perAxis.push(list)
      kept.push(list.length)
    }
  }
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1))
  let flat = [0]
  for (let axis = 0; axis < shape.length; axis++) {
    const next: number[] = []
    for (const base of flat) for (const i of perAxis[axis]) next.push(base + i * strides[axis])
    flat = next
  }
  return { flat, shape: kept }
}
