/**
 * Remote stores for the tests of several machines: every store in a fresh schema of one
 * database per test process, each "machine" a handle with a cache directory of its own.
 */
import { randomBytes } from 'node:crypto'
import type { ClientBase } from 'pg'
import { open, type Store } from '../../src/index'
import type { TestPostgres } from './postgres'
import { tempDir } from './tmp'

export interface RemoteStore {
  url: string
  schema: string
  /** Opens a machine of the store: a handle on `cache` (default: a new directory). */
  machine(cache?: string): Store
}

/** Returns a maker of remote stores on `server`, whose schemas start with `prefix`. */
export function remoteStores(server: TestPostgres, prefix: string): () => Promise<RemoteStore> {
  let database: string | null = null
  return async () => {
    const url = (database ??= await server.freshDatabase())
    const schema = `${prefix}_${randomBytes(5).toString('hex')}`
    return { url, schema, machine: (cache = tempDir()) => open(cache, { remote: url, remoteSchema: schema }) }
  }
}

/**
 * Waits (up to 10 s) until every row of the store's clients table reads the head serial
 * (closed handles' rows gone, open ones moved): collect() is then held back by no snapshot.
 */
export async function clientsAtHead(client: ClientBase, schema: string): Promise<void> {
  const end = Date.now() + 10_000
  for (;;) {
    const { rows } = await client.query(
      `SELECT count(*)::int AS behind FROM ${schema}.clients c, ${schema}.head h WHERE c.serial < h.serial`)
    if (rows[0].behind === 0) return
    if (Date.now() > end) throw new Error(`${rows[0].behind} clients rows stay behind the head`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/**
 * Waits (up to `tries` × 10 ms) until a session of this database waits for a lock — a
 * commit that reached the server and waits behind a row another session holds; says
 * whether one did.
 */
export async function someoneWaitsForLock(client: ClientBase, tries = 500): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    const { rows } = await client.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`)
    if (rows[0].n > 0) return true
    await new Promise((r) => setTimeout(r, 10))
  }
  return false
}

/**
 * Waits (up to 10 s) until no other session of this database runs a statement: a commit
 * whose client was killed still runs to its end inside the server (PostgreSQL notices the
 * lost client only when it answers), and lands then.
 */
export async function serverIdle(client: ClientBase): Promise<void> {
  const end = Date.now() + 10_000
  // Idle twice, 50 ms apart: a statement sent just before its client died may not have
  // been read by its session at the first look.
  for (let idleLooks = 0; idleLooks < 2;) {
    const { rows } = await client.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()`)
    idleLooks = rows[0].n === 0 ? idleLooks + 1 : 0
    if (idleLooks === 0 && Date.now() > end) throw new Error(`${rows[0].n} sessions still run a statement`)
    await new Promise((r) => setTimeout(r, idleLooks ? 50 : 10))
  }
}
