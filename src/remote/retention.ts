/**
 * Retention of a remote store's history (docs/scale-out.md, "Retention of old block
 * versions"): run by any client from time to time, never on the commit path.
 */
import type { ClientBase } from 'pg'
import { checkSchemaName, DEFAULT_SCHEMA } from './schema'

export interface RetentionOptions {
  /** Commits kept in the history (the horizon is head − keepCommits). Default 100 000. */
  keepCommits?: number
  /** How long decided commit ids are kept, so that a client in doubt can still ask. Default 7 days. */
  keepIdsMs?: number
  /**
   * A client whose heartbeat is older than this is dead: its row is removed and its
   * snapshot holds nothing. Default 60 000 ms (handles beat every HEARTBEAT_MS, 10 s).
   */
  clientTimeoutMs?: number
}

/** What one collection removed, and the horizon it moved to. */
export interface Collected {
  horizon: number
  versions: number
  tombstones: number
  records: number
  commits: number
  ids: number
  /** Rows of clients found dead (no heartbeat within clientTimeoutMs), removed. */
  clients: number
}

/**
 * Moves the history's horizon (to head − keepCommits, held back by the oldest snapshot a
 * live client reads) and deletes what only commits before it needed.
 */
export async function collectHistory(client: ClientBase, options: RetentionOptions = {}, schema = DEFAULT_SCHEMA): Promise<Collected> {
  const s = checkSchemaName(schema)
  const keep = options.keepCommits ?? 100_000
  const keepIdsMs = options.keepIdsMs ?? 7 * 24 * 3600 * 1000
  const clientTimeoutMs = options.clientTimeoutMs ?? 60_000
  const { rows } = await client.query(`SELECT * FROM ${s}.collect($1, make_interval(secs => $2), make_interval(secs => $3))`,
    [keep, keepIdsMs / 1000, clientTimeoutMs / 1000])
  const r = rows[0]
  return {
    horizon: Number(r.horizon), versions: Number(r.versions), tombstones: Number(r.tombstones),
    records: Number(r.records), commits: Number(r.commits), ids: Number(r.ids), clients: Number(r.clients),
  }
}
