/** What a command runs with: output streams, the --json switch, and how to open stores. */
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { NotFoundError } from '../errors'
import { type Store, open } from '../store'

export interface Context {
  json: boolean
  stdout: Writable
  stderr: Writable
  stdin: Readable
  /** stderr is a terminal: long work shows progress there. */
  progress: boolean
  /** Aborts when the user interrupts (SIGINT/SIGTERM). */
  signal: AbortSignal
}

/** Values of parsed options. */
export type Values = Record<string, string | boolean | string[] | boolean[] | undefined>

/** Opens the store at `dir`, which must exist (a typo must not create an empty store). */
export function openExisting(dir: string): Store {
  if (!fs.existsSync(path.join(dir, 'data.mdb'))) throw new NotFoundError(`no txarray store at '${dir}'`)
  return open(dir)
}

/** Opens the store at `dir`, creating it if needed. */
export function openOrCreate(dir: string, sync = true): Store {
  return open(dir, { sync })
}

export function writeLine(stream: Writable, text: string): void {
  stream.write(text + '\n')
}

/** Prints `value` as one line of JSON (bigints as strings). */
export function printJson(ctx: Context, value: unknown): void {
  writeLine(ctx.stdout, JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)))
}

/**
 * A progress reporter for long work: a line on stderr, redrawn at most every 100 ms,
 * only when stderr is a terminal; nothing otherwise.
 */
export function progressReporter(ctx: Context, label: string): { update: (done: number, total: number) => void; end: () => void } {
  if (!ctx.progress) return { update: () => {}, end: () => {} }
  let last = 0
  let drawn = false
  return {
    update(done, total) {
      const now = Date.now()
      if (now - last < 100 && done < total) return
      last = now
      drawn = true
      const pct = total > 0 ? Math.floor((done / total) * 100) : 100
      ctx.stderr.write(`\r${label} ${pct}% (${(done / 2 ** 20).toFixed(1)} / ${(total / 2 ** 20).toFixed(1)} MiB)\x1b[K`)
    },
    end() {
      if (drawn) ctx.stderr.write('\r\x1b[K')
    },
  }
}
