/**
 * npm run fuzz -- [--calls N | --minutes M] [--seed S] [--chunk C]
 *
 * Runs the API fuzzer (fuzzer.ts) in child processes of C calls each (default 5000), seeds
 * S, S+1, ... (default: from the clock), until N calls (default 20000) or M minutes. A child
 * killed by a signal, or ending without its report, counts as a crash. Prints the totals:
 * calls, crashes, uncoded errors, mismatches, and the first problems with the seed and
 * call that reproduce them (`--seed S --calls <call>` replays one).
 */
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { runFuzz, type FuzzStats } from './fuzzer'

function arg(name: string): number | undefined {
  const i = process.argv.indexOf(`--${name}`)
  if (i < 0) return undefined
  const v = Number(process.argv[i + 1])
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} takes a non-negative number`)
  return v
}

function child(seed: number, calls: number): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'txarray-fuzz-'))
  try {
    const stats = runFuzz({ dir, seed, calls })
    console.log(`FUZZ-STATS ${JSON.stringify(stats)}`)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

function main(): void {
  if (process.argv.includes('--child')) return child(arg('seed') ?? 1, arg('calls') ?? 1000)
  const minutes = arg('minutes')
  const totalCalls = arg('calls') ?? (minutes === undefined ? 20_000 : Infinity)
  const chunk = arg('chunk') ?? 5000
  let seed = arg('seed') ?? (Date.now() % 1_000_000)
  const deadline = minutes === undefined ? Infinity : Date.now() + minutes * 60_000
  const totals = { calls: 0, children: 0, crashes: 0, codedErrors: 0, uncoded: 0, mismatches: 0 }
  const problems: string[] = []
  const started = Date.now()
  console.log(`fuzz: first seed ${seed}, ${chunk} calls per child`)
  while (totals.calls < totalCalls && Date.now() < deadline) {
    const calls = Math.min(chunk, totalCalls - totals.calls)
    const r = spawnSync(process.execPath, ['-r', require.resolve('tsx/cjs'), __filename, '--child', '--seed', String(seed), '--calls', String(calls)], {
      encoding: 'utf8', maxBuffer: 1 << 26,
    })
    totals.children++
    const line = /^FUZZ-STATS (.*)$/m.exec(r.stdout ?? '')?.[1]
    if (r.signal || !line) {
      totals.crashes++
      totals.calls += calls
      problems.push(`seed ${seed}: child ended with ${r.signal ?? r.status} and no report: ${(r.stderr ?? '').slice(-2000)}`)
    } else {
      const s = JSON.parse(line) as FuzzStats
      totals.calls += s.calls
      totals.codedErrors += s.codedErrors
      totals.uncoded += s.uncoded
      totals.mismatches += s.mismatches
      problems.push(...s.problems)
    }
    seed++
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1)
  console.log(`fuzz: ${totals.calls} calls in ${totals.children} children, ${secs} s: ${totals.crashes} crashes, ` +
    `${totals.uncoded} uncoded errors, ${totals.mismatches} mismatches (${totals.codedErrors} coded errors thrown, as expected or not)`)
  for (const p of problems.slice(0, 30)) console.log(`  ${p}`)
  process.exit(totals.crashes + totals.uncoded + totals.mismatches > 0 ? 1 : 0)
}

if (require.main === module) main()
