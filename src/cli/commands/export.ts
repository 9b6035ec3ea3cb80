import { ArgumentError } from '../../errors'
import type { Command } from '../command'
import { formatBytes } from '../format'
import { openExisting, printJson, progressReporter, writeLine } from '../context'
import { parseSelection } from '../selection-syntax'
import { parseCount } from './create'

/** `txarray export STORE NAME FILE.npy [--select S] [--follow]`. */
export const exportCommand: Command = {
  name: 'export',
  summary: 'write an array, or a selection of it, to a .npy file',
  args: 'STORE NAME FILE',
  arity: [3, 3],
  options: {
    select: { type: 'string' },
    'chunk-bytes': { type: 'string' },
    follow: { type: 'boolean' },
  },
  help: `Writes NAME (or --select of it) to FILE as a C-order little-endian .npy that
numpy.load(FILE, mmap_mode='r') reads, in bounded memory.

Options:
  --select S        numpy index syntax, e.g. '1000:2000, ::2' or '-1'
  --chunk-bytes N   bytes copied at a time (default 4m)
  --follow          keep FILE growing with rows appended to the array (by any process),
                    a valid .npy after each append, until interrupted (Ctrl-C)

Example:
  txarray export ./data sensor last.npy --select '-1000:'`,
  async run(ctx, [dir, name, file], values) {
    const store = openExisting(dir)
    const progress = progressReporter(ctx, `exporting ${name}`)
    try {
      const a = store.array(name)
      const chunkBytes = parseCount(values['chunk-bytes'] as string | undefined, '--chunk-bytes')
      const selection = typeof values.select === 'string' ? parseSelection(values.select, a.ndim) : undefined
      let r
      if (values.follow) {
        if (selection) throw new ArgumentError('--follow exports whole rows: --select is not allowed with it')
        r = await a.exportNpy(file, {
          follow: true, signal: ctx.signal, chunkBytes,
          onAppend: (shape: number[]) => {
            if (ctx.json) printJson(ctx, { shape })
            else writeLine(ctx.stdout, `${file}: [${shape.join(', ')}]`)
          },
        })
      } else {
        r = a.exportNpy(file, { selection, chunkBytes, onProgress: progress.update })
      }
      progress.end()
      if (ctx.json) printJson(ctx, r)
      else writeLine(ctx.stdout, `exported ${name}${values.select ? `[${values.select}]` : ''} to ${file}: ${r.dtype} [${r.shape.join(', ')}], ${formatBytes(r.bytes)}`)
      return 0
    } finally {
      progress.end()
      store.close()
    }
  },
}
