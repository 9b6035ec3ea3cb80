/**
 * Cuts a C-order array (or a strided selection of one) into pieces of bounded size that
 * follow each other in C order: each piece fixes the indexes of the leading axes, takes
 * a range of one axis, and all of the axes after it.
 */

/** One piece: `counts` elements per axis from axis `axis` on, at flat element `offset`. */
export interface Piece {
  /** Flat element offset of the piece's first element (in the strided layout). */
  offset: number
  /** Elements per axis of the piece, from its range axis to the last axis. */
  counts: number[]
  /** Element steps matching `counts`. */
  steps: number[]
  /** Elements in the piece. */
  elements: number
}

/**
 * Pieces of at most `maxElements` elements (at least one element each) covering a
 * selection of `shape` that starts at flat element `offset` and steps `steps` per axis.
 */
export function* pieces(offset: number, shape: readonly number[], steps: readonly number[], maxElements: number): Generator<Piece> {
  const n = shape.length
  if (shape.some((x) => x === 0)) return
  if (n === 0) {
    yield { offset, counts: [], steps: [], elements: 1 }
    return
  }
  // the range axis: the first whose trailing axes fit in one piece
  let axis = n - 1
  let inner = 1
  while (axis > 0 && inner * shape[axis] <= maxElements) {
    inner *= shape[axis]
    axis--
  }
  const per = Math.max(1, Math.floor(maxElements / inner))
  const index = new Array<number>(axis).fill(0)
  for (;;) {
    let base = offset
    for (let a = 0; a < axis; a++) base += index[a] * steps[a]
    for (let start = 0; start < shape[axis]; start += per) {
      const count = Math.min(per, shape[axis] - start)
      yield {
        offset: base + start * steps[axis],
        counts: [count, ...shape.slice(axis + 1)],
        steps: steps.slice(axis),
        elements: count * inner,
      }
    }
    // odometer over the fixed leading axes
    let a = axis - 1
    while (a >= 0) {
      if (++index[a] < shape[a]) break
      index[a] = 0
      a--
    }
    if (a < 0) return
  }
}
