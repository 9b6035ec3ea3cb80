/**
 * Storing one commit in a remote store: one statement, one round trip (docs/scale-out.md,
 * "The commit protocol"), and resolving a commit whose outcome a dropped connection left
 * unknown (fencing its id).
 */
import type { ClientBase } from 'pg'
import { AlreadyExistsError, ConflictError, type ConflictFacts, type IndexRange } from '../errors'
import type { CommitPlan } from './commit-plan'
import { parseChangeSet, type RemoteCommit } from './changes-since'
import { checkSchemaName, DEFAULT_SCHEMA } from './schema'

/**
 * How a commit call ended (a conflict is thrown as ConflictError instead). `cached`: the
 * serial the link's cache holds after the call (set by a link that has a cache).
 */
export type CommitOutcome =
  /**
   * It landed as `serial`; `ids` and `lengths` (rows) per record, as the server laid them;
   * `commit`: its change set and time, as catch-up would read them.
   */
  | { status: 'committed'; serial: number; ids: number[]; lengths: number[]; commit: RemoteCommit; cached?: number }
  /** This commit id landed before, as `serial` (a retry of a commit whose answer was lost). */
  | { status: 'duplicate'; serial: number; cached?: number }
  /** This commit id was fenced: it never committed and never will. */
  | { status: 'abandoned' }

/** The SQLSTATE the commit function raises for a conflict, with the facts as JSON detail. */
export const CONFLICT_SQLSTATE = 'TXCON'

/** The SQLSTATE the commit function raises for a segment name another commit took. */
export const SEGMENT_EXISTS_SQLSTATE = 'TXEXI'

/** One segment change as the commit function takes it: deletes of an array, then its puts. */
interface SegmentParam {
  array: number
  name: string
  start: number
  stop: number
  remove: boolean
}

/** The plan's segment changes, flattened in the order the commit function reads them. */
function segmentParams(plan: CommitPlan): SegmentParam[] {
  const out: SegmentParam[] = []
  for (const g of plan.segments ?? []) {
    const array = typeof g.array === 'number' ? g.array : -(g.array.record + 1)
    for (const d of g.deletes) out.push({ array, name: d.name, start: d.start, stop: d.stop, remove: true })
    for (const p of g.puts) out.push({ array, name: p.name, start: p.start, stop: p.start + p.rows, remove: false })
  }
  return out
}

/**
 * Sends one commit. Throws ConflictError (nothing was written) with the facts the local
 * engine gives: the array, the first commit since the snapshot to conflict, and the
 * blocks and rows both wrote. Any other error leaves the outcome unknown when the call
 * may have reached the server: resolve it with resolveCommit().
 */
export async function callCommit(client: ClientBase, plan: CommitPlan, schema = DEFAULT_SCHEMA): Promise<CommitOutcome> {
  const s = checkSchemaName(schema)
  const records = plan.records
  const pieces: Uint8Array[] = []
  for (const r of records) if (r.append) pieces.push(r.append)
  for (const b of plan.blocks) pieces.push(b.data)
  const data = Buffer.concat(pieces)
  const segments = segmentParams(plan)
  const params = [
    plan.commitId,
    plan.snapshot,
    plan.sync ?? true,
    records.map((r) => r.name),
    records.map((r) => r.id),
    records.map((r) => r.expectedSerial),
    records.map((r) => r.remove ?? false),
    records.map((r) => r.rows),
    records.map((r) => r.rowBytes),
    records.map((r) => r.blockBytes),
    records.map((r) => Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength)),
    records.map((r) => (r.append ? r.append.byteLength : -1)),
    records.map((r) => r.shrinkFromBlock ?? -1),
    plan.blocks.map((b) => (typeof b.array === 'number' ? b.array : -(b.array.record + 1))),
    plan.blocks.map((b) => b.index),
    plan.blocks.map((b) => b.data.byteLength),
    data,
    records.map((r) => r.flags ?? 0),
    segments.map((g) => g.array),
    segments.map((g) => Buffer.from(g.name, 'utf8')),
    segments.map((g) => g.start),
    segments.map((g) => g.stop),
    segments.map((g) => g.remove),
  ]
  let rows: {
    status: string; serial: string | null; ids: string[] | null; lengths: string[] | null
    changes: Parameters<typeof parseChangeSet>[0]; committed_ms: string | null
  }[]
  try {
    rows = (await client.query({
      name: `${s}_commit`,
      text: `SELECT * FROM ${s}.commit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)`,
      values: params,
    })).rows
  } catch (e) {
    const err = e as { code?: string; detail?: string }
    if (err.code === CONFLICT_SQLSTATE && err.detail) throw conflictError(JSON.parse(err.detail), plan, segments)
    if (err.code === SEGMENT_EXISTS_SQLSTATE && err.detail) {
      const taken = segments[(JSON.parse(err.detail) as { segment: number }).segment]
      throw new AlreadyExistsError(`segment '${taken?.name}' already exists`)
    }
    throw e
  }
  const row = rows[0]
  if (row.status === 'committed') {
    const serial = Number(row.serial)
    return {
      status: 'committed',
      serial,
      ids: (row.ids ?? []).map(Number),
      lengths: (row.lengths ?? []).map(Number),
      commit: { serial, timeMs: Number(row.committed_ms), changes: parseChangeSet(row.changes) },
    }
  }
  if (row.status === 'duplicate') return { status: 'duplicate', serial: Number(row.serial) }
  return { status: 'abandoned' }
}

