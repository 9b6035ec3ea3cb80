// One array as seen by one Store handle inside its current transaction: the committed
// bytes of the snapshot plus this transaction's uncommitted changes.
//
// Uncommitted data lives in whole-block copies ("dirty blocks"). Reads take a dirty
// block when there is one, else the snapshot's block, else zeros. Bytes of the snapshot
// at or past `staleFrom` (the smallest length the array was shrunk to in this
// transaction) read as zeros: growing after shrinking never shows stale data.
//
// Not thread-safe: a Store handle is used by one JavaScript thread.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "change_log.h"
#include "snapshot.h"
#include "strided.h"

namespace txa {

struct SessionStats;

// Deletes blocks `first`.. of array `id` inside a write transaction.
void deleteBlocksFrom(MDB_txn* txn, MDB_dbi blocksDb, uint64_t id, uint64_t first);

class TrackedArray {
 public:
  TrackedArray(uint64_t id, uint32_t blockBytes, uint64_t byteLength, SessionStats* stats);

  uint64_t id() const { return id_; }
  uint32_t blockBytes() const { return blockBytes_; }
  uint64_t byteLength() const { return byteLength_; }
  bool hasChanges() const { return !dirty_.empty() || staleFrom_ != kNone; }

  // Copies the selection into dst (dense, C order) / from src into the selection.
  // Throws Error(kBounds) if it reaches past byteLength().
  void gather(Snapshot& snap, const Strided& sel, uint8_t* dst);
  void scatter(Snapshot& snap, const Strided& sel, const uint8_t* src);

  // Sets the logical length. Shrinking drops uncommitted bytes past the new end and hides
  // the snapshot's; the block holding the new end is copied so its tail can be cleared.
  void resize(Snapshot& snap, uint64_t byteLength);

  // --- commit support (used by Session) ---
  void assignId(uint64_t id) { id_ = id; }
  // Blocks this transaction writes or deletes, for conflict detection and the log.
  void describeChanges(ChangeSet* out) const;
  // Writes dirty blocks under array id `id` (assigned at commit for a new array) and
  // deletes stale ones inside the write transaction `txn`; counts what it wrote.
  void store(MDB_txn* txn, MDB_dbi blocksDb, uint64_t id, SessionStats* counters) const;
  // After a successful commit: the current state is now the committed one.
  void markCommitted();
  // Abort: forget uncommitted changes, back to the committed length.
  void discardChanges();
  // Another handle changed the array's length: adopt the newly committed length.
  void adoptCommittedLength(uint64_t byteLength);

 private:
  static constexpr uint64_t kNone = UINT64_MAX;

  // Committed bytes of block `index` as this transaction must see them (clipped at
  // staleFrom). Caller holds the map lock shared.
  BlockView committedBlock(Snapshot& snap, uint64_t index);
  // The dirty copy of block `index`, created from the committed bytes on first write.
  std::vector<uint8_t>& dirtyBlock(Snapshot& snap, uint64_t index);

  uint64_t id_;
  uint32_t blockBytes_;
  uint64_t byteLength_;
  uint64_t committedLength_;
  uint64_t staleFrom_ = kNone;
  std::map<uint64_t, std::vector<uint8_t>> dirty_;
  SessionStats* stats_;
};

}  // namespace txa
