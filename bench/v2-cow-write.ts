/**
 * V2 first write to a mapped page, and the commit of view-written blocks (the view layer's
 * write path). A store of its own (V2 commits): one float64 array of 2·N blocks of 64 KiB,
 * every block stored (non-zero). In a child process per fault mode (uffd, sigsegv):
 *   - the first N blocks are mapped by reading one element per 4 KiB page (a read fault
 *     per window, timed for scale), then one element per page is written: the first write
 *     to a mapped page is the kernel's copy-on-write; µs per page and per 64 KiB block.
 *     Baselines: the first write to fresh anonymous memory (zero-fill fault) in the same
 *     child, and the C figure of the machine costs (COW of a mapped file page, no runtime).
 *     abort() drops the writes.
 *   - commit({ sync: false }) of N blocks each written through the view (one element per
 *     block), as one run of adjacent blocks and as N separate runs (every other block):
 *     commit time, and the unmap system calls it made (viewStats().unmapCalls), which
 *     should follow the runs, not the blocks. Baseline: the same blocks changed with
 *     write() (one element each) and committed.
 *
 * Child mode: tsx bench/v2-cow-write.ts --child <storeDir> <blocks> <runs>
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { faultMode, open, slice } from '../src/index'
import { loadNote, runChildSync } from './lib/data'
import type { MachineCosts } from './machine'
import { type Row, median, now, seconds } from './lib/measure'

export interface V2Options {
  runs: number
  blocks: number
  machine: MachineCosts
}

const BLOCK_ELEMS = 8192 // float64 elements per 64 KiB block: one row
const PAGE_ELEMS = 512

interface CommitFigures {
  seconds: number
  unmapCalls: number
  runs: number
}

interface ChildResult {
  mode: string
  writeScan: string
  blocks: number
  pages: number
  loadSec: number
  cowSec: number
  anonSec: number
  contiguous: CommitFigures
  scattered: CommitFigures
  explicitContiguous: CommitFigures
  explicitScattered: CommitFigures
}

function buildStore(storeDir: string, blocks: number): void {
  fs.rmSync(storeDir, { recursive: true, force: true })
  const store = open(storeDir, { sync: false })
  const a = store.create('w', { dtype: 'float64', shape: [2 * blocks, BLOCK_ELEMS] })
  const data = new Float64Array(64 * BLOCK_ELEMS)
  for (let r = 0; r < 2 * blocks; r += 64) {
    const n = Math.min(64, 2 * blocks - r)
    for (let i = 0; i < n * BLOCK_ELEMS; i++) data[i] = r * BLOCK_ELEMS + i + 1
    a.write([slice(r, r + n), null], n === 64 ? data : data.subarray(0, n * BLOCK_ELEMS))
  }
  store.commit()
  store.close()
}

export function runV2(dir: string, o: V2Options): Row[] {
  const storeDir = path.join(dir, 'v2-store')
  buildStore(storeDir, o.blocks)
  console.log(`  V2 ${o.blocks} blocks (${loadNote()})`)
  const modes: [string, Record<string, string>][] = [['uffd', { TXARRAY_FAULT_MODE: 'uffd' }], ['sigsegv', { TXARRAY_FAULT_MODE: 'sigsegv' }]]
  const rows: Row[] = []
  const S = 'V2 view writes'
  const add = (metric: string, tx: number, base: number | null, baseName: string, unit: string, target?: string, met?: boolean) =>
    rows.push({ scenario: S, metric, txarray: tx, baseline: base, baselineName: baseName, unit, better: 'lower', target, met })
  for (const [name, env] of modes) {
    let r: ChildResult
    try {
      r = runChildSync<ChildResult>('v2-cow-write.ts', ['--child', storeDir, String(o.blocks), String(o.runs)], env)
    } catch (e) {
      console.log(`  V2 ${name} failed: ${(e as Error).message.split('\n')[0]}`)
      continue
    }
    const perPage = (s: number) => (s / r.pages) * 1e6
    const perBlock = (s: number) => (s / r.blocks) * 1e6
    const ppb = r.pages / r.blocks
    const m = `${name} [${r.mode}, ${r.writeScan}]`
    add(`${m}: first write to a mapped page`, perPage(r.cowSec), perPage(r.anonSec), 'fresh anonymous page touch', 'µs/page')
    add(`${name}: first write to a mapped page`, perPage(r.cowSec), o.machine.fileCowUsPerPage, 'C: COW of a mapped file page', 'µs/page')
    add(`${name}: first write to each page of a 64 KiB block`, perBlock(r.cowSec), perBlock(r.anonSec), `fresh anonymous touch × ${ppb} pages`, 'µs/block')
    add(`${name}: first read of a block (read fault, for scale)`, perBlock(r.loadSec), o.machine.fileMapUsPer64K, 'C: hot file page map 64 KiB', 'µs/block')
    for (const [label, c, e] of [['1 run', r.contiguous, r.explicitContiguous], [`${r.blocks} runs`, r.scattered, r.explicitScattered]] as const) {
      add(`${name}: commit ${r.blocks} view-written blocks (${label})`, c.seconds * 1e3, e.seconds * 1e3, 'same blocks via write()', 'ms')
      add(`${name}: unmap calls of that commit`, c.unmapCalls, c.runs, 'runs of written blocks', 'calls', '<= runs', c.unmapCalls <= c.runs)
    }
  }
  fs.rmSync(storeDir, { recursive: true, force: true })
  return rows
}

function child(storeDir: string, blocks: number, runs: number): void {
  const store = open(storeDir, { sync: false })
  const a = store.array('w', 'float64')
  const v = a.view()
  const pages = (blocks * BLOCK_ELEMS) / PAGE_ELEMS
  const figures: Record<string, number[]> = { load: [], cow: [], anon: [] }
  const commits: Record<string, CommitFigures[]> = { contiguous: [], scattered: [], explicitContiguous: [], explicitScattered: [] }
  let sink = 0
  let stamp = 0
  // One element per block: blocks 0..N-1 (one run) or 0, 2, 4, ... (N runs).
  const chosen = (scattered: boolean) => Array.from({ length: blocks }, (_, i) => (scattered ? 2 * i : i))
  const commitOf = (blockList: number[], viaView: boolean): CommitFigures => {
    stamp++
    for (const b of blockList) {
      if (viaView) v[b * BLOCK_ELEMS + 7] = stamp
      else a.write([b, 7], stamp)
    }
    const calls0 = a.viewStats().unmapCalls
    const t0 = now()
    store.commit({ sync: false })
    const sec = seconds(t0)
    let runsOf = 0
    for (let i = 0; i < blockList.length; i++) if (i === 0 || blockList[i] !== blockList[i - 1] + 1) runsOf++
    return { seconds: sec, unmapCalls: a.viewStats().unmapCalls - calls0, runs: runsOf }
  }
  for (let r = 0; r <= runs; r++) { // run 0 warms the JIT
    let t0 = now()
    for (let p = 0; p < pages; p++) sink += v[p * PAGE_ELEMS]
    const load = seconds(t0)
    t0 = now()
    for (let p = 0; p < pages; p++) v[p * PAGE_ELEMS] = p
    const cow = seconds(t0)
    store.abort()
    const fresh = new Float64Array(pages * PAGE_ELEMS) // zero-filled on first write
    t0 = now()
    for (let p = 0; p < pages; p++) fresh[p * PAGE_ELEMS] = p
    const anon = seconds(t0)
    const c = commitOf(chosen(false), true)
    const s = commitOf(chosen(true), true)
    const ec = commitOf(chosen(false), false)
    const es = commitOf(chosen(true), false)
    if (r === 0) continue
    figures.load.push(load)
    figures.cow.push(cow)
    figures.anon.push(anon)
    commits.contiguous.push(c)
    commits.scattered.push(s)
    commits.explicitContiguous.push(ec)
    commits.explicitScattered.push(es)
  }
  const fm = faultMode()
  store.close()
  const med = (xs: CommitFigures[]): CommitFigures => ({ seconds: median(xs.map((x) => x.seconds)), unmapCalls: median(xs.map((x) => x.unmapCalls)), runs: xs[0].runs })
  const res: ChildResult = {
    mode: fm.mode, writeScan: fm.writeScan, blocks, pages,
    loadSec: median(figures.load), cowSec: median(figures.cow), anonSec: median(figures.anon),
    contiguous: med(commits.contiguous), scattered: med(commits.scattered),
    explicitContiguous: med(commits.explicitContiguous), explicitScattered: med(commits.explicitScattered),
  }
  if (Number.isNaN(sink)) console.log('')
  console.log(JSON.stringify(res))
}

if (require.main === module && process.argv[2] === '--child') child(process.argv[3], Number(process.argv[4]), Number(process.argv[5]))
