/**
 * The standard LMDB command-line tools, compiled on first use from the C sources bundled
 * in the lmdb npm package (no system package needed) into a temporary directory.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import * as path from 'node:path'
import { tempDir } from './tmp'

const root = path.join(__dirname, '..', '..')
let bin: string | null = null

function build(): string {
  const sources = path.join(root, execFileSync(process.execPath, [path.join(root, 'native', 'find-lmdb.js')], { encoding: 'utf8' }).trim())
  const dir = tempDir('txarray-mdb-tools-')
  const cc = (args: string[]) => execFileSync('cc', args, { cwd: dir, stdio: 'pipe' })
  cc(['-O1', '-c', '-o', 'mdb.o', path.join(sources, 'mdb.c'), `-I${sources}`])
  cc(['-O1', '-c', '-o', 'midl.o', path.join(sources, 'midl.c'), `-I${sources}`])
  for (const tool of ['mdb_stat', 'mdb_dump', 'mdb_load']) {
    cc(['-O1', '-o', tool, path.join(sources, `${tool}.c`), 'mdb.o', 'midl.o', `-I${sources}`, '-lpthread'])
  }
  return dir
}

/** Writes key/value pairs (strings) into a fresh plain LMDB environment with mdb_load -T. */
export function mdbLoad(dir: string, pairs: Array<[string, string]>): void {
  bin ??= build()
  const input = pairs.map(([k, v]) => `${k}\n${v}\n`).join('')
  const r = spawnSync(path.join(bin, 'mdb_load'), ['-T', dir], { input, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`mdb_load failed: ${r.stderr}`)
}

/** Runs mdb_stat or mdb_dump; returns stdout, throws if it printed nothing. */
export function mdbTool(name: 'mdb_stat' | 'mdb_dump', args: string[]): string {
  bin ??= build()
  const r = spawnSync(path.join(bin, name), args, { encoding: 'utf8' })
  // mdb_stat -r exits with 1 even when it listed the readers: judge by the output
  if (r.error || (r.status !== 0 && !r.stdout)) throw new Error(`${name} ${args.join(' ')} failed: ${r.stderr}`)
  return r.stdout
}

/** Pids holding a slot in the store's reader table (mdb_stat -r). */
export function readerPids(dir: string): number[] {
  const out = mdbTool('mdb_stat', ['-r', dir])
  return [...out.matchAll(/^\s+(\d+)\s+[0-9a-f]+\s+(\d+|-)\s*$/gm)].map((m) => Number(m[1]))
}

/** Puts raw key/value pairs into sub-database `db` of an existing environment (mdb_load -s). */
export function mdbPut(dir: string, db: string, pairs: Array<[Buffer, Buffer]>): void {
  bin ??= build()
  const lines = ['VERSION=3', 'format=bytevalue', 'type=btree', 'HEADER=END']
  for (const [k, v] of pairs) lines.push(` ${k.toString('hex')}`, ` ${v.toString('hex')}`)
  lines.push('DATA=END', '')
  const r = spawnSync(path.join(bin, 'mdb_load'), ['-s', db, dir], { input: lines.join('\n'), encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`mdb_load failed: ${r.stderr}`)
}

/** The key/value pairs of sub-database `db` (mdb_dump -s), as buffers. */
export function mdbEntries(dir: string, db: string): Array<[Buffer, Buffer]> {
  const lines = mdbTool('mdb_dump', ['-s', db, dir]).split('\n')
  const data = lines.slice(lines.indexOf('HEADER=END') + 1, lines.indexOf('DATA=END')).map((l) => l.trim())
  const pairs: Array<[Buffer, Buffer]> = []
  for (let i = 0; i + 1 < data.length; i += 2) pairs.push([Buffer.from(data[i], 'hex'), Buffer.from(data[i + 1], 'hex')])
  return pairs
}
/** One database for mdbLoadDatabases: `name` null is the main database. */
export interface LoadedDatabase {
  name: string | null
  dupsort?: boolean
  pairs: Array<[string | Uint8Array, string | Uint8Array]>
}

/**
 * Writes named sub-databases (optionally DUPSORT) into a fresh plain LMDB environment,
 * as another program would, with mdb_load reading mdb_dump's byte-value format.
 */
export function mdbLoadDatabases(dir: string, databases: LoadedDatabase[]): void {
  bin ??= build()
  const hexOf = (x: string | Uint8Array) => Buffer.from(x).toString('hex')
  const input = databases.map((db) => [
    'VERSION=3', 'format=bytevalue', ...(db.name === null ? [] : [`database=${db.name}`]), 'type=btree',
    ...(db.dupsort ? ['dupsort=1'] : []), 'HEADER=END',
    ...db.pairs.flatMap(([k, v]) => [` ${hexOf(k)}`, ` ${hexOf(v)}`]),
    'DATA=END',
  ].join('\n') + '\n').join('')
  const r = spawnSync(path.join(bin, 'mdb_load'), [dir], { input, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`mdb_load failed: ${r.stderr}`)
}
