/**
 * S4 small commits: change one element in a random block of a committed array and
 * commit, 1000 times; commits/s and block bytes written per commit (store.stats()) and
 * storage bytes per commit (/proc/self/io), next to a baseline that pwrites one block and
 * fsyncs a flat file.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { open, slice } from '../src/index'
import { type Row, median, now, seconds, storageBytesWritten } from './lib/measure'

const ROWS = 4096
const COLS = 2048 // float64: 16 KiB rows, 64 MiB in all

export function runS4(dir: string, commits: number, runs: number): Row[] {
  const storeDir = path.join(dir, 's4')
  fs.rmSync(storeDir, { recursive: true, force: true })
  const store = open(storeDir)
  const a = store.create('m', { dtype: 'float64', shape: [ROWS, COLS] })
  const row = new Float64Array(COLS)
  for (let r = 0; r < ROWS; r += 64) {
    row.fill(r)
    a.write([slice(r, r + 64), null], new Float64Array(64 * COLS).fill(r))
  }
  store.commit()
  const blockBytes = a.blockBytes
  const rate: number[] = []
  const perCommit: number[] = []
  const storagePerCommit: number[] = []
  for (let run = 0; run < runs; run++) {
    const s0 = store.stats().bytesWritten
    const io0 = storageBytesWritten(dir)
    const t0 = now()
    for (let i = 0; i < commits; i++) {
      const flat = Math.floor(Math.random() * ROWS * COLS)
      a.write([Math.floor(flat / COLS), flat % COLS], i)
      store.commit()
    }
    rate.push(commits / seconds(t0))
    perCommit.push((store.stats().bytesWritten - s0) / commits)
    storagePerCommit.push((storageBytesWritten(dir) - io0) / commits)
  }
  store.close()

  const file = path.join(dir, 's4-flat.bin')
  const fd = fs.openSync(file, 'w+')
  fs.ftruncateSync(fd, ROWS * COLS * 8)
  const block = Buffer.alloc(blockBytes, 1)
  const baseRate: number[] = []
  for (let run = 0; run < runs; run++) {
    const t0 = now()
    for (let i = 0; i < commits; i++) {
      const b = Math.floor(Math.random() * ((ROWS * COLS * 8) / blockBytes))
      fs.writeSync(fd, block, 0, blockBytes, b * blockBytes)
      fs.fdatasyncSync(fd)
    }
    baseRate.push(commits / seconds(t0))
  }
  fs.closeSync(fd)
  fs.rmSync(file)
  const bytes = median(perCommit)
  return [
    { scenario: 'S4 small commits', metric: 'commits/s (durable)', txarray: median(rate), baseline: median(baseRate), baselineName: 'pwrite block+fsync', unit: '/s', better: 'higher' },
    { scenario: 'S4 small commits', metric: 'block bytes written / commit', txarray: bytes, baseline: blockBytes, baselineName: 'block size', unit: 'B', better: 'lower', target: '<= 2x block', met: bytes <= 2 * blockBytes },
    { scenario: 'S4 small commits', metric: 'storage bytes / commit', txarray: median(storagePerCommit), baseline: blockBytes, baselineName: 'block size', unit: 'B', better: 'lower' },
  ]
}
