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
  help: `Waits for commits to the store by any process and prints one line per new snapshot:
its serial, arrays created and deleted, and arrays whose shape changed (rows appended).
It starts with a line saying which serial it watches from (on stderr; with --json, the
object { watching, serial } on stdout).
With NAMEs, only those arrays are reported. Several commits that land while one is being
printed show as one line with the newest serial. Runs until interrupted (Ctrl-C, exit 0).

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
    try {
      const filter = names.length ? names : undefined
      let before = shapes(store, filter)
      // a first line says the watch has its snapshot: commits after it are reported
      if (ctx.json) printJson(ctx, { watching: dir, serial: store.serial })
      else writeLine(ctx.stderr, `watching ${dir} from serial ${store.serial}`)
      let printed = 0
      let idle = 0
      const poll = 250
      while (printed < count && !ctx.signal.aborted) {
        const woke = await store.nextCommit(Math.min(poll, timeout))
        if (ctx.signal.aborted) break
        if (!woke) {
          idle += Math.min(poll, timeout)
          if (idle >= timeout) break
          continue
        }
        idle = 0
        store.refresh()
        const after = shapes(store, filter)
        const event: CommitEvent = { serial: store.serial, changed: [], created: [], deleted: [] }
        for (const [name, shape] of after) {
          const old = before.get(name)
          if (!old) event.created.push(name)
          else if (old.join() !== shape.join()) event.changed.push({ name, shape, rows: shape[0], addedRows: shape[0] - old[0] })
        }
        for (const name of before.keys()) if (!after.has(name)) event.deleted.push(name)
        before = after
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
      }
      return 0
    } finally {
      store.close()
    }
  },
}
