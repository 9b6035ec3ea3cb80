/**
 * The transaction state of one Store handle: which arrays it has open, which records it
 * created, changed or deleted, and how commit, abort and refresh move it to the next
 * snapshot. Block data is tracked natively; this file keeps the records.
 */
import type { NativeArray, NativeOutcome, NativeRecord, NativeRecordChange, NativeSegmentChange, NativeSession } from './binding'
import { copyAttrs } from './attrs'
import { itemBytes } from './dtype'
import { StorageError } from './errors'
import { type ArrayMeta, decodeMeta, encodeMeta } from './metadata'
import type { CommitPlan, PlannedBlock, PlannedRecord, PlannedSegments } from './remote/commit-plan'
import { blocksOfAppend } from './remote/plan-array'

/** A transaction's changes as a remote commit, and which planned record creates which array. */
export interface RemotePlan {
  plan: CommitPlan
  /** The arrays this commit creates, by the index of their record in plan.records. */
  created: Map<number, ArrayState>
}

// The local log's flag bits the client reports per record (keys.h).
const LOG_RESIZED = 16
const LOG_ATTRS = 32

/** One array as this handle sees it in its current transaction. */
export class ArrayState {
  /** live: usable; gone: deleted (by this handle's commit or another's), or never committed. */
  status: 'live' | 'deleted' | 'gone' = 'live'
  /** The record changed in this transaction (shape or attrs, or a new array). */
  recordDirty: boolean
  /** The only change so far is append(): a concurrent commit to the array is rebased onto. */
  appendOnly = false
  /** For the commit log: setAttrs() / resize() in this transaction. */
  attrsChanged = false
  resized = false
  /** Segments added in this transaction, in row order: name -> first row and row count. */
  segmentPuts = new Map<string, { start: number; rows: number }>()
  /** Committed segments deleted in this transaction, with the range they had. */
  segmentDeletes = new Map<string, { start: number; stop: number }>()

  constructor(
    readonly name: string,
    public serial: number,
    public meta: ArrayMeta,
    public committed: ArrayMeta | null,
    readonly native: NativeArray,
  ) {
    this.recordDirty = committed === null
  }

  get byteLength(): number {
    return byteLengthOf(this.meta)
  }

  get segmentsDirty(): boolean {
    return this.segmentPuts.size > 0 || this.segmentDeletes.size > 0
  }

  /** Forgets this transaction's change flags and segment changes (after commit or abort). */
  clearChanges(): void {
    this.recordDirty = false
    this.appendOnly = false
    this.attrsChanged = false
    this.resized = false
    this.segmentPuts.clear()
    this.segmentDeletes.clear()
  }
}

export function byteLengthOf(meta: ArrayMeta): number {
  return meta.shape.reduce((a, b) => a * b, 1) * itemBytes(meta.dtype)
}

/** Bytes per row of axis 0. */
export function rowBytesOf(meta: ArrayMeta): number {
  return meta.shape.slice(1).reduce((a, b) => a * b, 1) * itemBytes(meta.dtype)
}

/** The record's metadata, with axis 0's length from the header (see keys.h). */
function metaOf(name: string, record: NativeRecord): ArrayMeta {
  const meta = decodeMeta(name, record.body)
  meta.shape[0] = record.rows
  return meta
}

/**
 * The array is gone for this handle for good: a committed delete (ours or another
 * handle's), or an array created in this transaction and then aborted or deleted. Its
 * views are detached (byteLength 0) and its memory unmapped, so a write through a stale
 * view can never reach a later commit (under the dead array's id).
 */
function release(state: ArrayState): void {
  state.status = 'gone'
  state.native.release()
}

function cloneMeta(meta: ArrayMeta): ArrayMeta {
  return { ...meta, shape: [...meta.shape], attrs: copyAttrs(meta.attrs) }
}

export class Transaction {
  readonly #session: NativeSession
  readonly #states = new Map<string, ArrayState>()
  #removed: ArrayState[] = []

  /** Called with every array this transaction starts tracking (a remote store's lazy reads). */
  onTrack: ((native: NativeArray) => void) | null = null
  /** Called with the live arrays after every move to another snapshot (likewise). */
  onMoved: ((natives: NativeArray[]) => void) | null = null
  /** Called with the snapshot's serial after every move (a remote store's clients row). */
  onSerial: ((serial: number) => void) | null = null

  constructor(session: NativeSession) {
    this.#session = session
  }

