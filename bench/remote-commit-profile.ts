/**
 * npx tsx bench/remote-commit-profile.ts [--commits 200] [--url postgres://…] [--log-statements]
 *
 * Where one remote commit's time goes (docs/scale-out.md, "What one commit costs"): commits
 * of one 64 KiB block through store.commit(), each phase timed on the calling thread —
 * writing the block into the array, plan (Transaction.planRemote), the commit call to the
 * link's thread (the hop there and back, the server's transaction, the block written into
 * the cache from the plan), the settle's catch-up call (a hop: the cache already holds the
 * commit), and moving the handle (Transaction.settleRemote) — beside, in the same rounds,
 * the commit function called directly on a connection of this thread (the server's part
 * alone) and a bare INSERT + COMMIT of the same bytes.
 *
 * --log-statements turns on log_statement=all for the database and prints how many
 * statements the server logged per commit (the throwaway cluster's log only).
 * Run under `strace -f -c -e trace=%network,fdatasync,fsync,msync,futex` for the syscalls.
 */
import { randomUUID } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { parseArgs } from 'node:util'
import { Client } from 'pg'
import { open, slice } from '../src/index'
import { callCommit } from '../src/remote/commit-call'
import { RemoteLink } from '../src/remote/remote-link'
import { install } from '../src/remote/schema'
import { Transaction } from '../src/transaction'
import { median } from './lib/measure'
import { benchPostgresUrl } from './lib/postgres-url'

const { values } = parseArgs({
  options: { commits: { type: 'string', default: '200' }, url: { type: 'string' }, 'log-statements': { type: 'boolean', default: false } },
})
const commits = Number(values.commits)
const BLOCK = 64 * 1024

/** Wraps method `name` of `proto` so that its calls add their time to `into`. */
function timeMethod(proto: object, name: string, into: { ms: number }): void {
  const target = proto as Record<string, (...args: unknown[]) => unknown>
  const original = target[name]
  target[name] = function (this: unknown, ...args: unknown[]) {
    const t = performance.now()
    try {
      return original.apply(this, args)
    } finally {
      into.ms += performance.now() - t
    }
  }
}

async function main() {
  const url = await benchPostgresUrl(values.url)
  const admin = new Client({ connectionString: url })
  await admin.connect()
  const dbName = new URL(url).pathname.slice(1)
  let logFile: string | null = null
  if (values['log-statements']) {
    await admin.query(`ALTER DATABASE ${dbName} SET log_statement = 'all'`)
    const dataDir = (await admin.query('SHOW data_directory')).rows[0].data_directory as string
    logFile = path.join(path.dirname(dataDir), 'log')
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'txa-profile-'))
  const store = open(path.join(dir, 'cache'), { remote: url })
  const blocks = store.create('blocks', { dtype: 'uint8', shape: [(commits + 20) * BLOCK], blockBytes: BLOCK })
  store.commit()
  await admin.query('CREATE TABLE bare (k bigint, data bytea)')
  await admin.query('ALTER TABLE bare ALTER data SET STORAGE EXTERNAL')
  // The server's part alone: the commit function on this thread's connection, into a store
  // of its own (another schema: its commits are not caught up into the cache above).
  await install(admin, 'direct')
  const direct = await callCommit(admin, {
    commitId: randomUUID(), snapshot: 0, blocks: [],
    records: [{ name: 'direct', id: 0, expectedSerial: 0, rows: (commits + 20) * BLOCK, rowBytes: 1, blockBytes: BLOCK, body: Buffer.from([0x80]) }],
  }, 'direct')
  if (direct.status !== 'committed') throw new Error('setup commit failed')
  const directId = direct.ids[0]

  const phase = { plan: { ms: 0 }, commitCall: { ms: 0 }, catchUpCall: { ms: 0 }, settle: { ms: 0 } }
  timeMethod(Transaction.prototype, 'planRemote', phase.plan)
  timeMethod(RemoteLink.prototype, 'commitSync', phase.commitCall)
  timeMethod(RemoteLink.prototype, 'catchUpSync', phase.catchUpCall)
  timeMethod(Transaction.prototype, 'settleRemote', phase.settle)
  const rows: Record<string, number[]> = { write: [], plan: [], commitCall: [], catchUpCall: [], settle: [], commit: [], serverOnly: [], bare: [] }
  const payload = Buffer.alloc(BLOCK)
  let logBefore = 0
  for (let i = -20; i < commits; i++) {
    if (i === 0 && logFile) logBefore = fs.readFileSync(logFile, 'utf8').split('\n').length
    payload.fill((i + 20) % 251 + 1)
    for (const p of Object.values(phase)) p.ms = 0
    const started = performance.now()
    blocks.write([slice((i + 20) * BLOCK, (i + 21) * BLOCK)], payload)
    const written = performance.now()
    store.commit()
    const committed = performance.now()
    if (i === commits - 1 && logFile) {
      const lines = fs.readFileSync(logFile, 'utf8').split('\n').slice(logBefore - 1)
      const statements = lines.filter((l) => /LOG:\s+(statement|execute)/.test(l))
      const kinds = new Map<string, number>()
      for (const l of statements) {
        const kind = /direct\.commit\(/.test(l) ? 'the direct commit function (baseline)'
          : /\.commit\(/.test(l) ? 'commit function (store.commit())'
            : /changes_since\(/.test(l) ? 'changes_since (catch-up)'
              : /INSERT INTO bare/.test(l) ? 'bare INSERT (baseline)' : 'other'
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
      }
      console.log(`server log (log_statement = all), statements per round of ${commits}:`)
      for (const [kind, n] of kinds) console.log(`  ${kind.padEnd(40)} ${(n / commits).toFixed(2)}`)
    }
    let t = performance.now()
    await callCommit(admin, { commitId: randomUUID(), snapshot: 0, records: [], blocks: [{ array: directId, index: i + 20, data: payload }] }, 'direct')
    const serverOnly = performance.now() - t
    t = performance.now()
    await admin.query({ name: 'bare', text: 'INSERT INTO bare VALUES ($1, $2)', values: [i, payload] })
    const bare = performance.now() - t
    if (i < 0) continue
    rows.write.push(written - started)
    rows.commit.push(committed - written)
    for (const [k, p] of Object.entries(phase)) rows[k].push(p.ms)
    rows.serverOnly.push(serverOnly)
    rows.bare.push(bare)
  }
  const show = (label: string, xs: number[]) => console.log(`${label.padEnd(58)} p50 ${(median(xs) * 1000).toFixed(0).padStart(6)} µs`)
  console.log(`${commits} commits of one 64 KiB block (sync), each phase's p50:`)
  show('writing the block into the array (before commit())', rows.write)
  show('store.commit() in all', rows.commit)
  show('  plan (Transaction.planRemote)', rows.plan)
  show('  commit call: hop + server transaction + cache write', rows.commitCall)
  show('  settle catch-up call (a hop: the cache holds it)', rows.catchUpCall)
  show('  settle: the handle moves (Transaction.settleRemote)', rows.settle)
  show('the commit function called directly (server + wire)', rows.serverOnly)
  show('bare INSERT + COMMIT of the same bytes', rows.bare)
  store.close()
  if (logFile) await admin.query(`ALTER DATABASE ${dbName} RESET log_statement`)
  await admin.end()
  fs.rmSync(dir, { recursive: true, force: true })
}

main().then(() => process.exit(0), (e) => {
  console.error(e)
  process.exit(1)
})
