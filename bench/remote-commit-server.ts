/**
 * npx tsx bench/remote-commit-server.ts [--calls 200] [--rounds 3] [--url postgres://…]
 *
 * The server's side of one remote commit, beside a bare INSERT of the same bytes: the
 * commit function (docs/scale-out.md, "The commit protocol") storing one 64 KiB block,
 * the same function storing nothing (its bookkeeping alone), and a prepared `INSERT INTO
 * bare VALUES ($1, $2)` in autocommit — each called `--calls` times in a row on one
 * connection, the three alternating for `--rounds` rounds. For each: the backend's CPU
 * time per call (from /proc/<backend pid>/stat: the server must run on this machine),
 * which other load on the machine does not inflate the way it does wall time; WAL bytes
 * per call (pg_current_wal_insert_lsn); and wall time per call.
 */
import { randomUUID } from 'node:crypto'
import * as fs from 'node:fs'
import { parseArgs } from 'node:util'
import { Client } from 'pg'
import { callCommit } from '../src/remote/commit-call'
import { install } from '../src/remote/schema'
import { benchPostgresUrl } from './lib/postgres-url'

const { values } = parseArgs({
  options: { calls: { type: 'string', default: '200' }, rounds: { type: 'string', default: '3' }, url: { type: 'string' } },
})
const calls = Number(values.calls)
const rounds = Number(values.rounds)
const BLOCK = 64 * 1024

/** CPU seconds (user + system) process `pid` has used. */
function cpuSeconds(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100  // utime, stime in clock ticks (USER_HZ 100)
}

async function main() {
  const url = await benchPostgresUrl(values.url)
  const c = new Client({ connectionString: url })
  await c.connect()
  const pid = Number((await c.query('SELECT pg_backend_pid() AS p')).rows[0].p)
  await install(c, 'server_only')
  const created = await callCommit(c, {
    commitId: randomUUID(), snapshot: 0, blocks: [],
    records: [{ name: 'a', id: 0, expectedSerial: 0, rows: (rounds + 1) * calls * BLOCK, rowBytes: 1, blockBytes: BLOCK, body: Buffer.from([0x80]) }],
  }, 'server_only')
  if (created.status !== 'committed') throw new Error('setup commit failed')
  const array = created.ids[0]
  await c.query('CREATE TABLE bare (k bigint, data bytea)')
  await c.query('ALTER TABLE bare ALTER data SET STORAGE EXTERNAL')
  const payload = Buffer.alloc(BLOCK, 7)
  let block = 0
  let key = 0
  const modes = {
    'commit function, one 64 KiB block': async () => {
      await callCommit(c, { commitId: randomUUID(), snapshot: 0, records: [], blocks: [{ array, index: block++, data: payload }] }, 'server_only')
    },
    'commit function, nothing stored': async () => {
      await callCommit(c, { commitId: randomUUID(), snapshot: 0, records: [], blocks: [] }, 'server_only')
    },
    'bare INSERT of the same bytes': async () => {
      await c.query({ name: 'bare', text: 'INSERT INTO bare VALUES ($1, $2)', values: [key++, payload] })
    },
  }
  const lsn = async () => (await c.query('SELECT pg_current_wal_insert_lsn() AS l')).rows[0].l as string
  const totals = new Map<string, { cpu: number; wal: number; wall: number; n: number }>()
  for (const run of Object.values(modes)) for (let i = 0; i < 20; i++) await run()  // warm: plans, caches
  for (let r = 0; r < rounds; r++) {
    for (const [name, run] of Object.entries(modes)) {
      const walBefore = await lsn()
      const cpuBefore = cpuSeconds(pid)
      const started = performance.now()
      for (let i = 0; i < calls; i++) await run()
      const wall = performance.now() - started
      const cpu = cpuSeconds(pid) - cpuBefore
      const wal = Number((await c.query('SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1) AS d', [walBefore])).rows[0].d)
      const t = totals.get(name) ?? { cpu: 0, wal: 0, wall: 0, n: 0 }
      totals.set(name, { cpu: t.cpu + cpu, wal: t.wal + wal, wall: t.wall + wall, n: t.n + calls })
    }
  }
  const bare = totals.get('bare INSERT of the same bytes')!
  console.log(`${rounds} rounds of ${calls} calls each (load ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}):`)
  for (const [name, t] of totals) {
    console.log(`${name.padEnd(36)} backend CPU ${(t.cpu / t.n * 1000).toFixed(2)} ms (${(t.cpu / bare.cpu).toFixed(2)}x bare)` +
      `  WAL ${(t.wal / t.n).toFixed(0)} B  wall ${(t.wall / t.n).toFixed(2)} ms`)
  }
  await c.end()
}

main().then(() => process.exit(0), (e) => {
  console.error(e)
  process.exit(1)
})
