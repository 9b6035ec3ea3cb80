/**
 * npm run bench [-- --only S2,S4 --runs 3 --rows 1000000 --dir /tmp/txbench]
 *
 * Runs the scenarios, each txarray figure beside its baseline measured in the same run,
 * each figure the median of --runs runs; prints a table and writes bench/results/latest.json.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { parseArgs } from 'node:util'
import { type Row, ratio } from './lib/measure'
import { measureMachine } from './machine'
import { runS2 } from './s2-stream'
import { runS4 } from './s4-small-commits'

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    runs: { type: 'string', default: '3' },
    rows: { type: 'string', default: '1000000' },
    commits: { type: 'string', default: '1000' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'txarray-bench') },
  },
})
const runs = Number(values.runs)
const only = values.only ? new Set(values.only.split(',').map((s) => s.trim().toUpperCase())) : null
const dir = values.dir!
fs.mkdirSync(dir, { recursive: true })

const scenarios: Record<string, () => Row[]> = {
  S2: () => runS2(dir, Number(values.rows), runs),
  S4: () => runS4(dir, Number(values.commits), runs),
}

const machine = measureMachine(dir)
console.log(`machine: memcpy ${machine.memcpyGBps.toFixed(1)} GB/s, sequential write+fsync ${machine.seqWriteFsyncGBps.toFixed(2)} GB/s, ` +
  `fsync p50 ${machine.fsyncP50us.toFixed(0)} µs p99 ${machine.fsyncP99us.toFixed(0)} µs`)

const rows: Row[] = []
for (const [name, run] of Object.entries(scenarios)) {
  if (only && !only.has(name)) continue
  console.log(`running ${name}...`)
  rows.push(...run())
}

const fmt = (x: number | null) => (x === null ? '' : Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toPrecision(3))
const table = [['scenario', 'metric', 'txarray', 'baseline', 'baseline is', 'ratio', 'unit', 'target', 'met']]
for (const r of rows) {
  table.push([r.scenario, r.metric, fmt(r.txarray), fmt(r.baseline), r.baselineName, fmt(ratio(r)), r.unit, r.target ?? '', r.met === undefined ? '' : r.met ? 'yes' : 'NO'])
}
const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)))
for (const row of table) console.log(row.map((c, i) => c.padEnd(widths[i])).join('  '))

const out = path.join(__dirname, 'results', 'latest.json')
fs.mkdirSync(path.dirname(out), { recursive: true })
fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), runs, machine, rows }, null, 2))
console.log(`\nwritten ${path.relative(process.cwd(), out)}`)
