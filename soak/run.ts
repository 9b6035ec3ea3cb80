/**
 * npm run soak -- [--minutes M] [--kills N] [--writers W] [--dir D] [--seed S]
 *
 * Crash soak: W writer processes commit to one store (plain and segment appends, view
 * writes, resizes, sync true and false; see worker.ts) while a follower watch()es every
 * commit; the driver SIGKILLs a random writer (one that has committed since it started)
 * at a random instant, again and again, and
 * after each kill checks, on a fresh snapshot, what every commit wrote in one piece:
 *   - each ledger row (a commit's checksum row) is valid, and each writer's ledger rows
 *     are its commits 0, 1, 2... once each: none lost, none twice;
 *   - the 'stream' rows of each commit are all there, valid and together, and rows
 *     without a ledger row are none (no torn commit); a segment appended by a commit
 *     names exactly its rows;
 *   - board row W is uniform and equals writer W's last ledger commit; no commit a writer
 *     saw commit() return for is missing; scratch arrays hold their own length.
 * The follower must report no commit seen twice or out of order. Runs until --minutes
 * pass or --kills kills, whichever is first; prints kills, commits and rows verified,
 * and the longest commit() of a writer (the stall of survivors when a writer died
 * holding the write lock). Exit code 1 on any violation.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { parseArgs } from 'node:util'
import { open, slice } from '../src/index'
import { BOARD_COLS, check } from './worker'

export interface SoakOptions {
  minutes: number
  kills: number
  writers: number
  dir: string
  seed: number
  log?: (line: string) => void
}

export interface SoakResult {
  kills: number
  commitsVerified: number
  rowsVerified: number
  segmentsVerified: number
  followerEvents: number
  longestCommitMs: number
  longestCommitAfterKillMs: number
  violations: string[]
}

interface Writer {
  child: ChildProcess
  acked: number
  /** Commits since this process started: kills go to writers that are committing. */
  fresh: number
  exited: Promise<number | null>
  killed: boolean
}

// Run as TypeScript (tsx) or compiled to JavaScript (faster process starts).
const compiled = path.extname(__filename) === '.js'
const loader = compiled ? [] : ['-r', require.resolve('tsx/cjs')]

