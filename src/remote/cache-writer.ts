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
import type { RemoteChanges } from './changes-since'

/** What the cache's meta key "remote" says: which remote store, and caught up to which serial. */
export interface CacheStamp {
  store: string
  serial: number
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

export class CacheWriter {
  readonly #session: NativeSession
  readonly #store: string

  /** Opens (creating if needed) the cache store at `path` for remote store `storeId`. */
  constructor(path: string, storeId: string) {
    this.#session = new addon.NativeSession(path, undefined, undefined, 16, { create: true, readOnly: false, format: encodeFormat() })
    this.#store = storeId
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
   * Writes `changes` into the cache; returns its serial after. `changes` must have been
   * read after the cache's serial — or, for a cache older than the remote history
   * (`changes.pruned` above its serial), after 0: the whole remote state, which then
   * replaces the cache's (deletions the history no longer records are not lost).
   * Throws FormatError for changes that cannot bring this cache up to date.
   */
  apply(changes: RemoteChanges): number {
    const serial = this.stamp()?.serial ?? 0
    const replaceAll = changes.after === 0 && serial > 0
    if (changes.after > serial || (changes.pruned > changes.after && changes.after !== 0)) {
      throw new FormatError(`changes after serial ${changes.after} (history kept after ${changes.pruned}) cannot bring a cache at serial ${serial} up to date: read them after 0`)
    }
    const sizes = blockSizes(changes)
    const batch: NativeRemoteBatch = {
      head: changes.head,
      replaceAll,
      remoteMeta: packr.pack({ store: this.#store, serial: changes.head } satisfies CacheStamp),
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
        return { arrayId: b.arrayId, index: b.index, serial: b.serial, blockBytes, data: b.data }
      }),
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

  close(): void {
    this.#session.close()
  }
}
