/**
 * S3 scan: sums the whole S1 array through views of 4096 rows (views(4096), a plain
 * loop), with open(dir, { cacheBytes }) smaller than the array (a quarter of it, 1 GiB
 * for the 4 GB default); baseline: reading the flat .npy in the same chunk size with
 * fs.readSync into one reused buffer and summing the same way. Each scan runs in its own
 * child process, which reports its peak RSS (VmHWM at the end) and the peaks of RssAnon
 * and RssFile sampled after every chunk: LMDB's map is file-backed, so pages the fault
 * service copied from show up in RssFile (reclaimable page cache, not anonymous memory).
 * Page cache hot (the data was just read by S1, or is warmed by the first run).
 *
 * Child mode: tsx bench/s3-scan.ts --child tx|file <storeDir> <npy> <dataOffset> <cacheBytes> <chunkRows>
 */
import * as fs from 'node:fs'
import { open } from '../src/index'
import { ARRAY_NAME, COLS, type Dataset, loadNote, procStatus, runChildSync } from './lib/data'
import { type Row, median, now, seconds } from './lib/measure'

export interface S3Options {
  runs: number
  chunkRows: number
  cacheBytes?: number
}

interface ScanResult {
  seconds: number
  bytes: number
  sum: number
  vmHWM: number
  peakAnon: number
  peakFile: number
  baseRss: number
}

const MODEST = 256 << 20 // the "modest constant" above cacheBytes that RSS may reach

export function runS3(ds: Dataset, o: S3Options): Row[] {
  const cacheBytes = o.cacheBytes ?? Math.max(64 << 20, 2 ** Math.round(Math.log2(ds.nbytes / 4)))
  const child = (mode: string): ScanResult =>
    runChildSync<ScanResult>('s3-scan.ts', ['--child', mode, ds.storeDir, ds.npyPath, String(ds.npyDataOffset), String(cacheBytes), String(o.chunkRows)])
  child('file') // warm the page cache for both (the store's pages were read by S1 or are warmed here)
  child('tx')
  console.log(`  S3 (${loadNote()}), cacheBytes ${(cacheBytes / 2 ** 20).toFixed(0)} MiB`)
  const tx: ScanResult[] = []
  const file: ScanResult[] = []
  for (let r = 0; r < o.runs; r++) {
    tx.push(child('tx'))
    file.push(child('file'))
  }
  if (tx[0].sum !== file[0].sum) throw new Error(`S3: sums differ: ${tx[0].sum} vs ${file[0].sum}`)
  const gb = (x: ScanResult) => x.bytes / x.seconds / 1e9
  const m = (xs: ScanResult[], f: (x: ScanResult) => number) => median(xs.map(f))
  const txGB = m(tx, gb)
  const fileGB = m(file, gb)
  const hwm = m(tx, (x) => x.vmHWM)
  const anon = m(tx, (x) => x.peakAnon)
  const MiB = (x: number) => x / 2 ** 20
  console.log(`  S3 raw: tx ${JSON.stringify(tx)} file ${JSON.stringify(file)}`)
  const S = 'S3 scan'
  return [
    { scenario: S, metric: `sum via views(${o.chunkRows}) GB/s`, txarray: txGB, baseline: fileGB, baselineName: 'fs.readSync chunks', unit: 'GB/s', better: 'higher', target: '>= 0.7x', met: txGB >= 0.7 * fileGB },
    { scenario: S, metric: `peak RSS (VmHWM), cacheBytes ${MiB(cacheBytes).toFixed(0)} MiB`, txarray: MiB(hwm), baseline: MiB(m(file, (x) => x.vmHWM)), baselineName: 'fs.readSync chunks', unit: 'MiB', better: 'lower', target: `<= cache+${MiB(MODEST)}`, met: hwm <= cacheBytes + MODEST },
    { scenario: S, metric: 'peak RssAnon', txarray: MiB(anon), baseline: MiB(m(file, (x) => x.peakAnon)), baselineName: 'fs.readSync chunks', unit: 'MiB', better: 'lower', target: `<= cache+${MiB(MODEST)}`, met: anon <= cacheBytes + MODEST },
    { scenario: S, metric: 'peak RssFile (LMDB map)', txarray: MiB(m(tx, (x) => x.peakFile)), baseline: MiB(m(file, (x) => x.peakFile)), baselineName: 'fs.readSync chunks', unit: 'MiB', better: 'lower' },
    { scenario: S, metric: 'RSS before the scan', txarray: MiB(m(tx, (x) => x.baseRss)), baseline: MiB(m(file, (x) => x.baseRss)), baselineName: 'fs.readSync chunks', unit: 'MiB', better: 'lower' },
  ]
}

// ---- child ----
function sumOf(v: Float64Array): number {
  let s = 0
  for (let i = 0; i < v.length; i++) s += v[i]
  return s
}

function scanChild(args: string[]): void {
  const [mode, storeDir, npy, off, cacheBytesS, chunkRowsS] = args
  const chunkRows = Number(chunkRowsS)
  let peakAnon = 0
  let peakFile = 0
  const sample = () => {
    const st = procStatus()
    peakAnon = Math.max(peakAnon, st.RssAnon)
    peakFile = Math.max(peakFile, st.RssFile)
  }
  let sum = 0
  let bytes = 0
  let t0: bigint
  let baseRss: number
  if (mode === 'tx') {
    const store = open(storeDir)
    const a = store.array(ARRAY_NAME, 'float64')
    baseRss = procStatus().VmRSS
    t0 = now()
    for (const v of a.views(chunkRows)) {
      sum += sumOf(v)
      bytes += v.byteLength
      sample()
    }
  } else {
    const fd = fs.openSync(npy, 'r')
    const total = fs.fstatSync(fd).size - Number(off)
    const buf = new Float64Array(chunkRows * COLS)
    const u8 = new Uint8Array(buf.buffer)
    baseRss = procStatus().VmRSS
    t0 = now()
    for (let at = 0; at < total; at += u8.length) {
      const n = Math.min(u8.length, total - at)
      let got = 0
      while (got < n) got += fs.readSync(fd, u8, got, n - got, Number(off) + at + got)
      sum += sumOf(n === u8.length ? buf : buf.subarray(0, n / 8))
      bytes += n
      sample()
    }
    fs.closeSync(fd)
  }
  const sec = seconds(t0)
  const st = procStatus()
  console.log(JSON.stringify({ seconds: sec, bytes, sum, vmHWM: st.VmHWM, peakAnon, peakFile, baseRss }))
}

if (require.main === module && process.argv[2] === '--child') scanChild(process.argv.slice(3))
