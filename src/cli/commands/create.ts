import { checkDType, dtypes } from '../../dtype'
import { ArgumentError } from '../../errors'
import type { Command } from '../command'
import { openOrCreate, printJson, writeLine } from '../context'

/** Parses "0,16" or "[0, 16]" into lengths. */
export function parseShape(text: string): number[] {
  const body = text.trim().replace(/^[[(]|[\])]$/g, '')
  const parts = body.split(/[\s,x×]+/).filter((p) => p !== '')
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p))) throw new ArgumentError(`--shape '${text}': expected lengths like 0,16`)
  return parts.map(Number)
}

export function parseCount(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined
  const units: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 }
  const m = /^(\d+)\s*([kmg]?)(i?b)?$/i.exec(text.trim())
  if (!m) throw new ArgumentError(`${what} '${text}': expected a count like 65536, 64k or 16MiB`)
  return Number(m[1]) * units[m[2].toLowerCase()]
}

/** `txarray create STORE NAME --dtype D --shape S`. */
export const create: Command = {
  name: 'create',
  summary: 'create an empty array',
  args: 'STORE NAME',
  arity: [2, 2],
  options: {
    dtype: { type: 'string' },
    shape: { type: 'string' },
    'block-bytes': { type: 'string' },
    attrs: { type: 'string' },
  },
  help: `Creates array NAME (and the store, if STORE does not exist yet) and commits.

Options:
  --dtype D          ${dtypes.join(' ')} (required)
  --shape S          lengths per axis, e.g. 0,16 (required; axis 0 grows with append)
  --block-bytes N    storage block size, a power of two from 4k to 64m (default 64k)
  --attrs JSON       user attributes, a JSON object

Example:
  txarray create ./data sensor --dtype float32 --shape 0,16 --attrs '{"unit":"mV"}'`,
  run(ctx, [dir, name], values) {
    if (typeof values.dtype !== 'string') throw new ArgumentError('--dtype is required')
    if (typeof values.shape !== 'string') throw new ArgumentError('--shape is required')
    const dtype = checkDType(values.dtype)
    const shape = parseShape(values.shape)
    let attrs: Record<string, unknown> | undefined
    if (typeof values.attrs === 'string') {
      try {
        attrs = JSON.parse(values.attrs)
      } catch {
        throw new ArgumentError('--attrs must be a JSON object')
      }
    }
    const store = openOrCreate(dir)
    try {
      const a = store.create(name, { dtype, shape, blockBytes: parseCount(values['block-bytes'] as string | undefined, '--block-bytes'), attrs })
      store.commit()
      const result = { name, dtype, shape: a.shape, blockBytes: a.blockBytes, serial: store.serial }
      if (ctx.json) printJson(ctx, result)
      else writeLine(ctx.stdout, `created ${name}: ${dtype} [${a.shape.join(', ')}]`)
      return 0
    } finally {
      store.close()
    }
  },
}