  /** The live state of `name`, opening it from the snapshot on first use; null if none. */
  open(name: string): ArrayState | null {
    const cached = this.#states.get(name)
    if (cached) return cached
    if (this.#removed.some((s) => s.name === name)) return null
    const record = this.#session.getRecord(name)
    if (!record) return null
    const meta = metaOf(name, record)
    const native = this.#session.track(record.id, meta.blockBytes, byteLengthOf(meta), name)
    this.onTrack?.(native)
    const state = new ArrayState(name, record.serial, meta, cloneMeta(meta), native)
    this.#states.set(name, state)
    return state
  }

  /** Names of the arrays visible in this transaction, sorted. */
  names(): string[] {
    const names = new Set(this.#session.listRecords().map((b) => Buffer.from(b).toString('utf8')))
    for (const s of this.#removed) names.delete(s.name)
    for (const name of this.#states.keys()) names.add(name)
    return [...names].sort()
  }

  /** Adds a new array (the caller checked that the name is free). */
  create(name: string, meta: ArrayMeta): ArrayState {
    const native = this.#session.track(0, meta.blockBytes, byteLengthOf(meta), name)
    this.onTrack?.(native)
    const state = new ArrayState(name, 0, meta, null, native)
    this.#states.set(name, state)
    return state
  }

  /** Deletes an array in this transaction. */
  remove(state: ArrayState): void {
    this.#states.delete(state.name)
    if (state.committed) {
      state.status = 'deleted'
      this.#removed.push(state)
    } else {
      release(state)
    }
  }

  hasChanges(): boolean {
    if (this.#removed.length > 0) return true
    for (const s of this.#states.values()) if (s.recordDirty || s.segmentsDirty || s.native.hasChanges) return true
    return false
  }

  /** Commits (throws ConflictError and keeps the transaction as it was on conflict). */
  commit(sync: boolean, meta: { key: string; value: Uint8Array }[] = []): void {
    if (!this.hasChanges() && meta.length === 0) {
      this.#follow(this.#session.refresh())
      return
    }
    const changes: NativeRecordChange[] = this.#removed.map((s) => ({
      name: s.name, expectedSerial: s.serial, remove: true, array: s.native,
    }))
    const written = [...this.#states.values()].filter((s) => s.recordDirty)
    for (const s of written) {
      changes.push({
        name: s.name, expectedSerial: s.serial, remove: false, body: encodeMeta(s.meta),
        rows: s.meta.shape[0], rowBytes: rowBytesOf(s.meta), appendOnly: s.appendOnly, array: s.native,
        attrsChanged: s.attrsChanged, resized: s.resized,
      })
    }
    const segmented = [...this.#states.values()].filter((s) => s.segmentsDirty)
    const segments: NativeSegmentChange[] = segmented.map((s) => ({
      array: s.native,
      puts: [...s.segmentPuts].map(([name, r]) => ({ name, start: r.start, rows: r.rows })),
      deletes: [...s.segmentDeletes].map(([name, r]) => ({ name, start: r.start, stop: r.stop })),
    }))
    const outcome = this.#session.commit(changes, meta, segments, sync)
    for (const s of this.#removed) release(s)
    this.#removed = []
    for (const s of written) {
      s.serial = outcome.serial
      s.committed = cloneMeta(s.meta)
    }
    for (const s of [...written, ...segmented]) s.clearChanges()
    if (outcome.stale) {
      // Durable, but this handle still reads its old snapshot; it must not pretend otherwise.
      throw new StorageError(`the commit succeeded, but this handle could not move to the new snapshot (${outcome.stale}): call refresh() to see it`)
    }
    this.#follow(outcome)
  }

  /**
   * This transaction's changes as one commit of a remote store (plan -> store -> settle,
   * docs/scale-out.md): records created, changed and deleted, the bytes of every changed
   * block, appends as appended bytes (rebased by the server), and named segments added or
   * deleted. Values only: writes made after it do not reach it.
   */
  planRemote(commitId: string, sync: boolean): RemotePlan {
    const records: PlannedRecord[] = []
    const blocks: PlannedBlock[] = []
    const segments: PlannedSegments[] = []
    const created = new Map<number, ArrayState>()
    for (const s of this.#removed) {
      records.push({
        name: s.name, id: s.native.id, expectedSerial: s.serial, remove: true, rows: 0,
        rowBytes: rowBytesOf(s.meta), blockBytes: s.meta.blockBytes, body: new Uint8Array(0),
      })
    }
    for (const s of this.#states.values()) {
      const array = this.#planArray(s, records, blocks, created)
      if (s.segmentsDirty) {
        segments.push({
          array,
          puts: [...s.segmentPuts].map(([name, r]) => ({ name, start: r.start, rows: r.rows })),
          deletes: [...s.segmentDeletes].map(([name, r]) => ({ name, start: r.start, stop: r.stop })),
        })
      }
    }
    return { plan: { commitId, snapshot: this.#session.serial, sync, records, blocks, segments }, created }
  }

  /**
   * Adds what array `s` changed to a remote commit's records and blocks; returns how the
   * commit names the array (its id, or the record that creates it).
   */
  #planArray(s: ArrayState, records: PlannedRecord[], blocks: PlannedBlock[], created: Map<number, ArrayState>): PlannedBlock['array'] {
    let array: PlannedBlock['array'] = s.native.id
    if (!s.recordDirty && !s.native.hasChanges) return array
    const planned = s.native.plan()
    if (s.recordDirty) {
      const record: PlannedRecord = {
        name: s.name, id: s.committed ? s.native.id : 0, expectedSerial: s.committed ? s.serial : 0,
        rows: s.meta.shape[0], rowBytes: rowBytesOf(s.meta), blockBytes: s.meta.blockBytes, body: encodeMeta(s.meta),
        flags: (s.resized ? LOG_RESIZED : 0) | (s.attrsChanged ? LOG_ATTRS : 0),
      }
      if (s.committed && s.appendOnly && planned.appendOnly) {
        // Only appended: the server lays the bytes at the newest end (never a conflict).
        record.append = planned.appended ?? new Uint8Array(0)
        records.push(record)
        return array
      }
      if (planned.shrinkFromBlock >= 0) record.shrinkFromBlock = planned.shrinkFromBlock
      if (!s.committed) {
        array = { record: records.length }
        created.set(records.length, s)
      }
      records.push(record)
    }
    if (planned.appendOnly) blocks.push(...blocksOfAppend(array, s.native, s.meta.blockBytes, planned.appended?.byteLength ?? 0))
    else for (const b of planned.blocks) blocks.push({ array, index: b.index, data: b.data })
    return array
  }

  /**
   * After a remote store committed planRemote()'s changes and the local cache holds that
   * commit: the changes leave the arrays (created arrays take the ids `ids` gives, by
   * state; one it lacks is looked up by name in the newest commit), deleted arrays are
   * released, and the handle moves to the newest snapshot the cache holds.
   */
  settleRemote(ids: Map<ArrayState, number> | null): void {
    for (const s of this.#states.values()) {
      if (!s.recordDirty && !s.native.hasChanges) continue
      let id = 0
      if (!s.committed) id = ids?.get(s) ?? this.#session.latestRecord(s.name)?.id ?? 0
      s.native.afterCommitElsewhere(id)
    }
    for (const s of this.#removed) release(s)
    this.#removed = []
    for (const s of this.#states.values()) {
      s.committed ??= cloneMeta(s.meta)
      s.clearChanges()
    }
    this.#follow(this.#session.refresh())
  }

  /** Drops every uncommitted change and moves to the newest snapshot. */
  abort(): void {
    const outcome = this.#session.refresh()
    for (const [name, s] of this.#states) {
      if (!s.committed) {
        release(s)
        this.#states.delete(name)
      } else if (s.recordDirty) {
        s.meta = cloneMeta(s.committed)
      }
      s.clearChanges()
    }
    for (const s of this.#removed) {
      // Deleted after other changes: those are undone too (native already did its part).
      s.status = 'live'
      if (s.recordDirty && s.committed) s.meta = cloneMeta(s.committed)
      s.clearChanges()
      this.#states.set(s.name, s)
    }
    this.#removed = []
    this.#follow(outcome)
  }

  /** Reloads the records that other handles changed between the two snapshots. */
  #follow(outcome: NativeOutcome): void {
    const changed = new Set(outcome.recordsChanged)
    for (const [name, s] of this.#states) {
      if (!outcome.unknown && !changed.has(s.native.id)) continue
      const record = this.#session.getRecord(name)
      if (!record || record.id !== s.native.id) {
        release(s)
        this.#states.delete(name)
        continue
      }
      s.meta = metaOf(name, record)
      s.committed = cloneMeta(s.meta)
      s.serial = record.serial
      s.native.adoptCommittedLength(byteLengthOf(s.meta))
    }
    this.onSerial?.(this.#session.serial)
    this.onMoved?.([...this.#states.values()].map((s) => s.native))
  }
}
