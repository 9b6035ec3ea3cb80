#include "remote_apply.h"

#include <algorithm>

#include "cache_flush.h"
#include "error.h"
#include "keys.h"
#include "lmdb_block_store.h"
#include "session_stats.h"

namespace txa {
namespace {

// Deletes the record stored under `name` if it is array `id`'s.
void deleteRecord(BlockWrite& write, const std::string& name, uint64_t id) {
  std::string value;
  if (!write.get(Table::kArrays, name, &value)) return;
  if (value.size() < keys::kRecordHeader) throw Error(ErrorCode::kFormat, "array record '" + name + "' is damaged");
  if (keys::RecordHeader::read(reinterpret_cast<const uint8_t*>(value.data())).id != id) return;
  write.remove(Table::kArrays, name);
}

// The store's log retention (meta "logRetention", as commits keep it).
uint64_t logRetention(BlockWrite& write) {
  std::string value;
  if (!write.get(Table::kMeta, "logRetention", &value)) return kLogKeepDefault;
  if (value.size() != 8) throw Error(ErrorCode::kFormat, "meta 'logRetention' is damaged");
  return std::max(kLogKeepMin, keys::getU64le(reinterpret_cast<const uint8_t*>(value.data())));
}

void writeBatch(BlockWrite& write, const RemoteBatch& batch, SessionStats* counters) {
  if (batch.replaceAll) {
    write.clear(Table::kArrays);
    write.clear(Table::kSegments);
    write.deleteAllBlocks();
  }
  // Deletions first: a name deleted and created again in the batch ends up with the new array.
  for (const RemoteRecord& r : batch.records) {
    if (!r.deleted) continue;
    deleteRecord(write, r.name, r.id);
    write.deleteBlocksFrom(r.id, 0);
    dropRemoteSegments(write, r.id);
  }
  for (const RemoteRecord& r : batch.records) {
    if (r.deleted) continue;
    std::string value(keys::kRecordHeader, '\0');
    keys::RecordHeader{r.id, r.serial, r.rows, r.rowBytes}.write(reinterpret_cast<uint8_t*>(&value[0]));
    value += r.body;
    write.put(Table::kArrays, r.name, value);
  }
  for (const RemoteBlock& b : batch.blocks) {
    const uint64_t size = b.onServer ? b.length : b.data.size();
    if (b.blockBytes == 0 || size > b.blockBytes) {
      throw Error(ErrorCode::kFormat, "remote block " + std::to_string(b.index) + " of array #" +
                                          std::to_string(b.arrayId) + " does not fit its block size");
    }
    if (b.onServer && b.length > 0) {  // its bytes stay on the server: a stub
      write.putStub(b.arrayId, b.index, b.blockBytes, b.serial, b.length);
      continue;
    }
    write.putBlock(b.arrayId, b.index, b.blockBytes, b.serial, reinterpret_cast<const uint8_t*>(b.data.data()),
                   b.data.size(), counters);
  }
  applyRemoteSegments(write, batch.segments);
  for (const RemoteCommit& c : batch.commits) write.putLogEntry(c.serial, c.changes.encode(c.timeMs));
  if (batch.commits.empty() || batch.commits.back().serial != batch.head) {
    // The newest commits' entries are gone on the server: the head (the last log key is
    // the local serial) gets the mark of pruned entries, so that handles and followers
    // moving past it assume everything changed.
    write.putLogEntry(batch.head, std::string(1, char(kPrunedMark)));
  }
  write.pruneLog(batch.head, logRetention(write));
  write.put(Table::kMeta, "remote", batch.remoteMeta);
}

}  // namespace

uint64_t applyRemote(BlockStore& store, const RemoteBatch& batch, SessionStats* counters,
                     const std::function<bool()>& durable) {
  for (;;) {
    SessionStats counted = *counters;
    try {
      std::unique_ptr<BlockWrite> write = store.beginWrite();
      const uint64_t local = write->latestSerial();
      if (local >= batch.head) return local;
      writeBatch(*write, batch, counters);
      write->settle(durable ? durable() : batch.sync);
      return batch.head;
    } catch (const StoreFullError&) {
      *counters = counted;
      store.makeRoom();
    }
  }
}

uint64_t applyRemote(const std::shared_ptr<Env>& env, const RemoteBatch& batch, SessionStats* counters) {
  LmdbBlockStore store(env);
  // Unflushed only under the durable mark (cache_flush.h), which a flush removes; asked
  // inside the write, whose writer lock orders it with every other process's commits.
  return applyRemote(store, batch, counters, [&] { return batch.sync || !markUnflushed(env->path()); });
}

}  // namespace txa
