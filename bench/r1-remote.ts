/**
 * R1 a remote store (PostgreSQL): each figure beside a baseline measured in the same run.
 *   - durable commit of one 64 KiB block through store.commit() (write the block, commit:
 *     plan, the commit call, the block written into the local cache and flushed, the
 *     handle moving), p50 and p99, and the same with sync: false (neither the server's WAL
 *     nor the cache flushed), beside a bare `pg` INSERT of the same bytes in its own
 *     transaction (autocommit: one round trip and a COMMIT, the least PostgreSQL can do);
 *     they alternate, one each per round, so load that comes and goes hits all alike;
 *   - an append stream: 1 MiB appended and committed at a time, MB/s, beside COPY (binary)
 *     of the same 1 MiB pieces into a bytea table, one COPY per piece;
 *   - commit on machine A -> visible on machine B: from the start of A's commit() to B
 *     (a worker thread with its own connections and cache, waiting in waitForCommit())
 *     having refreshed to it, p50, beside a bare NOTIFY -> LISTEN between two `pg` clients;
 *   - random windows (take() of 16 rows × 2000 float64) from a warm cache of a remote
 *     store, beside the same windows from a local store of the same data.
 * Without --pgurl the server is a throwaway cluster (the tests' helper: fsync=off, so no
 * figure, baseline included, contains a server-side disk flush; give --pgurl for a real
 * server); without either, R1 is skipped with a note.
 *
 * Worker mode (machine B): started by runR1 with workerData { url, schema, cache }.
 */
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { Client, type Connection } from 'pg'
import { open, slice } from '../src/index'
import { type Row, median, percentile } from './lib/measure'
import { randomStarts } from './lib/data'
import { testPostgres } from '../test/helpers/postgres'

export interface R1Options {
  runs: number
  /** Commits of one block (each beside one bare INSERT). */
  commits: number
  /** MiB appended by the stream. */
  appendMiB: number
  /** Commits whose visibility on B is timed. */
  visibility: number
  windows: number
  /** A server to use instead of a throwaway cluster. */
  url?: string
  log?: (s: string) => void
}

const BLOCK = 64 * 1024
const PIECE = 1 << 20
const COLS = 2000

const nowMs = () => performance.timeOrigin + performance.now()

/** One COPY ... FROM STDIN (FORMAT binary) of `rows` (one bytea each), through pg's submittable interface. */
function copyIn(client: Client, table: string, rows: Buffer[]): Promise<void> {
  const parts: Buffer[] = [Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]
  for (const r of rows) {
    const head = Buffer.alloc(6)
    head.writeInt16BE(1, 0)
    head.writeInt32BE(r.length, 2)
    parts.push(head, r)
  }
  const trailer = Buffer.alloc(2)
  trailer.writeInt16BE(-1, 0)
  parts.push(trailer)
  return new Promise((resolve, reject) => {
    let failed: Error | null = null
    const submittable = {
      submit: (c: Connection) => { (c as unknown as { query(text: string): void }).query(`COPY ${table} (data) FROM STDIN (FORMAT binary)`) },
      handleCopyInResponse: (c: Connection) => {
        const con = c as unknown as { sendCopyFromChunk(b: Buffer): void; endCopyFrom(): void }
        for (const p of parts) con.sendCopyFromChunk(p)
        con.endCopyFrom()
      },
      handleCommandComplete: () => undefined,
      handleError: (e: Error) => { failed = e },
      handleReadyForQuery: () => (failed ? reject(failed) : resolve()),
    }
    client.query(submittable as never)
  })
}

/** The server to measure against; null (with a note) when there is none. */
async function serverUrl(log: (s: string) => void, given?: string): Promise<string | null> {
  if (given) return given
  const found = testPostgres()
  if ('skipped' in found) {
    log(`  R1 skipped: ${found.skipped} (give --pgurl to use a running server)`)
    return null
  }
  return found.server.freshDatabase()
}

/** Machine B: reports when each commit is visible to it. */
async function machineB(): Promise<void> {
  const { url, schema, cache } = workerData as { url: string; schema: string; cache: string }
  const b = open(cache, { remote: url, remoteSchema: schema })
  let stop = false
  parentPort!.on('message', (m) => { if (m === 'stop') stop = true })
  parentPort!.postMessage({ ready: b.serial })
  while (!stop) {
    try {
      await b.waitForCommit({ timeoutMs: 200, keepAlive: true })
    } catch {
      continue  // timeout: look at stop again
    }
    b.refresh()
    parentPort!.postMessage({ serial: b.serial, at: nowMs() })
  }
  b.close()
  parentPort!.close()
}

