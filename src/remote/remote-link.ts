/**
 * A JavaScript thread's line to a remote store: requests go to a library-owned thread
 * that holds the PostgreSQL connection (link-worker.ts). The synchronous forms block the
 * calling thread on a shared cell (Atomics.wait) until the answer is there — the store's
 * synchronous API (commit(), refresh()) is built on them; the asynchronous forms await
 * the same answers, so a server's event loop need not block on the network.
 */
import * as path from 'node:path'
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads'
import {
  CommitOutcomeForgottenError, CommitOutcomeUnknownError, ConflictError, errorClassesByCode, RemoteUnavailableError,
  TxarrayError,
} from '../errors'
import type { CommitOutcome, Resolved } from './commit-call'
import { type CommitPlan, transferablesOf } from './commit-plan'
import type { FetchedBlock, WantedBlock } from './block-fetch'
import type { RemoteChanges } from './changes-since'
import type { LinkReply, LinkRequest, WireError } from './link-protocol'
import { checkSchemaName, DEFAULT_SCHEMA } from './schema'

/** Distributes Omit over the request union. */
type Request = LinkRequest extends infer R ? (R extends LinkRequest ? Omit<R, 'id'> : never) : never

export interface RemoteLinkOptions {
  /** The PostgreSQL schema the store lives in (default `txarray`). */
  schema?: string
  /** How long connecting may take before RemoteUnavailableError (default 5000 ms). */
  connectTimeoutMs?: number
  /** How long a synchronous call waits for its answer (default 60 000 ms). */
  callTimeoutMs?: number
  /**
   * The local store directory that caches the remote store. From open() on, the link's
   * thread follows the remote store into it: every commit of any machine is written
   * there (one local commit per remote commit), waking the cache's local waiters.
   */
  cache?: string
  /**
   * Catch-up writes stubs (block versions without their bytes) instead of block bytes;
   * reads fetch the blocks they need with fetchBlocks(). Default false: every block's
   * bytes are copied into the cache as its commit arrives.
   */
  lazy?: boolean
  /**
   * A fetch channel (binding: openFetchChannel) whose requests — block versions views'
   * faults wait for — the link's thread fetches and answers (fault-fetches.ts), trying
   * again for up to connectTimeoutMs before it reports a version failed.
   */
  fetchChannel?: number
}

function rebuild(error: WireError): TxarrayError {
  if (error.code === ConflictError.code) return new ConflictError(error.message, error.facts)
  if (error.code === CommitOutcomeUnknownError.code) {
    return new (error.forgotten ? CommitOutcomeForgottenError : CommitOutcomeUnknownError)(error.message, error.commitId)
  }
  const cls = errorClassesByCode[error.code] ?? TxarrayError
  return new cls(error.message)
}

/** The thread holding the connections of this thread's links (started at the first link). */
let thread: Worker | null = null
function linkThread(): Worker {
  if (thread) return thread
  const script = path.join(__dirname, `link-worker${path.extname(__filename)}`)
  // From the TypeScript sources (the tests), the thread compiles them as this one does.
  const started = script.endsWith('.ts')
    ? new Worker(`require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(script)})`, { eval: true })
    : new Worker(script)
  started.unref()  // never keeps the process alive: a pending call refs its own port
  started.on('error', () => { if (thread === started) thread = null })
  started.on('exit', () => { if (thread === started) thread = null })
  thread = started
  return started
}

export class RemoteLink {
  readonly #port: MessagePort
  readonly #cell = new Int32Array(new SharedArrayBuffer(4))
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>()
  readonly #arrived = new Map<number, LinkReply>()
  readonly #callTimeoutMs: number
  #next = 1
  #closed = false

  constructor(url: string, options: RemoteLinkOptions = {}) {
    const schema = checkSchemaName(options.schema ?? DEFAULT_SCHEMA)
    this.#callTimeoutMs = options.callTimeoutMs ?? 60_000
    const { port1, port2 } = new MessageChannel()
    this.#port = port1
    const data = {
      url, schema, port: port2, cell: this.#cell.buffer, connectTimeoutMs: options.connectTimeoutMs ?? 5000, cache: options.cache,
      lazy: options.lazy ?? false, fetchChannel: options.fetchChannel,
    }
    linkThread().postMessage(data, [port2])
    this.#port.on('message', (reply: LinkReply) => this.#deliver(reply))
    this.#port.unref()
  }

