/**
 * From an array's planned changes (the engine's plan step, NativeArray.plan()) to the
 * blocks and record fields of a remote commit plan (commit-plan.ts).
 */
import type { NativePlanned } from '../binding'
import type { PlannedBlock } from './commit-plan'

/** What one array contributes to a remote commit. */
export interface ArrayContribution {
  /** Blocks written (none for an append-only transaction). */
  blocks: PlannedBlock[]
  /** The appended bytes of an append-only transaction (the record is then marked append). */
  append?: Uint8Array
  /** The first block a shrink cut. */
  shrinkFromBlock?: number
}

/** The contribution of array `array` (its id, or the record that creates it) to a remote commit. */
export function contributionOf(array: PlannedBlock['array'], planned: NativePlanned): ArrayContribution {
  if (planned.appendOnly) return { blocks: [], append: planned.appended ?? new Uint8Array(0) }
  const out: ArrayContribution = { blocks: planned.blocks.map((b) => ({ array, index: b.index, data: b.data })) }
  if (planned.shrinkFromBlock >= 0) out.shrinkFromBlock = planned.shrinkFromBlock
  return out
}
