/**
 * Child script for remote-segments.test.ts (TXA_CHILD set): one process acting as one
 * machine, with a cache of its own, appending named segments to one array of a remote store.
 *   remote-segments.child.ts URL SCHEMA CACHE MACHINE COMMITS
 *     COMMITS commits, each appending segment `m<MACHINE>-c<commit>` of 1-5 rows
 *     [machine, commit, row] to int32 'log' (shape [n, 3]). Prints "done".
 */
import { open } from '../../src/index'

function appendSegments(url: string, schema: string, cache: string, machine: number, commits: number): void {
  const store = open(cache, { remote: url, remoteSchema: schema })
  for (let c = 0; c < commits; c++) {
    const n = 1 + ((machine + c) % 5)
    const rows = new Int32Array(n * 3)
    for (let r = 0; r < n; r++) rows.set([machine, c, r], r * 3)
    store.array('log', 'int32').appendSegment(`m${machine}-c${c}`, rows)
    store.commit()
  }
  console.log('done')
  store.close()
}

if (process.env.TXA_CHILD) {
  const [url, schema, cache, machine, commits] = process.argv.slice(2)
  try {
    appendSegments(url, schema, cache, Number(machine), Number(commits))
    process.exit(0)
  } catch (e) {
    console.error(e)
    process.exit(1)
  }
}
