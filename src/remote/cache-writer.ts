/**
 * Catch-up into the local store that caches a remote store: the remote changes read by
 * changes-since.ts are written in one local write transaction, one local log entry per
 * remote commit under its remote serial (native/engine/remote_apply.h). Handles of the
 * cache then move to the new serial with refresh(), as after a local commit: views
 * fault only on blocks the cache holds.
 *
 * The writer has its own native session on the cache directory (the process shares one
 * LMDB environment per path), so it needs no Store handle.
 */
import { addon, type NativeRemoteBatch, type NativeSession } from '../binding'
import { FormatError } from '../errors'
import { encodeFormat, packr } from '../metadata'
import type { RemoteBlock, RemoteChanges, RemoteRecord } from './changes-since'
import { segmentsOfPlan } from './plan-segments'
import type { CommitOutcome } from './commit-call'
import type { CommitPlan } from './commit-plan'

/** What the cache's meta key "remote" says: which remote store, and caught up to which serial. */
export interface CacheStamp {
  store: string
  serial: number
  /**
   * The cache may hold stubs (block versions whose bytes are on the server): some process
   * caught it up lazily. Never cleared: stubs stay until their blocks change or are fetched.
   */
  lazy?: boolean
}

/** The block size of every array a batch touches, from its records and change sets. */
function blockSizes(changes: RemoteChanges): Map<number, number> {
  const sizes = new Map<number, number>()
  for (const r of changes.records) sizes.set(r.id, r.blockBytes)
  for (const c of changes.commits) {
    for (const [id, change] of c.changes) if (change.blockBytes && !sizes.has(id)) sizes.set(id, change.blockBytes)
  }
  return sizes
}

/** True when the cache read through `session` may hold stubs (its stamp says lazy). */
export function cacheMayHoldStubs(session: NativeSession): boolean {
  const raw = session.getMeta('remote')
  return raw !== null && (packr.unpack(raw) as CacheStamp).lazy === true
}

export class CacheWriter {
  readonly #session: NativeSession
  readonly #store: string
  readonly #lazy: boolean

  /**
   * Opens (creating if needed) the cache store at `path` for remote store `storeId`.
   * `lazy`: catch-up writes stubs instead of block bytes (the changes are read with
   * `{ lazy: true }`); blocks are fetched when read (fill()).
   */
  constructor(path: string, storeId: string, lazy = false) {
    this.#session = new addon.NativeSession(path, undefined, undefined, 16, { create: true, readOnly: false, format: encodeFormat() })
    this.#store = storeId
    this.#lazy = lazy
    const stamp = this.stamp()
    if (stamp && stamp.store !== storeId) {
      this.close()
      throw new FormatError(`${path} caches remote store ${stamp.store}, not ${storeId}: use another directory`)
    }
  }

  /** The cache's stamp; null for a cache that never caught up. */
  stamp(): CacheStamp | null {
    this.#session.refresh()
    const raw = this.#session.getMeta('remote')
    return raw ? (packr.unpack(raw) as CacheStamp) : null
  }

