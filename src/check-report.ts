/** What store.check() reports (src/check.ts builds it). */

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
  /**
   * Of those blocks, the stubs of a remote store's lazily filled cache (open with
   * `blocks: 'lazy'`): their headers are checked, their bytes are on the server. 0 elsewhere.
   */
  blocksOnServer: number
}
