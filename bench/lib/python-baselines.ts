/**
 * S1's Python baselines (bench/lib/py-windows.py): the same windows read with numpy.memmap
 * (first touch in a fresh process, then loaded) and h5py (Dataset.read_direct per window,
 * hot), run by /usr/bin/python3. Skipped, with a note, when it cannot import them; never
 * an error of the bench.
 */
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { Dataset } from './data'
import { median } from './measure'

const PYTHON = '/usr/bin/python3'
const SCRIPT = path.join(__dirname, 'py-windows.py')

export interface PythonWindows {
  /** Seconds per pass (medians over runs); undefined where skipped. */
  memmapFirst?: number
  memmapLoaded?: number
  h5pyHot?: number
  versions: string
  notes: string[]
}

interface PassResult {
  skipped?: string
  numpy?: string
  h5py?: string
  memmapFirst?: number
  memmapLoaded?: number
  h5pyHot?: number
  h5pySkipped?: string
  checked?: boolean
}

function python(args: string[]): PassResult | { error: string } {
  const r = spawnSync(PYTHON, [SCRIPT, ...args], { encoding: 'utf8', maxBuffer: 16 << 20 })
  if (r.error) return { error: `${PYTHON}: ${r.error.message}` }
  if (r.status !== 0) return { error: `${PYTHON} ${path.basename(SCRIPT)} ${args[0]} failed (${r.status ?? r.signal}): ${r.stderr.trim().split('\n').pop()}` }
  const lines = r.stdout.trim().split('\n')
  return JSON.parse(lines[lines.length - 1]) as PassResult
}

/** The dataset as HDF5 next to its .npy (built once; a marker says it is complete). */
function ensureH5(ds: Dataset): { h5: string } | { note: string } {
  const h5 = ds.npyPath.replace(/\.npy$/, '.h5')
  const marker = `${h5}.complete`
  if (fs.existsSync(marker) && fs.existsSync(h5)) return { h5 }
  fs.rmSync(marker, { force: true })
  const r = python(['build-h5', ds.npyPath, h5])
  if ('error' in r) return { note: r.error }
  if (r.skipped) return { note: r.skipped }
  fs.writeFileSync(marker, '')
  return { h5 }
}

export function pythonWindows(ds: Dataset, startsFile: string, windowRows: number, runs: number): PythonWindows {
  const out: PythonWindows = { versions: '', notes: [] }
  const built = ensureH5(ds)
  if ('note' in built) out.notes.push(`h5py skipped: ${built.note}`)
  const h5 = 'h5' in built ? built.h5 : '-'
  const results: PassResult[] = []
  for (let i = 0; i < runs; i++) {
    const r = python(['windows', ds.npyPath, h5, startsFile, String(windowRows)])
    if ('error' in r) {
      out.notes.push(`Python baselines skipped: ${r.error}`)
      return out
    }
    if (r.skipped) {
      out.notes.push(`Python baselines skipped: ${r.skipped}`)
      return out
    }
    if (!r.checked) throw new Error('S1: the Python baselines read other bytes than the file holds')
    results.push(r)
  }
  const pick = (k: 'memmapFirst' | 'memmapLoaded' | 'h5pyHot') => {
    const xs = results.map((r) => r[k]).filter((x): x is number => x !== undefined)
    return xs.length ? median(xs) : undefined
  }
  out.memmapFirst = pick('memmapFirst')
  out.memmapLoaded = pick('memmapLoaded')
  out.h5pyHot = 'h5' in built ? pick('h5pyHot') : undefined
  if (results[0].h5pySkipped) out.notes.push(`h5py skipped: ${results[0].h5pySkipped}`)
  out.versions = `numpy ${results[0].numpy}${results[0].h5py ? `, h5py ${results[0].h5py}` : ''}`
  return out
}