  #deliver(reply: LinkReply) {
    const waiter = this.#pending.get(reply.id)
    if (!waiter) {
      this.#arrived.set(reply.id, reply)
      return
    }
    this.#pending.delete(reply.id)
    if (reply.error) waiter.reject(rebuild(reply.error))
    else waiter.resolve(reply.value)
  }

  #post(request: Request): number {
    if (this.#closed) throw new RemoteUnavailableError('the link to the remote store is closed')
    const id = this.#next++
    // A commit's block bytes move to the link's thread rather than being copied there.
    this.#port.postMessage({ ...request, id }, request.op === 'commit' ? transferablesOf(request.plan) : [])
    return id
  }

  /** Sends a request and blocks this thread until its answer arrives. */
  #callSync<T>(request: Request): T {
    const id = this.#post(request)
    const deadline = performance.now() + this.#callTimeoutMs
    for (;;) {
      const seen = Atomics.load(this.#cell, 0)
      for (let m = receiveMessageOnPort(this.#port); m; m = receiveMessageOnPort(this.#port)) {
        const reply = m.message as LinkReply
        if (reply.id === id) {
          if (reply.error) throw rebuild(reply.error)
          return reply.value as T
        }
        this.#deliver(reply)  // an asynchronous call's answer
      }
      const left = deadline - performance.now()
      if (left <= 0) {
        if (request.op === 'commit') {
          throw new CommitOutcomeUnknownError(`no answer from the remote store within ${this.#callTimeoutMs} ms for commit ${request.plan.commitId}`, request.plan.commitId)
        }
        throw new RemoteUnavailableError(`no answer from the remote store within ${this.#callTimeoutMs} ms`)
      }
      Atomics.wait(this.#cell, 0, seen, Math.min(left, 1000))
    }
  }

  #call<T>(request: Request): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const id = this.#post(request)
      const early = this.#arrived.get(id)
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.#port.ref()
      if (early) {
        this.#arrived.delete(id)
        this.#deliver(early)
      }
    }).finally(() => { if (this.#pending.size === 0) this.#port.unref() })
  }

  /** Connects, creating the store's schema if it has none; returns the store's id. */
  openSync(): string { return this.#callSync({ op: 'open' }) }
  open(): Promise<string> { return this.#call({ op: 'open' }) }

  /**
   * Stores one commit. ConflictError: nothing was written. RemoteUnavailableError: the
   * server could not be reached before anything was sent. CommitOutcomeUnknownError: the
   * connection broke on the way and the outcome could not be looked up (resolve later).
   * A lost connection whose commit is found to have landed answers 'duplicate'. The
   * plan's block bytes move to the link's thread (transferablesOf): send a plan once.
   */
  commitSync(plan: CommitPlan): CommitOutcome { return this.#callSync({ op: 'commit', plan }) }
  commit(plan: CommitPlan): Promise<CommitOutcome> { return this.#call({ op: 'commit', plan }) }

  /**
   * Decides a commit whose outcome is unknown (fencing its id if it did not land), planned
   * at `snapshot`: 'unknown' when the server no longer keeps ids that recent (resolveCommit).
   */
  resolveSync(commitId: string, snapshot: number): Resolved {
    return this.#callSync({ op: 'resolve', commitId, snapshot })
  }
  resolve(commitId: string, snapshot: number): Promise<Resolved> {
    return this.#call({ op: 'resolve', commitId, snapshot })
  }

  /**
   * Tells the link's thread that the handle moved to snapshot `serial`: it keeps the
   * handle's clients row at that serial (one statement, off the commit's connection;
   * retention keeps what the snapshot reads). No answer is awaited.
   */
  moved(serial: number): void {
    if (this.#closed) return
    this.#port.postMessage({ op: 'moved', serial, id: 0 })
  }

  /**
   * Brings the cache up to date: to what the server holds now, or only to serial
   * `atLeast` when given (a catch-up already on its way that reaches it will do). Returns
   * the cache's serial (the remote serial it holds).
   */
  catchUpSync(atLeast?: number): number { return this.#callSync({ op: 'catchUp', atLeast }) }
  catchUp(atLeast?: number): Promise<number> { return this.#call({ op: 'catchUp', atLeast }) }

  /** What commits after `after` changed, from one snapshot of the server. */
  changesSinceSync(after: number): RemoteChanges { return this.#callSync({ op: 'changesSince', after }) }
  changesSince(after: number): Promise<RemoteChanges> { return this.#call({ op: 'changesSince', after }) }

  /**
   * The bytes of block versions `blocks` of array `arrayId` (what the cache's stubs name),
   * in one round trip; the link's thread also writes them over the cache's stubs, after
   * answering. RemoteUnavailableError if the server cannot be reached or no longer holds a
   * version (retention collected it: refresh() to a newer snapshot).
   */
  fetchBlocksSync(arrayId: number, blocks: WantedBlock[]): FetchedBlock[] {
    return this.#callSync({ op: 'fetch', arrayId, blocks })
  }

  /** Closes the link's connections (the thread stays for this thread's other links). */
  async close(): Promise<void> {
    if (this.#closed) return
    await this.#call({ op: 'close' }).catch(() => undefined)
    this.#closed = true
    this.#port.close()
  }
}
