/**
 * store.check(): verifies what a snapshot of the store holds, and reports every problem
 * found instead of stopping at the first (the report's types: check-report.ts). The native engine walks records, blocks and the
 * commit log; this file adds what only TypeScript reads: the format stamp and the
 * msgpack bodies of the array records.
 */
import type { NativeSession } from './binding'
import { TxarrayError } from './errors'
import { checkFormat, decodeMeta } from './metadata'
import { rowBytesOf } from './transaction'
import type { CheckProblem, CheckProblemKind, CheckReport } from './check-report'

export function checkStore(session: NativeSession): CheckReport {
  const problems: CheckProblem[] = []
  const stamp = session.getMeta('format')
  if (!stamp) {
    problems.push({ array: null, block: null, kind: 'format', message: 'the store has no format stamp' })
  } else {
    try {
      checkFormat(stamp)
    } catch (e) {
      if (!(e instanceof TxarrayError)) throw e
      problems.push({ array: null, block: null, kind: 'format', message: e.message })
    }
  }
  const blockBytes: Record<string, number> = {}
  for (const raw of session.listRecords()) {
    const name = Buffer.from(raw).toString('utf8')
    const record = session.getRecord(name)
    if (!record) continue
    try {
      const meta = decodeMeta(name, record.body)
      blockBytes[name] = meta.blockBytes
      if (rowBytesOf(meta) !== record.rowBytes) {
        problems.push({ array: name, block: null, kind: 'record', message: `the record's header says ${record.rowBytes} bytes per row, its shape and dtype ${rowBytesOf(meta)}` })
      }
    } catch (e) {
      if (!(e instanceof TxarrayError)) throw e
      problems.push({ array: name, block: null, kind: 'record', message: e.message })
    }
  }
  const report = session.check(blockBytes)
  for (const p of report.problems) {
    problems.push({ array: p.array === '' ? null : p.array, block: p.block, kind: p.kind as CheckProblemKind, message: p.message })
  }
  return { ok: problems.length === 0, problems, arrays: report.arrays, blocks: report.blocks, bytes: report.bytes, blocksOnServer: report.onServer }
}
