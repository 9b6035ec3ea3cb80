// Child process / worker thread scripts for the view tests. Run through helpers/child.ts.
//   view-worker <dir> <name> <index> <value>  (worker) opens the store, reports the sum of a
//       view of the 1-D float64 array, writes `value` at `index` through the view, commits,
//       and reports the sum again through the same view
//   scan <dir> <mappings> <arrayMiB> <chunkMiB>  (process) fills a float64 array of
//       arrayMiB by append + commit in chunks, then sums it through one view; prints JSON
//       with the sum, the expected sum, peak RSS (anonymous and file pages), and the store's stats
import * as fs from 'node:fs'
import { parentPort, workerData } from 'node:worker_threads'
import { open } from '../../src/index'

function status(): Record<string, number> {
  const out: Record<string, number> = {}
  for (const line of fs.readFileSync('/proc/self/status', 'utf8').split('\n')) {
    const m = /^(VmRSS|VmHWM|RssAnon|RssFile|RssShmem):\s+(\d+) kB/.exec(line)
    if (m) out[m[1]] = Number(m[2]) * 1024
  }
  return out
}

function viewWorker(args: string[]): void {
  const [dir, name, index, value] = args
  const store = open(dir)
  const a = store.array(name, 'float64')
  const v = a.view()
  let sum = 0
  for (let i = 0; i < v.length; i++) sum += v[i]
  parentPort!.postMessage({ length: v.length, sum })
  v[Number(index)] = Number(value)
  store.commit()
  sum = 0
  for (let i = 0; i < v.length; i++) sum += v[i]
  parentPort!.postMessage({ length: v.length, sum })
  store.close()
  parentPort!.postMessage({ closedLength: v.length })
}

function mapCount(): number {
  return fs.readFileSync('/proc/self/maps', 'utf8').split('\n').length - 1
}

function scan(args: string[]): void {
  const [dir, mappings, arrayMiB, chunkMiB] = args.map((x, i) => (i === 0 ? x : Number(x))) as [string, number, number, number]
  const store = open(dir, { mappings, sync: false })
  const n = (arrayMiB * 2 ** 20) / 8
  const chunk = (chunkMiB * 2 ** 20) / 8
  const a = store.create<'float64'>('big', { dtype: 'float64', shape: [0] })
  store.commit()
  const buf = new Float64Array(chunk)
  let peakFill = 0
  for (let first = 0; first < n; first += chunk) {
    for (let i = 0; i < chunk; i++) buf[i] = first + i
    a.append(buf)
    store.commit()
    peakFill = Math.max(peakFill, status().VmRSS)
  }
  const afterFill = status()
  // a fresh handle: nothing of the array is loaded yet
  store.close()
  const reader = open(dir, { mappings, sync: false })
  const b = reader.array('big', 'float64')
  const beforeScan = status()
  const mapsBefore = mapCount()
  const t0 = Date.now()
  const v = b.view()
  let sum = 0
  let peakScan = 0
  let peakAnon = 0
  let peakFile = 0
  let peakMaps = 0
  for (let i = 0; i < v.length; i++) {
    sum += v[i]
    if ((i & 0xfffff) === 0) {
      const st = status()
      peakScan = Math.max(peakScan, st.VmRSS)
      peakAnon = Math.max(peakAnon, st.RssAnon)
      peakFile = Math.max(peakFile, st.RssFile)
      peakMaps = Math.max(peakMaps, mapCount())
    }
  }
  const scanMs = Date.now() - t0
  const end = status()
  peakScan = Math.max(peakScan, end.VmRSS)
  const stats = reader.stats()
  const expected = (n * (n - 1)) / 2
  process.stdout.write(JSON.stringify({ n, sum, expected, length: v.length, scanMs, peakFill, peakScan, peakAnon, peakFile, peakMaps, mapsBefore, beforeScan, afterFill, end, stats }) + '\n')
  reader.close()
}

if (process.env.TXA_CHILD) {
  if (parentPort && workerData) {
    const [mode, ...rest] = workerData as string[]
    if (mode === 'view-worker') viewWorker(rest)
    else throw new Error(`unknown mode ${mode}`)
  } else if (!parentPort) {
    const [mode, ...rest] = process.argv.slice(2)
    if (mode === 'scan') scan(rest)
    else throw new Error(`unknown mode ${mode}`)
  }
}
