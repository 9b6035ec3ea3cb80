/**
 * npx tsx bench/remote-lazy.ts [--blocks 100] [--url postgres://…]
 *
 * What a block fetched on demand costs (docs/scale-out.md, "Blocks fetched on demand"):
 * machine A commits an array of random 64 KiB blocks; machine B opens it with
 * `remoteBlocks: 'lazy'` and takes one 8-byte window from each block in turn — the first
 * take() of a block fetches it — beside a bare `pg` SELECT of the same block version's
 * bytes on a connection of the bench's thread (prepared, text results as the store's fetch
 * uses), alternating, one of each per round; then the same take() again in the same
 * snapshot (served from memory) and after a refresh (from the cache the fetch filled).
 * In userfaultfd mode, then, machine C (a fresh lazy cache) makes one view of the whole
 * array and touches one element of each block, in an order whose steps stay far apart (so
 * that each fault fetches its block alone: faults scatter), beside the same bare SELECT:
 * the first touch is a page fault that waits while C's link thread fetches the block (no
 * JavaScript on the faulting thread). Only touches that fetched are counted.
 * Without --url it starts a throwaway cluster (the test helper's; fsync off).
 */
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { parseArgs } from 'node:util'
import { Client } from 'pg'
import { faultMode, open } from '../src/index'
import { benchPostgresUrl } from './lib/postgres-url'

const { values } = parseArgs({ options: { blocks: { type: 'string', default: '100' }, url: { type: 'string' } } })
const blocks = Number(values.blocks)
const BLOCK = 64 * 1024
const PER_BLOCK = BLOCK / 8

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
}

function summary(label: string, ms: number[]): void {
  const sorted = [...ms].sort((x, y) => x - y)
  console.log(`${label.padEnd(52)} p50 ${percentile(sorted, 0.5).toFixed(3)} ms  p99 ${percentile(sorted, 0.99).toFixed(3)} ms`)
}

async function main() {
  const url = await benchPostgresUrl(values.url)
  const schema = `lazy_${randomBytes(4).toString('hex')}`
  const dirs = [0, 1, 2].map(() => fs.mkdtempSync(path.join(os.tmpdir(), 'txarray-bench-lazy-')))
  try {
    const a = open(dirs[0], { remote: url, remoteSchema: schema })
    const data = new Float64Array(randomBytes(blocks * BLOCK).buffer)
    a.create('x', { dtype: 'float64', shape: [blocks * PER_BLOCK], blockBytes: BLOCK }).write(null, data)
    a.commit()
    const b = open(dirs[1], { remote: url, remoteSchema: schema, remoteBlocks: 'lazy' })
    const x = b.array('x', 'float64')
    const bare = new Client({ connectionString: url })
    await bare.connect()
    const select = { name: 'bare_select', text: `SELECT data FROM ${schema}.blocks WHERE array_id = 1 AND block_index = $1 AND serial = 1` }
    await bare.query({ ...select, values: [0] })  // parsed once, as the store's fetch is
    const first: number[] = []
    const baseline: number[] = []
    const out = new Float64Array(1)
    for (let i = 0; i < blocks; i++) {
      let t = performance.now()
      x.take([i * PER_BLOCK + 3], 1, out)
      first.push(performance.now() - t)
      if (out[0] !== data[i * PER_BLOCK + 3] && !(Number.isNaN(out[0]) && Number.isNaN(data[i * PER_BLOCK + 3]))) throw new Error(`block ${i}: wrong bytes`)
      t = performance.now()
      const { rows } = await bare.query<{ data: Buffer }>({ ...select, values: [i] })
      baseline.push(performance.now() - t)
      if (rows[0].data.byteLength > BLOCK || rows[0].data.byteLength < BLOCK - 64) throw new Error('bare SELECT: wrong length')  // trailing zeros trimmed
    }
    const again: number[] = []
    for (let i = 0; i < blocks; i++) {
      const t = performance.now()
      x.take([i * PER_BLOCK + 5], 1, out)
      again.push(performance.now() - t)
    }
    b.refresh()
    const y = b.array('x', 'float64')
    const cached: number[] = []
    for (let i = 0; i < blocks; i++) {
      const t = performance.now()
      y.take([i * PER_BLOCK + 7], 1, out)
      cached.push(performance.now() - t)
    }
    console.log(`${blocks} blocks of 64 KiB; fetched ${b.stats().blocksFetched} blocks, ${b.stats().bytesFetched} bytes`)
    summary('first take() of a lazy block (one fetch)', first)
    summary('bare pg SELECT of the same bytes (baseline)', baseline)
    const p50 = (ms: number[]) => percentile([...ms].sort((p, q) => p - q), 0.5)
    console.log(`ratio of p50s: ${(p50(first) / p50(baseline)).toFixed(2)}x`)
    summary('the same take() again, same snapshot (memory)', again)
    summary('after refresh(), from the filled cache', cached)
    if (faultMode().mode === 'uffd') {
      const c = open(dirs[2], { remote: url, remoteSchema: schema, remoteBlocks: 'lazy' })
      const view = c.array('x', 'float64').view()
      const touched: number[] = []
      const select2: number[] = []
      const step = 37  // coprime with the usual block counts; neighbours never follow each other
      for (let k = 0; k < blocks; k++) {
        const i = (k * step) % blocks
        const before = c.stats().blocksFetched
        let t = performance.now()
        const got = view[i * PER_BLOCK + 3]
        const ms = performance.now() - t
        if (got !== data[i * PER_BLOCK + 3] && !(Number.isNaN(got) && Number.isNaN(data[i * PER_BLOCK + 3]))) throw new Error(`block ${i}: wrong bytes through the view`)
        if (c.stats().blocksFetched === before) continue  // came with an earlier fault's window
        touched.push(ms)
        t = performance.now()
        await bare.query({ ...select, values: [i] })
        select2.push(performance.now() - t)
      }
      console.log(`view of the whole array: ${touched.length} first touches fetched; ${c.stats().blocksFetched} blocks fetched in all`)
      summary('first touch of a lazy block through a view (fault)', touched)
      summary('bare pg SELECT of the same bytes (baseline)', select2)
      console.log(`ratio of p50s: ${(p50(touched) / p50(select2)).toFixed(2)}x`)
      c.close()
    } else {
      console.log('first touch through a view: skipped (faults wait for fetches in userfaultfd mode only)')
    }
    await bare.end()
    a.close()
    b.close()
  } finally {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true })
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(e)
  process.exit(1)
})
