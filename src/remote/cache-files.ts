/**
 * The cache's flush rule at open (docs/scale-out.md, "The cache's flush rule"): catch-up
 * writes commits into the cache without fsync, under a durable mark file `unflushed`
 * holding the boot id (native/engine/cache_flush.h). A mark from this boot means at most
 * a process died: the operating system still holds every write, the cache is whole. A mark
 * from another boot means the machine stopped before the flush: data.mdb may hold any mix
 * of old and new pages, so the cache is not opened as it is.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { CorruptionError } from '../errors'

const MARK = 'unflushed'

function bootId(): string | null {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    return null
  }
}

/** The boot id the cache at `dir` was left unflushed in, if it was left so in another boot. */
function unflushedInAnotherBoot(dir: string): string | null {
  let mark: string
  try {
    mark = fs.readFileSync(path.join(dir, MARK), 'utf8').trim()
  } catch {
    return null  // no mark: every commit of the cache is on disk
  }
  return mark !== bootId() ? mark : null
}

/**
 * Before a remote open of the cache at `dir`: a cache left unflushed in another boot is
 * emptied (its LMDB files removed), so that the open rebuilds it from the server.
 */
export function prepareCacheFiles(dir: string): void {
  if (!unflushedInAnotherBoot(dir)) return
  // The mark is taken away first (one process wins the rename), then the files go.
  const taken = path.join(dir, `${MARK}.rebuild.${process.pid}`)
  try {
    fs.renameSync(path.join(dir, MARK), taken)
  } catch {
    return  // another process is rebuilding it
  }
  for (const file of ['data.mdb', 'lock.mdb']) fs.rmSync(path.join(dir, file), { force: true })
  fs.rmSync(taken, { force: true })
}

/**
 * Before a local (read-only) open of `dir`: refuses a cache left unflushed in another boot,
 * which only a remote open can rebuild.
 */
export function checkCacheFiles(dir: string): void {
  const mark = unflushedInAnotherBoot(dir)
  if (mark) {
    throw new CorruptionError(`${dir} caches a remote store and was not flushed before the machine stopped (boot ${mark}): open it with { remote } to rebuild it from the server`)
  }
}
