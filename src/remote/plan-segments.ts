/**
 * The named segments a landed commit left on the server, computed from its plan: what the
 * committer writes into its own cache without reading them back (cache-writer.ts). A
 * rebased append's segments moved by the rows its append moved: the length the server
 * laid the record at minus the length the plan had.
 */
import type { RemoteSegment } from './changes-since'
import type { CommitOutcome } from './commit-call'
import type { CommitPlan } from './commit-plan'

export function segmentsOfPlan(plan: CommitPlan, landed: Extract<CommitOutcome, { status: 'committed' }>): RemoteSegment[] {
  const out: RemoteSegment[] = []
  for (const g of plan.segments ?? []) {
    const record = typeof g.array === 'number' ? plan.records.findIndex((r) => r.id === g.array) : g.array.record
    const arrayId = typeof g.array === 'number' ? g.array : landed.ids[g.array.record]
    const moved = record >= 0 && plan.records[record].append ? landed.lengths[record] - plan.records[record].rows : 0
    for (const d of g.deletes) {
      out.push({ arrayId, name: Buffer.from(d.name, 'utf8'), start: d.start, stop: d.stop, serial: landed.serial, deleted: true })
    }
    for (const p of g.puts) {
      const start = p.start + moved
      out.push({ arrayId, name: Buffer.from(p.name, 'utf8'), start, stop: start + p.rows, serial: landed.serial, deleted: false })
    }
  }
  return out
}
