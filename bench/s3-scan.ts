/**
 * S3 scan: sums the whole S1 array through views of 4096 rows (views(4096), a plain
 * loop) with the store's default options, each scan in a fresh child process (so every
 * block is a first touch: the view layer maps it from the page cache); baseline: reading
 * the flat .npy in the same chunk size with fs.readSync into one reused buffer (faulted in
 * before timing) and summing the same way, also in a fresh child (bench/lib/scan.ts).
 * Page cache hot (warmed by one run of each first).
 * Memory: the child samples RssAnon and RssFile after every chunk; the target is on the
 * growth of RssAnon over the scan (clean view pages are page cache, counted in RssFile,
 * and the scan writes nothing, so its dirty bytes are 0). The view layer's own counters
 * (viewStats()) are printed for the first measured run.
 *
 * Child mode: tsx bench/s3-scan.ts --child tx|file <storeDir> <npy> <dataOffset> <chunkRows>
 */
import { type Dataset, loadNote, runChildSync } from './lib/data'
import { type Row, median } from './lib/measure'
import { prepareScan, type ScanMode, type ScanResult } from './lib/scan'

export interface S3Options {
  runs: number
  chunkRows: number
}

/** RssAnon may grow by this much plus the dirty bytes (none here) during the scan. */
const ANON_ALLOWANCE = 64 << 20

export function runS3(ds: Dataset, o: S3Options): Row[] {
  const child = (mode: string): ScanResult =>
    runChildSync<ScanResult>('s3-scan.ts', ['--child', mode, ds.storeDir, ds.npyPath, String(ds.npyDataOffset), String(o.chunkRows)])
  child('file') // warm the page cache for both
  child('tx')
  console.log(`  S3 (${loadNote()})`)
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
  const growth = (x: ScanResult) => x.peakAnon - x.baseAnon
  const anon = m(tx, growth)
  const MiB = (x: number) => x / 2 ** 20
  console.log(`  S3 viewStats (first run): ${JSON.stringify(tx[0].view)}`)
  console.log(`  S3 raw seconds: tx ${tx.map((x) => x.seconds.toFixed(3)).join(' ')} file ${file.map((x) => x.seconds.toFixed(3)).join(' ')}`)
  const S = 'S3 scan'
  const base = 'fs.readSync chunks'
  return [
    { scenario: S, metric: `sum via views(${o.chunkRows}), fresh process GB/s`, txarray: txGB, baseline: fileGB, baselineName: `${base} + same sum`, unit: 'GB/s', better: 'higher', target: '>= 0.8x', met: txGB >= 0.8 * fileGB },
    { scenario: S, metric: 'RssAnon growth (peak - start)', txarray: MiB(anon), baseline: MiB(m(file, growth)), baselineName: base, unit: 'MiB', better: 'lower', target: `<= ${MiB(ANON_ALLOWANCE)} + dirty (0)`, met: anon <= ANON_ALLOWANCE },
    { scenario: S, metric: 'peak RssAnon', txarray: MiB(m(tx, (x) => x.peakAnon)), baseline: MiB(m(file, (x) => x.peakAnon)), baselineName: base, unit: 'MiB', better: 'lower' },
    { scenario: S, metric: 'peak RssFile (page cache mapped)', txarray: MiB(m(tx, (x) => x.peakFile)), baseline: MiB(m(file, (x) => x.peakFile)), baselineName: base, unit: 'MiB', better: 'lower' },
    { scenario: S, metric: 'peak RSS (VmHWM)', txarray: MiB(m(tx, (x) => x.vmHWM)), baseline: MiB(m(file, (x) => x.vmHWM)), baselineName: base, unit: 'MiB', better: 'lower' },
  ]
}

// ---- child ----
if (require.main === module && process.argv[2] === '--child') {
  const [mode, storeDir, npyPath, off, chunkRows] = process.argv.slice(3)
  const scan = prepareScan({ mode: mode as ScanMode, storeDir, npyPath, npyDataOffset: Number(off), chunkRows: Number(chunkRows) })
  console.log(JSON.stringify(scan()))
}
