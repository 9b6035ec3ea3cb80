/**
 * Catch-up: what the commits after a serial changed, read from one snapshot of the remote
 * store in one round trip (docs/scale-out.md, "Catch-up"). The caller writes it into the
 * local store in one write transaction, one local log entry per remote commit.
 */
import type { ClientBase } from 'pg'
import { checkSchemaName, DEFAULT_SCHEMA } from './schema'

/** What one commit changed in one array: its record, and block ranges (last null: to the end). */
export interface RemoteArrayChange {
  record: boolean
  blocks: [first: number, last: number | null][]
  /** The array's name and what followers are told (the local log's fields). */
  name: string
  /** The local log's flag bits besides "record changed" (created 2, deleted 4, append-only 8, resized 16, attributes 32, segments 64). */
  flags: number
  rowsBefore: number
  rowsAfter: number
  rowBytes: number
  blockBytes: number
}

/** One remote commit's changes, by array id. */
export interface RemoteCommit {
  serial: number
  /** When the server committed it (ms since the Unix epoch). */
  timeMs: number
  changes: Map<number, RemoteArrayChange>
}

/** An array record as the newest of the commits read left it. */
export interface RemoteRecord {
  id: number
  name: string
  serial: number
  rows: number
  rowBytes: number
  blockBytes: number
  body: Buffer
  /** The array was deleted (its local blocks go). */
  deleted: boolean
}

/** The newest version of one block. */
export interface RemoteBlock {
  arrayId: number
  index: number
  serial: number
  /** Its bytes; null: it reads as zeros (deleted, all zeros, or cut by a shrink) — or, read lazily, they stayed on the server. */
  data: Buffer | null
  /** Read lazily (`{ lazy: true }`): the length of its bytes on the server; 0 for a block that reads as zeros. */
  length?: number
}

/** A segment name added (its rows [start, stop)) or deleted after the serial read from. */
export interface RemoteSegment {
  arrayId: number
  /** The name's UTF-8 bytes. */
  name: Buffer
  start: number
  stop: number
  serial: number
  deleted: boolean
}

/** Everything after `after` up to `head`, consistent as of one snapshot of the server. */
export interface RemoteChanges {
  after: number
  head: number
  /**
   * The server's history starts after this serial. When it is above `after`, the commits
   * in between are gone: the change sets read do not cover them (a cache must assume
   * everything changed), and blocks deleted then are not reported (it must resync).
   */
  pruned: number
  /** The commits in serial order; fewer than head - after when old ones were pruned. */
  commits: RemoteCommit[]
  records: RemoteRecord[]
  blocks: RemoteBlock[]
  /** Segment names added or deleted (absent: none). */
  segments?: RemoteSegment[]
}

interface Row {
  kind: 'head' | 'commit' | 'record' | 'block' | 'segment'
  serial: string
  array_id: string | null
  block_index: string | null
  name: string | null
  rows: string | null
  row_bytes: string | null
  block_bytes: number | null
  body: Buffer | null
  deleted: boolean | null
  data: Buffer | null
  changes: Record<string, Partial<RemoteArrayChange>> | null
  committed_ms: string | null
  pruned: string | null
  data_length?: number | null
}

/** A commit's change set as the commits table holds it (jsonb, by array id). */
export function parseChangeSet(json: Record<string, Partial<RemoteArrayChange>> | null): Map<number, RemoteArrayChange> {
  const changes = new Map<number, RemoteArrayChange>()
  for (const [id, change] of Object.entries(json ?? {})) {
    changes.set(Number(id), {
      record: change.record ?? false, blocks: change.blocks ?? [], name: change.name ?? '', flags: change.flags ?? 0,
      rowsBefore: change.rowsBefore ?? 0, rowsAfter: change.rowsAfter ?? 0, rowBytes: change.rowBytes ?? 0,
      blockBytes: change.blockBytes ?? 0,
    })
  }
  return changes
}

/**
 * Reads what commits after `after` changed (one statement: one snapshot, one round trip).
 * `lazy`: the blocks come without their bytes, with their lengths only (a lazily filled
 * cache writes stubs for them; the server reads no block bytes either: the length of a
 * TOASTed value is in its pointer).
 */
export async function readChangesSince(
  client: ClientBase, after: number, schema = DEFAULT_SCHEMA, options: { lazy?: boolean } = {},
): Promise<RemoteChanges> {
  const s = checkSchemaName(schema)
  const { rows } = await client.query<Row>(options.lazy
    ? {
        name: `${s}_changes_since_lazy`,
        text: `SELECT kind, serial, array_id, block_index, name, rows, row_bytes, block_bytes, body, deleted,
                      NULL::bytea AS data, octet_length(data) AS data_length, changes, committed_ms, pruned
                 FROM ${s}.changes_since($1)`,
        values: [after],
      }
    : {
        name: `${s}_changes_since`,
        text: `SELECT * FROM ${s}.changes_since($1)`,
        values: [after],
      })
  const out: RemoteChanges = { after, head: after, pruned: 0, commits: [], records: [], blocks: [], segments: [] }
  for (const row of rows) {
    const serial = Number(row.serial)
    if (row.kind === 'head') {
      out.head = serial
      out.pruned = Number(row.pruned)
    } else if (row.kind === 'commit') {
      out.commits.push({ serial, timeMs: Number(row.committed_ms), changes: parseChangeSet(row.changes) })
    } else if (row.kind === 'record') {
      out.records.push({
        id: Number(row.array_id),
        name: row.name ?? '',
        serial,
        rows: Number(row.rows),
        rowBytes: Number(row.row_bytes),
        blockBytes: row.block_bytes ?? 0,
        body: row.body ?? Buffer.alloc(0),
        deleted: row.deleted ?? false,
      })
    } else if (row.kind === 'segment') {
      // A segment row: block_index holds its first row, rows its end, body its name.
      out.segments!.push({
        arrayId: Number(row.array_id), name: row.body ?? Buffer.alloc(0), start: Number(row.block_index),
        stop: Number(row.rows), serial, deleted: row.deleted ?? false,
      })
    } else {
      const block: RemoteBlock = { arrayId: Number(row.array_id), index: Number(row.block_index), serial, data: row.data }
      if (options.lazy) block.length = row.data_length ?? 0
      out.blocks.push(block)
    }
  }
  out.commits.sort((a, b) => a.serial - b.serial)
  return out
}
