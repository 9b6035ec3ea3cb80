import * as fs from 'node:fs'

/** Timing and summary helpers shared by the benchmark scenarios. */

/** Seconds since `t0` (from now()). */
export function now(): bigint {
  return process.hrtime.bigint()
}
export function seconds(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e9
}

export function median(xs: number[]): number {
  return percentile(xs, 50)
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN
  const sorted = [...xs].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]
}

/** Runs fn `runs` times and returns the median of what it returns. */
export function medianOf(runs: number, fn: (run: number) => number): number {
  const xs: number[] = []
  for (let i = 0; i < runs; i++) xs.push(fn(i))
  return median(xs)
}

/**
 * Bytes the block device holding `dir` has written so far (/sys/dev/block/M:m/stat,
 * sectors written × 512): what really reached storage, journal included. System-wide,
 * so run benchmarks on an otherwise idle machine. (/proc/self/io write_bytes is no good
 * here: it charges a whole large page-cache folio each time one page of it is dirtied,
 * and reported 4 MB for a commit that sent 96 KiB to the device.)
 */
export function storageBytesWritten(dir: string): number {
  const st = fs.statSync(dir)
  const major = Math.floor(st.dev / 256) & 0xfff
  const minor = (st.dev & 0xff) | ((st.dev >> 12) & 0xfff00)
  const stat = fs.readFileSync(`/sys/dev/block/${major}:${minor}/stat`, 'utf8').trim().split(/\s+/)
  return Number(stat[6]) * 512
}

/** One line of the result table: a txarray figure beside its baseline. */
export interface Row {
  scenario: string
  metric: string
  txarray: number
  baseline: number | null
  baselineName: string
  unit: string
  /** Higher is better (throughput) or lower is better (latency, bytes). */
  better: 'higher' | 'lower'
  target?: string
  met?: boolean
}

export function ratio(row: Row): number | null {
  if (row.baseline === null || row.baseline === 0) return null
  return row.txarray / row.baseline
}
