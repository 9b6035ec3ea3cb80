import type { Command } from '../command'
import { formatBytes } from '../format'
import { openExisting, printJson, writeLine } from '../context'

/** `txarray stat STORE`: storage figures of the whole store. */
export const stat: Command = {
  name: 'stat',
  summary: 'storage figures: blocks, bytes, used and free pages, readers, map size',
  args: 'STORE',
  arity: [1, 1],
  options: {},
  help: `Figures of the store as a whole, from a fresh snapshot: the data file and map size,
pages in use and free for reuse, reader slots held by open handles (all processes),
arrays, stored blocks and the bytes of their pages, and the logical size of the data.

Example:
  txarray stat ./data --json`,
  run(ctx, [dir]) {
    const store = openExisting(dir)
    try {
      const s = store.storageStats()
      const dataBytes = store.list().reduce((sum, n) => sum + store.array(n).nbytes, 0)
      const result = { ...s, dataBytes, serial: store.serial }
      if (ctx.json) {
        printJson(ctx, result)
        return 0
      }
      const lines: Array<[string, string]> = [
        ['arrays', `${s.arrays} (${formatBytes(dataBytes)} of data)`],
        ['blocks', `${s.blocks} stored, in ${s.blockPages} pages (${formatBytes(s.blockPageBytes)})`],
        ['file', formatBytes(s.fileBytes)],
        ['pages', `${s.usedPages} used (${formatBytes(s.pageBytes)} each), ${s.freePages} of them free for reuse`],
        ['map', formatBytes(s.mapBytes)],
        ['readers', `${s.readers} of ${s.maxReaders} slots`],
        ['commits', `serial ${store.serial}, ${s.logEntries} in the log`],
      ]
      for (const [k, v] of lines) writeLine(ctx.stdout, `${k.padEnd(8)} ${v}`)
      return 0
    } finally {
      store.close()
    }
  },
}
