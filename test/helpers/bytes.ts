/** Byte-level comparisons of TypedArrays (fast on large arrays, exact for NaN payloads). */
import * as assert from 'uvu/assert'

export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength)
}

/** Asserts that two views hold the same bytes; names the first differing byte otherwise. */
export function sameBytes(actual: ArrayBufferView, expected: ArrayBufferView, what: string): void {
  const x = bytesOf(actual)
  const y = bytesOf(expected)
  if (x.length !== y.length) assert.unreachable(`${what}: ${x.length} bytes, expected ${y.length}`)
  if (Buffer.compare(x, y) === 0) return
  let i = 0
  while (x[i] === y[i]) i++
  assert.unreachable(`${what}: byte ${i} of ${x.length} is ${x[i]}, expected ${y[i]}`)
}

/** Asserts that every byte of the view is `value` (default 0). */
export function allBytes(actual: ArrayBufferView, value: number, what: string): void {
  const x = bytesOf(actual)
  for (let i = 0; i < x.length; i++) {
    if (x[i] !== value) assert.unreachable(`${what}: byte ${i} of ${x.length} is ${x[i]}, expected ${value}`)
  }
}
