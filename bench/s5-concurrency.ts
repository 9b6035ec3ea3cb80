/**
 * S5 concurrency: 1, 2 and 4 reader processes, each reading random 16-row windows of the
 * S1 array with take() in batches of 64 windows for a fixed time, refreshing its snapshot
 * before each batch; with one writer process committing 16-row appends (durable commits,
 * the default) to another array of the same store as fast as it can, and without it (the
 * baseline). Reports total windows/s per reader count and the writer's commits/s. The
 * writer's array is truncated whenever it reaches 16 384 rows (256 MB), so the store does
 * not grow without bound; it is deleted at the end. Mind the core count: with N readers +
 * a writer on a 2-core machine the processes share the CPUs.
 *
 * Child modes: tsx bench/s5-concurrency.ts --reader <storeDir> <seed> <seconds>
 *              tsx bench/s5-concurrency.ts --writer <storeDir>
 * Children say {ready} over IPC, start on {go}; readers report {result: windows, seconds};
 * the writer runs until {stop} and reports {writerResult: commits, seconds} (type Message).
 */
import * as os from 'node:os'
import { open } from '../src/index'
import { ARRAY_NAME, COLS, type Dataset, forkChild, loadNote, randomStarts } from './lib/data'
import { type Row, median, now, seconds } from './lib/measure'

const WRITER_ARRAY = 's5-writer'
const WINDOW_ROWS = 16
const BATCH = 64
const APPEND_ROWS = 16
const WRITER_CAP_ROWS = 16384

export interface S5Options {
  runs: number
  seconds: number
  readerCounts: number[]
}

interface Outcome {
  windowsPerSec: number
  commitsPerSec: number
}

/** The messages parent and children exchange (over the IPC channel). */
type Message =
  | { type: 'ready' }
  | { type: 'go' }
  | { type: 'stop' }
  | { type: 'result'; windows: number; seconds: number }
  | { type: 'writerResult'; commits: number; seconds: number }

/** Sends a message to the parent (children only: they run with an IPC channel). */
function toParent(message: Message, then?: () => void): void {
  process.send!(message, undefined, undefined, then)
}

function waitMessage<K extends Message['type']>(child: ReturnType<typeof forkChild>, type: K): Promise<Extract<Message, { type: K }>> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: Message) => {
      if (m?.type === type) {
        child.off('message', onMsg)
        resolve(m as Extract<Message, { type: K }>)
      }
    }
    child.on('message', onMsg)
    child.once('exit', (code) => reject(new Error(`S5 child exited with ${code} before '${type}'`)))
  })
}

async function oneRun(ds: Dataset, readers: number, withWriter: boolean, secs: number, run: number): Promise<Outcome> {
  const rs = Array.from({ length: readers }, (_, i) => forkChild('s5-concurrency.ts', ['--reader', ds.storeDir, String(1000 * run + i + 1), String(secs)]))
  const w = withWriter ? forkChild('s5-concurrency.ts', ['--writer', ds.storeDir]) : null
  const all = w ? [...rs, w] : rs
  await Promise.all(all.map((c) => waitMessage(c, 'ready')))
  const results = rs.map((c) => waitMessage(c, 'result'))
  const wres = w ? waitMessage(w, 'writerResult') : null
  for (const c of all) c.send({ type: 'go' })
  const got = await Promise.all(results)
  w?.send({ type: 'stop' })
  const wr = wres ? await wres : null
  await Promise.all(all.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))))
  return {
    windowsPerSec: got.reduce((s, g) => s + g.windows / g.seconds, 0),
    commitsPerSec: wr ? wr.commits / wr.seconds : 0,
  }
}

