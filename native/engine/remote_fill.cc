#include "remote_fill.h"

#include <cerrno>
#include <mutex>
#include <shared_mutex>

#include "block_format.h"
#include "cache_flush.h"
#include "error.h"
#include "keys.h"
#include "lmdb_block_store.h"
#include "session_stats.h"
#include "store_files.h"
#include "txn_guard.h"

namespace txa {
namespace {

// The stub the cache holds for block `index` of array `id` (false: none, or not a stub).
bool stubOf(MDB_txn* txn, MDB_dbi db, uint64_t id, uint64_t index, blockfmt::Header* out) {
  keys::BlockKey key(id, index);
  MDB_val k{sizeof key.bytes, key.bytes}, v;
  int rc = mdb_get(txn, db, &k, &v);
  if (rc == MDB_NOTFOUND) return false;
  if (rc) throwLmdb(rc, "mdb_get(block)");
  return v.mv_size == blockfmt::kStubBytes &&
         blockfmt::readHeader(static_cast<const uint8_t*>(v.mv_data), v.mv_size, out) == blockfmt::Problem::kOnServer;
}

uint64_t write(MDB_txn* txn, Env& env, const std::vector<FetchedBlock>& blocks, SessionStats* counters) {
  const LmdbBlocks store{env.blocksDb(), env.pageSize()};
  uint64_t written = 0;
  for (const FetchedBlock& b : blocks) {
    blockfmt::Header stub;
    if (!stubOf(txn, store.db, b.arrayId, b.index, &stub) || stub.serial != b.serial) continue;
    if (b.data.size() > stub.blockBytes) {
      throw Error(ErrorCode::kFormat, "fetched block " + std::to_string(b.index) + " of array #" +
                                          std::to_string(b.arrayId) + " does not fit its block size");
    }
    putBlock(txn, store, b.arrayId, b.index, stub.blockBytes, b.serial,
             reinterpret_cast<const uint8_t*>(b.data.data()), b.data.size(), counters);
    ++written;
  }
  return written;
}

}  // namespace

uint64_t fillStubs(Env& env, const std::vector<FetchedBlock>& blocks, SessionStats* counters) {
  if (blocks.empty()) return 0;
  std::lock_guard<std::mutex> writeGuard(env.writeLock);
  env.clearStaleReaders();
  for (;;) {
    SessionStats counted = *counters;
    try {
      std::shared_lock<std::shared_mutex> mapGuard(env.mapLock, std::defer_lock);
      TxnGuard txn(env.begin(0, &mapGuard));
      const uint64_t written = write(txn.get(), env, blocks, counters);
      if (written == 0) return 0;  // the guard aborts the transaction
      const bool flush = !markUnflushed(env.path());
      int rc = mdb_env_set_flags(env.raw(), MDB_NOSYNC, flush ? 0 : 1);
      if (rc) throwLmdb(rc, "mdb_env_set_flags");
      rc = txn.commit();
      if (rc == EIO && files::noSpaceLeft(env.path())) rc = ENOSPC;
      if (rc) throwLmdb(rc, "mdb_txn_commit");
      files::keepSlack(env.raw());
      return written;
    } catch (const MapFullError&) {
      *counters = counted;
      env.growMap();
    }
  }
}

}  // namespace txa
