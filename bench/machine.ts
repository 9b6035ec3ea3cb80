/** The machine's own limits, measured in the same run: memcpy, write+fsync, fsync latency. */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { median, now, percentile, seconds } from './lib/measure'

export interface MachineLimits {
  memcpyGBps: number
  seqWriteFsyncGBps: number
  fsyncP50us: number
  fsyncP99us: number
}

export function measureMachine(dir: string): MachineLimits {
  const src = Buffer.alloc(256 << 20, 7)
  const dst = Buffer.alloc(256 << 20)
  const copies: number[] = []
  for (let i = 0; i < 5; i++) {
    const t0 = now()
    src.copy(dst)
    copies.push(src.length / seconds(t0) / 1e9)
  }

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
  return { memcpyGBps: median(copies), seqWriteFsyncGBps: median(writes), fsyncP50us: median(syncs), fsyncP99us: percentile(syncs, 99) }
}
