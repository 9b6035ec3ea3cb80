/**
 * The machine's own costs, measured in the same run and printed before the table, so that
 * every figure can be read against them: from a C helper (bench/lib/machine-costs.c), the
 * page-table costs the view layer pays (fresh anonymous page touch, madvise(MADV_DONTNEED)
 * of 17 pages, mapping hot file pages, the kernel's copy-on-write of a mapped file page) and
 * the copy speeds it competes with (memcpy, pread of a hot file), and the floor of a view's
 * first touch of one S1 window (its pages first read from a mapping of a hot file, beside
 * one pread of the same bytes); from Node, write + fsync
 * throughput and fsync latency (S2's baselines).
 */
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { buildMachineCosts } from './lib/native-baseline'
import { median, now, percentile, seconds } from './lib/measure'

export interface MachineCosts {
  /** First write to a page of fresh anonymous memory (zero-fill fault), µs per 4 KiB page. */
  anonTouchUsPerPage: number
  /** madvise(MADV_DONTNEED) of 17 populated pages, µs per call. */
  dontneed17PagesUs: number
  /** mmap(MAP_PRIVATE | MAP_FIXED) of 64 KiB of a hot file over a placeholder + a read per page. */
  fileMapUsPer64K: number
  fileMapGBps: number
  /** First write to a mapped page of a hot file (the kernel's copy-on-write), µs per page. */
  fileCowUsPerPage: number
  memcpyGBps: number
  /** pread of a hot file in 64 KiB reads. */
  preadGBps: number
  /** pread of a hot file into 2 MiB windows of MADV_HUGEPAGE anonymous memory, then dropping them; -1 without THP. */
  hugeFillGBps: number
  /** One S1 window (256 000 bytes) copied into a warm buffer from a fresh mapping of a hot file (first access to its pages), µs. */
  windowFirstTouchUs: number
  /** The same window with one pread into the warm buffer, µs. */
  windowPreadUs: number
  seqWriteFsyncGBps: number
  fsyncP50us: number
  fsyncP99us: number
}

const HOT_BYTES = 64 << 20

export function measureMachine(dir: string): MachineCosts {
  const hot = path.join(dir, 'machine-hot.bin')
  const c = JSON.parse(execFileSync(buildMachineCosts(dir), [hot, String(HOT_BYTES)], { encoding: 'utf8' }))
  fs.rmSync(hot)

  const file = path.join(dir, 'machine-write.bin')
  const chunk = Buffer.alloc(4 << 20, 1)
  const writes: number[] = []
  for (let r = 0; r < 3; r++) {
    const fd = fs.openSync(file, 'w')
    const t0 = now()
    for (let i = 0; i < 64; i++) fs.writeSync(fd, chunk)
    fs.fsyncSync(fd)
    writes.push((64 * chunk.length) / seconds(t0) / 1e9)
    fs.closeSync(fd)
  }

  const fd = fs.openSync(file, 'w')
  const small = Buffer.alloc(4096, 2)
  const syncs: number[] = []
  for (let i = 0; i < 200; i++) {
    fs.writeSync(fd, small, 0, small.length, (i % 16) * 4096)
    const t0 = now()
    fs.fsyncSync(fd)
    syncs.push(seconds(t0) * 1e6)
  }
  fs.closeSync(fd)
  fs.rmSync(file)
  return { ...c, seqWriteFsyncGBps: median(writes), fsyncP50us: median(syncs), fsyncP99us: percentile(syncs, 99) }
}

/** The machine-costs line printed before the table. */
export function describeMachine(m: MachineCosts): string {
  const f = (x: number, d = 2) => x.toFixed(d)
  return `machine costs: fresh anonymous page touch ${f(m.anonTouchUsPerPage)} µs/page (${f(4096 / m.anonTouchUsPerPage / 1e3)} GB/s); ` +
    `madvise(DONTNEED) 17 pages ${f(m.dontneed17PagesUs, 1)} µs; ` +
    `hot file page map ${f(m.fileMapUsPer64K, 1)} µs/64 KiB (${f(m.fileMapGBps)} GB/s); ` +
    `COW of a mapped file page ${f(m.fileCowUsPerPage)} µs/page; ` +
    `memcpy ${f(m.memcpyGBps)} GB/s; pread 64 KiB ${f(m.preadGBps)} GB/s; ` +
    `huge-page fill ${m.hugeFillGBps < 0 ? 'n/a (no THP)' : `${f(m.hugeFillGBps)} GB/s`}; ` +
    `S1 window first touch of a mapped hot file ${f(m.windowFirstTouchUs, 1)} µs vs pread ${f(m.windowPreadUs, 1)} µs ` +
    `(view first touch bound ${f(m.windowPreadUs / m.windowFirstTouchUs)}× fs.readSync); ` +
    `write+fsync ${f(m.seqWriteFsyncGBps)} GB/s; fsync p50 ${m.fsyncP50us.toFixed(0)} µs p99 ${m.fsyncP99us.toFixed(0)} µs`
}
