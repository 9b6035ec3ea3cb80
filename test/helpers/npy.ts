/**
 * Builds .npy files byte by byte for tests, independently of src/npy: any version, byte
 * order, memory order, or a raw (hostile) header text.
 */
import type { DType } from '../../src/index'

export const CODE: Record<DType, string> = {
  int8: 'i1', uint8: 'u1', int16: 'i2', uint16: 'u2', int32: 'i4', uint32: 'u4',
  int64: 'i8', uint64: 'u8', float32: 'f4', float64: 'f8',
}

export const ITEM: Record<DType, number> = {
  int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, uint64: 8, float32: 4, float64: 8,
}

/** A whole file: magic, version, length field, the header text padded to 64 with '\n', data. */
export function npyFile(headerText: string, data: Uint8Array = new Uint8Array(0), version = 1): Buffer {
  const prefix = version === 1 ? 10 : 12
  let text = headerText
  const total = Math.ceil((prefix + text.length + 1) / 64) * 64
  text = text.padEnd(total - prefix - 1, ' ') + '\n'
  const head = Buffer.alloc(prefix)
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(head)
  if (version === 1) head.writeUInt16LE(text.length, 8)
  else head.writeUInt32LE(text.length, 8)
  return Buffer.concat([head, Buffer.from(text, version === 3 ? 'utf8' : 'latin1'), data])
}

/** The header dict numpy writes. */
export function dictText(descr: string, shape: readonly number[], fortran = false): string {
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`
  return `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${tuple}, }`
}

/** Each element's bytes reversed (little ↔ big endian). */
export function swapped(bytes: Uint8Array, item: number): Uint8Array {
  const out = new Uint8Array(bytes.length)
  for (let i = 0; i < bytes.length; i += item) {
    for (let k = 0; k < item; k++) out[i + k] = bytes[i + item - 1 - k]
  }
  return out
}

/** C-order bytes rearranged into Fortran order (element by element, by index arithmetic). */
export function toFortran(bytes: Uint8Array, shape: readonly number[], item: number): Uint8Array {
  const out = new Uint8Array(bytes.length)
  const n = shape.reduce((a, b) => a * b, 1)
  const index = new Array<number>(shape.length).fill(0)
  for (let c = 0; c < n; c++) {
    // c is the C-order position of `index`
    let f = 0
    let stride = 1
    for (let a = 0; a < shape.length; a++) {
      f += index[a] * stride
      stride *= shape[a]
    }
    out.set(bytes.subarray(c * item, c * item + item), f * item)
    for (let a = shape.length - 1; a >= 0; a--) {
      if (++index[a] < shape[a]) break
      index[a] = 0
    }
  }
  return out
}

/** Python (/usr/bin/python3) with numpy, or null with the reason it cannot be used. */
export function numpyPython(): { python: string } | { skip: string } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process')
  const python = '/usr/bin/python3'
  const r = spawnSync(python, ['-c', 'import numpy; print(numpy.__version__)'], { encoding: 'utf8' })
  if (r.status === 0) return { python }
  return { skip: `numpy cannot be imported by ${python}: ${(r.error?.message ?? r.stderr).trim().split('\n').at(-1)}` }
}
