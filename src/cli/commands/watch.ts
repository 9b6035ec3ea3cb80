import { ArgumentError } from '../../errors'
import type { Store } from '../../store'
import type { Command } from '../command'
import { openExisting, printJson, writeLine } from '../context'

/** What one commit changed, as far as shapes tell. */
export interface CommitEvent {
  serial: number
  /** Arrays whose shape changed (appended rows show as grown axis 0). */
  changed: Array<{ name: string; shape: number[]; rows: number; addedRows: number }>
  created: string[]
  deleted: string[]
}

/** The shapes of the arrays in the handle's snapshot (all, or those of `names` that exist). */
function shapes(store: Store, names?: string[]): Map<string, number[]> {
  const out = new Map<string, number[]>()
  for (const name of names ?? store.list()) if (store.has(name)) out.set(name, store.array(name).shape)
  return out
}

/** `txarray watch STORE [NAME...]`: one line per commit, as commits happen. */
export const watch: Command = {
  name: 'watch',
  summary: 'print commits (of any process) as they happen',
  args: 'STORE [NAME...]',
  arity: [1, Infinity],
  options: {
    count: { type: 'string' },
    'timeout-ms': { type: 'string' },
  },
  help: `Follows the commits to the store of any process (store.watch()) and prints one line
per commit, each once and in order: its serial, arrays created and deleted, and arrays
whose shape changed (rows appended).
It starts with a line saying which serial it watches from (on stderr; with --json, the
object { watching, serial } on stdout).
With NAMEs, only those arrays are reported. Runs until interrupted (Ctrl-C, exit 0).

Options:
  --count N        stop after N lines
  --timeout-ms T   stop when no commit arrives for T milliseconds

Example:
  txarray watch ./data sensor --json`,
  async run(ctx, [dir, ...names], values) {
    const count = values.count === undefined ? Infinity : Number(values.count)
    if (count !== Infinity && (!Number.isSafeInteger(count) || count <= 0)) throw new ArgumentError('--count must be a positive integer')
    const timeout = values['timeout-ms'] === undefined ? Infinity : Number(values['timeout-ms'])
    if (!(timeout >= 0)) throw new ArgumentError('--timeout-ms must be a non-negative number')
    const store = openExisting(dir)
    // Ends the watch: Ctrl-C, or --timeout-ms without a commit (re-armed by each commit).
    const stop = new AbortController()
    const onInterrupt = (): void => stop.abort()
    ctx.signal.addEventListener('abort', onInterrupt, { once: true })
    let idle: NodeJS.Timeout | undefined
    const rearm = (): void => {
      if (idle) clearTimeout(idle)
      if (timeout !== Infinity) idle = setTimeout(() => stop.abort(), timeout)
    }
    try {
      const filter = names.length ? names : undefined
      // Shapes as of the watched snapshot; the events carry lengths, the other axes are
      // read once per array (refreshing for an array created while watching).
      const known = shapes(store, filter)
      if (ctx.json) printJson(ctx, { watching: dir, serial: store.serial })
      else writeLine(ctx.stderr, `watching ${dir} from serial ${store.serial}`)
      let printed = 0
      rearm()
      if (count > 0 && !ctx.signal.aborted) {
        for await (const commit of store.watch({ arrays: filter, signal: stop.signal, keepAlive: true })) {
          rearm()
          const event: CommitEvent = { serial: commit.serial, changed: [], created: [], deleted: [] }
          for (const [name, change] of Object.entries(commit.arrays)) {
            if (change.deleted && !change.created) {
              event.deleted.push(name)
              known.delete(name)
              continue
            }
            let old = known.get(name)
            if (change.created || !old) {
              store.refresh()
              old = store.has(name) ? [0, ...store.array(name).shape.slice(1)] : [0]
              if (change.created) event.created.push(name)
            }
            const shape = [change.rows, ...old.slice(1)]
            if (!change.created && old[0] !== change.rows) {
              event.changed.push({ name, shape, rows: change.rows, addedRows: change.rows - old[0] })
            }
            known.set(name, shape)
          }
          if (filter && !event.changed.length && !event.created.length && !event.deleted.length) continue
          printed++
          if (ctx.json) {
            printJson(ctx, event)
          } else {
            const parts = [
              ...event.created.map((n) => `+${n}`),
              ...event.deleted.map((n) => `-${n}`),
              ...event.changed.map((c) => `${c.name} ${c.addedRows >= 0 ? '+' : ''}${c.addedRows} rows → [${c.shape.join(', ')}]`),
            ]
            writeLine(ctx.stdout, `serial ${event.serial}: ${parts.length ? parts.join(', ') : 'no shape changes'}`)
          }
          if (printed >= count) break
        }
      }
      return 0
    } catch (e) {
      if (stop.signal.aborted && (e as { code?: unknown }).code === 'TXA_ABORTED') return 0
      throw e
    } finally {
      if (idle) clearTimeout(idle)
      ctx.signal.removeEventListener('abort', onInterrupt)
      store.close()
    }
  },
}
