/**
 * Opens `count` handles on one store in this process, each holding a snapshot (a reader
 * slot in lock.mdb) and reading array `name`; prints one JSON line:
 * { ok: true, sums: number[] } or { ok: false, code, message }.
 *   handles.child.ts <dir> <count> <name>
 */
import * as fs from 'node:fs'
import { type Store, open } from '../../src/index'

function main(dir: string, count: number, name: string): object {
  const stores: Store[] = []
  try {
    const sums: number[] = []
    for (let i = 0; i < count; i++) {
      const store = open(dir)
      stores.push(store)
      sums.push((store.array(name).read().data as Float64Array).reduce((a, b) => a + b, 0))
    }
    return { ok: true, sums }
  } catch (e) {
    const err = e as { code?: unknown; message?: unknown }
    return { ok: false, code: typeof err.code === 'string' ? err.code : null, message: String(err.message) }
  } finally {
    for (const s of stores) s.close()
  }
}

if (process.env.TXA_CHILD) {
  const [dir, count, name] = process.argv.slice(2)
  fs.writeSync(1, `${JSON.stringify(main(dir, Number(count), name))}\n`)
}
