/**
 * Builds the bench's C helpers once per bench dir (rebuilt when the source is newer):
 * lmdb-windows.c (S1's plain-LMDB baseline) and machine-costs.c (the machine's costs).
 */
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

/** Compiles bench/lib/<name>.c with `extra` sources and flags into <dir>/<name>; returns its path. */
function buildHelper(dir: string, name: string, extra: () => string[]): string {
  const src = path.join(__dirname, `${name}.c`)
  const bin = path.join(dir, name)
  if (fs.existsSync(bin) && fs.statSync(bin).mtimeMs > fs.statSync(src).mtimeMs) return bin
  execFileSync('cc', ['-O2', '-o', bin, src, ...extra()])
  return bin
}

export function buildLmdbWindows(dir: string): string {
  return buildHelper(dir, 'lmdb-windows', () => {
    const root = path.join(__dirname, '..', '..')
    const lmdb = execFileSync(process.execPath, [path.join(root, 'native', 'find-lmdb.js')], { cwd: root, encoding: 'utf8' }).trim()
    const lib = path.isAbsolute(lmdb) ? lmdb : path.join(root, lmdb)
    return [`-I${lib}`, path.join(lib, 'mdb.c'), path.join(lib, 'midl.c'), '-lpthread']
  })
}

export function buildMachineCosts(dir: string): string {
  return buildHelper(dir, 'machine-costs', () => [])
}
