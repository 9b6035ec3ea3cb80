import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { ArgumentError } from '../../errors'
import { open } from '../../store'
import type { Command } from '../command'
import { printJson, writeLine } from '../context'

interface Figure {
  name: string
  value: number
  unit: string
  detail: string
}

/** Runs `step` repeatedly for about `ms` milliseconds; returns [iterations, elapsed ms]. */
function timed(ms: number, step: (i: number) => void): [number, number] {
  const t0 = performance.now()
  let i = 0
  while (performance.now() - t0 < ms) step(i++)
  return [i, performance.now() - t0]
}

/** `txarray bench`: a quick look at this machine's append and read speed. */
export const bench: Command = {
  name: 'bench',
  summary: 'a quick append/read check of this machine (a few seconds)',
  args: '',
  arity: [0, 0],
  options: {
    seconds: { type: 'string' },
    dir: { type: 'string' },
  },
  help: `Measures, in a temporary store (removed afterwards): appends of 1000 rows × 16 float32
per commit, without and with durable commits; random 16-row windows read with take();
and a sequential read() of the array in 1 MiB pieces. Each phase runs about a quarter
of --seconds. For the full benchmarks with baselines, see npm run bench.

Options:
  --seconds S   total time to spend (default 4)
  --dir DIR     directory for the temporary store (default: the OS temp dir); measure
                the disk you will use

Example:
  txarray bench --seconds 2 --json`,
  run(ctx, _args, values) {
    const seconds = values.seconds === undefined ? 4 : Number(values.seconds)
    if (!(seconds > 0 && seconds <= 600)) throw new ArgumentError('--seconds must be a number from 0 to 600')
    const phase = (seconds * 1000) / 4
    const base = typeof values.dir === 'string' ? values.dir : os.tmpdir()
    const dir = fs.mkdtempSync(path.join(base, 'txarray-bench-'))
    const figures: Figure[] = []
    const store = open(dir)
    try {
      const a = store.create<'float32'>('stream', { dtype: 'float32', shape: [0, 16] })
      store.commit()
      const batch = Float32Array.from({ length: 16000 }, (_, i) => i)
      const batchBytes = batch.byteLength
      let [n, ms] = timed(phase, () => {
        a.append(batch)
        store.commit({ sync: false })
      })
      figures.push({ name: 'append', value: (n * batchBytes) / 1e6 / (ms / 1000), unit: 'MB/s', detail: `${n} commits of 1000 rows × 16 float32, sync: false` })
      const lat: number[] = []
      ;[n, ms] = timed(phase, () => {
        const t = performance.now()
        a.append(batch)
        store.commit({ sync: true })
        lat.push(performance.now() - t)
      })
      lat.sort((x, y) => x - y)
      figures.push({ name: 'append-durable', value: (n * batchBytes) / 1e6 / (ms / 1000), unit: 'MB/s', detail: `${n} durable commits, p50 ${(lat[Math.floor(lat.length / 2)] * 1000).toFixed(0)} µs, p99 ${(lat[Math.floor(lat.length * 0.99)] * 1000).toFixed(0)} µs` })
      const rows = a.rows
      const starts = new Float64Array(1000)
      const out = new Float32Array(1000 * 16 * 16)
      let seed = 12345
      ;[n, ms] = timed(phase, () => {
        for (let k = 0; k < starts.length; k++) {
          seed = (seed * 1103515245 + 12345) >>> 0
          starts[k] = seed % Math.max(1, rows - 16)
        }
        a.take(starts, 16, out)
      })
      figures.push({ name: 'take', value: (n * 1000) / (ms / 1000), unit: 'windows/s', detail: `random 16-row windows of ${rows} rows (${((rows * 64) / 1e6).toFixed(0)} MB)` })
      const piece = new Float32Array(2 ** 18)
      const rowsPer = piece.length / 16
      let bytes = 0
      ;[n, ms] = timed(phase, (i) => {
        const first = (i * rowsPer) % Math.max(rowsPer, rows - rowsPer)
        a.read([{ kind: 'slice', start: first, stop: first + rowsPer, step: 1 }], piece)
        bytes += piece.byteLength
      })
      figures.push({ name: 'read', value: bytes / 1e6 / (ms / 1000), unit: 'MB/s', detail: `sequential read() of 1 MiB pieces, ${n} reads` })
    } finally {
      store.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
    if (ctx.json) {
      printJson(ctx, { dir: base, seconds, figures })
    } else {
      for (const f of figures) writeLine(ctx.stdout, `${f.name.padEnd(15)} ${f.value.toFixed(f.value < 100 ? 1 : 0).padStart(10)} ${f.unit.padEnd(10)} ${f.detail}`)
    }
    return 0
  },
}
