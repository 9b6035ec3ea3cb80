// A consistent read view of the store: one LMDB read transaction.
//
// Everything a Store handle reads between two commits/aborts comes from one Snapshot,
// plus the handle's own uncommitted writes. The snapshot is shared by the JavaScript
// thread and the fault-service thread, so every use of the MDB_txn goes through
// txnLock (LMDB lets a read transaction span threads only if the user serialises it).
// Pointers returned by block() point into LMDB's map: hold env().mapLock shared while
// using them (see env.h).
#pragma once
#include <lmdb.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "../block_source.h"
#include "change_log.h"
#include "env.h"

namespace txa {

class Snapshot {
 public:
  explicit Snapshot(std::shared_ptr<Env> env);  // begins a read txn at the newest commit
  ~Snapshot();
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  Env& env() const { return *env_; }
  uint64_t serial() const { return serial_; }

  // Block `index` of array `arrayId`; false if it is not stored (reads as zeros).
  // Caller holds env().mapLock shared for as long as it uses out->data.
  bool block(uint64_t arrayId, uint64_t index, BlockView* out);

  // Like block(), without throwing (for the fault path): 0, or the LMDB error code.
  // A missing block is 0 with an empty view. Caller holds env().mapLock shared.
  int tryBlock(uint64_t arrayId, uint64_t index, BlockView* out) noexcept;

  // Copies the value stored under `key` in `db`; false if absent.
  bool get(MDB_dbi db, const std::string& key, std::string* value);

  // Names (keys) of the arrays DB, in order.
  void listKeys(MDB_dbi db, std::vector<std::string>* out);

  // Merges what commits after `serial` (up to this snapshot) changed; false if the log
  // no longer reaches back that far.
  bool changesSince(uint64_t serial, ChangeSet* out);

 private:
  std::shared_ptr<Env> env_;
  MDB_txn* txn_ = nullptr;
  uint64_t serial_ = 0;
  std::mutex txnLock_;
};

}  // namespace txa
