/**
 * S6 wake-up latency: one process commits, another wakes. The parent appends one row and
 * commits (sync: false: the durable flush is S4's subject) `commits` times, a few ms
 * apart so that the follower is asleep each time; the child awaits
 * store.waitForCommit() and stamps the moment it resumes. Latency = resume time in the
 * child − start of commit() in the parent (CLOCK_MONOTONIC is one clock for all
 * processes), so it includes the commit itself; also reported from the return of
 * commit() (the child may resume before the parent returns: the doorbell rings as soon
 * as LMDB has committed, so this one can be negative). Baseline: the same two processes, the
 * parent writing its timestamp to a pipe the child reads in its event loop (a one-way
 * pipe wake-up), measured the same way. p50 and p99 of each.
 *
 * Child mode: tsx bench/s6-wake.ts --child <storeDir>
 *   IPC: says {ready}; then for each commit sends {t} (resume time, ns as a string);
 *   echoes each pipe stamp back as {pipe: sent, got} over IPC.
 */
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { open } from '../src/index'
import { type Row, now, percentile } from './lib/measure'

export interface S6Options {
  commits: number
}

const GAP_MS = 3

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

export async function runS6(dir: string, o: S6Options): Promise<Row[]> {
  const storeDir = path.join(dir, 's6')
  fs.rmSync(storeDir, { recursive: true, force: true })
  const store = open(storeDir, { sync: false })
  const a = store.create('ticks', { dtype: 'float64', shape: [0] })
  store.commit()
  const child = spawn(process.execPath, ['-r', require.resolve('tsx/cjs'), __filename, '--child', storeDir], {
    stdio: ['pipe', 'inherit', 'inherit', 'ipc'],
  })
  const inbox: Array<Record<string, string>> = []
  let wakeInbox: (() => void) | null = null
  child.on('message', (m: Record<string, string>) => {
    inbox.push(m)
    wakeInbox?.()
  })
  const next = async (): Promise<Record<string, string>> => {
    while (inbox.length === 0) await new Promise<void>((r) => (wakeInbox = r))
    return inbox.shift()!
  }
  await next()  // ready

  const row = new Float64Array(1)
  const wake: number[] = []
  const afterReturn: number[] = []
  const commitMs: number[] = []
  for (let i = 0; i < o.commits; i++) {
    await pause(GAP_MS)
    row[0] = i
    a.append(row)
    const t0 = now()
    store.commit()
    const t1 = now()
    commitMs.push(Number(t1 - t0) / 1e6)
    const m = await next()
    wake.push(Number(BigInt(m.t) - t0) / 1e6)
    afterReturn.push(Number(BigInt(m.t) - t1) / 1e6)
  }

  const pipe: number[] = []
  for (let i = 0; i < o.commits; i++) {
    await pause(GAP_MS)
    child.stdin!.write(`${now()}\n`)
    const m = await next()
    pipe.push(Number(BigInt(m.got) - BigInt(m.pipe)) / 1e6)
  }
  child.stdin!.end()
  child.disconnect()
  await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)))
  store.close()
  fs.rmSync(storeDir, { recursive: true, force: true })

  const p50 = percentile(wake, 50)
  const p99 = percentile(wake, 99)
  return [
    { scenario: 'S6 wake-up', metric: 'commit → other process resumes, p50', txarray: p50, baseline: percentile(pipe, 50), baselineName: 'pipe one-way', unit: 'ms', better: 'lower', target: '< 1 ms', met: p50 < 1 },
    { scenario: 'S6 wake-up', metric: 'commit → other process resumes, p99', txarray: p99, baseline: percentile(pipe, 99), baselineName: 'pipe one-way', unit: 'ms', better: 'lower', target: '< 5 ms', met: p99 < 5 },
    { scenario: 'S6 wake-up', metric: 'commit() returned → other process resumes, p50 / p99', txarray: percentile(afterReturn, 50), baseline: percentile(afterReturn, 99), baselineName: '(p99)', unit: 'ms', better: 'lower' },
    { scenario: 'S6 wake-up', metric: 'commit() itself (sync: false), p50', txarray: percentile(commitMs, 50), baseline: null, baselineName: '', unit: 'ms', better: 'lower' },
  ]
}

async function child(storeDir: string): Promise<void> {
  const store = open(storeDir)
  let buffered = ''
  process.stdin.setEncoding('utf8')
  process.stdin.on('data', (chunk: string) => {
    const got = now()
    buffered += chunk
    let nl: number
    while ((nl = buffered.indexOf('\n')) >= 0) {
      process.send!({ pipe: buffered.slice(0, nl), got: String(got) })
      buffered = buffered.slice(nl + 1)
    }
  })
  process.on('disconnect', () => store.close())
  process.send!({ ready: '1' })
  for (;;) {
    try {
      await store.waitForCommit({ keepAlive: true })
    } catch {
      return  // closed
    }
    const t = now()
    store.refresh()
    process.send!({ t: String(t) })
  }
}

if (process.argv[2] === '--child') void child(process.argv[3])
