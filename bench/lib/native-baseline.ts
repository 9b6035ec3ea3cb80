/** Builds bench/lib/lmdb-windows.c (S1's plain-LMDB baseline) once per bench dir. */
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

export function buildLmdbWindows(dir: string): string {
  const src = path.join(__dirname, 'lmdb-windows.c')
  const bin = path.join(dir, 'lmdb-windows')
  if (fs.existsSync(bin) && fs.statSync(bin).mtimeMs > fs.statSync(src).mtimeMs) return bin
  const root = path.join(__dirname, '..', '..')
  const lmdb = execFileSync(process.execPath, [path.join(root, 'native', 'find-lmdb.js')], { cwd: root, encoding: 'utf8' }).trim()
  const lib = path.isAbsolute(lmdb) ? lmdb : path.join(root, lmdb)
  execFileSync('cc', ['-O2', '-o', bin, `-I${lib}`, src, path.join(lib, 'mdb.c'), path.join(lib, 'midl.c'), '-lpthread'])
  return bin
}
