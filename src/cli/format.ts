/**
 * Human output: byte counts, numbers, and numpy-style printing of N-dimensional data
 * (nested brackets, aligned columns, `...` for the middle of long axes).
 */
import type { AnyTypedArray } from '../dtype'

/** 1536 → "1.5 KiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[u]}`
}

/** A number as numpy prints it: nan, inf, -inf; integers without a fraction. */
export function formatScalar(v: number | bigint, float: boolean): string {
  if (typeof v === 'bigint') return v.toString()
  if (Number.isNaN(v)) return 'nan'
  if (v === Infinity) return 'inf'
  if (v === -Infinity) return '-inf'
  if (float && Number.isInteger(v) && Math.abs(v) < 1e16) return Object.is(v, -0) ? '-0.' : `${v}.`
  return String(v)
}

/** A scalar for JSON: 64-bit integers and non-finite floats as strings (JSON has neither). */
export function jsonScalar(v: number | bigint): number | string {
  if (typeof v === 'bigint') return v.toString()
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity'
  return v
}

/**
 * Data for printing: the elements shown (dense C order of the `shown` shape) and, per
 * axis, where `...` goes (-1 if the axis is shown whole).
 */
export interface Printable {
  data: AnyTypedArray
  shown: number[]
  /** For each axis: index in `shown` before which `...` is printed, or -1. */
  gap: number[]
  float: boolean
}

/** Line width numpy wraps at. */
const LINE_WIDTH = 75

/** `[a b c ...]`, broken into lines of at most LINE_WIDTH, continued under the first item. */
function wrapLine(parts: string[], indent: string): string {
  const lines: string[] = []
  let line = `${indent}[`
  for (const [i, part] of parts.entries()) {
    const sep = i === 0 ? '' : ' '
    if (i > 0 && line.length + sep.length + part.length + 1 > LINE_WIDTH) {
      lines.push(line)
      line = `${indent} ${part}`
    } else {
      line += sep + part
    }
  }
  lines.push(`${line}]`)
  return lines.join('\n').slice(indent.length)
}

/** numpy-style text of a Printable. */
export function formatArray(p: Printable): string {
  if (p.shown.length === 0) return formatScalar(p.data[0], p.float)
  const texts: string[] = []
  for (let i = 0; i < p.data.length; i++) texts.push(formatScalar(p.data[i], p.float))
  const width = texts.reduce((w, t) => Math.max(w, t.length), 0)
  const strides: number[] = []
  let s = 1
  for (let a = p.shown.length - 1; a >= 0; a--) {
    strides[a] = s
    s *= p.shown[a]
  }
  const render = (axis: number, offset: number, indent: string): string => {
    const n = p.shown[axis]
    const parts: string[] = []
    for (let i = 0; i < n; i++) {
      if (i === p.gap[axis]) parts.push('...')
      parts.push(axis === p.shown.length - 1
        ? texts[offset + i].padStart(width)
        : render(axis + 1, offset + i * strides[axis], indent + ' '))
    }
    if (axis === p.shown.length - 1) return wrapLine(parts, indent)
    const blank = '\n'.repeat(p.shown.length - 1 - axis)
    return `[${parts.join(`${blank}${indent} `)}]`
  }
  return render(0, 0, '')
}
