/**
 * store.check(): verifies what a snapshot of the store holds, and reports every problem
 * found instead of stopping at the first. The native engine walks records, blocks and the
 * commit log; this file adds what only TypeScript reads: the format stamp and the
 * msgpack bodies of the array records.
 */
import type { NativeSession } from './binding'
import { TxarrayError } from './errors'
import { checkFormat, decodeMeta } from './metadata'
import { rowBytesOf } from './transaction'

/**
 * What is wrong:
 * - `format`: the format stamp is missing or not one this version reads
 * - `record`: an array record cannot be decoded or contradicts itself
 * - `block-header`: a block value does not start with a valid block header
 * - `misplaced`: a block's header names another array or index than its key
 * - `layout`: a block's data is not page-aligned, or its block size is not the array's
 * - `beyond-end`: a block lies past its array's end
 * - `checksum`: a block's bytes do not match its checksum (damaged on disk)
 * - `orphan`: a block of an array no record describes (deleted or unknown)
 * - `log`: the commit log is damaged, or does not list a change it should
 * - `meta`: a store-level record (such as the next array id) is damaged
 */
export type CheckProblemKind =
  | 'format' | 'record' | 'block-header' | 'misplaced' | 'layout' | 'beyond-end' | 'checksum' | 'orphan' | 'log' | 'meta'

export interface CheckProblem {
  /** The array's name; `#id` for a block no record names; null for store-level problems. */
  array: string | null
  /** The block index, or null when the problem is not about one block. */
  block: number | null
  kind: CheckProblemKind
  message: string
}

export interface CheckReport {
  /** True when no problem was found. */
  ok: boolean
  problems: CheckProblem[]
  /** Array records checked. */
  arrays: number
  /** Block values checked. */
  blocks: number
  /** Data bytes those blocks store (trailing zeros and page fill excluded). */
  bytes: number
}

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
  return { ok: problems.length === 0, problems, arrays: report.arrays, blocks: report.blocks, bytes: report.bytes }
}