function start(args: string[]): ChildProcess {
  return spawn(process.execPath, [...loader, path.join(__dirname, `worker${path.extname(__filename)}`), ...args], {
    env: { ...process.env, TXA_SOAK_CHILD: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const log = o.log ?? ((line: string) => console.log(line))
  fs.rmSync(o.dir, { recursive: true, force: true })
  const store = open(o.dir)
  store.create('stream', { dtype: 'int32', shape: [0, 4], blockBytes: 4096 })
  store.create('ledger', { dtype: 'int32', shape: [0, 4], blockBytes: 4096 })
  const board = store.create('board', { dtype: 'float64', shape: [o.writers, BOARD_COLS], blockBytes: BOARD_COLS * 8 })
  board.write(null, -1)
  for (let w = 0; w < o.writers; w++) store.create(`scratch-${w}`, { dtype: 'int32', shape: [0] })
  store.commit()

  const result: SoakResult = {
    kills: 0, commitsVerified: 0, rowsVerified: 0, segmentsVerified: 0, followerEvents: 0,
    longestCommitMs: 0, longestCommitAfterKillMs: 0, violations: [],
  }
  const violation = (what: string): void => {
    if (result.violations.length < 20) log(`VIOLATION: ${what}`)
    result.violations.push(what)
  }

  let seed = o.seed >>> 0
  const random = (): number => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0
    return seed / 4294967296
  }

  let lastKillAt = 0
  const writers: Writer[] = []
  const spawnWriter = (w: number): void => {
    const child = start(['writer', o.dir, String(w), String(Math.floor(random() * 2 ** 31))])
    const entry: Writer = { child, acked: writers[w]?.acked ?? -1, fresh: 0, exited: Promise.resolve(null), killed: false }
    let buffered = ''
    child.stdout!.on('data', (d) => {
      buffered += d
      let nl: number
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const [c, ms] = buffered.slice(0, nl).split(' ').map(Number)
        buffered = buffered.slice(nl + 1)
        entry.acked = Math.max(entry.acked, c)
        entry.fresh++
        result.longestCommitMs = Math.max(result.longestCommitMs, ms)
        if (Date.now() - lastKillAt < 2000) result.longestCommitAfterKillMs = Math.max(result.longestCommitAfterKillMs, ms)
      }
    })
    let stderr = ''
    child.stderr!.on('data', (d) => (stderr += d))
    entry.exited = new Promise((resolve) => child.on('exit', (code) => {
      if (!entry.killed) violation(`writer ${w} exited by itself (${code}): ${stderr.slice(0, 500)}`)
      resolve(code)
    }))
    writers[w] = entry
  }
  for (let w = 0; w < o.writers; w++) spawnWriter(w)

  const follower = start(['follow', o.dir, String(store.serial)])
  let followerOut = ''
  follower.stdout!.on('data', (d) => (followerOut += d))
  follower.stderr!.on('data', (d) => (followerOut += d))
  const followerExited = new Promise<number | null>((r) => follower.on('exit', r))

  // What the checks have covered so far.
  let ledgerChecked = 0
  let streamChecked = 0
  const lastCommit: number[] = new Array(o.writers).fill(-1)
  const streamCounts = new Map<string, number>()  // rows per (w, c) seen in 'stream' without ledger row yet
  let group: { key: string; next: number } | null = null

  const verify = (): void => {
    store.refresh()
    const stream = store.array('stream', 'int32')
    const ledger = store.array('ledger', 'int32')
    if (stream.rows > streamChecked) {
      const data = stream.read([slice(streamChecked, stream.rows)]).data
      for (let r = 0; r < stream.rows - streamChecked; r++) {
        const [w, c, i, k] = data.subarray(r * 4, r * 4 + 4)
        if (k !== check(w, c, i)) violation(`stream row ${streamChecked + r} is damaged`)
        const key = `${w}:${c}`
        if (i === 0) group = { key, next: 1 }
        else if (!group || group.key !== key || group.next !== i) violation(`stream row ${streamChecked + r}: the rows of commit ${key} are not together`)
        else group.next++
        streamCounts.set(key, (streamCounts.get(key) ?? 0) + 1)
      }
      result.rowsVerified += stream.rows - streamChecked
      streamChecked = stream.rows
    }
    if (ledger.rows > ledgerChecked) {
      const data = ledger.read([slice(ledgerChecked, ledger.rows)]).data
      for (let r = 0; r < ledger.rows - ledgerChecked; r++) {
        const [w, c, kseg, k] = data.subarray(r * 4, r * 4 + 4)
        const rows = kseg & 0xffff
        if (k !== check(w, c, rows)) violation(`ledger row ${ledgerChecked + r} is damaged`)
        if (c !== lastCommit[w] + 1) violation(`writer ${w}: commit ${c} after ${lastCommit[w]} (lost or duplicated)`)
        lastCommit[w] = c
        const key = `${w}:${c}`
        if (streamCounts.get(key) !== rows) violation(`commit ${key}: ${streamCounts.get(key) ?? 0} stream rows, its ledger row says ${rows}`)
        streamCounts.delete(key)
        if (kseg >> 16) {
          const range = stream.segmentRange(`w${w}-${c}`)
          if (!range || range.stop - range.start !== rows) violation(`segment w${w}-${c} is ${JSON.stringify(range)}, expected ${rows} rows`)
          else {
            const first = stream.read([slice(range.start, range.stop)]).data
            for (let i = 0; i < rows; i++) {
              if (first[i * 4] !== w || first[i * 4 + 1] !== c || first[i * 4 + 2] !== i) violation(`segment w${w}-${c} names rows of another commit`)
            }
            result.segmentsVerified++
          }
        }
      }
      result.commitsVerified += ledger.rows - ledgerChecked
      ledgerChecked = ledger.rows
    }
    if (streamCounts.size > 0) violation(`stream rows without a ledger row (a torn commit): ${[...streamCounts.keys()].slice(0, 5).join(', ')}`)
    const boardData = store.array('board', 'float64').read().data
    for (let w = 0; w < o.writers; w++) {
      const row = boardData.subarray(w * BOARD_COLS, (w + 1) * BOARD_COLS)
      if (row.some((x) => x !== row[0])) violation(`board row ${w} is torn`)
      if (row[0] !== lastCommit[w]) violation(`board row ${w} says commit ${row[0]}, the ledger ${lastCommit[w]}`)
      if (writers[w].acked > lastCommit[w]) violation(`writer ${w} saw commit ${writers[w].acked} return, the store has ${lastCommit[w]}`)
      const scratch = store.array(`scratch-${w}`, 'int32').read().data
      if (scratch.some((x) => x !== scratch.length)) violation(`scratch-${w} does not hold its length`)
    }
  }

  const started = Date.now()
  const deadline = started + o.minutes * 60_000
  let lastReport = started
  while (result.kills < o.kills && Date.now() < deadline && result.violations.length === 0) {
    await new Promise((r) => setTimeout(r, 20 + random() * 200))
    const ready = writers.map((x, i) => (x.fresh > 0 ? i : -1)).filter((i) => i >= 0)
    if (ready.length === 0) continue
    const w = ready[Math.floor(random() * ready.length)]
    const victim = writers[w]
    victim.killed = true
    victim.child.kill('SIGKILL')
    await victim.exited
    lastKillAt = Date.now()
    result.kills++
    verify()
    spawnWriter(w)
    if (Date.now() - lastReport > 30_000) {
      lastReport = Date.now()
      log(`${((Date.now() - started) / 1000).toFixed(0)} s: ${result.kills} kills, ${result.commitsVerified} commits, ${result.rowsVerified} rows verified`)
    }
  }
  for (const writer of writers) {
    writer.killed = true
    writer.child.kill('SIGKILL')
    await writer.exited
  }
  // A writer killed inside LMDB's commit after its meta page was written, but before it
  // published the new transaction id in the lock file, leaves that commit unseen by open
  // handles until the next writer takes the write lock (LMDB then recovers the id); a
  // process opening the store alone sees it at once. Writers took the lock after every
  // earlier kill; one commit of the checker takes it after the last ones.
  store.refresh()
  const checker = store.has('checker') ? store.array('checker', 'int8') : store.create('checker', { dtype: 'int8', shape: [1] })
  checker.write([0], (checker.read([0]).data[0] + 1) % 100)
  store.commit()
  verify()
  follower.kill('SIGTERM')
  await followerExited
  try {
    const summary = JSON.parse(followerOut.trim().split('\n').at(-1)!)
    result.followerEvents = summary.events
    if (summary.error) violation(`follower: ${summary.error}`)
  } catch {
    violation(`follower said: ${followerOut.slice(0, 500)}`)
  }
  store.close()
  // A fresh process opens the store after the last kill: it must see the same commits.
  const reopen = spawn(process.execPath, [...loader, '-e', `
    const { open } = require(${JSON.stringify(path.join(__dirname, '..', 'src', 'index'))})
    const s = open(${JSON.stringify(o.dir)})
    process.stdout.write(String(s.array('ledger').rows))
    s.close()`], { stdio: ['ignore', 'pipe', 'inherit'] })
  let reopened = ''
  reopen.stdout!.on('data', (d) => (reopened += d))
  await new Promise((r) => reopen.on('exit', r))
  if (Number(reopened.trim()) !== ledgerChecked) violation(`a fresh process sees ${reopened.trim()} ledger rows, expected ${ledgerChecked}`)
  fs.rmSync(o.dir, { recursive: true, force: true })
  return result
}

if (require.main === module) {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '1' },
      kills: { type: 'string', default: '1000000' },
      writers: { type: 'string', default: '4' },
      dir: { type: 'string', default: path.join(os.tmpdir(), `txarray-soak-${process.pid}`) },
      seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
    },
  })
  const options: SoakOptions = {
    minutes: Number(values.minutes), kills: Number(values.kills), writers: Number(values.writers),
    dir: values.dir!, seed: Number(values.seed),
  }
  console.log(`soak: ${options.writers} writers + 1 follower, up to ${options.minutes} min or ${options.kills} kills, seed ${options.seed}`)
  const t0 = Date.now()
  runSoak(options).then((r) => {
    console.log(`kills ${r.kills}, commits verified ${r.commitsVerified}, rows verified ${r.rowsVerified}, ` +
      `segments verified ${r.segmentsVerified}, follower saw ${r.followerEvents} commits once and in order, ` +
      `longest commit() ${r.longestCommitMs.toFixed(1)} ms (within 2 s after a kill: ${r.longestCommitAfterKillMs.toFixed(1)} ms), ` +
      `${((Date.now() - t0) / 1000).toFixed(0)} s`)
    console.log(r.violations.length === 0 ? 'no violations' : `${r.violations.length} VIOLATIONS`)
    process.exit(r.violations.length === 0 ? 0 : 1)
  }, (e) => {
    console.error(e)
    process.exit(1)
  })
}