  /**
   * Writes `changes` into the cache; returns its serial after. Not flushed to disk unless
   * `sync`: the server holds every commit durably, and a cache a machine stop leaves
   * unflushed is rebuilt at its next open (cache-files.ts); flush() flushes. `changes`
   * must have been
   * read after the cache's serial — or, for a cache older than the remote history
   * (`changes.pruned` above its serial), after 0: the whole remote state, which then
   * replaces the cache's (deletions the history no longer records are not lost).
   * Throws FormatError for changes that cannot bring this cache up to date.
   */
  apply(changes: RemoteChanges, sync = false): number {
    const held = this.stamp()
    const serial = held?.serial ?? 0
    const replaceAll = changes.after === 0 && serial > 0
    const stamp: CacheStamp = { store: this.#store, serial: changes.head }
    if (this.#lazy || held?.lazy) stamp.lazy = true
    if (changes.after > serial || (changes.pruned > changes.after && changes.after !== 0)) {
      throw new FormatError(`changes after serial ${changes.after} (history kept after ${changes.pruned}) cannot bring a cache at serial ${serial} up to date: read them after 0`)
    }
    const sizes = blockSizes(changes)
    const batch: NativeRemoteBatch = {
      head: changes.head,
      replaceAll,
      sync,
      remoteMeta: packr.pack(stamp),
      commits: changes.commits.map((c) => ({
        serial: c.serial,
        timeMs: c.timeMs,
        changes: [...c.changes].map(([id, change]) => ({
          ...change, id, blocks: change.blocks.map(([first, last]): [number, number] => [first, last ?? -1]),
        })),
      })),
      records: changes.records.map((r) => ({ ...r })),
      blocks: changes.blocks.map((b) => {
        const blockBytes = sizes.get(b.arrayId)
        if (!blockBytes) throw new FormatError(`remote block ${b.index} of array #${b.arrayId} arrived without its array's geometry`)
        // Read lazily: a stub of the version (or nothing, for a block that reads as zeros).
        if (b.data === null && b.length) return { arrayId: b.arrayId, index: b.index, serial: b.serial, blockBytes, data: null, length: b.length }
        return { arrayId: b.arrayId, index: b.index, serial: b.serial, blockBytes, data: b.data }
      }),
      segments: (changes.segments ?? []).map((g) => ({ arrayId: g.arrayId, name: g.name, start: g.start, stop: g.stop, deleted: g.deleted })),
    }
    return this.#session.applyRemote(batch)
  }

  /**
   * Brings the cache up to date with `read(after)` (a catch-up read of the remote store):
   * after the cache's serial, or after 0 when the remote history no longer reaches back to
   * it. Returns the cache's serial after.
   */
  catchUp(read: (after: number) => RemoteChanges): number {
    const serial = this.stamp()?.serial ?? 0
    let changes = read(serial)
    if (changes.pruned > serial && serial > 0) changes = read(0)
    return this.apply(changes)
  }

  /**
   * Writes a commit this machine just made into the cache from its plan (not flushed, as
   * apply()), without reading it back from the server — when the cache holds every commit before it (else, or for a
   * commit that shrinks an array, it returns null and a catch-up must read it). Returns
   * the cache's serial after.
   */
  applyOwn(plan: CommitPlan, landed: Extract<CommitOutcome, { status: 'committed' }>): number | null {
    const serial = this.stamp()?.serial ?? 0
    if (serial >= landed.serial) return serial
    if (serial !== landed.serial - 1 || plan.records.some((r) => r.shrinkFromBlock !== undefined)) return null
    const records: RemoteRecord[] = []
    const blocks: RemoteBlock[] = []
    const idOf = (array: CommitPlan['blocks'][number]['array']) => (typeof array === 'number' ? array : landed.ids[array.record])
    for (const [i, r] of plan.records.entries()) {
      const id = r.id || landed.ids[i]
      const record: RemoteRecord = {
        id, name: r.name, serial: landed.serial, rows: landed.lengths[i], rowBytes: r.rowBytes, blockBytes: r.blockBytes,
        body: Buffer.from(r.body), deleted: r.remove ?? false,
      }
      if (r.append) {
        // Laid at the end the server had, which this cache holds: the record keeps its body.
        const held = this.#session.getRecord(r.name)
        if (!held || held.id !== id) return null
        record.body = Buffer.from(held.body)
        blocks.push(...this.#appendedBlocks(id, r.name, r.blockBytes, held.rows * held.rowBytes, r.append, landed.serial))
      }
      records.push(record)
    }
    for (const b of plan.blocks) {
      blocks.push({ arrayId: idOf(b.array), index: b.index, serial: landed.serial, data: b.data.byteLength ? Buffer.from(b.data) : null })
    }
    const segments = segmentsOfPlan(plan, landed)
    return this.apply({ after: serial, head: landed.serial, pruned: 0, commits: [landed.commit], records, blocks, segments })
  }

  /** The blocks an append of `bytes` at byte `start` writes, the first one completed from the cache. */
  #appendedBlocks(id: number, name: string, blockBytes: number, start: number, bytes: Uint8Array, serial: number): RemoteBlock[] {
    const first = Math.floor(start / blockBytes)
    const head = Buffer.alloc(start - first * blockBytes)
    if (head.byteLength > 0) {
      const array = this.#session.track(id, blockBytes, start, name)
      try {
        array.gather(first * blockBytes, [head.byteLength], [1], 1, head, false)
      } finally {
        array.release()
      }
    }
    const all = Buffer.concat([head, bytes])
    const out: RemoteBlock[] = []
    for (let at = 0; at < all.byteLength; at += blockBytes) {
      out.push({ arrayId: id, index: first + at / blockBytes, serial, data: all.subarray(at, Math.min(at + blockBytes, all.byteLength)) })
    }
    return out
  }

  /**
   * Of the blocks of lazily read `changes` (stubs to be), those this cache holds in full
   * now: a machine that read a block keeps reading it, so catch-up brings their new
   * versions' bytes (then views over them never meet a stub after a refresh).
   */
  heldOf(changes: RemoteChanges): RemoteBlock[] {
    const stubs = changes.blocks.filter((b) => b.data === null && b.length)
    if (stubs.length === 0) return []
    this.#session.refresh()
    const held = this.#session.heldInFull(stubs)
    return stubs.filter((_, i) => held[i])
  }

  /** True when catch-up writes stubs (this writer's setting). */
  get lazy(): boolean {
    return this.#lazy
  }

  /**
   * Writes fetched block versions of array `arrayId` over the cache's stubs of the same
   * versions (native/engine/remote_fill.h; not flushed, as apply()). Returns how many it wrote.
   */
  fill(arrayId: number, blocks: readonly { index: number; serial: number; data: Uint8Array }[]): number {
    return this.#session.fillStubs(blocks.map((b) => ({ arrayId, index: b.index, serial: b.serial, data: b.data })))
  }

  /** Makes every commit written into the cache durable; false if all were already. */
  flush(): boolean {
    return this.#session.flushRemoteCache()
  }

  /** Flushes, then closes. */
  close(): void {
    try {
      this.flush()
    } finally {
      this.#session.close()
    }
  }
}
