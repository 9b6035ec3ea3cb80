/**
 * The cache's flush rule at open (docs/scale-out.md, "The cache's flush rule"): catch-up
 * writes commits into the cache without fsync, under a durable mark file `unflushed`
 * holding the boot id (native/engine/cache_flush.h). A mark from this boot means at most
 * a process died: the operating system still holds every write, the cache is whole. A mark
 * from another boot means the machine stopped before the flush: data.mdb may hold any mix
 * of old and new pages, so the cache is not opened as it is.
 *
 * Rebuilding is one process's job: it takes the mark away by renaming it to
 * `unflushed.rebuild.<pid>` (a rename has one winner), removes the LMDB files, then removes
 * that file. Every other open of the cache reads the mark first and the rebuild files
 * second, and waits while a rebuild by a live process is under way; a rebuild left by a
 * dead process is taken over the same way (renamed to the taker's pid, one winner).
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { CorruptionError, StorageError } from '../errors'

const MARK = 'unflushed'
const REBUILD = `${MARK}.rebuild.`
/** How long an open waits for another process's rebuild before it gives up. */
const REBUILD_WAIT_MS = 30_000

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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'  // alive, another user's
  }
}

/** The rebuilds of `dir` under way: their files' names and whether their process lives. */
function rebuilds(dir: string): { file: string, live: boolean }[] {
  let names: string[]
  try {
    names = fs.readdirSync(dir)
  } catch {
    return []  // no directory yet: a new cache
  }
  return names.filter((n) => n.startsWith(REBUILD)).map((file) => {
    const pid = Number(file.slice(REBUILD.length))
    return { file, live: Number.isInteger(pid) && pid > 0 && (pid === process.pid || alive(pid)) }
  })
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/** Test hook: a pause (ms) between taking a rebuild and removing the files, to widen the race a test provokes. */
function rebuildPause(): number {
  const ms = Number(process.env.TXARRAY_TEST_REBUILD_PAUSE_MS ?? 0)
  return Number.isFinite(ms) && ms > 0 ? ms : 0
}

/** Renames `from` to this process's rebuild file; true if this process won it. */
function take(dir: string, from: string): string | null {
  const taken = path.join(dir, `${REBUILD}${process.pid}`)
  try {
    fs.renameSync(path.join(dir, from), taken)
    return taken
  } catch {
    return null  // another process took it first
  }
}

function rebuild(dir: string, taken: string): void {
  const pause = rebuildPause()
  if (pause) sleep(pause)
  for (const file of ['data.mdb', 'lock.mdb']) fs.rmSync(path.join(dir, file), { force: true })
  fs.rmSync(taken, { force: true })
}

/**
 * Waits until no live process rebuilds the cache at `dir`, taking over (and finishing) a
 * rebuild whose process died, and rebuilding it if `mayRebuild` and it was left
 * unflushed in another boot. Returns why the cache cannot be opened as it is when this
 * process may not rebuild it (left unflushed in another boot, or a rebuild left unfinished).
 */
function settle(dir: string, mayRebuild: boolean): string | null {
  const end = Date.now() + REBUILD_WAIT_MS
  for (;;) {
    // The mark first, the rebuild files second: a mark gone by the time it is read has
    // become a rebuild file (a rename), which the second read then finds.
    const other = unflushedInAnotherBoot(dir)
    const under = rebuilds(dir)
    const stale = under.find((r) => !r.live)
    if (stale) {
      if (!mayRebuild) return `its rebuild by a process that died is unfinished: ${stale.file}`
      const taken = take(dir, stale.file)
      if (taken) rebuild(dir, taken)
      continue
    }
    if (under.length) {
      if (Date.now() > end) {
        throw new StorageError(`${dir}: another process has been rebuilding this cache of a remote store for ${REBUILD_WAIT_MS / 1000} s (${under.map((r) => r.file).join(', ')})`)
      }
      sleep(10)
      continue
    }
    if (!other) return null
    if (!mayRebuild) return `left unflushed by the machine's boot ${other}`
    const taken = take(dir, MARK)
    if (taken) {
      rebuild(dir, taken)
      return null
    }
  }
}

/**
 * Before a remote open of the cache at `dir`: a cache left unflushed in another boot is
 * emptied (its LMDB files removed), so that the open rebuilds it from the server. Waits
 * while another process does so.
 */
export function prepareCacheFiles(dir: string): void {
  settle(dir, true)
}

/**
 * Before a local (read-only) open of `dir`: waits while a remote open rebuilds the cache,
 * and refuses a cache left unflushed in another boot, which only a remote open can rebuild.
 */
export function checkCacheFiles(dir: string): void {
  const mark = settle(dir, false)
  if (mark) {
    throw new CorruptionError(`${dir} caches a remote store and cannot be read as it is (${mark}): open it with { remote } to rebuild it from the server`)
  }
}
