// When the local store that caches a remote store is flushed to disk (docs/scale-out.md,
// "The cache's flush rule").
//
// The server holds every commit durably, so the cache need not flush before a reader may
// see a commit: catch-up writes it without fsync (MDB_NOSYNC), and a background flush
// makes it durable later. A process killed meanwhile loses nothing (its writes are in the
// operating system's page cache). A machine that stops meanwhile may leave data.mdb with
// any mix of old and new pages — LMDB's ordering needs the fsync — so before the first
// unflushed commit the cache gets the durable mark file `unflushed` holding the boot id,
// and a flush removes it after the fsync. An open that finds the mark from another boot
// must not trust the cache's files: it rebuilds the cache from the server
// (src/remote/cache-files.ts). Without a boot id (not Linux) catch-up flushes every commit.
#pragma once
#include <string>

namespace txa {

class Env;

// The mark file's name in a cache directory.
inline constexpr const char* kUnflushedMark = "unflushed";

// Call inside a write transaction of the cache, before committing it without fsync: makes
// sure the mark exists and is durable (written, fsync'd, its directory fsync'd). Returns
// false when the boot id cannot be read: the caller must commit with fsync.
bool markUnflushed(const std::string& dir);

// Makes every unflushed commit of the cache at `env` durable and removes the mark, inside
// a write transaction (LMDB's writer lock keeps every process's commits out between the
// fsync and the removal). Returns true if there was anything to flush.
bool flushCache(Env& env);

}  // namespace txa