export async function runR1(dir: string, o: R1Options): Promise<Row[]> {
  const log = o.log ?? console.log
  const url = await serverUrl(log, o.url)
  if (!url) return []
  const schema = `r1_${randomBytes(4).toString('hex')}`
  const cache = (name: string) => fs.mkdtempSync(path.join(dir, `r1-${name}-`))
  const made: string[] = []
  const a = open((made[made.length] = cache('a')), { remote: url, remoteSchema: schema })
  const bare = new Client({ connectionString: url })
  await bare.connect()
  await bare.query(`CREATE TABLE ${schema}.bare (k bigint, data bytea)`)
  await bare.query(`ALTER TABLE ${schema}.bare ALTER data SET STORAGE EXTERNAL`)
  const rows: Row[] = []
  try {
    // 1. One 64 KiB block per commit, beside INSERT + COMMIT of the same bytes.
    const blocks = a.create('blocks', { dtype: 'uint8', shape: [2 * (o.commits + 10) * BLOCK], blockBytes: BLOCK })
    a.commit()
    const payload = Buffer.alloc(BLOCK)
    const mine: number[] = []
    const mineNoSync: number[] = []
    const theirs: number[] = []
    const commitOne = (i: number, sync: boolean) => {
      payload.fill(i % 251 + 1)
      const t = performance.now()
      blocks.write([slice(i * BLOCK, (i + 1) * BLOCK)], payload)
      a.commit({ sync })
      return performance.now() - t
    }
    for (let i = 0; i < o.commits + 10; i++) {
      const m = commitOne(2 * i, true)
      const n = commitOne(2 * i + 1, false)
      const t = performance.now()
      await bare.query(`INSERT INTO ${schema}.bare VALUES ($1, $2)`, [i, payload])
      const b = performance.now() - t
      if (i >= 10) { mine.push(m); mineNoSync.push(n); theirs.push(b) }  // 10 warm-up rounds
    }
    for (const p of [50, 99]) {
      const ours = percentile(mine, p) * 1000
      const base = percentile(theirs, p) * 1000
      rows.push({
        scenario: 'R1', metric: `commit of one 64 KiB block, p${p}`, txarray: ours, baseline: base, baselineName: 'pg INSERT + COMMIT',
        unit: 'µs', better: 'lower', ...(p === 50 ? { target: '≤ 2×', met: ours <= 2 * base } : {}),
      })
    }
    rows.push({
      scenario: 'R1', metric: 'commit of one 64 KiB block, sync: false, p50', txarray: percentile(mineNoSync, 50) * 1000,
      baseline: percentile(theirs, 50) * 1000, baselineName: 'pg INSERT + COMMIT', unit: 'µs', better: 'lower',
    })
    log(`  R1 commit: p50 ${(percentile(mine, 50) * 1000).toFixed(0)} µs vs ${(percentile(theirs, 50) * 1000).toFixed(0)} µs`)

    // 2. Append stream vs COPY, best of --runs.
    await bare.query(`CREATE TABLE ${schema}.copied (data bytea)`)
    await bare.query(`ALTER TABLE ${schema}.copied ALTER data SET STORAGE EXTERNAL`)
    const stream = a.create('stream', { dtype: 'uint8', shape: [0], blockBytes: BLOCK })
    a.commit()
    const piece = Buffer.alloc(PIECE)
    let ourRate = 0
    let copyRate = 0
    for (let run = 0; run < o.runs; run++) {
      let t = performance.now()
      for (let i = 0; i < o.appendMiB; i++) {
        piece.fill(i % 251 + 1)
        stream.append(piece)
        a.commit()
      }
      ourRate = Math.max(ourRate, (o.appendMiB * PIECE) / 1e6 / ((performance.now() - t) / 1000))
      t = performance.now()
      for (let i = 0; i < o.appendMiB; i++) {
        piece.fill(i % 251 + 1)
        await copyIn(bare, `${schema}.copied`, [piece])
      }
      copyRate = Math.max(copyRate, (o.appendMiB * PIECE) / 1e6 / ((performance.now() - t) / 1000))
    }
    rows.push({
      scenario: 'R1', metric: `append stream, 1 MiB per commit (${o.appendMiB} MiB)`, txarray: ourRate, baseline: copyRate,
      baselineName: 'COPY (binary), 1 MiB per COPY', unit: 'MB/s', better: 'higher', target: '≥ 0.5×', met: ourRate >= 0.5 * copyRate,
    })

    // 3. Commit on A -> visible on B (another thread: its own link thread, connections, cache).
    const script = __filename
    const code = `require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(script)})`
    const worker = new Worker(code, { eval: true, workerData: { url, schema, cache: (made[made.length] = cache('b')) } })
    const seen = new Map<number, number>()
    let ready: () => void = () => undefined
    const isReady = new Promise<void>((resolve) => { ready = resolve })
    let waiting: { serial: number; resolve: () => void } | null = null
    worker.on('message', (m: { ready?: number; serial?: number; at?: number }) => {
      if (m.ready !== undefined) ready()
      if (m.serial !== undefined) {
        seen.set(m.serial, m.at!)
        if (waiting && m.serial >= waiting.serial) waiting.resolve()
      }
    })
    await isReady
    const started = new Map<number, number>()
    const tick = a.create('tick', { dtype: 'uint8', shape: [1] })
    a.commit()
    for (let i = 0; i < o.visibility; i++) {
      await new Promise((r) => setTimeout(r, 10))
      tick.write([slice(0, 1)], i % 250 + 1)
      const t0 = nowMs()
      a.commit()
      started.set(a.serial, t0)
      await new Promise<void>((resolve) => {
        waiting = { serial: a.serial, resolve }
        if ((seen.get(a.serial) ?? 0) > 0) resolve()
      })
    }
    worker.postMessage('stop')
    await new Promise((r) => worker.on('exit', r))
    const lags = [...started].map(([serial, t0]) => seen.get(serial)! - t0).filter((x) => Number.isFinite(x))
    const listener = new Client({ connectionString: url })
    await listener.connect()
    await listener.query('LISTEN r1_probe')
    const notifyLags: number[] = []
    for (let i = 0; i < o.visibility; i++) {
      const got = new Promise<number>((resolve) => listener.once('notification', () => resolve(nowMs())))
      const t0 = nowMs()
      await bare.query("SELECT pg_notify('r1_probe', '')")
      notifyLags.push((await got) - t0)
    }
    await listener.end()
    rows.push({
      scenario: 'R1', metric: 'commit on A -> visible on B (refreshed), p50', txarray: median(lags) * 1000,
      baseline: median(notifyLags) * 1000, baselineName: 'pg NOTIFY -> LISTEN', unit: 'µs', better: 'lower',
      target: '< 10 ms', met: median(lags) < 10,
    })

    // 4. Random windows from a warm cache, beside a local store of the same data.
    const winRows = 2048
    const local = open((made[made.length] = cache('local')))
    const remoteWin = a.create('win', { dtype: 'float64', shape: [0, COLS] })
    const localWin = local.create('win', { dtype: 'float64', shape: [0, COLS] })
    const chunk = new Float64Array(256 * COLS)
    for (let r = 0; r < winRows; r += 256) {
      for (let i = 0; i < chunk.length; i++) chunk[i] = r * COLS + i
      remoteWin.append(chunk)
      a.commit()
      localWin.append(chunk)
      local.commit()
    }
    const starts = randomStarts(o.windows, winRows, 16)
    const out = new Float64Array(o.windows * 16 * COLS)
    // Both warm first (the first take() of a process also touches `out`'s fresh pages), then
    // they alternate, at least 5 rounds: one sample each on a loaded machine says little.
    const takes = [() => { remoteWin.take(starts, 16, out) }, () => { localWin.take(starts, 16, out) }]
    for (const take of takes) take()
    const samples: number[][] = [[], []]
    for (let round = 0; round < Math.max(o.runs, 5); round++) {
      takes.forEach((take, k) => {
        const t = performance.now()
        take()
        samples[k].push(o.windows / ((performance.now() - t) / 1000))
      })
    }
    const [remoteRate, localRate] = samples.map(median)
    local.close()
    rows.push({
      scenario: 'R1', metric: `take() windows of 16 rows × ${COLS} float64 from a warm cache`, txarray: remoteRate, baseline: localRate,
      baselineName: 'the same from a local store', unit: 'windows/s', better: 'higher', target: '≥ 0.9×', met: remoteRate >= 0.9 * localRate,
    })
  } finally {
    await bare.end().catch(() => undefined)
    a.close()
    for (const d of made) fs.rmSync(d, { recursive: true, force: true })
  }
  return rows
}

if (!isMainThread && (workerData as { schema?: string })?.schema) {
  machineB().catch((e) => { console.error(e); process.exit(1) })
}
