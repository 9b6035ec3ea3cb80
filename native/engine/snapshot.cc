#include "snapshot.h"

#include "error.h"
#include "keys.h"

namespace txa {

Snapshot::Snapshot(std::shared_ptr<Env> env) : env_(std::move(env)) {
  std::shared_lock<std::shared_mutex> mapGuard(env_->mapLock, std::defer_lock);
  txn_ = env_->begin(MDB_RDONLY, &mapGuard);
  try {
    serial_ = latestSerial(txn_, env_->logDb());
  } catch (...) {
    mdb_txn_abort(txn_);
    throw;
  }
}

Snapshot::~Snapshot() { mdb_txn_abort(txn_); }

bool Snapshot::block(uint64_t arrayId, uint64_t index, BlockView* out) {
  keys::BlockKey key(arrayId, index);
  MDB_val k{sizeof key.bytes, key.bytes}, v;
  int rc;
  {
    std::lock_guard<std::mutex> guard(txnLock_);
    rc = mdb_get(txn_, env_->blocksDb(), &k, &v);
  }
  if (rc == MDB_NOTFOUND) {
    *out = BlockView{};
    return false;
  }
  if (rc) throwLmdb(rc, "mdb_get(block)");
  out->data = static_cast<const uint8_t*>(v.mv_data);
  out->size = v.mv_size;
  return true;
}

int Snapshot::tryBlock(uint64_t arrayId, uint64_t index, BlockView* out) noexcept {
  keys::BlockKey key(arrayId, index);
  MDB_val k{sizeof key.bytes, key.bytes}, v;
  int rc;
  {
    std::lock_guard<std::mutex> guard(txnLock_);
    rc = mdb_get(txn_, env_->blocksDb(), &k, &v);
  }
  *out = BlockView{};
  if (rc == MDB_NOTFOUND) return 0;
  if (rc) return rc;
  out->data = static_cast<const uint8_t*>(v.mv_data);
  out->size = v.mv_size;
  return 0;
}

bool Snapshot::get(MDB_dbi db, const std::string& key, std::string* value) {
  MDB_val k{key.size(), const_cast<char*>(key.data())}, v;
  std::shared_lock<std::shared_mutex> mapGuard(env_->mapLock);
  std::lock_guard<std::mutex> guard(txnLock_);
  int rc = mdb_get(txn_, db, &k, &v);
  if (rc == MDB_NOTFOUND) return false;
  if (rc) throwLmdb(rc, "mdb_get");
  value->assign(static_cast<const char*>(v.mv_data), v.mv_size);
  return true;
}

void Snapshot::listKeys(MDB_dbi db, std::vector<std::string>* out) {
  std::shared_lock<std::shared_mutex> mapGuard(env_->mapLock);
  std::lock_guard<std::mutex> guard(txnLock_);
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn_, db, &cursor);
  if (rc) throwLmdb(rc, "mdb_cursor_open");
  MDB_val k, v;
  for (rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
    out->emplace_back(static_cast<const char*>(k.mv_data), k.mv_size);
  }
  mdb_cursor_close(cursor);
  if (rc != MDB_NOTFOUND) throwLmdb(rc, "mdb_cursor_get");
}

bool Snapshot::changesSince(uint64_t serial, ChangeSet* out) {
  std::shared_lock<std::shared_mutex> mapGuard(env_->mapLock);
  std::lock_guard<std::mutex> guard(txnLock_);
  return readChangesSince(txn_, env_->logDb(), serial, out);
}

}  // namespace txa
