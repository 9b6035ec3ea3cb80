import { arrayState } from '../../array'
import { allocate, itemBytes } from '../../dtype'
import { ArgumentError } from '../../errors'
import { resolveSelection } from '../../selection'
import type { Command } from '../command'
import { formatArray, jsonScalar } from '../format'
import { openExisting, printJson, writeLine } from '../context'
import { parseSelection } from '../selection-syntax'

/** Elements above which the human output shows only the edges of each axis (numpy's threshold). */
const SUMMARY_THRESHOLD = 1000
/** Elements shown at each end of a summarized axis (numpy's edgeitems). */
const EDGE = 3
/** Most elements --json prints: beyond that, export a .npy. */
const JSON_LIMIT = 1_000_000

/** `txarray cat STORE NAME [SELECTION]`. */
export const cat: Command = {
  name: 'cat',
  summary: "print an array or a selection, numpy style (e.g. '10:20, ::2')",
  args: 'STORE NAME [SELECTION]',
  arity: [2, 3],
  options: { all: { type: 'boolean' } },
  help: `Prints the selection (default: the whole array) like numpy does: nested brackets,
and for more than ${SUMMARY_THRESHOLD} elements only ${EDGE} items at each end of every axis
(only those are read). SELECTION is numpy index syntax: '5', '-1', '10:20, ::2', '..., 0'.

With --json: { dtype, shape, data } with data as nested lists (int64/uint64 and
non-finite floats as strings), at most ${JSON_LIMIT} elements.

Options:
  --all    print every element, however many

Example:
  txarray cat ./data sensor '-3:, 0:4'`,
  run(ctx, [dir, name, text], values) {
    const store = openExisting(dir)
    try {
      const a = store.array(name)
      const selection = text === undefined ? [] : parseSelection(text, a.ndim)
      const state = arrayState(a)
      const sel = resolveSelection(selection, state.meta.shape)
      const size = sel.shape.reduce((x, y) => x * y, 1)
      if (ctx.json) {
        if (size > JSON_LIMIT) throw new ArgumentError(`the selection holds ${size} elements, more than --json prints (${JSON_LIMIT}): export it to a .npy`)
        const data = a.read(selection).data
        printJson(ctx, { dtype: a.dtype, shape: sel.shape, data: nest(Array.from(data as ArrayLike<number | bigint>, jsonScalar), sel.shape) })
        return 0
      }
      const summarize = !values.all && size > SUMMARY_THRESHOLD
      // per axis: the indexes shown, and where '...' goes
      const shownIdx = sel.shape.map((n) => (summarize && n > 2 * EDGE
        ? [...Array.from({ length: EDGE }, (_, i) => i), ...Array.from({ length: EDGE }, (_, i) => n - EDGE + i)]
        : Array.from({ length: n }, (_, i) => i)))
      const gap = sel.shape.map((n) => (summarize && n > 2 * EDGE ? EDGE : -1))
      const shown = shownIdx.map((x) => x.length)
      const ib = itemBytes(state.meta.dtype)
      const out = allocate(state.meta.dtype, shown.reduce((x, y) => x * y, 1))
      if (out.length > 0) gatherShown(out, shownIdx, sel, ib, (offset, count, step, dst) => {
        state.native.gather(offset * ib, [count], [step * ib], ib, dst, true)  // checksums verified: a damaged block is reported, not printed
      })
      const float = state.meta.dtype.startsWith('float')
      writeLine(ctx.stdout, formatArray({ data: out, shown, gap, float }))
      return 0
    } finally {
      store.close()
    }
  },
}

/** Nested lists of `shape` from flat C-order values. */
function nest(flat: unknown[], shape: number[]): unknown {
  if (shape.length === 0) return flat[0]
  const build = (axis: number, offset: number, stride: number): unknown[] => {
    const n = shape[axis]
    const inner = stride / Math.max(1, n)
    if (axis === shape.length - 1) return flat.slice(offset, offset + n)
    return Array.from({ length: n }, (_, i) => build(axis + 1, offset + i * inner, inner))
  }
  const total = shape.reduce((a, b) => a * b, 1)
  return build(0, 0, total)
}

/**
 * Fills `out` (C order of the shown shape) with the elements at the shown indexes,
 * reading runs of consecutive shown indexes of the last axis with one gather each.
 */
function gatherShown(
  out: ReturnType<typeof allocate>,
  shownIdx: number[][],
  sel: { offset: number; shape: number[]; steps: number[] },
  ib: number,
  gather: (offset: number, count: number, step: number, dst: ReturnType<typeof allocate>) => void,
): void {
  const n = shownIdx.length
  if (n === 0) {
    gather(sel.offset, 1, 1, out)
    return
  }
  const last = shownIdx[n - 1]
  // runs of consecutive indexes along the last axis
  const runs: Array<[number, number]> = []
  for (const i of last) {
    const r = runs.at(-1)
    if (r && r[0] + r[1] === i) r[1]++
    else runs.push([i, 1])
  }
  const pos = new Array<number>(n - 1).fill(0)
  let o = 0
  for (;;) {
    let base = sel.offset
    for (let a = 0; a < n - 1; a++) base += shownIdx[a][pos[a]] * sel.steps[a]
    for (const [start, count] of runs) {
      const dst = new (out.constructor as new (b: ArrayBufferLike, off: number, len: number) => typeof out)(out.buffer, out.byteOffset + o * ib, count)
      gather(base + start * sel.steps[n - 1], count, sel.steps[n - 1], dst)
      o += count
    }
    let a = n - 2
    while (a >= 0) {
      if (++pos[a] < shownIdx[a].length) break
      pos[a] = 0
      a--
    }
    if (a < 0) return
  }
}
