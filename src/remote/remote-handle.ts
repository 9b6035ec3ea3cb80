/**
 * The remote side of one Store handle opened with `remote`: commit as plan -> store ->
 * settle (docs/scale-out.md), refresh and abort with catch-up, and the states a lost
 * connection leaves a handle in.
 *
 * Each operation is written once, as a generator of the link calls it needs; a
 * synchronous driver blocks on them (commit(), refresh()) and an asynchronous one awaits
 * them (commitAsync(), refreshAsync()), so both forms follow exactly the same rules.
 *
 * States besides "idle":
 * - in doubt: a commit's connection broke and its outcome could not be looked up. Changes
 *   through the API throw CommitOutcomeUnknownError; commit() looks the outcome up first
 *   (fencing the id if it did not land): landed, the handle settles at it; not landed,
 *   the changes are committed anew. abort() drops the changes whatever the outcome. When
 *   the server no longer keeps ids as recent as the commit's (retention's keepIds), the
 *   outcome cannot be known: commit() and changes throw CommitOutcomeForgottenError and
 *   the changes are never committed again; only abort() ends the doubt.
 * - unsettled: a commit landed, but the cache could not catch up to it. Changes throw
 *   RemoteUnavailableError; commit(), refresh() or abort() finish the catch-up and move.
 * - busy: a commitAsync() or refreshAsync() is running; every other call that changes
 *   or moves the handle throws TransactionError.
 */
import { randomUUID } from 'node:crypto'
import {
  CommitOutcomeForgottenError, CommitOutcomeUnknownError, ConflictError, RemoteUnavailableError, TransactionError,
  TxarrayError,
} from '../errors'
import { addon, type NativeSession, type NativeStub } from '../binding'
import type { ArrayState, Transaction } from '../transaction'
import { batchesOf } from './lazy-blocks'
import type { CommitOutcome, Resolved } from './commit-call'
import { type CommitPlan, checkCommitSize } from './commit-plan'
import { RemoteLink } from './remote-link'

/** What an operation asks of the link; the driver answers with the call's result. */
type Step =
  | { op: 'commit'; plan: CommitPlan }
  | { op: 'resolve'; commitId: string; snapshot: number }
  | { op: 'catchUp'; atLeast?: number }

type Operation = Generator<Step, void, unknown>

export interface RemoteHandleOptions {
  schema?: string
  /** How long one call to the server may take (default 60 000 ms). */
  timeoutMs?: number
  /** Catch-up writes stubs; blocks are fetched when read (lazy-blocks.ts). Default false. */
  lazy?: boolean
  /**
   * Views' faults on stubs wait while the link's thread fetches them (userfaultfd mode:
   * fault-fetches.ts); attach the handle's session with attachFaults(). Default false.
   */
  faultFetches?: boolean
}

/** The most block bytes one fetch asks for (larger reads take several round trips). */
const FETCH_BATCH_BYTES = 64 << 20

export class RemoteHandle {
  readonly #link: RemoteLink
  #inDoubt: string | null = null
  /** The snapshot the commit in doubt was planned at (it could only land after it). */
  #inDoubtSnapshot = 0
  /** The server no longer knows the commit in doubt (CommitOutcomeForgottenError): only abort() ends the doubt. */
  #forgotten = false
  #unsettled: { serial: number; ids: Map<ArrayState, number> | null } | null = null
  #busy = false
  /** Commits this handle made, and those refused with ConflictError. */
  commits = 0
  conflicts = 0
  /** The fetch channel of the views' faults, or null. */
  readonly #channel: number | null = null
  #blocksFetched = 0
  #bytesFetched = 0

