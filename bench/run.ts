/**
 * npm run bench [-- --only S1,S3 --runs 3 --rows 1000000 --s1rows 250000 --dir /tmp/txbench --quick --no-cold --pgurl postgres://…]
 *
 * Runs the scenarios, each txarray figure beside its baseline measured in the same run,
 * each figure the median of --runs runs; prints a table and writes bench/results/latest.json.
 *
 * Machine costs come first (bench/machine.ts), then the scenarios.
 * S1, S3, S5, S7 and V1 share one dataset (--s1rows × 2000 float64 in a store and a flat
 * .npy), built once in --dir and reused by later invocations of the same size.
 * R1 (a remote store) runs against --pgurl, or a throwaway PostgreSQL cluster when the
 * binaries are there (else it fails with a note, like any scenario that cannot run).
 * --quick: small sizes everywhere (a smoke test of the whole bench in a minute or two).
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { parseArgs } from 'node:util'
import { type Dataset, ensureDataset, loadNote } from './lib/data'
import { type Row, ratio } from './lib/measure'
import { describeMachine, measureMachine } from './machine'
import { runS1 } from './s1-windows'
import { runS2 } from './s2-stream'
import { runS3 } from './s3-scan'
import { runS4 } from './s4-small-commits'
import { runS5 } from './s5-concurrency'
import { runS6 } from './s6-wake'
import { runV1 } from './v1-first-touch'
import { runS7 } from './s7-shared-readers'
import { runV2 } from './v2-cow-write'
import { runR1 } from './r1-remote'

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    runs: { type: 'string', default: '3' },
    rows: { type: 'string' },
    commits: { type: 'string' },
    s1rows: { type: 'string' },
    windows: { type: 'string' },
    s5secs: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'no-cold': { type: 'boolean', default: false },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'txarray-bench') },
    pgurl: { type: 'string' },
  },
})
const quick = values.quick!
const runs = Number(values.runs)
const only = values.only ? new Set(values.only.split(',').map((s) => s.trim().toUpperCase())) : null
const dir = values.dir!
const s2rows = Number(values.rows ?? (quick ? 100000 : 1000000))
const s4commits = Number(values.commits ?? (quick ? 200 : 1000))
const s1rows = Number(values.s1rows ?? (quick ? 16384 : 250000))
const windows = Number(values.windows ?? (quick ? 2000 : 10000))
const s5secs = Number(values.s5secs ?? (quick ? 1 : 3))
fs.mkdirSync(dir, { recursive: true })

let dataset: Dataset | null = null
const data = (): Dataset => (dataset ??= ensureDataset(dir, s1rows))

const scenarios: Record<string, () => Row[] | Promise<Row[]>> = {
  S2: () => runS2(dir, s2rows, runs),
  S4: () => runS4(dir, s4commits, runs),
  S1: () => runS1(data(), dir, { runs, windows, windowRows: 16, cold: !values['no-cold'] }),
  S3: () => runS3(data(), { runs, chunkRows: 4096 }),
  S5: () => runS5(data(), { runs, seconds: s5secs, readerCounts: [1, 2, 4] }),
  S6: () => runS6(dir, { commits: quick ? 200 : 1000 }),
  S7: () => runS7(data(), { runs, readers: 4, chunkRows: 4096 }),
  V1: () => runV1(data(), { runs, bytes: quick ? 256 << 20 : 1 << 30 }),
  V2: () => runV2(dir, { runs, blocks: quick ? 256 : 1024, machine }),
  R1: () => runR1(dir, {
    runs, commits: quick ? 50 : 300, appendMiB: quick ? 16 : 64, visibility: quick ? 20 : 100, windows, url: values.pgurl,
  }),
}

const machine = measureMachine(dir)
// What was measured: the addon binary and the source tree it was (presumably) built from.
const root = path.join(__dirname, '..')
const addonFile = path.join(root, 'build', 'Release', 'txarray.node')
const build = (() => {
  const git = (...args: string[]) => { try { return execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim() } catch { return '' } }
  return {
    addonSha256: createHash('sha256').update(fs.readFileSync(addonFile)).digest('hex').slice(0, 16),
    addonMtime: fs.statSync(addonFile).mtime.toISOString(),
    head: git('rev-parse', '--short', 'HEAD') || 'not a git checkout',
    dirty: git('status', '--porcelain', '--', 'src', 'native') !== '',
  }
})()
console.log(`build: addon ${build.addonSha256} (${build.addonMtime}), HEAD ${build.head}${build.dirty ? ' + uncommitted src/native changes' : ''}`)
console.log(`machine: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${os.release()}; ${loadNote()}`)
console.log(describeMachine(machine))

async function main(): Promise<void> {
const rows: Row[] = []
const loads: Record<string, string> = {}
const t0 = Date.now()
for (const [name, run] of Object.entries(scenarios)) {
  if (only && !only.has(name)) continue
  const ts = Date.now()
  console.log(`running ${name}... (${loadNote()})`)
  rows.push(...(await run()))
  if (fs.statSync(addonFile).mtime.toISOString() !== build.addonMtime) console.log(`  WARNING: the addon was rebuilt during ${name}`)
  loads[name] = `${((Date.now() - ts) / 1000).toFixed(0)} s, ${loadNote()} at end`
  console.log(`  ${name} took ${loads[name]}`)
}

const fmt = (x: number | null) => (x === null ? '' : Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toPrecision(3))
const table = [['scenario', 'metric', 'txarray', 'baseline', 'baseline is', 'ratio', 'unit', 'target', 'met']]
for (const r of rows) {
  table.push([r.scenario, r.metric, fmt(r.txarray), fmt(r.baseline), r.baselineName, fmt(ratio(r)), r.unit, r.target ?? '', r.met === undefined ? '' : r.met ? 'yes' : 'NO'])
}
const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)))
for (const row of table) console.log(row.map((c, i) => c.padEnd(widths[i])).join('  '))
console.log(`\n${describeMachine(machine)}`)
console.log(`total ${((Date.now() - t0) / 1000).toFixed(0)} s; ${os.cpus().length} cores (S5 runs up to 5 processes on them)`)

const out = path.join(__dirname, 'results', 'latest.json')
fs.mkdirSync(path.dirname(out), { recursive: true })
fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), build, runs, quick, s1rows, windows, machine, loads, rows }, null, 2))
console.log(`\nwritten ${path.relative(process.cwd(), out)}`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
