/**
 * From an array's planned changes (the engine's plan step, NativeArray.plan()) to the
 * blocks and record fields of a remote commit plan (commit-plan.ts).
 */
import type { NativeArray, NativePlanned } from '../binding'
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

/**
 * The blocks an append-only array change writes, for a commit that cannot send it as an
 * append (the array is new, or its record changed otherwise too): every block from the
 * one holding the first appended byte to the end, read through the transaction (the
 * committed head of that block plus the appended bytes), trailing zeros trimmed.
 */
export function blocksOfAppend(array: PlannedBlock['array'], native: NativeArray, blockBytes: number, appendedBytes: number): PlannedBlock[] {
  const end = native.byteLength
  const start = Math.floor((end - appendedBytes) / blockBytes) * blockBytes
  if (end <= start) return []
  const bytes = new Uint8Array(end - start)
  native.gather(start, [end - start], [1], 1, bytes, false)
  const out: PlannedBlock[] = []
  for (let at = 0; at < bytes.byteLength; at += blockBytes) {
    let size = Math.min(blockBytes, bytes.byteLength - at)
    while (size > 0 && bytes[at + size - 1] === 0) size--
    out.push({ array, index: (start + at) / blockBytes, data: bytes.subarray(at, at + size) })
  }
  return out
}
