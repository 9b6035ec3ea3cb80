/**
 * numpy's index syntax as text, for the command line: `'10:20, ::2'`, `'-1'`, `'[3, :]'`,
 * `'..., 0'`. Items are separated by commas: an integer index, a slice `start:stop:step`
 * (each part optional), `:` for a whole axis, or one `...` standing for as many whole
 * axes as needed.
 */
import { ArgumentError } from '../errors'
import { type AxisSelection, type Selection, slice } from '../selection'

function integer(text: string, what: string): number {
  if (!/^[-+]?\d+$/.test(text)) throw new ArgumentError(`selection: ${what} '${text}' is not an integer`)
  const n = Number(text)
  if (!Number.isSafeInteger(n)) throw new ArgumentError(`selection: ${what} '${text}' is out of range`)
  return n
}

function item(text: string): AxisSelection | 'ellipsis' {
  if (text === '...') return 'ellipsis'
  if (!text.includes(':')) return integer(text, 'index')
  const parts = text.split(':').map((p) => p.trim())
  if (parts.length > 3) throw new ArgumentError(`selection: '${text}' has more than two colons`)
  const [start, stop, step] = parts.map((p) => (p === '' || p === undefined ? null : integer(p, 'slice bound')))
  if (step === 0) throw new ArgumentError('selection: slice step cannot be zero')
  return slice(start ?? null, stop ?? null, step ?? null)
}

/** Parses the text into a Selection for an array of `ndim` axes. Throws ArgumentError. */
export function parseSelection(text: string, ndim: number): Selection {
  let body = text.trim()
  if (body.startsWith('[') && body.endsWith(']')) body = body.slice(1, -1).trim()
  if (body === '') return []
  const items = body.split(',').map((s) => s.trim())
  // a trailing comma, as in Python's (3,), adds no item
  if (items.length > 1 && items.at(-1) === '') items.pop()
  const parsed = items.map((s) => {
    if (s === '') throw new ArgumentError(`selection: empty item in '${text}'`)
    return item(s)
  })
  const ellipses = parsed.filter((p) => p === 'ellipsis').length
  if (ellipses > 1) throw new ArgumentError('selection: at most one ...')
  const explicit = parsed.length - ellipses
  if (explicit > ndim) throw new ArgumentError(`selection has ${explicit} items but the array has ${ndim} axes`)
  const out: AxisSelection[] = []
  for (const p of parsed) {
    if (p === 'ellipsis') for (let k = 0; k < ndim - explicit; k++) out.push(null)
    else out.push(p)
  }
  return out
}
