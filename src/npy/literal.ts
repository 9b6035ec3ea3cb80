/**
 * A parser for the small subset of Python literals a .npy header holds: dicts, tuples,
 * lists, quoted strings, integers, True, False and None. The header is data: it is
 * parsed, never evaluated, and every size is bounded (nesting depth, items per
 * container, string length, integer digits), so a hostile header costs at most a few
 * times its own (already bounded) length.
 */
import { NpyFormatError } from '../errors'

/** A parsed literal. Integers stay bigint (Python integers have no bound). */
export type PyValue =
  | { kind: 'dict'; entries: Array<[PyValue, PyValue]> }
  | { kind: 'tuple'; items: PyValue[] }
  | { kind: 'list'; items: PyValue[] }
  | { kind: 'str'; value: string }
  | { kind: 'int'; value: bigint }
  | { kind: 'bool'; value: boolean }
  | { kind: 'none' }

/** Bounds of one parse: anything beyond them is refused. */
export const LITERAL_LIMITS = {
  depth: 8,
  itemsPerContainer: 256,
  stringChars: 1024,
  integerDigits: 40,
} as const

const ESCAPES: Record<string, string> = { '\\': '\\', "'": "'", '"': '"', n: '\n', t: '\t' }

class Parser {
  #pos = 0
  constructor(private readonly text: string) {}

  fail(what: string): never {
    throw new NpyFormatError(`bad .npy header: ${what} at character ${this.#pos}`)
  }

  skipSpace(): void {
    while (this.#pos < this.text.length && ' \t\r\n'.includes(this.text[this.#pos])) this.#pos++
  }

  peek(): string {
    this.skipSpace()
    return this.text[this.#pos] ?? ''
  }

  expect(ch: string): void {
    if (this.peek() !== ch) this.fail(`expected '${ch}'`)
    this.#pos++
  }

  atEnd(): boolean {
    return this.peek() === ''
  }

  value(depth: number): PyValue {
    if (depth > LITERAL_LIMITS.depth) this.fail(`nesting deeper than ${LITERAL_LIMITS.depth}`)
    const ch = this.peek()
    if (ch === '{') return this.dict(depth)
    if (ch === '(') return this.parenthesized(depth)
    if (ch === '[') return { kind: 'list', items: this.sequence(depth, '[', ']').items }
    if (ch === "'" || ch === '"') return { kind: 'str', value: this.string(ch) }
    if (ch === '-' || ch === '+' || (ch >= '0' && ch <= '9')) return { kind: 'int', value: this.integer() }
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.text.slice(this.#pos, this.#pos + 16))?.[0]
    if (word === 'True' || word === 'False') {
      this.#pos += word.length
      return { kind: 'bool', value: word === 'True' }
    }
    if (word === 'None') {
      this.#pos += 4
      return { kind: 'none' }
    }
    if (ch === '') this.fail('unexpected end')
    this.fail(word ? `'${word}' is not a literal` : `unexpected character ${JSON.stringify(ch)}`)
  }

  dict(depth: number): PyValue {
    this.expect('{')
    const entries: Array<[PyValue, PyValue]> = []
    while (this.peek() !== '}') {
      if (entries.length >= LITERAL_LIMITS.itemsPerContainer) this.fail('too many dict entries')
      const key = this.value(depth + 1)
      this.expect(':')
      entries.push([key, this.value(depth + 1)])
      if (this.peek() !== ',') break
      this.#pos++
    }
    this.expect('}')
    return { kind: 'dict', entries }
  }

  /** `(x)` is x; `()`, `(x,)` and `(x, y)` are tuples. */
  parenthesized(depth: number): PyValue {
    const { items, trailingComma } = this.sequence(depth, '(', ')')
    if (items.length === 1 && !trailingComma) return items[0]
    return { kind: 'tuple', items }
  }

  sequence(depth: number, open: string, close: string): { items: PyValue[]; trailingComma: boolean } {
    this.expect(open)
    const items: PyValue[] = []
    let trailingComma = false
    while (this.peek() !== close) {
      if (items.length >= LITERAL_LIMITS.itemsPerContainer) this.fail('too many items')
      items.push(this.value(depth + 1))
      trailingComma = false
      if (this.peek() !== ',') break
      this.#pos++
      trailingComma = true
    }
    this.expect(close)
    return { items, trailingComma }
  }

  string(quote: string): string {
    this.#pos++
    let out = ''
    for (;;) {
      if (this.#pos >= this.text.length) this.fail('unterminated string')
      const ch = this.text[this.#pos++]
      if (ch === quote) return out
      if (ch === '\n') this.fail('newline in a string')
      if (ch === '\\') {
        const escaped = ESCAPES[this.text[this.#pos] ?? '']
        if (escaped === undefined) this.fail('unsupported escape in a string')
        out += escaped
        this.#pos++
      } else {
        out += ch
      }
      if (out.length > LITERAL_LIMITS.stringChars) this.fail(`a string longer than ${LITERAL_LIMITS.stringChars} characters`)
    }
  }

  /** Decimal integer, optionally signed, optionally with Python 2's `L` suffix. */
  integer(): bigint {
    const m = /^[-+]?[0-9]+[Ll]?/.exec(this.text.slice(this.#pos, this.#pos + LITERAL_LIMITS.integerDigits + 3))
    if (!m) this.fail('bad integer')
    const digits = m[0].replace(/[Ll]$/, '')
    if (digits.replace(/^[-+]/, '').length > LITERAL_LIMITS.integerDigits) this.fail('an integer of too many digits')
    const next = this.text[this.#pos + m[0].length] ?? ''
    if (/[0-9A-Za-z_.]/.test(next)) this.fail('bad integer')
    this.#pos += m[0].length
    return BigInt(digits)
  }
}

/** Parses exactly one literal (surrounding whitespace allowed). Throws NpyFormatError. */
export function parseLiteral(text: string): PyValue {
  const p = new Parser(text)
  const v = p.value(0)
  if (!p.atEnd()) p.fail('text after the literal')
  return v
}
