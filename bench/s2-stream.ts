/**
 * S2 sensor stream: append rows × 16 float32 in batches of 1000 rows, one commit per
 * batch, durable and with sync: false; baseline: appending the same bytes to a file with
 * fs.writeSync, with and without an fdatasync per batch. The checksum's share of the
 * append+commit time is measured inside the same txarray runs: the time commits spent
 * computing block checksums (store.stats().checksumSeconds, timed natively around each
 * CRC32C) over the time of the batches' append() + commit(); beside it the bytes those
 * checksums read per batch (store.stats().checksumBytes), which load does not change.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { open } from '../src/index'
import { type Row, median, now, percentile, seconds, storageBytesWritten } from './lib/measure'

const CHANNELS = 16
const BATCH = 1000

interface StreamResult {
  rowsPerSec: number
  MBps: number
  p50us: number
  p99us: number
  storagePerByte: number
  /** Seconds spent computing checksums / seconds of append() + commit(); 0 for files. */
  checksumShare: number
  checksumUsPerBatch: number
  /** Block data bytes the checksums read per batch; 0 for files. */
  checksumBytesPerBatch: number
}

function summarize(perBatch: number[], totalSec: number, rows: number, storageBytes: number, checksumSec = 0, checksumBytes = 0): StreamResult {
  const bytes = rows * CHANNELS * 4
  const batchSec = perBatch.reduce((a, b) => a + b, 0) / 1e6
  return {
    checksumShare: batchSec > 0 ? checksumSec / batchSec : 0,
    checksumUsPerBatch: perBatch.length ? (checksumSec * 1e6) / perBatch.length : 0,
    checksumBytesPerBatch: perBatch.length ? checksumBytes / perBatch.length : 0,
    rowsPerSec: rows / totalSec,
    MBps: bytes / totalSec / 1e6,
    p50us: median(perBatch),
    p99us: percentile(perBatch, 99),
    storagePerByte: storageBytes / bytes,
  }
}

function fillBatch(batch: Float32Array, b: number): void {
  for (let i = 0; i < batch.length; i++) batch[i] = b * BATCH + i / CHANNELS
}

function txarrayStream(dir: string, rows: number, sync: boolean): StreamResult {
  fs.rmSync(dir, { recursive: true, force: true })
  const store = open(dir)
  const a = store.create('s', { dtype: 'float32', shape: [0, CHANNELS] })
  store.commit()
  const batch = new Float32Array(BATCH * CHANNELS)
  const perBatch: number[] = []
  const io0 = storageBytesWritten(dir)
  const checksum0 = store.stats().checksumSeconds
  const checksumBytes0 = store.stats().checksumBytes
  const t0 = now()
  for (let b = 0; b < rows / BATCH; b++) {
    fillBatch(batch, b)
    const t = now()
    a.append(batch)
    store.commit({ sync })
    perBatch.push(seconds(t) * 1e6)
  }
  if (!sync) store.flush()
  const total = seconds(t0)
  const io = storageBytesWritten(dir) - io0
  const checksumSec = store.stats().checksumSeconds - checksum0
  const checksumBytes = store.stats().checksumBytes - checksumBytes0
  store.close()
  return summarize(perBatch, total, rows, io, checksumSec, checksumBytes)
}

function fileStream(file: string, rows: number, fsync: boolean): StreamResult {
  fs.rmSync(file, { force: true })
  const fd = fs.openSync(file, 'a')
  const batch = new Float32Array(BATCH * CHANNELS)
  const bytes = new Uint8Array(batch.buffer)
  const perBatch: number[] = []
  const io0 = storageBytesWritten(path.dirname(file))
  const t0 = now()
  for (let b = 0; b < rows / BATCH; b++) {
    fillBatch(batch, b)
    const t = now()
    fs.writeSync(fd, bytes)
    if (fsync) fs.fdatasyncSync(fd)
    perBatch.push(seconds(t) * 1e6)
  }
  if (!fsync) fs.fdatasyncSync(fd)
  const total = seconds(t0)
  const io = storageBytesWritten(path.dirname(file)) - io0
  fs.closeSync(fd)
  return summarize(perBatch, total, rows, io)
}

