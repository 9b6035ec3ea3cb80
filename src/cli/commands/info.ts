import { itemBytes } from '../../dtype'
import type { Command } from '../command'
import { formatBytes } from '../format'
import { openExisting, printJson, writeLine } from '../context'

/** `txarray info STORE [NAME]`: one array in detail, or the store in brief. */
export const info: Command = {
  name: 'info',
  summary: 'describe an array (dtype, shape, blocks, attrs), or the store',
  args: 'STORE [NAME]',
  arity: [1, 2],
  options: {},
  help: `Without NAME: the store's path, commit serial, arrays and their total size.
With NAME: the array's dtype, shape, size in bytes, block size and attributes.

Example:
  txarray info ./data sensor
  txarray info ./data sensor --json`,
  run(ctx, [dir, name]) {
    const store = openExisting(dir)
    try {
      if (name === undefined) {
        const names = store.list()
        const bytes = names.reduce((sum, n) => sum + store.array(n).nbytes, 0)
        const result = { path: dir, serial: store.serial, arrays: names.length, bytes }
        if (ctx.json) printJson(ctx, result)
        else writeLine(ctx.stdout, `store ${dir}: ${names.length} arrays, ${formatBytes(bytes)} of data, commit serial ${store.serial}`)
        return 0
      }
      const a = store.array(name)
      const result = {
        name, dtype: a.dtype, shape: a.shape, size: a.size, itemBytes: itemBytes(a.dtype),
        bytes: a.nbytes, blockBytes: a.blockBytes, blocks: Math.ceil(a.nbytes / a.blockBytes), attrs: a.attrs,
      }
      if (ctx.json) {
        printJson(ctx, result)
      } else {
        writeLine(ctx.stdout, `${name}: ${a.dtype} [${a.shape.join(', ')}]`)
        writeLine(ctx.stdout, `  elements  ${a.size} × ${result.itemBytes} B = ${formatBytes(a.nbytes)}`)
        writeLine(ctx.stdout, `  blocks    ${result.blocks} of ${formatBytes(a.blockBytes)} (blocks never written take no space)`)
        writeLine(ctx.stdout, `  attrs     ${JSON.stringify(result.attrs)}`)
      }
      return 0
    } finally {
      store.close()
    }
  },
}
