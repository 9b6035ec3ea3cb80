// A write transaction owned by a scope: aborted when the scope ends unless committed.
#pragma once
#include <lmdb.h>

namespace txa {

class TxnGuard {
 public:
  explicit TxnGuard(MDB_txn* txn) : txn_(txn) {}
  ~TxnGuard() {
    if (txn_) mdb_txn_abort(txn_);
  }
  TxnGuard(const TxnGuard&) = delete;
  TxnGuard& operator=(const TxnGuard&) = delete;

  MDB_txn* get() const { return txn_; }

  // Commits; the guard owns nothing afterwards, since mdb_txn_commit frees the transaction
  // whatever its outcome. Returns LMDB's result.
  int commit() {
    MDB_txn* txn = txn_;
    txn_ = nullptr;
    return mdb_txn_commit(txn);
  }

 private:
  MDB_txn* txn_;
};

}  // namespace txa
