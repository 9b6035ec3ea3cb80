/**
 * The thread that holds remote stores' PostgreSQL connections (started by RemoteLink, one
 * per JavaScript thread that opens remote stores). Each link attaches with a port and an
 * answer cell of its own and gets its own connections and cache; the JavaScript threads
 * that use the stores never touch the network: they post a request and either block on
 * the shared answer cell (synchronous API) or await the reply.
 *
 * Each request gets exactly one reply on the port, then the cell is bumped and notified.
 * Failures travel as { code, message, facts?, commitId? } and are rebuilt as the coded
 * error classes on the caller's side.
 */
import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { type MessagePort, parentPort } from 'node:worker_threads'
import { Client } from 'pg'
import { ConflictError, TxarrayError } from '../errors'
import { callCommit, resolveCommit } from './commit-call'
import type { CommitPlan } from './commit-plan'
import { readChangesSince } from './changes-since'
import { CacheWriter } from './cache-writer'
import { listenForCommits } from './commit-notifications'
import { install } from './schema'
import { type FetchedBlock, fetchBlocks, fetchVersions } from './block-fetch'
import type { LinkReply, LinkRequest, WireError } from './link-protocol'
import { ClientRow, HEARTBEAT_MS } from './client-row'
import { serveFaultFetches, stopFaultFetches } from './fault-fetches'

interface Start {
  url: string
  schema: string
  port: MessagePort
  cell: SharedArrayBuffer
  connectTimeoutMs: number
  /** The local store that caches the remote one: followed commits are written into it. */
  cache?: string
  /** Catch-up writes stubs instead of block bytes (blocks are fetched when read). */
  lazy?: boolean
  /** The fetch channel of the handle's views' faults, served by this thread (fault-fetches.ts). */
  fetchChannel?: number
}

