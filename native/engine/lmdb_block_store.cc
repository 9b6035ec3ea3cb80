#include "lmdb_block_store.h"

#include <time.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include "block_format.h"
#include "crc32c.h"
#include "error.h"
#include "keys.h"
#include "session_stats.h"

namespace txa {
namespace {

uint64_t monotonicNanos() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // cannot fail for this clock
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

}  // namespace

void putBlock(MDB_txn* txn, const LmdbBlocks& store, uint64_t id, uint64_t index, uint32_t blockBytes,
              uint64_t serial, const uint8_t* bytes, size_t size, SessionStats* counters, DataChecksum* known) {
  while (size > 0 && bytes[size - 1] == 0) --size;
  DataChecksum unknown;
  if (!known) known = &unknown;
  if (known->length > size) *known = DataChecksum{};
  keys::BlockKey key(id, index);
  MDB_val k{sizeof key.bytes, key.bytes};
  int rc;
  if (size == 0) {
    rc = mdb_del(txn, store.db, &k, nullptr);
    if (rc == MDB_NOTFOUND) rc = 0;
    if (rc) throwLmdb(rc, "delete block");
    *known = DataChecksum{};
    return;
  }
  MDB_val v{size_t(blockfmt::valueBytes(size, store.pageSize)), nullptr};
  rc = mdb_put(txn, store.db, &k, &v, MDB_RESERVE);
  if (rc) throwLmdb(rc, "store block");
  uint8_t* value = static_cast<uint8_t*>(v.mv_data);
  blockfmt::encodeUnsealed(value, store.pageSize, id, index, blockBytes, serial, bytes, size);
  const uint64_t start = monotonicNanos();  // the checksum's share of a commit, for store.stats()
  const uint32_t dataCrc = crc32c(known->crc, bytes + known->length, size - size_t(known->length));
  blockfmt::seal(value, store.pageSize, size, dataCrc);
  counters->checksumNanos += monotonicNanos() - start;
  counters->checksumBytes += size - known->length;
  *known = DataChecksum{size, dataCrc};
  ++counters->blocksWritten;
  counters->bytesWritten += size;
  counters->valueBytesWritten += v.mv_size;
}

void putStub(MDB_txn* txn, MDB_dbi db, uint64_t id, uint64_t index, uint32_t blockBytes, uint64_t serial,
             uint64_t length) {
  keys::BlockKey key(id, index);
  MDB_val k{sizeof key.bytes, key.bytes}, v{blockfmt::kStubBytes, nullptr};
  int rc = mdb_put(txn, db, &k, &v, MDB_RESERVE);
  if (rc) throwLmdb(rc, "store block stub");
  blockfmt::encodeStub(static_cast<uint8_t*>(v.mv_data), id, index, blockBytes, serial, length);
}

void deleteBlocksFrom(MDB_txn* txn, MDB_dbi db, uint64_t id, uint64_t first) {
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn, db, &cursor);
  if (rc) throwLmdb(rc, "mdb_cursor_open(blocks)");
  keys::BlockKey start(id, first);
  MDB_val k{sizeof start.bytes, start.bytes}, v;
  for (rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE); rc == 0;
       rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
    if (k.mv_size != 16 || keys::getU64be(static_cast<uint8_t*>(k.mv_data)) != id) break;
    if ((rc = mdb_cursor_del(cursor, 0))) break;
  }
  mdb_cursor_close(cursor);
  if (rc != 0 && rc != MDB_NOTFOUND) throwLmdb(rc, "delete blocks");
}

void readBlockInto(MDB_txn* txn, MDB_dbi db, uint64_t id, uint64_t index, std::vector<uint8_t>* out) {
  keys::BlockKey key(id, index);
  MDB_val k{sizeof key.bytes, key.bytes}, v;
  int rc = mdb_get(txn, db, &k, &v);
  if (rc == MDB_NOTFOUND) return;
  if (rc) throwLmdb(rc, "mdb_get(block)");
  const uint8_t* value = static_cast<const uint8_t*>(v.mv_data);
  blockfmt::Header h;
  blockfmt::Problem problem = blockfmt::readHeader(value, v.mv_size, &h);
  if (problem == blockfmt::Problem::kOnServer) {
    throw Error(ErrorCode::kRemoteUnavailable, "array #" + std::to_string(id) + " block " + std::to_string(index) +
                                                   ": " + blockfmt::describe(problem));
  }
  if (problem != blockfmt::Problem::kNone) {
    throw Error(ErrorCode::kCorrupt, "array #" + std::to_string(id) + " block " + std::to_string(index) + ": " +
                                         blockfmt::describe(problem));
  }
  out->insert(out->end(), value + h.dataOffset, value + h.dataOffset + h.dataLength);
}


