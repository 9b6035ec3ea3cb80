/**
 * Child script for remote-machines.test.ts (TXA_CHILD set): one process acting as one
 * machine, with a cache of its own, on a remote store.
 *   remote-machine.child.ts append URL SCHEMA CACHE MACHINE COMMITS
 *     COMMITS transact() calls, each appending 1-5 rows [machine, commit, row] to 'rows'
 *     and adding one to the counter 'count' (a block every machine writes: conflicts,
 *     retried by transact()). Prints "done <conflicts>".
 *   remote-machine.child.ts stamp URL SCHEMA CACHE
 *     Commits forever: commit k writes k into every element of 'stamps' (several blocks),
 *     printing "commit k" before each; it is killed while doing so.
 *   remote-machine.child.ts hold URL SCHEMA CACHE ROWS
 *     Creates float64 'held' of ROWS rows 0, 1, 2..., commits, prints "committed <serial>"
 *     and stays alive (without closing the store) until it is killed.
 *   remote-machine.child.ts read URL SCHEMA CACHE NAME
 *     Opens the store, prints float64 array NAME as JSON and closes it.
 */
import { open, slice } from '../../src/index'

function append(url: string, schema: string, cache: string, machine: number, commits: number): void {
  const store = open(cache, { remote: url, remoteSchema: schema })
  for (let c = 0; c < commits; c++) {
    const n = 1 + ((machine + c) % 5)
    store.transact((s) => {
      const rows = new Int32Array(n * 3)
      for (let r = 0; r < n; r++) rows.set([machine, c, r], r * 3)
      s.array('rows', 'int32').append(rows)
      const count = s.array('count', 'int32')
      count.write([slice(0, 1)], count.read([slice(0, 1)]).data[0] + 1)
    }, { retries: 1000 })
  }
  console.log(`done ${store.stats().conflicts}`)
  store.close()
}

function stamp(url: string, schema: string, cache: string): void {
  const store = open(cache, { remote: url, remoteSchema: schema })
  const stamps = store.array('stamps', 'int32')
  for (let k = 1; ; k++) {
    stamps.write(null, k)
    console.log(`commit ${k}`)
    store.commit()
  }
}

function hold(url: string, schema: string, cache: string, rows: number): void {
  const store = open(cache, { remote: url, remoteSchema: schema })
  store.create('held', { dtype: 'float64', shape: [rows], blockBytes: 4096 }).write(null, Float64Array.from({ length: rows }, (_, i) => i))
  store.commit()
  console.log(`committed ${store.serial}`)
  setInterval(() => undefined, 1000)
}

function read(url: string, schema: string, cache: string, name: string): void {
  const store = open(cache, { remote: url, remoteSchema: schema })
  console.log(JSON.stringify(Array.from(store.array(name, 'float64').read().data)))
  store.close()
}

if (process.env.TXA_CHILD) {
  const [mode, url, schema, cache, ...rest] = process.argv.slice(2)
  try {
    if (mode === 'append') append(url, schema, cache, Number(rest[0]), Number(rest[1]))
    else if (mode === 'stamp') stamp(url, schema, cache)
    else if (mode === 'hold') hold(url, schema, cache, Number(rest[0]))
    else if (mode === 'read') read(url, schema, cache, rest[0])
    else throw new Error(`unknown mode ${mode}`)
    if (mode !== 'hold') process.exit(0)
  } catch (e) {
    console.error(e)
    process.exit(1)
  }
}
