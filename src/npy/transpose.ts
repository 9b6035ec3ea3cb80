/**
 * Reorders a dense block of elements from Fortran order (first axis fastest) to C order
 * (last axis fastest), copying whole elements bit for bit (NaN payloads included).
 */

type Words = Uint8Array | Uint16Array | Uint32Array

function wordsOf(bytes: Uint8Array, wordBytes: number): Words {
  const { buffer, byteOffset, byteLength } = bytes
  if (wordBytes === 1) return bytes
  if (wordBytes === 2) return new Uint16Array(buffer, byteOffset, byteLength / 2)
  return new Uint32Array(buffer, byteOffset, byteLength / 4)
}

/**
 * Writes into `out` (C order) the elements of `input` (Fortran order), both of `shape`
 * and `itemBytes` per element. Both must be aligned to min(itemBytes, 4).
 */
export function fortranToC(input: Uint8Array, out: Uint8Array, shape: readonly number[], itemBytes: number): void {
  const wordBytes = Math.min(itemBytes, 4)
  const perItem = itemBytes / wordBytes
  const src = wordsOf(input, wordBytes)
  const dst = wordsOf(out, wordBytes)
  const n = shape.length
  const total = shape.reduce((a, b) => a * b, 1)
  if (total === 0) return
  // input (Fortran) stride of each axis, in elements
  const fstride = new Array<number>(n)
  let s = 1
  for (let a = 0; a < n; a++) {
    fstride[a] = s
    s *= shape[a]
  }
  const last = n - 1
  const lastLen = shape[last]
  const lastStride = fstride[last] * perItem
  const index = new Array<number>(n).fill(0)
  let inBase = 0  // Fortran element offset of index[0..last-1] with index[last] = 0
  let o = 0
  for (;;) {
    let i = inBase * perItem
    if (perItem === 1) {
      for (let k = 0; k < lastLen; k++, i += lastStride) dst[o++] = src[i]
    } else {
      for (let k = 0; k < lastLen; k++, i += lastStride) {
        dst[o++] = src[i]
        dst[o++] = src[i + 1]
      }
    }
    let a = last - 1
    while (a >= 0) {
      inBase += fstride[a]
      if (++index[a] < shape[a]) break
      inBase -= fstride[a] * shape[a]
      index[a] = 0
      a--
    }
    if (a < 0) return
  }
}
