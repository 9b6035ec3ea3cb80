import type { Command } from '../command'
import { formatBytes } from '../format'
import { openOrCreate, printJson, progressReporter, writeLine } from '../context'
import { parseCount } from './create'

/** `txarray import STORE NAME FILE.npy`. */
export const importCommand: Command = {
  name: 'import',
  summary: 'import a .npy file as a new array (streams; files larger than RAM are fine)',
  args: 'STORE NAME FILE',
  arity: [3, 3],
  options: {
    'chunk-bytes': { type: 'string' },
    'commit-bytes': { type: 'string' },
    'block-bytes': { type: 'string' },
    'no-sync': { type: 'boolean' },
  },
  help: `Creates array NAME from the .npy FILE (versions 1.0/2.0/3.0, little- or big-endian,
C or Fortran order, dtypes int8..uint64, float32, float64), reading it in chunks and
committing in batches. If the import fails the array is deleted; if the process is
killed, the array holds the rows committed so far.

Options:
  --chunk-bytes N    bytes read at a time (default 4m)
  --commit-bytes N   commit every N bytes, at row boundaries (default 64m)
  --block-bytes N    storage block size of the new array (default 64k)
  --no-sync          commits not flushed to disk one by one (faster)

Example:
  txarray import ./data images images.npy`,
  run(ctx, [dir, name, file], values) {
    const store = openOrCreate(dir)
    const progress = progressReporter(ctx, `importing ${file}`)
    try {
      const r = store.importNpy(name, file, {
        chunkBytes: parseCount(values['chunk-bytes'] as string | undefined, '--chunk-bytes'),
        commitBytes: parseCount(values['commit-bytes'] as string | undefined, '--commit-bytes'),
        blockBytes: parseCount(values['block-bytes'] as string | undefined, '--block-bytes'),
        sync: values['no-sync'] ? false : undefined,
        onProgress: progress.update,
      })
      progress.end()
      if (ctx.json) printJson(ctx, r)
      else writeLine(ctx.stdout, `imported ${name}: ${r.dtype} [${r.shape.join(', ')}], ${formatBytes(r.bytes)} from .npy ${r.version}${r.bigEndian ? ', big-endian' : ''}${r.fortranOrder ? ', Fortran order' : ''} in ${r.commits} commits`)
      return 0
    } finally {
      progress.end()
      store.close()
    }
  },
}
