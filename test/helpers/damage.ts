/**
 * Damaging copies of stores on purpose, for the tests of checksums and check(): flipping
 * bytes of a block's data inside data.mdb, found by a unique pattern the test wrote.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { tempDir } from './tmp'

/** A copy of the store directory (closed stores only: data.mdb and lock.mdb). */
export function copyStore(dir: string): string {
  const copy = tempDir('txarray-copy-')
  for (const f of fs.readdirSync(dir)) fs.copyFileSync(path.join(dir, f), path.join(copy, f))
  return copy
}

/** Flips the bits of `mask` in the byte `delta` bytes after the only occurrence of `pattern` in data.mdb. */
export function flipAfterPattern(dir: string, pattern: Buffer, delta = 0, mask = 0x01): void {
  const file = path.join(dir, 'data.mdb')
  const bytes = fs.readFileSync(file)
  const at = bytes.indexOf(pattern)
  if (at < 0) throw new Error('pattern not found in data.mdb')
  if (bytes.indexOf(pattern, at + 1) >= 0) throw new Error('pattern found twice in data.mdb')
  const fd = fs.openSync(file, 'r+')
  try {
    const one = Buffer.of(bytes[at + delta] ^ mask)
    fs.writeSync(fd, one, 0, 1, at + delta)
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * Flips the bits of `mask` in the byte `delta` bytes after every occurrence of `pattern` in
 * data.mdb (older versions of a block, left in free pages, hold it too); returns how many.
 */
export function flipAfterEveryPattern(dir: string, pattern: Buffer, delta = 0, mask = 0x01): number {
  const file = path.join(dir, 'data.mdb')
  const bytes = fs.readFileSync(file)
  const fd = fs.openSync(file, 'r+')
  let count = 0
  try {
    for (let at = bytes.indexOf(pattern); at >= 0; at = bytes.indexOf(pattern, at + 1)) {
      fs.writeSync(fd, Buffer.of(bytes[at + delta] ^ mask), 0, 1, at + delta)
      count++
    }
  } finally {
    fs.closeSync(fd)
  }
  return count
}
