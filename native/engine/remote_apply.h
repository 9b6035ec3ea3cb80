// Writing a remote store's commits into the local store that caches it (catch-up,
// docs/scale-out.md). The local store's log gets one entry per remote commit, under the
// remote serial, so that handles moving to a newer local snapshot invalidate exactly what
// the remote commits changed, and local waiters and followers see each commit.
//
// The batch is the state of the remote store at serial `head`: the newest record of every
// array changed after the local serial, and the newest version of every block. Applying
// it is idempotent: a batch no newer than the local store is skipped (another process
// caught the cache up first).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "block_store.h"
#include "change_log.h"
#include "env.h"
#include "remote_segments.h"

namespace txa {

struct SessionStats;

struct RemoteRecord {
  std::string name;
  uint64_t id = 0, serial = 0, rows = 0, rowBytes = 0;
  std::string body;
  bool deleted = false;
};

struct RemoteBlock {
  uint64_t arrayId = 0, index = 0, serial = 0;
  uint32_t blockBytes = 0;
  std::string data;  // empty: the block reads as zeros (deleted), unless onServer
  // Lazy catch-up: only the version is written, as a stub of `length` bytes on the server.
  bool onServer = false;
  uint64_t length = 0;
};

struct RemoteCommit {
  uint64_t serial = 0;
  uint64_t timeMs = 0;  // the server's commit time
  ChangeSet changes;    // with what followers are told (name, flags, rows...)
};

struct RemoteBatch {
  uint64_t head = 0;                 // the remote serial the batch brings the cache to
  std::vector<RemoteCommit> commits; // in serial order; may start after local + 1 (pruned)
  std::vector<RemoteRecord> records;
  std::vector<RemoteBlock> blocks;
  std::vector<RemoteSegment> segments;  // names added or deleted (remote_segments.h)
  std::string remoteMeta;            // stored under meta "remote" (store id and serial)
  // The batch is the whole remote state (the cache was older than the remote history):
  // every local record and block goes first.
  bool replaceAll = false;
  // Flush to disk at commit. False: written without fsync under the unflushed mark
  // (cache_flush.h), made durable by a later flushCache(); flushed anyway where the mark
  // cannot be written.
  bool sync = true;
};

// The rule, over any block store (block_store.h): writes the batch in one write and
// returns the store's serial afterwards — head, or the store's serial if it was not older
// (then nothing is written). The write is settled durably when `durable()` says so, asked
// inside the write (default: batch.sync). A full store is made room in and the batch
// written again.
uint64_t applyRemote(BlockStore& store, const RemoteBatch& batch, SessionStats* counters,
                     const std::function<bool()>& durable = nullptr);

// Over the local LMDB store of `env` (a cache): durable if batch.sync, or where the
// cache's unflushed mark cannot be written (cache_flush.h); settling rings the commit
// doorbell.
uint64_t applyRemote(const std::shared_ptr<Env>& env, const RemoteBatch& batch, SessionStats* counters);

}  // namespace txa
