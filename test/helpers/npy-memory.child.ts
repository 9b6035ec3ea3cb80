// Child script for npy-memory.test.ts (run with TXA_CHILD set):
//   roundtrip <dir> <MiB> <chunkMiB> <commitMiB>
// writes a <MiB> float64 .npy in 1 MiB pieces, imports it in chunks, exports it back,
// compares both files piece by piece, and prints JSON: peak RSS (VmHWM) after the write,
// after the import and after the export, commits, and whether the files are equal.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { open } from '../../src/index'

function peakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))
  return Number(m![1]) * 1024
}

function writeSource(file: string, bytes: number): void {
  const n = bytes / 8
  const header = Buffer.alloc(128, 0x20)
  const dict = `{'descr': '<f8', 'fortran_order': False, 'shape': (${n / 64}, 64), }`
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(header)
  header.writeUInt16LE(118, 8)
  header.write(dict, 10, 'latin1')
  header[127] = 0x0a
  const fd = fs.openSync(file, 'w')
  fs.writeSync(fd, header)
  const piece = new Float64Array(2 ** 17)
  for (let first = 0; first < n; first += piece.length) {
    for (let i = 0; i < piece.length; i++) piece[i] = first + i
    fs.writeSync(fd, new Uint8Array(piece.buffer))
  }
  fs.closeSync(fd)
}

function sameFiles(a: string, b: string): boolean {
  const fa = fs.openSync(a, 'r')
  const fb = fs.openSync(b, 'r')
  const x = Buffer.alloc(2 ** 20)
  const y = Buffer.alloc(2 ** 20)
  try {
    if (fs.fstatSync(fa).size !== fs.fstatSync(fb).size) return false
    for (let pos = 0; ; pos += x.length) {
      const n = fs.readSync(fa, x, 0, x.length, pos)
      if (n === 0) return true
      if (fs.readSync(fb, y, 0, y.length, pos) !== n || !x.subarray(0, n).equals(y.subarray(0, n))) return false
    }
  } finally {
    fs.closeSync(fa)
    fs.closeSync(fb)
  }
}

function roundtrip(args: string[]): void {
  const [dir, mib, chunkMib, commitMib] = [args[0], ...args.slice(1).map(Number)] as [string, number, number, number]
  const source = path.join(dir, 'source.npy')
  writeSource(source, mib * 2 ** 20)
  const afterWrite = peakRss()
  const store = open(path.join(dir, 'store'), { sync: false })
  const t0 = Date.now()
  const r = store.importNpy('big', source, { chunkBytes: chunkMib * 2 ** 20, commitBytes: commitMib * 2 ** 20 })
  const importMs = Date.now() - t0
  const afterImport = peakRss()
  const copy = path.join(dir, 'copy.npy')
  const t1 = Date.now()
  store.array('big').exportNpy(copy, { chunkBytes: chunkMib * 2 ** 20 })
  const exportMs = Date.now() - t1
  const afterExport = peakRss()
  const equal = sameFiles(source, copy)
  store.close()
  process.stdout.write(JSON.stringify({ bytes: r.bytes, commits: r.commits, afterWrite, afterImport, afterExport, equal, importMs, exportMs }) + '\n')
}

if (process.env.TXA_CHILD) {
  const [mode, ...rest] = process.argv.slice(2)
  if (mode === 'roundtrip') roundtrip(rest)
  else throw new Error(`unknown mode ${mode}`)
}
