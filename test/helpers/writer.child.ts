// A second process (or worker thread) acting on a store. Run through helpers/child.ts.
//   append <dir> <name> <first> <count>   rows of int32 [n, 4] holding row i = [i, i, i, i]
//   transact-append <dir> <name> <tag> <count>  one row per transact(), row = tag*10000+j
//   write <dir> <name> <index> <value>    sets element [index] of a 1-D float64 array
//   format <dir> <json>                   stamps meta 'format' with msgpack(json)
//   crash-loop <dir> <sync:0|1>           appends and commits forever (see crash.test.ts)
//   spin <dir> <name>                     (worker) reads, appends, refreshes in a loop until
//                                         terminated; every 8th round commits row [k*8] x 4 (k the
//                                         commits so far) and posts { committed: k + 1 }
import * as fs from 'node:fs'
import { parentPort, workerData } from 'node:worker_threads'
import { open } from '../../src/index'

export function rowsOf(first: number, count: number): Int32Array {
  const out = new Int32Array(count * 4)
  for (let r = 0; r < count; r++) out.fill(first + r, r * 4, r * 4 + 4)
  return out
}

/** The rows a crash-loop child appends in the commit after reaching length `n`. */
export function crashStep(n: number): number {
  return 1 + ((n * 7919) % 23)
}

/** Row i of the crash-loop array: [i, -i, 3i, i xor 0x5a5a, 7] (int32 [n, 5]). */
export function crashRow(i: number): number[] {
  return [i, -i, 3 * i, i ^ 0x5a5a, 7]
}

function main(args: string[]): void {
  const [mode, dir] = args
  if (mode === 'spin') {
    const store = open(dir)
    const a = store.array(args[2], 'int32')
    parentPort?.postMessage({ started: true })
    for (let i = 0; ; i++) {
      a.append(rowsOf(i, 1))
      a.read()
      void store.serial
      store.list()
      if (i % 8 === 0) {
        store.commit({ sync: false })
        parentPort?.postMessage({ committed: i / 8 + 1 })
      } else {
        store.abort()
      }
    }
  } else if (mode === 'append') {
    const [, , name, first, count] = args
    const store = open(dir)
    const a = store.array(name, 'int32')
    a.append(rowsOf(Number(first), Number(count)))
    store.commit()
    store.close()
  } else if (mode === 'transact-append') {
    // count transactions, each appending the row [tag*10000 + j] x 4 with retries
    const [, , name, tag, count] = args
    const store = open(dir, { sync: false })
    for (let j = 0; j < Number(count); j++) {
      store.transact((s) => s.array(name, 'int32').append(rowsOf(Number(tag) * 10000 + j, 1)), { retries: 1000 })
    }
    store.close()
  } else if (mode === 'write') {
    const [, , name, index, value] = args
    const store = open(dir)
    store.array(name, 'float64').write([Number(index)], Number(value))
    store.commit()
    store.close()
  } else if (mode === 'format') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { addon } = require('../../src/binding') as typeof import('../../src/binding')
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { pack } = require('msgpackr') as typeof import('msgpackr')
    const session = new addon.NativeSession(dir, undefined, undefined, 64 << 20, { create: false, readOnly: false, format: new Uint8Array(0) })
    session.commit([], [{ key: 'format', value: pack(JSON.parse(args[2])) }], [], true)
    session.close()
  } else if (mode === 'grow') {
    // grows the store by 256 KiB per commit, forever: new pages at the end of the file
    const store = open(dir, { sync: false })
    if (!store.has('rows')) store.create('rows', { dtype: 'uint8', shape: [0, 4096], blockBytes: 4096 })
    store.commit()
    const a = store.array('rows', 'uint8')
    const chunk = new Uint8Array(64 * 4096).fill(7)
    for (;;) {
      a.append(chunk)
      store.commit()
      fs.writeSync(1, `committed ${a.rows}\n`)
    }
  } else if (mode === 'crash-loop') {
    const sync = args[2] === '1'
    const store = open(dir, { sync })
    if (!store.has('rows')) {
      store.create('rows', { dtype: 'int32', shape: [0, 5], blockBytes: 4096 })
      store.commit()
    }
    const a = store.array('rows', 'int32')
    fs.writeSync(1, `committed ${a.rows}\n`)
    for (;;) {
      const n = a.rows
      const k = crashStep(n)
      const data = new Int32Array(k * 5)
      for (let r = 0; r < k; r++) data.set(crashRow(n + r), r * 5)
      a.append(data)
      store.commit()
      fs.writeSync(1, `committed ${n + k}\n`)
    }
  } else {
    throw new Error(`unknown mode ${mode}`)
  }
}

if (process.env.TXA_CHILD) {
  if (parentPort && workerData) {
    main(workerData as string[])
    parentPort.postMessage('done')
  } else if (!parentPort) {
    main(process.argv.slice(2))
  }
}
