/**
 * S7 shared readers: 4 reader processes scan the whole S1 array at the same time, each
 * through views(4096) with a plain JS sum (bench/lib/scan.ts), started together; beside
 * 4 processes doing the same with fs.readSync chunks of the flat .npy. Each view reader's
 * clean pages are the one copy in the page cache, so the summed growth of RssAnon over the
 * scans stays small whatever the array's size. Aggregate GB/s = all bytes read / the time
 * from the start signal to the last reader's end. Page cache hot (one warm-up scan each).
 *
 * Child mode: tsx bench/s7-shared-readers.ts --reader tx|file <storeDir> <npy> <dataOffset> <chunkRows>
 * The child says {ready} over IPC once its store or file is open, scans on {go}, and
 * reports {result} (type Message).
 */
import { type Dataset, forkChild, loadNote } from './lib/data'
import { type Row, median, now, seconds } from './lib/measure'
import { prepareScan, type ScanMode, type ScanResult } from './lib/scan'

export interface S7Options {
  runs: number
  readers: number
  chunkRows: number
}

type Message = { type: 'ready' } | { type: 'go' } | { type: 'result'; result: ScanResult }

interface Outcome {
  GBps: number
  anonGrowth: number
  sums: number[]
}

function waitFor<K extends Message['type']>(child: ReturnType<typeof forkChild>, type: K): Promise<Extract<Message, { type: K }>> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`S7 reader exited with ${code} before '${type}'`))
    const onMsg = (m: Message) => {
      if (m?.type !== type) return
      child.off('message', onMsg)
      child.off('exit', onExit)
      resolve(m as Extract<Message, { type: K }>)
    }
    child.on('message', onMsg)
    child.once('exit', onExit)
  })
}

async function oneRun(ds: Dataset, mode: ScanMode, o: S7Options): Promise<Outcome> {
  const children = Array.from({ length: o.readers }, () =>
    forkChild('s7-shared-readers.ts', ['--reader', mode, ds.storeDir, ds.npyPath, String(ds.npyDataOffset), String(o.chunkRows)]))
  await Promise.all(children.map((c) => waitFor(c, 'ready')))
  const results = children.map((c) => waitFor(c, 'result'))
  const t0 = now()
  for (const c of children) c.send({ type: 'go' })
  const got = (await Promise.all(results)).map((m) => m.result)
  const wall = seconds(t0)
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))))
  return {
    GBps: got.reduce((s, g) => s + g.bytes, 0) / wall / 1e9,
    anonGrowth: got.reduce((s, g) => s + (g.peakAnon - g.baseAnon), 0),
    sums: got.map((g) => g.sum),
  }
}

/** Summed RssAnon growth allowed to the view readers. */
const ANON_ALLOWANCE = 256 << 20

export async function runS7(ds: Dataset, o: S7Options): Promise<Row[]> {
  await oneRun(ds, 'file', { ...o, readers: 1 }) // warm the page cache for both
  await oneRun(ds, 'tx', { ...o, readers: 1 })
  console.log(`  S7 ${o.readers} readers (${loadNote()})`)
  const tx: Outcome[] = []
  const file: Outcome[] = []
  for (let r = 0; r < o.runs; r++) {
    tx.push(await oneRun(ds, 'tx', o))
    file.push(await oneRun(ds, 'file', o))
  }
  const all = [...tx, ...file].flatMap((x) => x.sums)
  if (all.some((s) => s !== all[0])) throw new Error(`S7: readers' sums differ: ${all.join(' ')}`)
  const m = (xs: Outcome[], f: (x: Outcome) => number) => median(xs.map(f))
  const MiB = (x: number) => x / 2 ** 20
  const anon = m(tx, (x) => x.anonGrowth)
  const S = 'S7 shared readers'
  const base = `${o.readers} fs.readSync readers`
  return [
    { scenario: S, metric: `${o.readers} processes scanning via views, aggregate GB/s`, txarray: m(tx, (x) => x.GBps), baseline: m(file, (x) => x.GBps), baselineName: base, unit: 'GB/s', better: 'higher' },
    { scenario: S, metric: 'summed RssAnon growth', txarray: MiB(anon), baseline: MiB(m(file, (x) => x.anonGrowth)), baselineName: base, unit: 'MiB', better: 'lower', target: `<= ${MiB(ANON_ALLOWANCE)}`, met: anon <= ANON_ALLOWANCE },
  ]
}

if (require.main === module && process.argv[2] === '--reader') {
  const [mode, storeDir, npyPath, off, chunkRows] = process.argv.slice(3)
  const scan = prepareScan({ mode: mode as ScanMode, storeDir, npyPath, npyDataOffset: Number(off), chunkRows: Number(chunkRows) })
  process.on('message', (m: Message) => {
    if (m.type !== 'go') return
    const result = scan()
    process.send!({ type: 'result', result } satisfies Message, undefined, undefined, () => process.disconnect())
  })
  process.send!({ type: 'ready' } satisfies Message)
}
