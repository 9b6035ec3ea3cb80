/**
 * One sequential scan of the S1 array with a plain JS sum, as S3 and S7 run it in their
 * child processes: through the store's views (`views(chunkRows)`) or, the baseline, with
 * fs.readSync of the flat .npy in chunks of the same size into one reused buffer (faulted
 * in before timing). prepareScan() opens what the scan needs; the returned function runs
 * it once, sampling RssAnon and RssFile after every chunk.
 */
import * as fs from 'node:fs'
import { open, type ViewStats } from '../../src/index'
import { ARRAY_NAME, COLS, procStatus } from './data'
import { now, seconds } from './measure'

export type ScanMode = 'tx' | 'file'

export interface ScanResult {
  seconds: number
  bytes: number
  sum: number
  vmHWM: number
  /** RssAnon just before the scan, and its peak during it (bytes). */
  baseAnon: number
  peakAnon: number
  peakFile: number
  baseRss: number
  /** The array's viewStats() after the scan (views only). */
  view?: ViewStats
}

export interface ScanInput {
  mode: ScanMode
  storeDir: string
  npyPath: string
  npyDataOffset: number
  chunkRows: number
}

function sumOf(v: Float64Array): number {
  let s = 0
  for (let i = 0; i < v.length; i++) s += v[i]
  return s
}

export function prepareScan(input: ScanInput): () => ScanResult {
  let peakAnon = 0
  let peakFile = 0
  const start = (): Record<string, number> => {
    const st = procStatus()
    peakAnon = st.RssAnon
    peakFile = st.RssFile
    return st
  }
  const sample = () => {
    const st = procStatus()
    peakAnon = Math.max(peakAnon, st.RssAnon)
    peakFile = Math.max(peakFile, st.RssFile)
  }
  const finish = (t0: bigint, bytes: number, sum: number, base: Record<string, number>, view?: ViewStats): ScanResult => {
    const sec = seconds(t0)
    return { seconds: sec, bytes, sum, vmHWM: procStatus().VmHWM, baseAnon: base.RssAnon, peakAnon, peakFile, baseRss: base.VmRSS, view }
  }
  if (input.mode === 'tx') {
    const store = open(input.storeDir)
    const a = store.array(ARRAY_NAME, 'float64')
    return () => {
      let sum = 0
      let bytes = 0
      const base = start()
      const t0 = now()
      for (const v of a.views(input.chunkRows)) {
        sum += sumOf(v)
        bytes += v.byteLength
        sample()
      }
      const r = finish(t0, bytes, sum, base, a.viewStats())
      store.close()
      return r
    }
  }
  const fd = fs.openSync(input.npyPath, 'r')
  const total = fs.fstatSync(fd).size - input.npyDataOffset
  const buf = new Float64Array(input.chunkRows * COLS).fill(1)
  const u8 = new Uint8Array(buf.buffer)
  return () => {
    let sum = 0
    let bytes = 0
    const base = start()
    const t0 = now()
    for (let at = 0; at < total; at += u8.length) {
      const n = Math.min(u8.length, total - at)
      let got = 0
      while (got < n) got += fs.readSync(fd, u8, got, n - got, input.npyDataOffset + at + got)
      sum += sumOf(n === u8.length ? buf : buf.subarray(0, n / 8))
      bytes += n
      sample()
    }
    const r = finish(t0, bytes, sum, base)
    fs.closeSync(fd)
    return r
  }
}
