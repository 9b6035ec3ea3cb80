/**
 * Shared inputs of the read scenarios (S1, S3, S5, V1, V2): one 2-D float64 array of
 * rows × 2000 in a txarray store and the same bytes in a flat .npy file, built once and
 * reused across runs (and across invocations: a marker file says the pair is complete).
 * Plus small helpers: a seeded PRNG, page-cache dropping, /proc/self/status, children.
 */
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { open, slice } from '../../src/index'
import { now, seconds } from './measure'

export const COLS = 2000
export const ROW_BYTES = COLS * 8
export const ARRAY_NAME = 'm'

export interface Dataset {
  rows: number
  cols: number
  rowBytes: number
  nbytes: number
  storeDir: string
  npyPath: string
  /** Byte offset of the data in the .npy file (a multiple of 64). */
  npyDataOffset: number
  /** Seconds it took to build (0 when reused). */
  buildSec: number
}

/** NPY v1.0 header for a C-order little-endian float64 array, padded to a multiple of 64. */
export function npyHeader(shape: number[]): Buffer {
  const dict = `{'descr': '<f8', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`
  const pre = 10 // magic (6) + version (2) + header length (2)
  let total = pre + dict.length + 1 // + '\n'
  total = Math.ceil(total / 64) * 64
  const header = dict + ' '.repeat(total - pre - dict.length - 1) + '\n'
  const buf = Buffer.alloc(total)
  buf.write('\x93NUMPY', 0, 'latin1')
  buf[6] = 1
  buf[7] = 0
  buf.writeUInt16LE(header.length, 8)
  buf.write(header, pre, 'latin1')
  return buf
}

/** Deterministic contents: no block is all zeros (zero blocks are not stored). */
export function fillRows(out: Float64Array, firstRow: number): void {
  for (let i = 0; i < out.length; i++) out[i] = ((firstRow * COLS + i) % 1000003) + 0.5
}

/**
 * True if this build of txarray reads the cached store as it is: an older format stamp,
 * or blocks whose checksums or commits this build does not recognise (a store written by
 * an earlier development build of the same format), make the caller rebuild it. The first
 * and the last rows are read with verified checksums and the store's log is checked.
 */
function readable(storeDir: string): boolean {
  let store: ReturnType<typeof open> | null = null
  try {
    store = open(storeDir, { readOnly: true })
    const a = store.array(ARRAY_NAME, 'float64')
    a.read([slice(0, 1)], undefined, { verifyChecksums: true })
    a.read([slice(a.rows - 1, a.rows)], undefined, { verifyChecksums: true })
    return true
  } catch (e) {
    const code = (e as { code?: string }).code
    if (code === 'TXA_FORMAT' || code === 'TXA_CORRUPT' || code === 'TXA_NOT_FOUND') return false
    throw e
  } finally {
    store?.close()
  }
}

/** Builds (or reuses) the store and the .npy file of `rows` rows. */
export function ensureDataset(dir: string, rows: number, log = console.log): Dataset {
  const storeDir = path.join(dir, `s1-store-${rows}`)
  const npyPath = path.join(dir, `s1-${rows}.npy`)
  const marker = path.join(dir, `s1-${rows}.complete`)
  const header = npyHeader([rows, COLS])
  const ds: Dataset = { rows, cols: COLS, rowBytes: ROW_BYTES, nbytes: rows * ROW_BYTES, storeDir, npyPath, npyDataOffset: header.length, buildSec: 0 }
  if (fs.existsSync(marker) && fs.existsSync(npyPath) && fs.statSync(npyPath).size === header.length + ds.nbytes && readable(storeDir)) return ds
  // Other sizes of earlier runs: remove them, they are big.
  for (const f of fs.readdirSync(dir)) {
    if (/^s1-(store-)?\d+(\.npy|\.complete|\.h5|\.h5\.complete)?$/.test(f)) fs.rmSync(path.join(dir, f), { recursive: true, force: true })
  }
  log(`  building the ${(ds.nbytes / 1e9).toFixed(2)} GB dataset (${rows} × ${COLS} float64) in ${dir}...`)
  const t0 = now()
  const store = open(storeDir, { sync: false })
  const a = store.create(ARRAY_NAME, { dtype: 'float64', shape: [0, COLS] })
  store.commit()
  const fd = fs.openSync(npyPath, 'w')
  fs.writeSync(fd, header)
  const chunkRows = 2048
  const chunk = new Float64Array(chunkRows * COLS)
  for (let r = 0; r < rows; r += chunkRows) {
    const n = Math.min(chunkRows, rows - r)
    const part = n === chunkRows ? chunk : chunk.subarray(0, n * COLS)
    fillRows(part, r)
    a.append(part)
    store.commit({ sync: false })
    fs.writeSync(fd, new Uint8Array(part.buffer, part.byteOffset, part.byteLength))
  }
  store.flush()
  store.close()
  fs.fsyncSync(fd)
  fs.closeSync(fd)
  fs.writeFileSync(marker, '')
  ds.buildSec = seconds(t0)
  log(`  built in ${ds.buildSec.toFixed(1)} s`)
  return ds
}

/** mulberry32: a small seeded PRNG, [0, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `count` random window starts in [0, rows - windowRows], fixed seed. */
export function randomStarts(count: number, rows: number, windowRows: number, seed = 12345): Uint32Array {
  const r = rng(seed)
  const out = new Uint32Array(count)
  const span = rows - windowRows + 1
  for (let i = 0; i < count; i++) out[i] = Math.floor(r() * span)
  return out
}

/** Drops the kernel's page cache (needs root). Returns false if not allowed. */
export function dropCaches(): boolean {
  try {
    spawnSync('sync')
    fs.writeFileSync('/proc/sys/vm/drop_caches', '1')
    return true
  } catch {
    return false
  }
}

/** Fields of /proc/self/status in bytes (VmHWM, VmRSS, RssAnon, RssFile, ...). */
export function procStatus(): Record<string, number> {
  const out: Record<string, number> = {}
  for (const line of fs.readFileSync('/proc/self/status', 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+) kB/.exec(line)
    if (m) out[m[1]] = Number(m[2]) * 1024
  }
  return out
}

export const tsxRegister = require.resolve('tsx/cjs')

/**
 * Runs bench/<script> in a child process (tsx loaded) and returns the JSON object the
 * child printed on its last stdout line, of the type `T` the caller and the child agree
 * on. Throws with the child's stderr if it failed.
 */
export function runChildSync<T>(script: string, args: string[], env: NodeJS.ProcessEnv = {}): T {
  const r = spawnSync(process.execPath, ['-r', tsxRegister, path.join(__dirname, '..', script), ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 64 << 20,
  })
  if (r.status !== 0) throw new Error(`${script} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`)
  const lines = r.stdout.trim().split('\n')
  return JSON.parse(lines[lines.length - 1]) as T
}

/** Starts bench/<script> as a child with an IPC channel (for S5's coordinated children). */
export function forkChild(script: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawn(process.execPath, ['-r', tsxRegister, path.join(__dirname, '..', script), ...args], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...env },
  })
}

/** Load average, to print next to figures (the machine is shared). */
export function loadNote(): string {
  const l = require('node:os').loadavg() as number[]
  return `load ${l.map((x) => x.toFixed(2)).join(' ')}`
}
