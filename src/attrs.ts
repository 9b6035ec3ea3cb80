/**
 * User attributes: a plain object of msgpack-encodable values, checked when they are set
 * (create(), setAttrs()) by encoding them with the codec the commit uses, so that a commit
 * never fails on them. The transaction keeps the decoded copy: what `attrs` shows is what
 * the store will hold.
 */
import { show } from './show'
import { ArgumentError } from './errors'
import { packr } from './metadata'

/** Nesting deeper than this is refused (the encoder recurses once per level). */
const MAX_DEPTH = 512

/**
 * Throws ArgumentError unless `attrs` is a plain object (made by {} or Object.create(null)) whose values msgpack encodes:
 * null, booleans, numbers, strings, bigints of at most 64 bits, Dates, Uint8Arrays,
 * arrays and objects of these. Functions, symbols, cycles and nesting deeper than 512
 * levels are refused. Returns the decoded copy.
 */
export function checkAttrs(attrs: unknown): Record<string, unknown> {
  if (attrs === null || typeof attrs !== 'object' || !isPlainObject(attrs)) {
    throw new ArgumentError(`attrs must be a plain object, got ${show(attrs)}`)
  }
  refuseUnencodable(attrs, 'attrs', new Set(), 0)
  let bytes: Uint8Array
  try {
    bytes = packr.pack(attrs)
  } catch (e) {
    throw new ArgumentError(`attrs cannot be encoded: ${e instanceof Error ? e.message : show(e)}`)
  }
  return packr.unpack(bytes) as Record<string, unknown>
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** A deep copy of attrs that checkAttrs() accepted. */
export function copyAttrs(attrs: Record<string, unknown>): Record<string, unknown> {
  return packr.unpack(packr.pack(attrs)) as Record<string, unknown>
}

// The encoder drops functions silently and overflows the stack on cycles: refuse both
// (and symbols) with the path of the offending value.
function refuseUnencodable(value: unknown, path: string, onPath: Set<object>, depth: number): void {
  if (typeof value === 'function') throw new ArgumentError(`${path} is a function, which attrs cannot hold`)
  if (typeof value === 'symbol') throw new ArgumentError(`${path} is a symbol, which attrs cannot hold`)
  if (typeof value === 'bigint' && (value < -(2n ** 63n) || value >= 2n ** 64n)) {
    throw new ArgumentError(`${path} is a bigint beyond 64 bits, which attrs cannot hold`)
  }
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value) || value instanceof Date) return
  if (depth >= MAX_DEPTH) throw new ArgumentError(`attrs nest deeper than ${MAX_DEPTH} levels`)
  if (onPath.has(value)) throw new ArgumentError(`${path} refers back to itself (a cycle), which attrs cannot hold`)
  onPath.add(value)
  let entries: [string, unknown][]
  try {
    entries = value instanceof Map || value instanceof Set
      ? [...value.entries()].map(([k, v]) => [typeof k === 'string' ? k : show(k), v])
      : Object.entries(value)
  } catch (e) {
    throw new ArgumentError(`${path} cannot be read: ${e instanceof Error ? e.message : show(e)}`)
  }
  for (const [key, v] of entries) refuseUnencodable(v, `${path}.${key}`, onPath, depth + 1)
  onPath.delete(value)
}