export function runS2(dir: string, rows: number, runs: number): Row[] {
  const pick = (results: StreamResult[], key: keyof StreamResult) => median(results.map((r) => r[key]))
  // Each txarray run beside its baseline's, alternating, so that the disk's load (shared
  // with other work) drifting during the scenario weighs on both sides alike.
  const durable: StreamResult[] = []
  const nosync: StreamResult[] = []
  const fileSync: StreamResult[] = []
  const filePlain: StreamResult[] = []
  for (let r = 0; r < runs; r++) {
    durable.push(txarrayStream(path.join(dir, 's2-durable'), rows, true))
    fileSync.push(fileStream(path.join(dir, 's2-fsync.bin'), rows, true))
    nosync.push(txarrayStream(path.join(dir, 's2-nosync'), rows, false))
    filePlain.push(fileStream(path.join(dir, 's2-plain.bin'), rows, false))
  }
  const p50s = (xs: StreamResult[]) => xs.map((x) => x.p50us.toFixed(0)).join(' ')
  console.log(`  S2 durable p50 per run (µs): txarray ${p50s(durable)}; append+fsync ${p50s(fileSync)}`)
  const rowsOut: Row[] = []
  const add = (metric: string, tx: number, base: number, baseName: string, unit: string, better: 'higher' | 'lower', target?: string, met?: boolean) =>
    rowsOut.push({ scenario: 'S2 stream', metric, txarray: tx, baseline: base, baselineName: baseName, unit, better, target, met })
  const nosyncMB = pick(nosync, 'MBps')
  const plainMB = pick(filePlain, 'MBps')
  add('sync:false MB/s', nosyncMB, plainMB, 'file append', 'MB/s', 'higher', '>= 0.5x', nosyncMB >= 0.5 * plainMB)
  add('sync:false rows/s', pick(nosync, 'rowsPerSec'), pick(filePlain, 'rowsPerSec'), 'file append', 'rows/s', 'higher')
  add('sync:false p50/batch', pick(nosync, 'p50us'), pick(filePlain, 'p50us'), 'file append', 'µs', 'lower')
  add('sync:false p99/batch', pick(nosync, 'p99us'), pick(filePlain, 'p99us'), 'file append', 'µs', 'lower')
  const p50 = pick(durable, 'p50us')
  const p50f = pick(fileSync, 'p50us')
  const p99 = pick(durable, 'p99us')
  add('durable MB/s', pick(durable, 'MBps'), pick(fileSync, 'MBps'), 'append+fsync', 'MB/s', 'higher')
  add('durable p50/batch', p50, p50f, 'append+fsync', 'µs', 'lower', '<= 2x', p50 <= 2 * p50f)
  add('durable p99/batch', p99, pick(fileSync, 'p99us'), 'append+fsync', 'µs', 'lower', '< 1500 µs', p99 < 1500)
  const amp = pick(durable, 'storagePerByte')
  add('storage bytes / byte appended (durable)', amp, pick(fileSync, 'storagePerByte'), 'append+fsync', 'x', 'lower', '<= 2', amp <= 2)
  add('storage bytes / byte appended (sync:false)', pick(nosync, 'storagePerByte'), pick(filePlain, 'storagePerByte'), 'file append', 'x', 'lower')
  const addShare = (mode: string, results: StreamResult[]) => {
    const share = pick(results, 'checksumShare') * 100
    rowsOut.push({ scenario: 'S2 stream', metric: `CRC32C share of append+commit (${mode})`, txarray: share, baseline: null, baselineName: 'no checksum: 0', unit: '%', better: 'lower', target: '<= 5 %', met: share <= 5 })
    rowsOut.push({ scenario: 'S2 stream', metric: `CRC32C time per batch (${mode})`, txarray: pick(results, 'checksumUsPerBatch'), baseline: null, baselineName: 'no checksum: 0', unit: 'µs', better: 'lower' })
    rowsOut.push({ scenario: 'S2 stream', metric: `CRC32C bytes read per batch (${mode})`, txarray: pick(results, 'checksumBytesPerBatch'), baseline: BATCH * CHANNELS * 4, baselineName: 'bytes appended', unit: 'B', better: 'lower' })
  }
  addShare('sync:false', nosync)
  addShare('durable', durable)
  return rowsOut
}
