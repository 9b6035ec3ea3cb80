import type { Command } from '../command'
import { formatBytes } from '../format'
import { openExisting, printJson, writeLine } from '../context'

/** `txarray ls STORE`: the arrays, one a line. */
export const ls: Command = {
  name: 'ls',
  summary: 'list the arrays of a store',
  args: 'STORE',
  arity: [1, 1],
  options: {},
  help: `One line per array: name, dtype, shape and size. With --json, an array of
{ name, dtype, shape, bytes }.

Example:
  txarray ls ./data`,
  run(ctx, [dir]) {
    const store = openExisting(dir)
    try {
      const rows = store.list().map((name) => {
        const a = store.array(name)
        return { name, dtype: a.dtype, shape: a.shape, bytes: a.nbytes }
      })
      if (ctx.json) {
        printJson(ctx, rows)
        return 0
      }
      const width = rows.reduce((w, r) => Math.max(w, r.name.length), 4)
      for (const r of rows) {
        writeLine(ctx.stdout, `${r.name.padEnd(width)}  ${r.dtype.padEnd(7)}  ${`[${r.shape.join(', ')}]`.padEnd(16)}  ${formatBytes(r.bytes)}`)
      }
      return 0
    } finally {
      store.close()
    }
  },
}
