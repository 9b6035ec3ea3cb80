#include "remote_apply.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "cache_flush.h"
#include "lmdb_block_store.h"
#include "error.h"
#include "txn_guard.h"
#include "keys.h"
#include "session_stats.h"

namespace txa {
namespace {

// Deletes the record stored under `name` if it is array `id`'s.
void deleteRecord(MDB_txn* txn, MDB_dbi db, const std::string& name, uint64_t id) {
  MDB_val k{name.size(), const_cast<char*>(name.data())}, v;
  int rc = mdb_get(txn, db, &k, &v);
  if (rc == MDB_NOTFOUND) return;
  if (rc) throwLmdb(rc, "mdb_get(arrays)");
  if (v.mv_size < keys::kRecordHeader) throw Error(ErrorCode::kFormat, "array record '" + name + "' is damaged");
  if (keys::RecordHeader::read(static_cast<uint8_t*>(v.mv_data)).id != id) return;
  rc = mdb_del(txn, db, &k, nullptr);
  if (rc) throwLmdb(rc, "mdb_del(arrays)");
}

// The store's log retention (meta "logRetention", as commits keep it).
uint64_t logRetention(MDB_txn* txn, Env& env) {
  static const char kKey[] = "logRetention";
  MDB_val k{sizeof kKey - 1, const_cast<char*>(kKey)}, v;
  int rc = mdb_get(txn, env.metaDb(), &k, &v);
  if (rc == MDB_NOTFOUND) return kLogKeepDefault;
  if (rc) throwLmdb(rc, "mdb_get(meta)");
  if (v.mv_size != 8) throw Error(ErrorCode::kFormat, "meta 'logRetention' is damaged");
  return std::max(kLogKeepMin, keys::getU64le(static_cast<uint8_t*>(v.mv_data)));
}

void write(MDB_txn* txn, Env& env, const RemoteBatch& batch, SessionStats* counters) {
  if (batch.replaceAll) {
    int rc = mdb_drop(txn, env.arraysDb(), 0);
    if (rc == 0) rc = mdb_drop(txn, env.blocksDb(), 0);
    if (rc) throwLmdb(rc, "mdb_drop");
  }
  // Deletions first: a name deleted and created again in the batch ends up with the new array.
  for (const RemoteRecord& r : batch.records) {
    if (!r.deleted) continue;
    deleteRecord(txn, env.arraysDb(), r.name, r.id);
    deleteBlocksFrom(txn, env.blocksDb(), r.id, 0);
  }
  for (const RemoteRecord& r : batch.records) {
    if (r.deleted) continue;
    std::string value(keys::kRecordHeader, '\0');
    keys::RecordHeader{r.id, r.serial, r.rows, r.rowBytes}.write(reinterpret_cast<uint8_t*>(&value[0]));
    value += r.body;
    MDB_val k{r.name.size(), const_cast<char*>(r.name.data())}, v{value.size(), &value[0]};
    int rc = mdb_put(txn, env.arraysDb(), &k, &v, 0);
    if (rc) throwLmdb(rc, "mdb_put(arrays)");
  }
  const LmdbBlocks store{env.blocksDb(), env.pageSize()};
  for (const RemoteBlock& b : batch.blocks) {
    if (b.blockBytes == 0 || b.data.size() > b.blockBytes) {
      throw Error(ErrorCode::kFormat, "remote block " + std::to_string(b.index) + " of array #" +
                                          std::to_string(b.arrayId) + " does not fit its block size");
    }
    if (b.onServer && b.length > 0) {
      if (b.length > b.blockBytes) {
        throw Error(ErrorCode::kFormat, "remote block " + std::to_string(b.index) + " of array #" +
                                            std::to_string(b.arrayId) + " does not fit its block size");
      }
      putStub(txn, store.db, b.arrayId, b.index, b.blockBytes, b.serial, b.length);
      continue;
    }
    putBlock(txn, store, b.arrayId, b.index, b.blockBytes, b.serial,
             reinterpret_cast<const uint8_t*>(b.data.data()), b.data.size(), counters);
  }
  for (const RemoteCommit& c : batch.commits) {
    std::string entry = c.changes.encode(c.timeMs);
    uint8_t key[8];
    keys::putU64be(key, c.serial);
    MDB_val k{8, key}, v{entry.size(), &entry[0]};
    int rc = mdb_put(txn, env.logDb(), &k, &v, 0);
    if (rc) throwLmdb(rc, "mdb_put(log)");
  }
  if (batch.commits.empty() || batch.commits.back().serial != batch.head) {
    // The newest commits' entries are gone on the server: the head (the last log key is
    // the local serial) gets the mark of pruned entries, so that handles and followers
    // moving past it assume everything changed.
    const uint8_t mark = kPrunedMark;
    uint8_t key[8];
    keys::putU64be(key, batch.head);
    MDB_val k{8, key}, v{1, const_cast<uint8_t*>(&mark)};
    int rc = mdb_put(txn, env.logDb(), &k, &v, 0);
    if (rc) throwLmdb(rc, "mdb_put(log)");
  }
  pruneLog(txn, env.logDb(), batch.head, logRetention(txn, env));
  static const char kRemote[] = "remote";
  MDB_val k{sizeof kRemote - 1, const_cast<char*>(kRemote)};
  MDB_val v{batch.remoteMeta.size(), const_cast<char*>(batch.remoteMeta.data())};
  int rc = mdb_put(txn, env.metaDb(), &k, &v, 0);
  if (rc) throwLmdb(rc, "mdb_put(meta)");
}


}  // namespace

uint64_t applyRemote(Env& env, const RemoteBatch& batch, SessionStats* counters) {
  std::lock_guard<std::mutex> writeGuard(env.writeLock);
  env.clearStaleReaders();
  for (;;) {
    SessionStats counted = *counters;
    try {
      std::shared_lock<std::shared_mutex> mapGuard(env.mapLock, std::defer_lock);
      TxnGuard txn(env.begin(0, &mapGuard));
      uint64_t local = latestSerial(txn.get(), env.logDb());
      if (local >= batch.head) return local;
      write(txn.get(), env, batch, counters);
      // Unflushed only under the durable mark (cache_flush.h), which a flush removes.
      const bool flush = batch.sync || !markUnflushed(env.path());
      int rc = mdb_env_set_flags(env.raw(), MDB_NOSYNC, flush ? 0 : 1);
      if (rc) throwLmdb(rc, "mdb_env_set_flags");
      rc = txn.commit();
      if (rc == EIO && files::noSpaceLeft(env.path())) rc = ENOSPC;  // a write cut short by a full disk
      if (rc) throwLmdb(rc, "mdb_txn_commit");
      files::keepSlack(env.raw());
      env.signalCommit();
      return batch.head;
    } catch (const MapFullError&) {
      *counters = counted;
      env.growMap();
    }
  }
}

}  // namespace txa
