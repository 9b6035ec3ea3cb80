import { type Command, EXIT } from '../command'
import { openExisting, printJson, progressReporter, writeLine } from '../context'

/** `txarray check STORE`: verifies the store; exit 3 when damaged. */
export const check: Command = {
  name: 'check',
  summary: 'verify every record, block checksum and cross-reference; exit 3 on damage',
  args: 'STORE',
  arity: [1, 1],
  options: {},
  help: `Runs store.check(): verifies the format, every array record, every block's checksum,
and the block/record/log cross-references. Prints each problem with its array, block and
kind. Exit code 0: no damage; 3: damage found (listed); 1: the check could not run.

Example:
  txarray check ./data || echo damaged`,
  run(ctx, [dir]) {
    const store = openExisting(dir)
    const progress = progressReporter(ctx, 'checking')
    try {
      const report = store.check()
      progress.end()
      if (ctx.json) {
        printJson(ctx, report)
      } else {
        for (const p of report.problems) {
          writeLine(ctx.stdout, `${p.kind}: ${p.array ?? '-'}${p.block === null || p.block === undefined ? '' : ` block ${p.block}`}: ${p.message}`)
        }
        writeLine(ctx.stdout, `${report.ok ? 'ok' : 'DAMAGED'}: ${report.arrays} arrays, ${report.blocks} blocks, ${report.bytes} bytes checked, ${report.problems.length} problems`)
      }
      return report.ok ? EXIT.ok : EXIT.damaged
    } finally {
      progress.end()
      store.close()
    }
  },
}
