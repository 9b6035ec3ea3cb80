import type { Readable } from 'node:stream'
import type { BigArray } from '../../array'
import { type AnyTypedArray, type DType, allocate, itemBytes } from '../../dtype'
import { ArgumentError } from '../../errors'
import type { Command } from '../command'
import { openExisting, printJson, writeLine } from '../context'

/** Converts one CSV field to the dtype's element (bigint for 64-bit integers). */
function parseField(text: string, dtype: DType, line: number): number | bigint {
  const t = text.trim()
  if (dtype === 'int64' || dtype === 'uint64') {
    if (!/^[-+]?\d+$/.test(t)) throw new ArgumentError(`line ${line}: '${t}' is not an integer`)
    const v = BigInt(t)
    const [lo, hi] = dtype === 'int64' ? [-(2n ** 63n), 2n ** 63n - 1n] : [0n, 2n ** 64n - 1n]
    if (v < lo || v > hi) throw new ArgumentError(`line ${line}: ${t} is out of range for ${dtype}`)
    return v
  }
  if (dtype.startsWith('float')) {
    const named: Record<string, number> = { nan: NaN, inf: Infinity, '+inf': Infinity, '-inf': -Infinity, infinity: Infinity, '-infinity': -Infinity }
    const lower = t.toLowerCase()
    if (lower in named) return named[lower]
    const v = Number(t)
    if (t === '' || Number.isNaN(v)) throw new ArgumentError(`line ${line}: '${t}' is not a number`)
    return v
  }
  if (!/^[-+]?\d+$/.test(t)) throw new ArgumentError(`line ${line}: '${t}' is not an integer`)
  const v = Number(t)
  const bits = itemBytes(dtype) * 8
  const [lo, hi] = dtype.startsWith('u') ? [0, 2 ** bits - 1] : [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1]
  if (v < lo || v > hi) throw new ArgumentError(`line ${line}: ${t} is out of range for ${dtype}`)
  return v
}

interface Appender {
  rows: number
  commits: number
  add(data: AnyTypedArray, rows: number): void
  finish(): void
}

function appender(store: { commit(): void }, a: BigArray, commitRows: number | undefined): Appender {
  let pending = 0
  return {
    rows: 0,
    commits: 0,
    add(data, rows) {
      a.append(data as never)
      this.rows += rows
      pending += rows
      if (commitRows !== undefined && pending >= commitRows) {
        store.commit()
        this.commits++
        pending = 0
      }
    },
    finish() {
      if (pending > 0) {
        store.commit()
        this.commits++
      }
    },
  }
}

async function appendRaw(input: Readable, a: BigArray, out: Appender): Promise<void> {
  const row = a.shape.slice(1).reduce((x, y) => x * y, 1) * itemBytes(a.dtype)
  if (row === 0) throw new ArgumentError('rows of this array hold no elements')
  let carry = Buffer.alloc(0)
  for await (const piece of input) {
    const bytes = carry.length ? Buffer.concat([carry, piece as Buffer]) : (piece as Buffer)
    const whole = bytes.length - (bytes.length % row)
    if (whole > 0) {
      // copy into an aligned buffer of the dtype
      const data = allocate(a.dtype, whole / itemBytes(a.dtype))
      new Uint8Array(data.buffer).set(bytes.subarray(0, whole))
      out.add(data, whole / row)
    }
    carry = Buffer.from(bytes.subarray(whole))
  }
  if (carry.length) throw new ArgumentError(`input ends with ${carry.length} bytes, not a whole row of ${row} bytes (nothing of the last part was appended)`)
}

async function appendCsv(input: Readable, a: BigArray, out: Appender, batchRows: number): Promise<void> {
  const perRow = a.shape.slice(1).reduce((x, y) => x * y, 1)
  let batch: Array<number | bigint> = []
  let lineNo = 0
  let rest = ''
  const flush = () => {
    if (batch.length === 0) return
    const data = allocate(a.dtype, batch.length)
    ;(data as unknown as { set(v: ArrayLike<unknown>): void }).set(batch)
    out.add(data, batch.length / perRow)
    batch = []
  }
  const line = (text: string) => {
    lineNo++
    const t = text.trim()
    if (t === '' || t.startsWith('#')) return
    const fields = t.split(/\s*[,;\t ]\s*/)
    if (fields.length !== perRow) throw new ArgumentError(`line ${lineNo}: ${fields.length} values, a row of [${a.shape.slice(1).join(', ')}] holds ${perRow}`)
    for (const f of fields) batch.push(parseField(f, a.dtype, lineNo))
    if (batch.length >= batchRows * perRow) flush()
  }
  input.setEncoding('utf8')
  for await (const piece of input) {
    const lines = (rest + (piece as string)).split('\n')
    rest = lines.pop() ?? ''
    for (const l of lines) line(l)
  }
  if (rest) line(rest)
  flush()
}

/** `txarray append STORE NAME [--csv]` reading rows from stdin. */
export const append: Command = {
  name: 'append',
  summary: 'append rows from stdin: raw little-endian bytes, or CSV',
  args: 'STORE NAME',
  arity: [2, 2],
  options: {
    csv: { type: 'boolean' },
    'commit-rows': { type: 'string' },
    'no-sync': { type: 'boolean' },
  },
  help: `Reads rows from stdin and appends them along axis 0.

Input:
  (default)  raw little-endian elements of the array's dtype, whole rows, C order
  --csv      one row per line, values separated by commas (or spaces, tabs, ';');
             empty lines and lines starting with # are skipped; nan, inf, -inf for floats

Options:
  --commit-rows N  commit every N rows (default: one commit at the end of input, so
                   the whole input appears at once or, on error, not at all)
  --no-sync        commits not flushed to disk one by one

Example:
  printf '1,2\\n3,4\\n' | txarray append ./data pairs --csv`,
  async run(ctx, [dir, name], values) {
    const commitRows = values['commit-rows'] === undefined ? undefined : Number(values['commit-rows'])
    if (commitRows !== undefined && (!Number.isSafeInteger(commitRows) || commitRows <= 0)) throw new ArgumentError('--commit-rows must be a positive integer')
    const store = openExisting(dir)
    try {
      const a = store.array(name)
      const sync = values['no-sync'] ? false : undefined
      const committer = { commit: () => store.commit(sync === undefined ? {} : { sync }) }
      const out = appender(committer, a, commitRows)
      if (values.csv) await appendCsv(ctx.stdin, a, out, commitRows ?? 4096)
      else await appendRaw(ctx.stdin, a, out)
      out.finish()
      const result = { name, rows: out.rows, shape: a.shape, commits: out.commits, serial: store.serial }
      if (ctx.json) printJson(ctx, result)
      else writeLine(ctx.stdout, `appended ${out.rows} rows to ${name}: now [${a.shape.join(', ')}]`)
      return 0
    } finally {
      store.close()
    }
  },
}
