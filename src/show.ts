import { types } from 'node:util'

/**
 * A short description of any value for an error message. Never throws: String() of a
 * symbol, of a TypedArray over a detached buffer or of a Proxy with hostile traps does.
 */
export function show(value: unknown): string {
  try {
    switch (typeof value) {
      case 'string': return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
      case 'bigint': return `${value}n`
      case 'symbol': return 'a symbol'
      case 'function': return 'a function'
      case 'object':
        if (value === null) return 'null'
        if (types.isProxy(value)) return 'a Proxy'
        if (Array.isArray(value)) return `an array of ${value.length}`
        return `a ${(value as object).constructor?.name ?? 'object'}`
      default: return String(value)
    }
  } catch {
    return typeof value
  }
}
