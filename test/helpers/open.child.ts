/**
 * Opens a store in a child process and reports what happened as one JSON line, so that
 * a test can open damaged files, or open as another user, without risking its own process.
 *   open.child.ts <dir> <options JSON> [write]
 *   open.child.ts <JSON array of dirs> <options JSON>     one line per directory, in order
 * Prints { ok: true, arrays: { name: { shape, digest } }, wrote? } or
 * { ok: false, code, name, message } (code null: an error without a code).
 * With `write`, it then tries to change the store and reports that error (or success).
 */
import * as fs from 'node:fs'
import { open } from '../../src/index'

export interface OpenOutcome {
  ok: boolean
  arrays?: Record<string, { shape: number[]; digest: string }>
  write?: { ok: boolean; code: string | null }
  code?: string | null
  name?: string
  message?: string
}

/** FNV-1a over the bytes of a TypedArray: equal data, equal digest. */
export function digest(data: ArrayBufferView): string {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  let h = 0x811c9dc5
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193) >>> 0
  return `${bytes.length}:${h.toString(16)}`
}

function failure(e: unknown): { ok: false; code: string | null; name: string; message: string } {
  const err = e as { code?: unknown; name?: unknown; message?: unknown }
  return {
    ok: false,
    code: typeof err?.code === 'string' ? err.code : null,
    name: String(err?.name),
    message: String(err?.message ?? e),
  }
}

function main(dir: string, options: object, write: boolean): OpenOutcome {
  let store
  try {
    store = open(dir, options)
  } catch (e) {
    return failure(e)
  }
  try {
    const arrays: Record<string, { shape: number[]; digest: string }> = {}
    for (const name of store.list()) {
      const a = store.array(name)
      arrays[name] = { shape: a.shape, digest: digest(a.read().data) }
    }
    const outcome: OpenOutcome = { ok: true, arrays }
    if (write) {
      try {
        store.create(`written-${process.pid}`, { dtype: 'uint8', shape: [1] })
        store.commit()
        outcome.write = { ok: true, code: null }
      } catch (e) {
        outcome.write = { ok: false, code: failure(e).code }
      }
    }
    return outcome
  } catch (e) {
    return failure(e)
  } finally {
    store.close()
  }
}

if (process.env.TXA_CHILD) {
  const [dir, options, write] = process.argv.slice(2)
  const dirs: string[] = dir.startsWith('[') ? JSON.parse(dir) : [dir]
  for (const one of dirs) {
    // written at once (no buffering): a signal that kills the process loses no line
    fs.writeSync(1, `${JSON.stringify(main(one, JSON.parse(options ?? '{}'), write === 'write'))}\n`)
  }
}