/** Serves one link until it closes. */
function serve(start: Start): void {
  const answered = new Int32Array(start.cell)
  let client: Client | null = null
  let cache: CacheWriter | null = null

  /** A connected client, connecting first if there is none (RemoteUnavailable if that fails). */
  async function connected(): Promise<Client> {
    if (client) return client
    const fresh = new Client({ connectionString: start.url, connectionTimeoutMillis: start.connectTimeoutMs })
    // A connection that breaks between requests is dropped here; the next request reconnects.
    fresh.on('error', () => { if (client === fresh) client = null })
    fresh.on('end', () => { if (client === fresh) client = null })
    try {
      await fresh.connect()
    } catch (e) {
      await fresh.end().catch(() => undefined)
      throw unavailable(e)
    }
    client = fresh
    return fresh
  }

  function drop(broken: Client) {
    if (client === broken) client = null
    broken.end().catch(() => undefined)
  }

  function unavailable(e: unknown): WireError {
    return { code: 'TXA_REMOTE_UNAVAILABLE', message: `the remote store cannot be reached: ${(e as Error).message}` }
  }

  /**
   * A failure PostgreSQL reported for the statement, the connection intact — as opposed to
   * a lost connection (no SQLSTATE, class 08 "connection exception", class 57 "operator
   * intervention" such as a terminated backend or a shutdown, or a FATAL error).
   */
  function isServerError(e: unknown): boolean {
    const { code, severity } = e as { code?: unknown; severity?: unknown }
    if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code) || severity === undefined) return false
    return !code.startsWith('08') && !code.startsWith('57') && severity !== 'FATAL' && severity !== 'PANIC'
  }

  function wireError(e: unknown): WireError {
    if (e instanceof ConflictError) {
      return { code: e.code, message: e.message, facts: { array: e.array, serial: e.serial, metadata: e.metadata, blocks: e.blocks, rows: e.rows } }
    }
    const coded = e as Partial<TxarrayError> & Partial<WireError>
    if (typeof coded.code === 'string' && coded.code.startsWith('TXA_')) return { code: coded.code, message: String(coded.message), commitId: coded.commitId }
    return { code: 'TXA_STORAGE', message: `the remote store failed: ${(e as Error).message}` }
  }

  /**
   * One commit; when the connection breaks on the way, the outcome is looked up by the
   * commit id on a new connection (which fences the id if it did not land).
   */
  function commit(plan: CommitPlan) {
    const running = commitOnce(plan)
    const settled = running.then(() => undefined, () => undefined)
    committing = settled
    void settled.then(() => { if (committing === settled) committing = null })
    return running
  }

  async function commitOnce(plan: CommitPlan) {
    const c = await connected()
    try {
      const outcome = await callCommit(c, plan, start.schema)
      if (outcome.status === 'committed' && cache) {
        // Into the cache from the plan when it can be (else the settle's catch-up reads it).
        try {
          held = Math.max(held, cache.applyOwn(plan, outcome) ?? 0)
          flushSoon()
        } catch {
          // the catch-up will write it
        }
      }
      // The caller's settle skips its catch-up call when the cache holds the commit already.
      return cache ? { ...outcome, cached: held } : outcome
    } catch (e) {
      // A refusal the server decided (a conflict, a segment name taken): nothing was written.
      if (e instanceof TxarrayError || isServerError(e)) throw e
      drop(c)
      try {
        const decided = await resolveCommit(await connected(), plan.commitId, plan.snapshot, start.schema)
        if (decided.status === 'unknown') {
          throw {
            code: 'TXA_COMMIT_UNKNOWN', commitId: plan.commitId, forgotten: true,
            message: `the connection to the remote store was lost during commit ${plan.commitId}, and the server no longer keeps the outcome of commits that recent (retention's keepIds): it is not committed again; abort() and check`,
          } satisfies WireError
        }
        return decided.status === 'committed' ? { status: 'duplicate' as const, serial: decided.serial } : decided
      } catch (again) {
        if ((again as WireError).forgotten) throw again
        throw {
          code: 'TXA_COMMIT_UNKNOWN', commitId: plan.commitId,
          message: `the connection to the remote store was lost during commit ${plan.commitId} and its outcome cannot be looked up yet (${(again as Error).message ?? again})`,
        } satisfies WireError
      }
    }
  }

  /**
   * Catch-up writes the cache without fsync (the server holds every commit durably); it is
   * flushed this long after the first unflushed write, and at close.
   */
  const FLUSH_AFTER_MS = 1000
  let flushTimer: NodeJS.Timeout | null = null
  function flushSoon(): void {
    if (flushTimer || !cache) return
    flushTimer = setTimeout(() => {
      flushTimer = null
      try {
        cache?.flush()
      } catch {
        // the mark stays: the next flush, or a rebuild after a machine stop, covers it
      }
    }, FLUSH_AFTER_MS)
    flushTimer.unref()
  }

  /** The handle's row in the clients table (a handle with a cache has one), and its heartbeat. */
  let row: ClientRow | null = null
  let heartbeat: NodeJS.Timeout | null = null

  /** The commit call in flight, if any (settles when it has ended, whatever the outcome). */
  let committing: Promise<void> | null = null

  /** The cache's serial after the last catch-up of this link. */
  let held = 0
  /** The catch-up in progress, and the one queued after it (shared by every caller that came meanwhile). */
  let current: Promise<number> | null = null
  let next: Promise<number> | null = null

  /** One catch-up: reads what the server has after the cache's serial and writes it. */
  async function runOnce(): Promise<number> {
    const c = await connected()
    let changes: Awaited<ReturnType<typeof readChangesSince>>
    try {
      const at = cache!.stamp()?.serial ?? 0
      const lazy = { lazy: start.lazy ?? false }
      changes = await readChangesSince(c, at, start.schema, lazy)
      // The history no longer reaches back to the cache: the whole state replaces it.
      if (changes.pruned > at && at > 0) changes = await readChangesSince(c, 0, start.schema, lazy)
      if (lazy.lazy) await keepWarm(c, changes)
    } catch (e) {
      if (isServerError(e)) throw e
      drop(c)
      throw unavailable(e)
    }
    // The cache may have moved meanwhile (this machine's own commit, another process):
    // what was read is newer than what it held then, so writing it is still right, and the
    // writer skips a batch the cache already holds.
    held = Math.max(held, cache!.apply(changes))
    flushSoon()
    return held
  }

  /**
   * Lazy catch-up: the new versions of blocks the cache holds in full come with their
   * bytes (one more round trip, only when there are some); the others stay stubs. A
   * version the server no longer holds stays a stub too.
   */
  async function keepWarm(c: Client, changes: Awaited<ReturnType<typeof readChangesSince>>): Promise<void> {
    const held = cache!.heldOf(changes)
    if (held.length === 0) return
    const found = await fetchVersions(c, held, start.schema)
    found.forEach((f, i) => { if (f.data) held[i].data = f.data })
  }

  function startRun(): Promise<number> {
    const run: Promise<number> = runOnce().finally(() => { if (current === run) current = null })
    current = run
    return run
  }

  /**
   * Brings the cache up to date, one catch-up at a time: to at least serial `atLeast`
   * when given (a catch-up in progress that reaches it will do), else to what the server
   * holds when this is called (a catch-up that starts after the call). Returns the
   * cache's serial.
   */
  function catchUp(atLeast?: number): Promise<number> {
    if (atLeast !== undefined && held >= atLeast) return Promise.resolve(held)
    if (!current) return startRun()
    if (atLeast !== undefined) {
      return current.then((reached) => (reached >= atLeast ? reached : catchUp(atLeast)), () => catchUp(atLeast))
    }
    const after = current.then(() => undefined, () => undefined)
    next ??= after.then(() => {
      next = null
      return current ?? startRun()
    })
    return next
  }

  /**
   * Follows the remote store into the cache: LISTEN on a connection of its own, catch up
   * after every notification, and after every (re)connection — NOTIFY has no replay, so
   * LISTEN comes first and the catch-up then covers whatever was committed before it.
   * Reconnects with backoff (100 ms doubling to 5 s) for as long as the link lives.
   */
  let following = false
  let closed = false
  let listening: Client | null = null
  async function follow(): Promise<void> {
    if (following) return
    following = true
    let delay = 100
    while (!closed) {
      const listener = new Client({ connectionString: start.url, connectionTimeoutMillis: start.connectTimeoutMs })
      listening = listener
      const lost = new Promise<void>((resolve) => {
        listener.on('error', () => resolve())
        listener.on('end', () => resolve())
      })
      try {
        await listener.connect()
        await listenForCommits(listener, (serial) => {
          // The notification of this link's own commit can arrive before its answer: the
          // catch-up waits for the commit, which writes itself into the cache (then there
          // is nothing to read), instead of queueing a read on the commit's connection.
          const go = () => { catchUp(serial).catch(() => undefined) }
          if (committing) void committing.then(go)
          else go()
        }, start.schema)
        await catchUp()
        delay = 100
        row?.useConnection(listener)
        await lost
        row?.useConnection(null)
      } catch {
        // unreachable now: try again after the delay
      }
      await listener.end().catch(() => undefined)
      if (closed) break
      await new Promise((r) => setTimeout(r, delay))
      delay = Math.min(delay * 2, 5000)
    }
  }

  async function run(request: LinkRequest): Promise<unknown> {
    switch (request.op) {
      case 'open': {
        const id = await install(await connected(), start.schema)
        if (start.cache && !cache) {
          cache = new CacheWriter(start.cache, id, start.lazy ?? false)
          // Registered before the catch-up, at the serial the cache holds: the handle's
          // first snapshot is the one the catch-up reaches, never older.
          row = new ClientRow(start.schema, randomUUID(), `${hostname()}:${process.pid}`, cache.stamp()?.serial ?? 0)
          await row.register(await connected())
          heartbeat = setInterval(() => row?.beat(), HEARTBEAT_MS)
          heartbeat.unref()
          await catchUp()
          void follow()
        }
        return id
      }
      case 'catchUp': {
        if (!cache) throw { code: 'TXA_ARGUMENT', message: 'this link has no cache to catch up' } satisfies WireError
        return catchUp(request.atLeast)
      }
      case 'commit': return commit(request.plan)
      case 'fetch': {
        const c = await connected()
        let found: Awaited<ReturnType<typeof fetchBlocks>>
        try {
          found = await fetchBlocks(c, request.arrayId, request.blocks, start.schema)
        } catch (e) {
          if (isServerError(e)) throw e
          drop(c)
          throw unavailable(e)
        }
        const gone = found.find((b) => b.data === null)
        if (gone) {
          throw {
            code: 'TXA_REMOTE_UNAVAILABLE',
            message: `version ${gone.serial} of block ${gone.index} of array #${request.arrayId} is no longer on the server (collected by retention): refresh() to a newer snapshot`,
          } satisfies WireError
        }
        const blocks = found as FetchedBlock[]
        // Into the cache after the answer has gone (setImmediate: the reply is posted
        // first), so that later snapshots of every process read them locally.
        setImmediate(() => {
          try {
            if (cache && cache.fill(request.arrayId, blocks) > 0) flushSoon()
          } catch {
            // the cache keeps its stubs: they are fetched again when read
          }
        })
        return blocks
      }
      case 'resolve': {
        try {
          return await resolveCommit(await connected(), request.commitId, request.snapshot, start.schema)
        } catch (e) {
          if (client) drop(client)
          throw unavailable(e)
        }
      }
      case 'moved': {
        if (!closed) row?.moved(request.serial)
        return null
      }
      case 'changesSince': {
        const c = await connected()
        try {
          return await readChangesSince(c, request.after, start.schema)
        } catch (e) {
          if (isServerError(e)) throw e
          drop(c)
          throw unavailable(e)
        }
      }
      case 'close': {
        closed = true
        if (heartbeat) clearInterval(heartbeat)
        heartbeat = null
        row?.useConnection(null)
        if (start.fetchChannel !== undefined) await stopFaultFetches(start.fetchChannel)
        // The follower's connection ends first: a row write still on it lands before the delete.
        if (listening) await listening.end().catch(() => undefined)
        if (row && client) await row.remove(client).catch(() => undefined)
        row = null
        if (client) await client.end().catch(() => undefined)
        client = null
        if (flushTimer) clearTimeout(flushTimer)
        flushTimer = null
        cache?.close()
        cache = null
        return null
      }
    }
  }

  if (start.fetchChannel !== undefined) {
    serveFaultFetches(start.fetchChannel, {
      url: start.url, connectTimeoutMs: start.connectTimeoutMs, isServerError, schema: start.schema, retryMs: start.connectTimeoutMs,
      fill: (arrayId, blocks) => { if (cache && cache.fill(arrayId, blocks) > 0) flushSoon() },
    })
  }

  start.port.on('message', (request: LinkRequest) => {
    if (request.op === 'moved') {
      void run(request)
      return
    }
    run(request).then(
      (value): LinkReply => ({ id: request.id, value }),
      (e: unknown): LinkReply => ({ id: request.id, error: wireError(e) }),
    ).then((reply) => {
      start.port.postMessage(reply)
      Atomics.add(answered, 0, 1)
      Atomics.notify(answered, 0)
      if (request.op === 'close') start.port.close()
    })
  })
}

parentPort!.on('message', (start: Start) => serve(start))