namespace {

MDB_dbi dbOf(Env& env, Table table) {
  switch (table) {
    case Table::kMeta: return env.metaDb();
    case Table::kArrays: return env.arraysDb();
    case Table::kSegments: return env.segmentsDb();
  }
  throw Error(ErrorCode::kArgument, "unknown table");
}

MDB_val valOf(const std::string& s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }

class LmdbRead : public BlockRead {
 public:
  explicit LmdbRead(std::shared_ptr<Snapshot> snapshot) : snapshot_(std::move(snapshot)) {}
  uint64_t serial() const override { return snapshot_->serial(); }
  bool get(Table table, const std::string& key, std::string* value) override {
    if (table == Table::kSegments && !snapshot_->env().hasSegments()) return false;
    return snapshot_->get(dbOf(snapshot_->env(), table), key, value);
  }
  void listKeys(Table table, std::vector<std::string>* out) override {
    if (table == Table::kSegments && !snapshot_->env().hasSegments()) return;
    snapshot_->listKeys(dbOf(snapshot_->env(), table), out);
  }
  bool loadBlock(uint64_t id, uint64_t index, std::vector<uint8_t>* out) override {
    out->clear();
    std::shared_lock<std::shared_mutex> mapGuard(snapshot_->env().mapLock);
    BlockView view;
    if (!snapshot_->block(id, index, &view)) return false;
    out->assign(view.data, view.data + view.size);
    return true;
  }
  bool changesSince(uint64_t after, ChangeSet* out) override { return snapshot_->changesSince(after, out); }

 private:
  std::shared_ptr<Snapshot> snapshot_;
};

class LmdbWrite : public BlockWrite {
 public:
  explicit LmdbWrite(std::shared_ptr<Env> env)
      : env_(std::move(env)), writeGuard_(env_->writeLock), mapGuard_(env_->mapLock, std::defer_lock) {
    // Commits are where pinned snapshots cost (pages they pin cannot be reused), so free
    // the slots of crashed readers here: a few fcntl() calls, one per other process.
    env_->clearStaleReaders();
    // The map lock is held through the write transaction: LMDB must not be re-mapped under
    // it (by a growMap or adoptMapSize of another thread).
    txn_ = env_->begin(0, &mapGuard_);
  }
  ~LmdbWrite() override { abandon(); }  // then the map lock, then writeLock

