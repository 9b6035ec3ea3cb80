/** Reads and decodes the header of an open .npy file, reading at most the bounded header. */
import * as fs from 'node:fs'
import { NpyFormatError } from '../errors'
import { MAX_HEADER_BYTES, type NpyHeader, decodeHeader, prefixBytes } from './header'

/** Reads `length` bytes at file `position` into the start of `buffer`; fewer only at the end of the file. */
export function readFully(fd: number, buffer: Uint8Array, length: number, position: number): number {
  let done = 0
  while (done < length) {
    const n = fs.readSync(fd, buffer, done, length - done, position + done)
    if (n === 0) break
    done += n
  }
  return done
}

/** The header bytes of the .npy file open as `fd` (at most the bounded header), as read now. */
function readHeaderBytes(fd: number): Buffer {
  const prefix = Buffer.alloc(12)
  const got = readFully(fd, prefix, 12, 0)
  if (got < 10) throw new NpyFormatError(got >= 6 && prefix.subarray(0, 6).toString('latin1') === '\x93NUMPY' ? '.npy file truncated inside its header' : 'not a .npy file (no \\x93NUMPY magic)')
  const major = prefix[6]
  let declared = 0
  if (major === 1) declared = prefix.readUInt16LE(8)
  else if ((major === 2 || major === 3) && got >= 12) declared = prefix.readUInt32LE(8)
  // decodeHeader reports version, length and truncation problems; never read more than the limit
  const want = prefixBytes(major === 1 ? 1 : 2) + Math.min(declared, MAX_HEADER_BYTES)
  const head = Buffer.alloc(Math.max(want, got))
  prefix.copy(head, 0, 0, got)
  const read = want > got ? got + readFully(fd, head.subarray(got), want - got, got) : got
  return head.subarray(0, read)
}

/** How often a header that changed while it was read is read again. */
const HEADER_READS = 16

/**
 * The header of the .npy file open as `fd`. Throws NpyFormatError. The file's size is
 * taken after the header is read: a writer that appends rows before it rewrites the
 * header (NpyWriter) never shows a reader a header that claims rows it has not written.
 * A header rewritten in place while it is read can be read torn (the kernel does not make
 * a read atomic with a write: "1909" becoming "1910" can read as "1919"), so the header is
 * read again after the size, and used only when both reads agree.
 */
export function readHeader(fd: number): NpyHeader {
  for (let attempt = 1; ; attempt++) {
    const head = readHeaderBytes(fd)
    const size = fs.fstatSync(fd).size
    if (attempt === HEADER_READS || readHeaderBytes(fd).equals(head)) return decodeHeader(head, size)
  }
}

/** The header of the .npy file at `path` (dtype, byte order, shape, version, data offset). Throws NpyFormatError. */
export function readNpyHeader(path: string): NpyHeader {
  const fd = fs.openSync(path, 'r')
  try {
    return readHeader(fd)
  } finally {
    fs.closeSync(fd)
  }
}
