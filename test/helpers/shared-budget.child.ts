// Child process / worker thread script for test/view-shared-budget.test.ts. Run through
// helpers/child.ts with TXARRAY_MAPPINGS set: every handle here shares the process's budget.
//   run <dir> <workers> <rounds>  (process) opens two stores on this thread and starts
//       `workers` worker threads, each opening a store of its own; once all are ready, every
//       actor reads random windows of its array through fresh views, writes through some of
//       them and commits now and then, while /proc/self/maps is sampled; prints JSON with the
//       mappings sampled (peak minus the count when all were ready), each actor's report
//       and the process budget's figures
//   (worker) the same actor, on workerData { dir, seed, rounds, go }
import * as fs from 'node:fs'
import * as path from 'node:path'
import { isMainThread, parentPort, workerData } from 'node:worker_threads'
import { open, processMappings, slice } from '../../src/index'
import { startWorker, workerDone } from './child'
import { Rng } from './random'

const BLOCK = 65536
const PER_BLOCK = BLOCK / 8
const BLOCKS = 96 // 6 MiB per array

export const mapCount = (): number => fs.readFileSync('/proc/self/maps', 'utf8').split('\n').length - 1

interface ActorReport {
  name: string
  reads: number
  writes: number
  commits: number
  wrong: string[]
  peakMaps: number
  mappingsLimit: number
}

// One handle on one store: an array of BLOCKS blocks holding i at i, then random windows.
class Actor {
  readonly store
  readonly array
  readonly rng: Rng
  readonly written = new Map<number, number>()
  readonly report: ActorReport

  constructor(readonly dir: string, seed: number) {
    this.store = open(dir, { sync: false })
    this.array = this.store.create<'float64'>('a', { dtype: 'float64', shape: [BLOCKS * PER_BLOCK], blockBytes: BLOCK })
    const init = new Float64Array(BLOCKS * PER_BLOCK)
    for (let i = 0; i < init.length; i++) init[i] = i
    this.array.write([slice(0, init.length)], init)
    this.store.commit()
    this.rng = new Rng(seed)
    this.report = { name: path.basename(dir), reads: 0, writes: 0, commits: 0, wrong: [], peakMaps: 0, mappingsLimit: this.store.stats().mappingsLimit }
  }

  // A window of 1 to 6 blocks somewhere in the array, read (a few elements of each block),
  // sometimes written; a commit now and then.
  step(k: number): void {
    const first = this.rng.int(0, BLOCKS - 1)
    const last = Math.min(BLOCKS - 1, first + this.rng.int(0, 5))
    const v = this.array.view(first * PER_BLOCK, (last + 1) * PER_BLOCK)
    for (let b = first; b <= last; b++) {
      for (const at of [0, this.rng.int(0, PER_BLOCK - 1), PER_BLOCK - 1]) {
        const i = b * PER_BLOCK + at
        const want = this.written.get(i) ?? i
        const got = v[i - first * PER_BLOCK]
        this.report.reads++
        if (got !== want && this.report.wrong.length < 5) this.report.wrong.push(`step ${k}: element ${i} is ${got}, not ${want}`)
      }
    }
    if (this.rng.chance(0.3)) {
      const i = this.rng.int(first * PER_BLOCK, (last + 1) * PER_BLOCK - 1)
      const x = -(k + 1) - this.rng.int(0, 1000) / 1024
      v[i - first * PER_BLOCK] = x
      this.written.set(i, x)
      this.report.writes++
    }
    if (this.rng.chance(0.05)) {
      this.store.commit()
      this.report.commits++
    }
    this.report.peakMaps = Math.max(this.report.peakMaps, mapCount())
  }

  // Commits what is left, then checks every element through a copy (read()), not a view.
  finish(): ActorReport {
    this.store.commit()
    this.report.commits++
    const data = this.array.read().data
    for (let i = 0; i < data.length; i++) {
      const want = this.written.get(i) ?? i
      if (data[i] !== want && this.report.wrong.length < 10) this.report.wrong.push(`committed element ${i} is ${data[i]}, not ${want}`)
    }
    this.store.close()
    return this.report
  }
}

function waitForGo(go: Int32Array): void {
  while (Atomics.load(go, 0) === 0) Atomics.wait(go, 0, 0, 1000)
}

async function run(args: string[]): Promise<void> {
  const [dir, workersArg, roundsArg] = args
  const workers = Number(workersArg)
  const rounds = Number(roundsArg)
  const go = new Int32Array(new SharedArrayBuffer(4))
  const ready = new Int32Array(new SharedArrayBuffer(4))
  const started = []
  for (let w = 0; w < workers; w++) {
    const worker = startWorker(__filename, { dir: path.join(dir, `worker${w}`), seed: 100 + w, rounds, go, ready })
    started.push(workerDone<ActorReport | 'ready'>(worker))
  }
  const mine = [new Actor(path.join(dir, 'main0'), 1), new Actor(path.join(dir, 'main1'), 2)]
  while (Atomics.load(ready, 0) < workers) Atomics.wait(ready, 0, Atomics.load(ready, 0), 100)
  const before = mapCount()
  const figuresBefore = processMappings()
  Atomics.store(go, 0, 1)
  Atomics.notify(go, 0)
  for (let k = 0; k < rounds; k++) for (const actor of mine) actor.step(k)
  const reports = mine.map((actor) => actor.finish())
  for (const messages of await Promise.all(started)) reports.push(...(messages.filter((m) => m !== 'ready') as ActorReport[]))
  const peakMaps = Math.max(...reports.map((r) => r.peakMaps))
  console.log(JSON.stringify({ before, peakGrowth: peakMaps - before, figuresBefore, figures: processMappings(), reports }))
}

function worker(): void {
  const { dir, seed, rounds, go, ready } = workerData as { dir: string, seed: number, rounds: number, go: Int32Array, ready: Int32Array }
  const actor = new Actor(dir, seed)
  Atomics.add(ready, 0, 1)
  Atomics.notify(ready, 0)
  waitForGo(go)
  for (let k = 0; k < rounds; k++) actor.step(k)
  parentPort!.postMessage(actor.finish())
}

if (process.env.TXA_CHILD) {
  if (!isMainThread) {
    worker()
  } else {
    const [cmd, ...args] = process.argv.slice(2)
    if (cmd === 'run') {
      run(args).catch((e) => {
        console.error(e)
        process.exit(1)
      })
    } else if (cmd === 'limit') {
      // prints the process budget's limit, or the error TXARRAY_MAPPINGS makes
      try {
        console.log(JSON.stringify({ limit: processMappings().limit }))
      } catch (e) {
        const err = e as { name: string, code: string, message: string }
        console.log(JSON.stringify({ error: err.name, code: err.code, message: err.message }))
      }
      try {
        open(args[0]).close()
        console.log(JSON.stringify({ opened: true }))
      } catch (e) {
        const err = e as { name: string, code: string, message: string }
        console.log(JSON.stringify({ openError: err.name, code: err.code, message: err.message }))
      }
    } else {
      throw new Error(`unknown command ${cmd}`)
    }
  }
}