  uint64_t latestSerial() override { return txa::latestSerial(txn(), env_->logDb()); }
  bool changesSince(uint64_t after, ChangeSet* out) override {
    return readChangesSince(txn(), env_->logDb(), after, out);
  }
  uint64_t firstConflictingCommit(uint64_t after, const ChangeSet& mine, ChangeSet::Overlap* out) override {
    return txa::firstConflictingCommit(txn(), env_->logDb(), after, mine, out);
  }
  bool get(Table table, const std::string& key, std::string* value) override {
    MDB_val k = valOf(key), v;
    int rc = mdb_get(txn(), dbOf(*env_, table), &k, &v);
    if (rc == MDB_NOTFOUND) return false;
    if (rc) throwLmdb(rc, "mdb_get");
    value->assign(static_cast<const char*>(v.mv_data), v.mv_size);
    return true;
  }
  void readBlock(uint64_t id, uint64_t index, std::vector<uint8_t>* out) override {
    readBlockInto(txn(), env_->blocksDb(), id, index, out);
  }
  void put(Table table, const std::string& key, const std::string& value) override {
    MDB_val k = valOf(key), v = valOf(value);
    int rc = mdb_put(txn(), dbOf(*env_, table), &k, &v, 0);
    if (rc) throwLmdb(rc, "mdb_put");
  }
  bool insert(Table table, const std::string& key, const std::string& value) override {
    MDB_val k = valOf(key), v = valOf(value);
    int rc = mdb_put(txn(), dbOf(*env_, table), &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) return false;
    if (rc) throwLmdb(rc, "mdb_put");
    return true;
  }
  bool remove(Table table, const std::string& key) override {
    MDB_val k = valOf(key);
    int rc = mdb_del(txn(), dbOf(*env_, table), &k, nullptr);
    if (rc == MDB_NOTFOUND) return false;
    if (rc) throwLmdb(rc, "mdb_del");
    return true;
  }
  void removePrefix(Table table, const std::string& prefix) override {
    MDB_cursor* cursor = nullptr;
    int rc = mdb_cursor_open(txn(), dbOf(*env_, table), &cursor);
    if (rc) throwLmdb(rc, "mdb_cursor_open");
    MDB_val k = valOf(prefix), v;
    for (rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
      if (k.mv_size < prefix.size() || memcmp(k.mv_data, prefix.data(), prefix.size()) != 0) break;
      if ((rc = mdb_cursor_del(cursor, 0))) break;
    }
    mdb_cursor_close(cursor);
    if (rc != 0 && rc != MDB_NOTFOUND) throwLmdb(rc, "delete keys");
  }
  void clear(Table table) override {
    if (table == Table::kSegments && !env_->hasSegments()) return;
    int rc = mdb_drop(txn(), dbOf(*env_, table), 0);
    if (rc) throwLmdb(rc, "mdb_drop");
  }
  void deleteAllBlocks() override {
    int rc = mdb_drop(txn(), env_->blocksDb(), 0);
    if (rc) throwLmdb(rc, "mdb_drop(blocks)");
  }
  void putBlock(uint64_t id, uint64_t index, uint32_t blockBytes, uint64_t serial, const uint8_t* bytes,
                size_t size, SessionStats* counters, DataChecksum* known) override {
    txa::putBlock(txn(), LmdbBlocks{env_->blocksDb(), env_->pageSize()}, id, index, blockBytes, serial, bytes, size,
                  counters, known);
  }
  void putStub(uint64_t id, uint64_t index, uint32_t blockBytes, uint64_t serial, uint64_t length) override {
    txa::putStub(txn(), env_->blocksDb(), id, index, blockBytes, serial, length);
  }
  void deleteBlocksFrom(uint64_t id, uint64_t first) override {
    txa::deleteBlocksFrom(txn(), env_->blocksDb(), id, first);
  }
  void putLogEntry(uint64_t serial, const std::string& entry) override {
    uint8_t key[8];
    keys::putU64be(key, serial);
    MDB_val k{8, key}, v = valOf(entry);
    int rc = mdb_put(txn(), env_->logDb(), &k, &v, 0);
    if (rc) throwLmdb(rc, "mdb_put(log)");
  }
  void pruneLog(uint64_t newest, uint64_t keep) override { txa::pruneLog(txn(), env_->logDb(), newest, keep); }

  void settle(bool sync) override {
    // LMDB 0.9 has no per-transaction NOSYNC; toggling the environment flag is safe
    // because every write of this process holds writeLock.
    int rc = mdb_env_set_flags(env_->raw(), MDB_NOSYNC, sync ? 0 : 1);
    if (rc) throwLmdb(rc, "mdb_env_set_flags");
    MDB_txn* txn = this->txn();
    txn_ = nullptr;  // mdb_txn_commit frees it whatever the outcome
    rc = mdb_txn_commit(txn);
    // A write cut short by a full disk comes back as EIO.
    if (rc == EIO && files::noSpaceLeft(env_->path())) rc = ENOSPC;
    if (rc) throwLmdb(rc, "mdb_txn_commit");
    files::keepSlack(env_->raw());
    env_->signalCommit();
    mapGuard_.unlock();
    if (sync) env_->writtenSlack.afterDurableCommit(*env_);  // holding writeLock, no transaction
  }
  void abandon() noexcept override {
    if (txn_) mdb_txn_abort(txn_);
    txn_ = nullptr;
  }

 private:
  MDB_txn* txn() const {
    if (!txn_) throw Error(ErrorCode::kClosed, "the write is over");
    return txn_;
  }

  std::shared_ptr<Env> env_;
  std::unique_lock<std::mutex> writeGuard_;     // released last
  std::shared_lock<std::shared_mutex> mapGuard_;  // held while txn_ is open
  MDB_txn* txn_ = nullptr;
};

}  // namespace

std::unique_ptr<BlockRead> LmdbBlockStore::read() { return readOf(std::make_shared<Snapshot>(env_)); }

std::unique_ptr<BlockRead> LmdbBlockStore::readOf(std::shared_ptr<Snapshot> snapshot) {
  return std::make_unique<LmdbRead>(std::move(snapshot));
}

std::unique_ptr<BlockWrite> LmdbBlockStore::beginWrite() { return std::make_unique<LmdbWrite>(env_); }

void LmdbBlockStore::makeRoom() {
  std::lock_guard<std::mutex> writeGuard(env_->writeLock);
  env_->growMap();
}

}  // namespace txa
