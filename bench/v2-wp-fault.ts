/**
 * V2 write-protect fault cost: the cost of the first write to loaded clean pages through
 * a view. N blocks of the S1 array are loaded by reading one element per 4 KiB page, then
 * one element per page is written, timed; the time is divided by pages and by blocks
 * (dirtiness is per block: the first write to a block takes the one fault). Then abort()
 * drops the dirty pages and the next run loads again. Each fault mode in its own child
 * process: uffd (sync write-protect, the default), uffd with TXARRAY_WP_MODE=async, and
 * TXARRAY_FAULT_MODE=sigsegv. Baseline, measured in the same child: the first write to
 * fresh anonymous memory (the kernel's zero-fill page fault), per page and per 16 pages.
 *
 * Child mode: tsx bench/v2-wp-fault.ts --child <storeDir> <blocks> <runs>
 */
import { faultMode, open } from '../src/index'
import { ARRAY_NAME, type Dataset, loadNote, ROW_BYTES, runChildSync } from './lib/data'
import { type Row, median, now, seconds } from './lib/measure'

export interface V2Options {
  runs: number
  blocks: number
}

interface ChildResult {
  mode: string
  writeProtect: string
  blockBytes: number
  blocks: number
  pages: number
  writeSec: number
  loadSec: number
  anonSec: number
}

export function runV2(ds: Dataset, o: V2Options): Row[] {
  const blocks = Math.min(o.blocks, Math.floor(ds.nbytes / 65536))
  console.log(`  V2 ${blocks} blocks (${loadNote()})`)
  const modes: [string, Record<string, string>][] = [
    ['uffd (sync WP)', { TXARRAY_FAULT_MODE: 'uffd', TXARRAY_WP_MODE: 'sync' }],
    ['uffd (async WP)', { TXARRAY_FAULT_MODE: 'uffd', TXARRAY_WP_MODE: 'async' }],
    ['sigsegv', { TXARRAY_FAULT_MODE: 'sigsegv' }],
  ]
  const rows: Row[] = []
  for (const [name, env] of modes) {
    let r: ChildResult
    try {
      r = runChildSync<ChildResult>('v2-wp-fault.ts', ['--child', ds.storeDir, String(blocks), String(o.runs)], env)
    } catch (e) {
      console.log(`  V2 ${name} failed: ${(e as Error).message.split('\n')[0]}`)
      continue
    }
    const pagesPerBlock = r.pages / r.blocks
    const S = 'V2 WP fault'
    rows.push({ scenario: S, metric: `${name} [${r.mode}/${r.writeProtect}]: first write per block`, txarray: (r.writeSec / r.blocks) * 1e6, baseline: (r.anonSec / r.pages) * pagesPerBlock * 1e6, baselineName: `anon zero-fill × ${pagesPerBlock} pages`, unit: 'µs', better: 'lower' })
    rows.push({ scenario: S, metric: `${name}: first write per page`, txarray: (r.writeSec / r.pages) * 1e6, baseline: (r.anonSec / r.pages) * 1e6, baselineName: 'anon zero-fill fault', unit: 'µs', better: 'lower' })
    rows.push({ scenario: S, metric: `${name}: read-fault load per block (for scale)`, txarray: (r.loadSec / r.blocks) * 1e6, baseline: null, baselineName: '', unit: 'µs', better: 'lower' })
  }
  return rows
}

function child(storeDir: string, blocks: number, runs: number): void {
  const store = open(storeDir)
  const a = store.array(ARRAY_NAME, 'float64')
  const blockBytes = a.blockBytes
  const bytes = blocks * blockBytes
  const v = a.view(0, Math.ceil(bytes / ROW_BYTES))
  const pages = bytes / 4096
  const write: number[] = []
  const load: number[] = []
  const anon: number[] = []
  let sink = 0
  for (let r = 0; r <= runs; r++) {
    let t0 = now()
    for (let p = 0; p < pages; p++) sink += v[p * 512]
    const l = seconds(t0)
    t0 = now()
    for (let p = 0; p < pages; p++) v[p * 512] = p
    const w = seconds(t0)
    store.abort()
    const fresh = new Float64Array(bytes / 8) // calloc'd: pages fault on first write
    t0 = now()
    for (let p = 0; p < pages; p++) fresh[p * 512] = p
    const an = seconds(t0)
    if (r > 0) { // run 0 warms the JIT
      load.push(l)
      write.push(w)
      anon.push(an)
    }
  }
  const fm = faultMode()
  store.close()
  const res: ChildResult = { mode: fm.mode, writeProtect: fm.writeScan, blockBytes, blocks, pages, writeSec: median(write), loadSec: median(load), anonSec: median(anon) }
  if (Number.isNaN(sink)) console.log('')
  console.log(JSON.stringify(res))
}

if (require.main === module && process.argv[2] === '--child') child(process.argv[3], Number(process.argv[4]), Number(process.argv[5]))
