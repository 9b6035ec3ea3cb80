// Child process script for the spill tests (view-spill.test.ts). Run through helpers/child.ts.
//   scatter <dir> <mappings> <blocks> <writes> <fill> <end>   (mappings 0: the process's budget)
//       creates a uint8 array 's' of <blocks> 4 KiB blocks (filled with <fill> through a
//       view and committed, unless <fill> is 0), then stores one byte into each of <writes>
//       scattered blocks through one view (block (k * 7919) % blocks, byte k % 4096, value
//       k % 250 + 1), then ends the transaction with <end> (commit or abort). Prints JSON
//       with the mappings and memory of the process before and at their peak, and stats.
import * as fs from 'node:fs'
import { open } from '../../src/index'

const BLOCK = 4096

function status(): Record<string, number> {
  const out: Record<string, number> = {}
  for (const line of fs.readFileSync('/proc/self/status', 'utf8').split('\n')) {
    const m = /^(VmRSS|RssAnon|RssFile|RssShmem):\s+(\d+) kB/.exec(line)
    if (m) out[m[1]] = Number(m[2]) * 1024
  }
  return out
}

function mapCount(): number {
  return fs.readFileSync('/proc/self/maps', 'utf8').split('\n').length - 1
}

export function scatteredBlock(k: number, blocks: number): number {
  return (k * 7919) % blocks
}

function scatter(args: string[]): void {
  const [dir, mappings, blocksArg, writesArg, fillArg, end] = args
  const blocks = Number(blocksArg)
  const writes = Number(writesArg)
  const fill = Number(fillArg)
  const store = open(dir, Number(mappings) > 0 ? { mappings: Number(mappings), sync: false } : { sync: false })
  const a = store.create<'uint8'>('s', { dtype: 'uint8', shape: [blocks * BLOCK], blockBytes: BLOCK })
  if (fill) a.view().fill(fill)
  store.commit()
  const v = a.view()
  const before = status()
  const mapsBefore = mapCount()
  let peakMaps = mapsBefore
  let peakAnon = before.RssAnon
  const every = Math.max(1, Math.floor(writes / 200))
  const t0 = Date.now()
  for (let k = 0; k < writes; k++) {
    v[scatteredBlock(k, blocks) * BLOCK + (k % BLOCK)] = (k % 250) + 1
    if (k % every === 0) {
      peakMaps = Math.max(peakMaps, mapCount())
      peakAnon = Math.max(peakAnon, status().RssAnon)
    }
  }
  const writeMs = Date.now() - t0
  const atEnd = status()
  const viewStats = a.viewStats()
  const statsBefore = store.stats()
  if (end === 'commit') store.commit()
  else store.abort()
  const after = store.stats()
  process.stdout.write(JSON.stringify({ mapsBefore, peakMaps, before, peakAnon, atEnd, writeMs, viewStats, statsBefore, after }) + '\n')
  store.close()
}

if (process.env.TXA_CHILD) {
  const [mode, ...rest] = process.argv.slice(2)
  if (mode === 'scatter') scatter(rest)
  else throw new Error(`unknown mode ${mode}`)
}
