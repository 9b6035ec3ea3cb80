/**
 * What one commit changes, as the engine's plan step hands it to a remote store: the
 * records it changes and the bytes of every block it writes. It is a value (no handle, no
 * view memory): an asynchronous commit must not see writes made after it was planned.
 */
import { TooLargeError } from '../errors'

/** A change to one array's record. */
export interface PlannedRecord {
  /** The array's name. */
  name: string
  /** Its id; 0 for an array this commit creates. */
  id: number
  /** The record's serial in the committing snapshot; 0 if the snapshot has no such array. */
  expectedSerial: number
  /** Delete the array. */
  remove?: boolean
  /** Length of axis 0 after the commit (ignored for appends: the rebase decides it). */
  rows: number
  /** Bytes per row. */
  rowBytes: number
  /** Bytes per storage block. */
  blockBytes: number
  /** The record body (msgpack), as the local store keeps it. */
  body: Uint8Array
  /**
   * The commit's only change to this array is appending these bytes (whole rows): they
   * are laid at the newest end when the commit lands, whatever others appended meanwhile.
   */
  append?: Uint8Array
  /** Blocks from this index on are cut (the array shrank). */
  shrinkFromBlock?: number
  /** What else the transaction did to the array, for followers: the local log's flag bits (resized 16, attributes 32, segments 64). */
  flags?: number
}

/** A block this commit writes. */
export interface PlannedBlock {
  /** The array's id, or `{ record: i }` for the array records[i] creates. */
  array: number | { record: number }
  /** The block's index. */
  index: number
  /** Its bytes (trailing zeros may be trimmed); empty: the block reads as zeros. */
  data: Uint8Array
}

/**
 * Named segments one commit adds to or deletes from one array. Deletes carry the range
 * the transaction saw (another commit deleted or replaced the name: a conflict); puts the
 * rows where the transaction laid them, which move with a rebased append's rows.
 */
export interface PlannedSegments {
  /** The array's id, or `{ record: i }` for the array records[i] creates. */
  array: number | { record: number }
  /** Names added, in row order: rows [start, start + rows). */
  puts: { name: string; start: number; rows: number }[]
  /** Names deleted, with the rows [start, stop) they had. */
  deletes: { name: string; start: number; stop: number }[]
}

/** One commit, ready to be stored. */
export interface CommitPlan {
  /** The commit id (a UUID): the same id never commits twice. */
  commitId: string
  /** The serial of the snapshot the changes were made in. */
  snapshot: number
  /** Wait for the server's durable flush before acknowledging (the default). */
  sync?: boolean
  records: PlannedRecord[]
  blocks: PlannedBlock[]
  /** Named segments added or deleted, per array. */
  segments?: PlannedSegments[]
}

/**
 * The buffers a commit plan can hand to the link's thread instead of copying them there
 * (postMessage's transfer list): those of block and appended bytes that each view whole
 * (the engine's plan gives every block a buffer of its own). Record bodies are never
 * among them: they may share a buffer with other values. Transferred buffers are
 * detached here, so a plan that was sent is not sent again: a retry plans anew.
 */
export function transferablesOf(plan: CommitPlan): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>()
  const add = (bytes: Uint8Array | undefined) => {
    const buffer = bytes?.buffer
    if (bytes && buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength && bytes.byteLength > 0) {
      out.add(buffer)
    }
  }
  for (const b of plan.blocks) add(b.data)
  for (const r of plan.records) add(r.append)
  return [...out]
}

/**
 * The most bytes one remote commit carries (appended bytes, block bytes and record bodies
 * together): PostgreSQL takes at most 1 GB (2^30 − 1 bytes) in one value and in one
 * message, and the commit sends its bytes as one value; 64 MiB are left for the call's
 * other parameters (about 32 bytes per block). A property, so that the tests can lower it.
 */
export const commitSizeLimit = { bytes: 1024 * 2 ** 20 - 64 * 2 ** 20 }

/** The bytes `plan` sends: appended and block bytes, and record bodies. */
export function commitBytes(plan: CommitPlan): number {
  let n = 0
  for (const r of plan.records) n += r.body.byteLength + (r.append?.byteLength ?? 0)
  for (const b of plan.blocks) n += b.data.byteLength
  return n
}

/**
 * Refuses a plan larger than one remote commit can carry (commitSizeLimit), before
 * anything is sent: TooLargeError, the transaction's changes kept.
 */
export function checkCommitSize(plan: CommitPlan): void {
  const bytes = commitBytes(plan)
  const limit = commitSizeLimit.bytes
  if (bytes <= limit) return
  throw new TooLargeError(`this commit sends ${bytes} bytes of array data to the remote store; one remote commit carries at most ${limit} bytes (PostgreSQL takes at most 1 GB in one value): nothing was sent and the changes are kept; abort() and commit the work in parts (write or append less than ${limit} bytes per transaction, committing after each)`)
}
