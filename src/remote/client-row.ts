/**
 * A handle's row in the remote store's clients table (docs/scale-out.md, "Retention of old
 * block versions"): the snapshot serial the handle reads and a heartbeat, so that
 * collect() keeps every block version that snapshot can read. Kept by the link's thread:
 * registered at open, written after a move of the handle (at most once per MOVE_GAP_MS:
 * moves meanwhile are written together at its end) and every HEARTBEAT_MS, on the
 * follower's connection (never the commit's), deleted at close. One statement per write,
 * at most one in flight, without waiting for the server's WAL flush: the row is soft state
 * that the next heartbeat writes again. A row that lags behind its handle only keeps more
 * than needed: snapshots move forward.
 */
import type { ClientBase } from 'pg'

/** How often a handle's row says it is alive; collect()'s clientTimeoutMs must be longer. */
export const HEARTBEAT_MS = 10_000

/**
 * The least time between two writes of a move: a handle committing in a loop costs the
 * server one row write a second, not one per commit (a write per commit cost its commits
 * about a tenth of their time: docs/scale-out.md).
 */
export const MOVE_GAP_MS = 1000

export class ClientRow {
  readonly #schema: string
  readonly #id: string
  readonly #about: string
  #serial: number
  #connection: ClientBase | null = null
  #writing = false
  #again = false
  /** When the last write started (performance.now()), and the write of a move waiting for MOVE_GAP_MS. */
  #wroteAt = -Infinity
  #delayed: NodeJS.Timeout | null = null

  /** `about` names the client for people reading the table (host and process). */
  constructor(schema: string, id: string, about: string, serial: number) {
    this.#schema = schema
    this.#id = id
    this.#about = about
    this.#serial = serial
  }

  #upsert() {
    return {
      name: `${this.#schema}_client`,
      text: `INSERT INTO ${this.#schema}.clients (id, serial, seen, about) VALUES ($1, $2, now(), $3)
             ON CONFLICT (id) DO UPDATE SET serial = EXCLUDED.serial, seen = now()`,
      values: [this.#id, this.#serial, this.#about],
    }
  }

  /** Writes the row on `connection` and waits for it (at open, before the first catch-up). */
  async register(connection: ClientBase): Promise<void> {
    await connection.query(this.#upsert())
  }

  /**
   * The connection later writes go to (the follower's, once it listens), or null while it
   * is down. A new connection writes the row at once: a row collect() removed while the
   * handle could not beat comes back.
   */
  useConnection(connection: ClientBase | null): void {
    this.#connection = connection
    if (!connection) {
      if (this.#delayed) clearTimeout(this.#delayed)
      this.#delayed = null
      return
    }
    connection.query('SET synchronous_commit = off').catch(() => undefined)
    this.#write()
  }

  /** The handle reads snapshot `serial` now. */
  moved(serial: number): void {
    if (serial === this.#serial) return
    this.#serial = serial
    if (this.#delayed) return
    const wait = this.#wroteAt + MOVE_GAP_MS - performance.now()
    if (wait <= 0) {
      this.#write()
      return
    }
    this.#delayed = setTimeout(() => {
      this.#delayed = null
      this.#write()
    }, wait)
    this.#delayed.unref()
  }

  /** The heartbeat: the row says the handle is alive. */
  beat(): void {
    this.#write()
  }

  /** Deletes the row (at close), on `connection`. */
  async remove(connection: ClientBase): Promise<void> {
    this.useConnection(null)
    await connection.query(`DELETE FROM ${this.#schema}.clients WHERE id = $1`, [this.#id])
  }

  #write(): void {
    const connection = this.#connection
    if (!connection) return
    if (this.#writing) {
      this.#again = true
      return
    }
    this.#writing = true
    this.#wroteAt = performance.now()
    connection.query(this.#upsert()).catch(() => undefined).finally(() => {
      this.#writing = false
      if (this.#again) {
        this.#again = false
        this.#write()
      }
    })
  }
}
