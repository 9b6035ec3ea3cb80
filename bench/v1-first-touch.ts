/**
 * V1 view first-touch scan (the view layer): throughput of a sequential first-touch scan
 * of a fresh view (a new store handle: nothing loaded; page cache hot) over the first
 * ~1 GiB of the S1 array, beside, in the same run: fs.readSync of the same bytes from the
 * flat .npy (hot page cache) into one reused 64 MiB buffer, and copying them from an
 * in-memory Buffer into that buffer. Two ways to touch: "sum" (add every element, as an
 * analysis would) and "page touch" (read one element per 4 KiB page: the fault service
 * alone; the baselines then copy without summing). Also the same view scanned again once
 * loaded (memory speed, the ceiling).
 */
import * as fs from 'node:fs'
import { open } from '../src/index'
import { ARRAY_NAME, COLS, type Dataset, loadNote, ROW_BYTES } from './lib/data'
import { type Row, median, now, seconds } from './lib/measure'

export interface V1Options {
  runs: number
  bytes: number
}

const CHUNK = 64 << 20

function sumOf(v: Float64Array): number {
  let s = 0
  for (let i = 0; i < v.length; i++) s += v[i]
  return s
}
function touchPages(v: Float64Array): number {
  let s = 0
  for (let i = 0; i < v.length; i += 512) s += v[i]
  return s
}

export function runV1(ds: Dataset, o: V1Options): Row[] {
  const rows = Math.min(ds.rows, Math.max(1, Math.floor(o.bytes / ROW_BYTES)))
  const nbytes = rows * ROW_BYTES
  const gb = (sec: number) => nbytes / sec / 1e9
  let sink = 0
  const viewScan = (touch: (v: Float64Array) => number) => {
    const store = open(ds.storeDir, {})
    const v = store.array(ARRAY_NAME, 'float64').view(0, rows)
    const t0 = now()
    sink += touch(v)
    const first = seconds(t0)
    const t1 = now()
    sink += touch(v)
    const loaded = seconds(t1)
    store.close()
    return { first, loaded }
  }
  const buf = new Float64Array(CHUNK / 8).fill(1)
  const u8 = new Uint8Array(buf.buffer)
  const fd = fs.openSync(ds.npyPath, 'r')
  const fileScan = (summing: boolean) => {
    const t0 = now()
    for (let at = 0; at < nbytes; at += CHUNK) {
      const n = Math.min(CHUNK, nbytes - at)
      fs.readSync(fd, u8, 0, n, ds.npyDataOffset + at)
      if (summing) sink += sumOf(n === CHUNK ? buf : buf.subarray(0, n / 8))
    }
    return seconds(t0)
  }
  const mem = Buffer.allocUnsafe(nbytes)
  fs.readSync(fd, mem, 0, nbytes, ds.npyDataOffset)
  const memScan = (summing: boolean) => {
    const t0 = now()
    for (let at = 0; at < nbytes; at += CHUNK) {
      const n = Math.min(CHUNK, nbytes - at)
      mem.copy(u8, 0, at, at + n)
      if (summing) sink += sumOf(n === CHUNK ? buf : buf.subarray(0, n / 8))
    }
    return seconds(t0)
  }
  console.log(`  V1 over ${(nbytes / 2 ** 30).toFixed(2)} GiB (${loadNote()})`)
  fileScan(true) // warm the page cache and the JIT
  viewScan(sumOf)
  const res: Record<string, number[]> = { viewSum: [], viewSumLoaded: [], viewTouch: [], viewTouchLoaded: [], fileSum: [], fileCopy: [], memSum: [], memCopy: [] }
  for (let r = 0; r < o.runs; r++) {
    const s = viewScan(sumOf)
    res.viewSum.push(s.first)
    res.viewSumLoaded.push(s.loaded)
    const t = viewScan(touchPages)
    res.viewTouch.push(t.first)
    res.viewTouchLoaded.push(t.loaded)
    res.fileSum.push(fileScan(true))
    res.fileCopy.push(fileScan(false))
    res.memSum.push(memScan(true))
    res.memCopy.push(memScan(false))
  }
  fs.closeSync(fd)
  const m = (k: string) => gb(median(res[k]))
  if (Number.isNaN(sink)) console.log('')
  const S = 'V1 first touch'
  const add = (metric: string, tx: number, base: number, baseName: string): Row => ({ scenario: S, metric, txarray: tx, baseline: base, baselineName: baseName, unit: 'GB/s', better: 'higher' })
  void COLS
  return [
    add('fresh view, sum every element', m('viewSum'), m('fileSum'), 'fs.readSync 64 MiB + sum'),
    add('fresh view, sum every element', m('viewSum'), m('memSum'), 'Buffer copy 64 MiB + sum'),
    add('fresh view, one read per 4 KiB page', m('viewTouch'), m('fileCopy'), 'fs.readSync 64 MiB'),
    add('fresh view, one read per 4 KiB page', m('viewTouch'), m('memCopy'), 'Buffer copy 64 MiB'),
    add('loaded view, sum every element', m('viewSumLoaded'), m('memSum'), 'Buffer copy 64 MiB + sum'),
  ]
}
