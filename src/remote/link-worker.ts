/**
 * The thread that holds a remote store's PostgreSQL connection (started by RemoteLink).
 * JavaScript threads that use the store never touch the network: they post a request
 * and either block on the shared answer cell (synchronous API) or await the reply.
 *
 * Each request gets exactly one reply on the port, then the cell is bumped and notified.
 * Failures travel as { code, message, facts?, commitId? } and are rebuilt as the coded
 * error classes on the caller's side.
 */
import { MessagePort, parentPort, workerData } from 'node:worker_threads'
import { Client } from 'pg'
import { ConflictError, type TxarrayError } from '../errors'
import { callCommit, resolveCommit } from './commit-call'
import type { CommitPlan } from './commit-plan'
import { readChangesSince } from './changes-since'
import { install } from './schema'
import type { LinkReply, LinkRequest, WireError } from './link-protocol'

interface Start { url: string; schema: string; port: MessagePort; cell: SharedArrayBuffer; connectTimeoutMs: number }

const start = workerData as Start
const answered = new Int32Array(start.cell)
let client: Client | null = null

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
async function commit(plan: CommitPlan) {
  const c = await connected()
  try {
    return await callCommit(c, plan, start.schema)
  } catch (e) {
    if (e instanceof ConflictError || isServerError(e)) throw e
    drop(c)
    try {
      const decided = await resolveCommit(await connected(), plan.commitId, start.schema)
      return decided.status === 'committed' ? { status: 'duplicate' as const, serial: decided.serial } : decided
    } catch (again) {
      throw {
        code: 'TXA_COMMIT_UNKNOWN', commitId: plan.commitId,
        message: `the connection to the remote store was lost during commit ${plan.commitId} and its outcome cannot be looked up yet (${(again as Error).message ?? again})`,
      } satisfies WireError
    }
  }
}

async function run(request: LinkRequest): Promise<unknown> {
  switch (request.op) {
    case 'open': return install(await connected(), start.schema)
    case 'commit': return commit(request.plan)
    case 'resolve': {
      try {
        return await resolveCommit(await connected(), request.commitId, start.schema)
      } catch (e) {
        if (client) drop(client)
        throw unavailable(e)
      }
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
      if (client) await client.end().catch(() => undefined)
      client = null
      return null
    }
  }
}

start.port.on('message', (request: LinkRequest) => {
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
void parentPort
