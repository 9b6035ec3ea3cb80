/**
 * npx tsx bench/remote-protocol.ts [--commits 200] [--url postgres://…]
 *
 * What one commit of the remote store's PostgreSQL side costs (docs/scale-out.md, "What
 * one commit costs"): a commit of one 64 KiB block through the commit function, p50/p99,
 * beside a bare INSERT of the same bytes in its own transaction (autocommit: one round
 * trip, the least PostgreSQL can do), and the bytes each sends and receives on the wire.
 * Without --url it starts a throwaway cluster (the test helper's; fsync off, so both
 * figures leave out the WAL flush alike).
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'
import { Client } from 'pg'
import { callCommit } from '../src/remote/commit-call'
import { install } from '../src/remote/schema'
import { benchPostgresUrl } from './lib/postgres-url'

const { values } = parseArgs({ options: { commits: { type: 'string', default: '200' }, url: { type: 'string' } } })
const commits = Number(values.commits)
const BLOCK = 64 * 1024

/** Counts the bytes a client's socket sends and receives. */
function wire(client: Client) {
  const stream = (client as unknown as { connection: { stream: NodeJS.WritableStream & NodeJS.EventEmitter } }).connection.stream
  const counts = { sent: 0, received: 0 }
  const write = stream.write.bind(stream) as (chunk: Buffer | string, ...rest: unknown[]) => boolean
  stream.write = ((chunk: Buffer | string, ...rest: unknown[]) => {
    counts.sent += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length
    return write(chunk, ...rest)
  }) as typeof stream.write
  stream.on('data', (chunk: Buffer) => { counts.received += chunk.length })
  return counts
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
}

async function main() {
  const url = await benchPostgresUrl(values.url)
  const client = new Client({ connectionString: url })
  await client.connect()
  await install(client)
  await client.query('CREATE TABLE bare (k bigint PRIMARY KEY, data bytea)')
  await client.query('ALTER TABLE bare ALTER data SET STORAGE EXTERNAL')
  const counts = wire(client)
  const bytes = randomBytes(BLOCK)

  const made = await callCommit(client, {
    commitId: randomUUID(), snapshot: 0, blocks: [],
    records: [{ name: 'a', id: 0, expectedSerial: 0, rows: 1 << 20, rowBytes: 64, blockBytes: BLOCK, body: Buffer.from('{}') }],
  })
  if (made.status !== 'committed') throw new Error('setup commit failed')
  let serial = made.serial
  const id = made.ids[0]

  // The two are measured alternately, one of each per round, so that load from elsewhere
  // on the machine falls on both alike.
  const remote: number[] = []
  const bare: number[] = []
  const bytesOf = { remote: { sent: 0, received: 0 }, bare: { sent: 0, received: 0 } }
  const timed = async (into: number[], bytes: { sent: number; received: number }, fn: () => Promise<unknown>) => {
    const sent = counts.sent
    const received = counts.received
    const t = performance.now()
    await fn()
    into.push((performance.now() - t) * 1000)
    bytes.sent += counts.sent - sent
    bytes.received += counts.received - received
  }
  for (let i = -20; i < commits; i++) {  // 20 rounds of warm-up, not counted
    const r: number[] = []
    const b: number[] = []
    await timed(r, i < 0 ? { sent: 0, received: 0 } : bytesOf.remote, async () => {
      const out = await callCommit(client, {
        commitId: randomUUID(), snapshot: serial, records: [], blocks: [{ array: id, index: (i + 20) % 4096, data: bytes }],
      })
      if (out.status === 'committed') serial = out.serial
    })
    await timed(b, i < 0 ? { sent: 0, received: 0 } : bytesOf.bare, () =>
      client.query({ name: 'bare', text: 'INSERT INTO bare VALUES ($1, $2)', values: [i + 20, bytes] }))
    if (i >= 0) {
      remote.push(...r)
      bare.push(...b)
    }
  }
  remote.sort((x, y) => x - y)
  bare.sort((x, y) => x - y)
  const per = (n: number) => Math.round(n / commits)
  console.log(`commits of one 64 KiB block: ${commits}, alternating with the baseline (sync; the server's fsync as configured)`)
  console.log(`txarray commit function   p50 ${percentile(remote, 0.5).toFixed(0)} µs  p99 ${percentile(remote, 0.99).toFixed(0)} µs  ` +
    `sent ${per(bytesOf.remote.sent)} B  received ${per(bytesOf.remote.received)} B per commit`)
  console.log(`bare INSERT (autocommit)  p50 ${percentile(bare, 0.5).toFixed(0)} µs  p99 ${percentile(bare, 0.99).toFixed(0)} µs  ` +
    `sent ${per(bytesOf.bare.sent)} B  received ${per(bytesOf.bare.received)} B per commit`)
  console.log(`ratio p50 ${(percentile(remote, 0.5) / percentile(bare, 0.5)).toFixed(2)}×`)
  await client.end()
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