/** What looking a commit id up decided (resolveCommit). */
export type Resolved =
  | { status: 'committed'; serial: number }
  | { status: 'abandoned' }
  /**
   * The server no longer keeps what was decided of commits as recent as this one (its id
   * may have been collected by retention after it landed): the outcome cannot be known.
   */
  | { status: 'unknown' }

/**
 * Decides a commit whose outcome is unknown, on a working connection: 'committed' as a
 * serial, or 'abandoned' — then its id is fenced first, so an attempt still in flight on
 * the lost connection can never land afterwards. `snapshot` is the snapshot the commit
 * was planned at: it could only have landed after it, so an id not found is 'abandoned'
 * only while the ids retention collected (up to head.ids_pruned) all landed at or before
 * `snapshot`; else 'unknown', and the id is not fenced (a later look-up says the same).
 * Three round trips at most.
 */
export async function resolveCommit(client: ClientBase, commitId: string, snapshot: number, schema = DEFAULT_SCHEMA):
Promise<Resolved> {
  const s = checkSchemaName(schema)
  // Waits for an attempt of the same id still running; inserts only if there is none and
  // no id that could be this one's was collected.
  const fenced = await client.query(
    `WITH h AS (SELECT ids_pruned FROM ${s}.head)
     INSERT INTO ${s}.commit_ids (commit_id) SELECT $1 FROM h WHERE h.ids_pruned <= $2
       ON CONFLICT DO NOTHING RETURNING commit_id`, [commitId, snapshot])
  if (fenced.rowCount === 1) {
    // A collection that ended before the fence went in may have taken this very id.
    const { rows } = await client.query(`SELECT ids_pruned FROM ${s}.head`)
    if (Number(rows[0].ids_pruned) <= snapshot) return { status: 'abandoned' }
    await client.query(`DELETE FROM ${s}.commit_ids WHERE commit_id = $1 AND serial IS NULL`, [commitId])
    return { status: 'unknown' }
  }
  const found = await client.query(`SELECT serial FROM ${s}.commit_ids WHERE commit_id = $1`, [commitId])
  if (found.rowCount === 0) return { status: 'unknown' }
  const serial = found.rows[0].serial
  return serial === null ? { status: 'abandoned' } : { status: 'committed', serial: Number(serial) }
}

interface ConflictDetail {
  array?: string | null
  /** The number of the segment change a segment conflict is about. */
  segment?: number
  serial?: number | null
  metadata?: boolean
  blocks?: number[] | null
  what?: string
  /** The array's geometry on the server (block conflicts). */
  rowBytes?: number | null
  blockBytes?: number | null
  rows?: number | null
}

/** Merges sorted indexes into inclusive ranges. */
function ranges(indexes: number[]): IndexRange[] {
  const out: IndexRange[] = []
  for (const i of indexes) {
    const last = out.at(-1)
    if (last && last[1] + 1 === i) last[1] = i
    else out.push([i, i])
  }
  return out
}

function rangesText(list: IndexRange[]): string {
  return list.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(', ')
}

/** The ConflictError the local engine would raise for the same conflict. */
function conflictError(detail: ConflictDetail, plan: CommitPlan, segments: SegmentParam[]): ConflictError {
  const facts: ConflictFacts = { metadata: detail.metadata ?? false }
  if (detail.array) facts.array = detail.array
  if (detail.serial !== null && detail.serial !== undefined) facts.serial = Number(detail.serial)
  const by = facts.serial !== undefined ? `commit ${facts.serial}` : 'another commit'
  const what = facts.array ? `array '${facts.array}'` : 'an array'
  if (detail.what === 'pruned') {
    return new ConflictError('this snapshot is older than the remote store\'s history reaches (its old commits were collected); abort and retry', facts)
  }
  if (detail.what === 'segment') {
    const name = segments[detail.segment ?? -1]?.name
    return new ConflictError(`segment '${name}' of array '${facts.array}' was deleted or replaced by another commit; abort and retry`, facts)
  }
  if (detail.what !== 'blocks') {
    const verb = detail.what ?? 'changed'
    return new ConflictError(`${what} was ${verb} by ${by}; abort and retry`, facts)
  }
  facts.blocks = ranges((detail.blocks ?? []).map(Number))
  // Rows of axis 0 the blocks hold, within the longer of the lengths known (the server's
  // and this commit's), as the local engine reports them.
  const mine = plan.records.find((r) => r.name === facts.array && !r.append)
  const rowBytes = Number(detail.rowBytes ?? 0)
  const blockBytes = Number(detail.blockBytes ?? 0)
  const rows = Math.max(Number(detail.rows ?? 0), mine?.rows ?? 0)
  let message = `${what}: ${by} changed blocks ${rangesText(facts.blocks)}, which this transaction writes too`
  if (rowBytes > 0 && blockBytes > 0 && rows > 0) {
    facts.rows = facts.blocks
      .map(([a, b]): IndexRange => [Math.floor((a * blockBytes) / rowBytes),
        Math.min(Math.floor(((b + 1) * blockBytes - 1) / rowBytes), rows - 1)])
      .filter(([a, b]) => a <= b)
    if (facts.rows.length > 0) {
      message = `${what}: ${by} changed rows ${rangesText(facts.rows)} (blocks ${rangesText(facts.blocks)}), which this transaction writes too`
    }
  }
  return new ConflictError(`${message}; abort and retry`, facts)
}