  /**
   * Connects to the remote store at `url` (creating its schema if missing) and brings the
   * cache at `cachePath` up to date; from then on the link's thread follows every commit
   * into the cache. Throws RemoteUnavailableError if the server cannot be reached,
   * FormatError if the cache belongs to another remote store.
   */
  constructor(url: string, cachePath: string, options: RemoteHandleOptions = {}) {
    const connectTimeoutMs = Math.min(options.timeoutMs ?? 5000, 5000)
    // The link tries a fault's fetch again for connectTimeoutMs; a fault waits longer than
    // that only when the link's thread itself is stuck (a query that never answers).
    if (options.faultFetches) this.#channel = addon.openFetchChannel(2 * connectTimeoutMs + 10_000)
    this.#link = new RemoteLink(url, {
      schema: options.schema, cache: cachePath, callTimeoutMs: options.timeoutMs,
      connectTimeoutMs, lazy: options.lazy, fetchChannel: this.#channel ?? undefined,
    })
    try {
      this.#link.openSync()
    } catch (e) {
      this.close()
      throw e
    }
  }

  /** Views of `session` fetch the stubs they fault on through this handle's link. */
  attachFaults(session: NativeSession): void {
    if (this.#channel !== null) session.attachFetchChannel(this.#channel)
  }

  /** Views' faults wait for fetches (no view needs its blocks fetched before it is made). */
  get faultsFetch(): boolean {
    return this.#channel !== null
  }

  /** What views' faults fetched (the channel's counts; kept when it closes). */
  #faultFetched(): { blocks: number; bytes: number } {
    if (this.#channel !== null && this.#faultCounts === null) return addon.fetchChannelStats(this.#channel)
    return this.#faultCounts ?? { blocks: 0, bytes: 0 }
  }

  #faultCounts: { blocks: number; bytes: number } | null = null

  /** Block versions this handle fetched from the server on demand (reads and faults). */
  get blocksFetched(): number {
    return this.#blocksFetched + this.#faultFetched().blocks
  }

  /** Their bytes. */
  get bytesFetched(): number {
    return this.#bytesFetched + this.#faultFetched().bytes
  }

  /** Throws unless changes may be made now (see the states above). */
  beforeChange(): void {
    if (this.#busy) throw new TransactionError('a commitAsync() or refreshAsync() of this handle is still running')
    if (this.#inDoubt && this.#forgotten) {
      throw new CommitOutcomeForgottenError(`the outcome of commit ${this.#inDoubt} can no longer be known (the server forgot its id): abort() to drop the changes`, this.#inDoubt)
    }
    if (this.#inDoubt) {
      throw new CommitOutcomeUnknownError(`the outcome of commit ${this.#inDoubt} is not known yet: commit() again to look it up, or abort()`, this.#inDoubt)
    }
    if (this.#unsettled) {
      throw new RemoteUnavailableError(`commit ${this.#unsettled.serial} landed but this handle has not caught up to it yet: refresh() first`)
    }
  }

  /** A commit landed and the handle has not moved to it yet (its changes are still held). */
  get unsettled(): boolean {
    return this.#unsettled !== null
  }

  #idle(): void {
    if (this.#busy) throw new TransactionError('a commitAsync() or refreshAsync() of this handle is still running')
  }

  commit(txn: Transaction, sync: boolean): void {
    this.#idle()
    this.#runSync(this.#commit(txn, sync))
  }

  async commitAsync(txn: Transaction, sync: boolean): Promise<void> {
    this.#idle()
    await this.#runAsync(this.#commit(txn, sync))
  }

  /** Catches up and moves to the newest snapshot (the caller checked there are no changes). */
  refresh(txn: Transaction): void {
    this.#idle()
    this.#runSync(this.#refresh(txn))
  }

  async refreshAsync(txn: Transaction): Promise<void> {
    this.#idle()
    await this.#runAsync(this.#refresh(txn))
  }

  /**
   * Drops the changes and moves to the newest snapshot, catching up first when the server
   * answers (an abort never fails for want of the server: it moves to what the cache holds).
   */
  abort(txn: Transaction): void {
    this.#idle()
    this.#runSync(this.#abort(txn))
  }

  async abortAsync(txn: Transaction): Promise<void> {
    this.#idle()
    await this.#runAsync(this.#abort(txn))
  }

  * #abort(txn: Transaction): Operation {
    this.#inDoubt = null
    this.#forgotten = false
    try {
      yield { op: 'catchUp' }
    } catch (e) {
      if (!(e instanceof RemoteUnavailableError)) throw e
    }
    const unsettled = this.#unsettled
    this.#unsettled = null
    if (unsettled) txn.settleRemote(unsettled.ids)
    else txn.abort()
  }

  /**
   * Fetches block versions `stubs` of array `arrayId` from the server (about 64 MiB per
   * round trip) and gives them to the handle's snapshot `session`: reads through it then
   * find them. The link's thread writes them into the cache too, for later snapshots.
   * RemoteUnavailableError when the server cannot be reached; nothing changes then.
   */
  fetch(session: NativeSession, arrayId: number, stubs: readonly NativeStub[]): void {
    for (const batch of batchesOf(stubs, FETCH_BATCH_BYTES)) {
      let blocks
      try {
        blocks = this.#link.fetchBlocksSync(arrayId, batch.map(({ index, serial }) => ({ index, serial })))
      } catch (e) {
        throw asCoded(e)
      }
      session.addFetched(arrayId, blocks)
      this.#blocksFetched += blocks.length
      for (const b of blocks) this.#bytesFetched += b.data.byteLength
    }
  }

  /**
   * The handle reads snapshot `serial` now (after open and every move): the link's thread
   * records it in the handle's clients row, so that retention keeps what it reads.
   */
  moved(serial: number): void {
    this.#link.moved(serial)
  }

  /**
   * Ends the link (its thread and connections), in the background. Faults still waiting
   * for a fetch are answered at once, as unreadable blocks (zeros).
   */
  close(): void {
    if (this.#channel !== null && this.#faultCounts === null) {
      this.#faultCounts = addon.fetchChannelStats(this.#channel)
      addon.closeFetchChannel(this.#channel)
    }
    void this.#link.close()
  }

  * #commit(txn: Transaction, sync: boolean): Operation {
    if (this.#unsettled) {
      yield * this.#settle(txn)
      return
    }
    if (this.#inDoubt) {
      const commitId = this.#inDoubt
      const decided = (yield { op: 'resolve', commitId, snapshot: this.#inDoubtSnapshot }) as Resolved
      if (decided.status === 'unknown') {
        this.#forgotten = true
        throw new CommitOutcomeForgottenError(`the server no longer keeps the outcome of commits as recent as ${commitId} (retention's keepIds): whether it landed cannot be known, so it is not committed again; abort() and check the store for its changes`, commitId)
      }
      this.#inDoubt = null
      if (decided.status === 'committed') {
        this.#unsettled = { serial: decided.serial, ids: null }
        this.commits++
        yield * this.#settle(txn)
        return
      }
      // Fenced: it never lands; the changes are still here to commit anew.
    }
    if (!txn.hasChanges()) {
      yield { op: 'catchUp' }
      txn.commit(sync)
      return
    }
    let { plan, created } = txn.planRemote(randomUUID(), sync)
    checkCommitSize(plan)
    let outcome: CommitOutcome | null = null
    // A fenced attempt (its connection broke, and it was found not to have landed) is
    // tried once more under a new id, planned anew (a sent plan's bytes left this thread).
    for (let attempt = 0; attempt < 2 && (!outcome || outcome.status === 'abandoned'); attempt++) {
      if (attempt > 0) ({ plan, created } = txn.planRemote(randomUUID(), sync))
      try {
        outcome = (yield { op: 'commit', plan }) as CommitOutcome
      } catch (e) {
        if (e instanceof ConflictError) this.conflicts++
        if (e instanceof CommitOutcomeUnknownError) {
          this.#inDoubt = plan.commitId
          this.#inDoubtSnapshot = plan.snapshot
          this.#forgotten = e instanceof CommitOutcomeForgottenError
        }
        throw e
      }
    }
    if (!outcome || outcome.status === 'abandoned') {
      throw new RemoteUnavailableError('the connection to the remote store broke twice during this commit; nothing was committed: commit() again')
    }
    let ids: Map<ArrayState, number> | null = null
    if (outcome.status === 'committed') {
      const landed = outcome
      ids = new Map([...created].map(([record, state]) => [state, landed.ids[record]]))
    }
    this.#unsettled = { serial: outcome.serial, ids }
    this.commits++
    yield * this.#settle(txn, outcome.cached ?? 0)
  }

  /**
   * The cache catches up to the landed commit (unless it holds serial `cached` already, at
   * least the commit's); the handle moves to it.
   */
  * #settle(txn: Transaction, cached = 0): Operation {
    const unsettled = this.#unsettled!
    try {
      if (cached < unsettled.serial) yield { op: 'catchUp', atLeast: unsettled.serial }
    } catch (e) {
      if (e instanceof RemoteUnavailableError) {
        throw new RemoteUnavailableError(`commit ${unsettled.serial} landed, but the cache could not catch up to it (${e.message}): refresh() when the server answers`)
      }
      throw e
    }
    this.#unsettled = null
    txn.settleRemote(unsettled.ids)
  }

  * #refresh(txn: Transaction): Operation {
    if (this.#unsettled) {
      yield * this.#settle(txn)
      return
    }
    yield { op: 'catchUp' }
    txn.abort()
  }

  #callSync(step: Step): unknown {
    switch (step.op) {
      case 'commit': return this.#link.commitSync(step.plan)
      case 'resolve': return this.#link.resolveSync(step.commitId, step.snapshot)
      case 'catchUp': return this.#link.catchUpSync(step.atLeast)
    }
  }

  #call(step: Step): Promise<unknown> {
    switch (step.op) {
      case 'commit': return this.#link.commit(step.plan)
      case 'resolve': return this.#link.resolve(step.commitId, step.snapshot)
      case 'catchUp': return this.#link.catchUp(step.atLeast)
    }
  }

  #runSync(operation: Operation): void {
    let next = operation.next()
    while (!next.done) {
      let answer: unknown
      try {
        answer = this.#callSync(next.value)
      } catch (e) {
        next = operation.throw(asCoded(e))
        continue
      }
      next = operation.next(answer)
    }
  }

  async #runAsync(operation: Operation): Promise<void> {
    this.#busy = true
    try {
      let next = operation.next()
      while (!next.done) {
        let answer: unknown
        try {
          answer = await this.#call(next.value)
        } catch (e) {
          next = operation.throw(asCoded(e))
          continue
        }
        next = operation.next(answer)
      }
    } finally {
      this.#busy = false
    }
  }
}

/** Link failures are coded already; anything else is reported as the server being away. */
function asCoded(e: unknown): unknown {
  return e instanceof TxarrayError ? e : new RemoteUnavailableError(`the remote store failed: ${(e as Error)?.message ?? e}`)
}