export async function runS5(ds: Dataset, o: S5Options): Promise<Row[]> {
  {
    const store = open(ds.storeDir)
    if (store.has(WRITER_ARRAY)) store.delete(WRITER_ARRAY)
    store.create(WRITER_ARRAY, { dtype: 'float64', shape: [0, COLS] })
    store.commit()
    store.close()
  }
  const results: { readers: number; alone: Outcome; writer: Outcome }[] = []
  const med = (xs: Outcome[]): Outcome => ({ windowsPerSec: median(xs.map((x) => x.windowsPerSec)), commitsPerSec: median(xs.map((x) => x.commitsPerSec)) })
  for (const n of o.readerCounts) {
    const alone: Outcome[] = []
    const writer: Outcome[] = []
    for (let r = 0; r < o.runs; r++) {
      alone.push(await oneRun(ds, n, false, o.seconds, r))
      writer.push(await oneRun(ds, n, true, o.seconds, r))
    }
    results.push({ readers: n, alone: med(alone), writer: med(writer) })
    console.log(`  S5 ${n} reader(s): alone ${med(alone).windowsPerSec.toFixed(0)} win/s, with writer ${med(writer).windowsPerSec.toFixed(0)} win/s, ` +
      `writer ${med(writer).commitsPerSec.toFixed(0)} commits/s (${loadNote()})`)
  }
  {
    const store = open(ds.storeDir)
    store.delete(WRITER_ARRAY)
    store.commit()
    store.close()
  }
  const cores = os.cpus().length
  const rows: Row[] = []
  for (const r of results) {
    rows.push({ scenario: 'S5 concurrency', metric: `${r.readers} reader(s) + writer: total windows/s (${cores} cores)`, txarray: r.writer.windowsPerSec, baseline: r.alone.windowsPerSec, baselineName: 'same readers, no writer', unit: 'win/s', better: 'higher' })
    rows.push({ scenario: 'S5 concurrency', metric: `writer commits/s beside ${r.readers} reader(s)`, txarray: r.writer.commitsPerSec, baseline: null, baselineName: `durable ${APPEND_ROWS}-row appends`, unit: '/s', better: 'higher' })
  }
  return rows
}

// ---- children ----
function readerChild(storeDir: string, seed: number, secs: number): void {
  const store = open(storeDir)
  const a = store.array(ARRAY_NAME, 'float64')
  const pool = randomStarts(BATCH * 256, a.rows, WINDOW_ROWS, seed)
  const out = new Float64Array(BATCH * WINDOW_ROWS * COLS).fill(1)
  // Warm: every window of the pool once, so that the measurement is the steady state (the
  // LMDB map's pages mapped in this process), not the first mapping of 4 GB.
  for (let at = 0; at < pool.length; at += BATCH) a.take(pool.subarray(at, at + BATCH), WINDOW_ROWS, out)
  toParent({ type: 'ready' })
  process.once('message', () => {
    let windows = 0
    let b = 0
    const t0 = now()
    while (seconds(t0) < secs) {
      store.refresh()
      const at = (b++ % 256) * BATCH
      a.take(pool.subarray(at, at + BATCH), WINDOW_ROWS, out)
      windows += BATCH
    }
    toParent({ type: 'result', windows, seconds: seconds(t0) }, () => {
      store.close()
      process.disconnect()
    })
  })
}

function writerChild(storeDir: string): void {
  const store = open(storeDir)
  const w = store.array(WRITER_ARRAY, 'float64')
  const rows = new Float64Array(APPEND_ROWS * COLS).fill(3.25)
  let stop = false
  process.on('message', (m: Message) => {
    if (m?.type === 'go') {
      let commits = 0
      const t0 = now()
      // Commit in slices of ~20 ms, yielding to the event loop to see 'stop'.
      const slice = () => {
        const t = now()
        while (seconds(t) < 0.02) {
          if (w.rows >= WRITER_CAP_ROWS) w.resize([0, COLS])
          w.append(rows)
          store.commit()
          commits++
        }
        if (stop) {
          toParent({ type: 'writerResult', commits, seconds: seconds(t0) }, () => {
            store.close()
            process.disconnect()
          })
        } else setImmediate(slice)
      }
      slice()
    } else if (m?.type === 'stop') stop = true
  })
  toParent({ type: 'ready' })
}

if (require.main === module) {
  const [mode, ...args] = process.argv.slice(2)
  if (mode === '--reader') readerChild(args[0], Number(args[1]), Number(args[2]))
  else if (mode === '--writer') writerChild(args[0])
}
