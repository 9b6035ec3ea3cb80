#include "tracked_array.h"

#include <algorithm>
#include <cstring>
#include <shared_mutex>

#include "error.h"
#include "keys.h"
#include "session_stats.h"

namespace txa {

TrackedArray::TrackedArray(uint64_t id, uint32_t blockBytes, uint64_t byteLength, SessionStats* stats)
    : id_(id), blockBytes_(blockBytes), byteLength_(byteLength), committedLength_(byteLength), stats_(stats) {
  if (blockBytes == 0) throw Error(ErrorCode::kArgument, "blockBytes must be positive");
}

BlockView TrackedArray::committedBlock(Snapshot& snap, uint64_t index) {
  BlockView view;
  if (id_ == 0) return view;  // created in this transaction: nothing committed
  uint64_t start = index * blockBytes_;
  if (start >= staleFrom_) return view;
  if (snap.block(id_, index, &view)) ++stats_->blocksRead;
  if (staleFrom_ != kNone) view.size = std::min<uint64_t>(view.size, staleFrom_ - start);
  return view;
}

std::vector<uint8_t>& TrackedArray::dirtyBlock(Snapshot& snap, uint64_t index) {
  auto it = dirty_.find(index);
  if (it != dirty_.end()) return it->second;
  std::vector<uint8_t> copy(blockBytes_, 0);
  BlockView committed = committedBlock(snap, index);
  if (committed.size) memcpy(copy.data(), committed.data, std::min<size_t>(committed.size, blockBytes_));
  return dirty_.emplace(index, std::move(copy)).first->second;
}

void TrackedArray::gather(Snapshot& snap, const Strided& sel, uint8_t* dst) {
  sel.checkWithin(byteLength_);
  std::shared_lock<std::shared_mutex> mapGuard(snap.env().mapLock);
  // One-entry cache: consecutive runs mostly fall in the same block.
  uint64_t cachedIndex = kNone;
  BlockView cached;
  sel.forEachRun([&](uint64_t offset, uint64_t bytes, uint64_t at) {
    while (bytes > 0) {
      uint64_t index = offset / blockBytes_;
      uint64_t within = offset % blockBytes_;
      uint64_t n = std::min<uint64_t>(bytes, blockBytes_ - within);
      if (index != cachedIndex) {
        auto it = dirty_.find(index);
        cached = it != dirty_.end() ? BlockView{it->second.data(), blockBytes_}
                                    : committedBlock(snap, index);
        cachedIndex = index;
      }
      uint64_t have = cached.size > within ? std::min<uint64_t>(n, cached.size - within) : 0;
      if (have) memcpy(dst + at, cached.data + within, have);
      if (have < n) memset(dst + at + have, 0, n - have);
      offset += n;
      at += n;
      bytes -= n;
    }
  });
}

void TrackedArray::scatter(Snapshot& snap, const Strided& sel, const uint8_t* src) {
  sel.checkWithin(byteLength_);
  std::shared_lock<std::shared_mutex> mapGuard(snap.env().mapLock);
  uint64_t cachedIndex = kNone;
  uint8_t* cached = nullptr;
  sel.forEachRun([&](uint64_t offset, uint64_t bytes, uint64_t at) {
    while (bytes > 0) {
      uint64_t index = offset / blockBytes_;
      uint64_t within = offset % blockBytes_;
      uint64_t n = std::min<uint64_t>(bytes, blockBytes_ - within);
      if (index != cachedIndex) {
        cached = dirtyBlock(snap, index).data();
        cachedIndex = index;
      }
      memcpy(cached + within, src + at, n);
      offset += n;
      at += n;
      bytes -= n;
    }
  });
}

void TrackedArray::resize(Snapshot& snap, uint64_t byteLength) {
  if (byteLength >= byteLength_) {
    byteLength_ = byteLength;
    return;
  }
  std::shared_lock<std::shared_mutex> mapGuard(snap.env().mapLock);
  uint64_t boundary = byteLength / blockBytes_;
  uint64_t within = byteLength % blockBytes_;
  // Keep the surviving prefix of the boundary block as a dirty copy before hiding the
  // snapshot's bytes, then clear its tail.
  if (within) dirtyBlock(snap, boundary);
  dirty_.erase(dirty_.lower_bound(within ? boundary + 1 : boundary), dirty_.end());
  if (within) {
    auto& block = dirty_.at(boundary);
    memset(block.data() + within, 0, blockBytes_ - within);
  }
  staleFrom_ = std::min(staleFrom_, byteLength);
  byteLength_ = byteLength;
}

void TrackedArray::describeChanges(ChangeSet* out) const {
  for (const auto& entry : dirty_) out->addBlocks(id_, entry.first, entry.first);
  if (staleFrom_ != kNone) {
    out->addBlocks(id_, (staleFrom_ + blockBytes_ - 1) / blockBytes_, keys::kToEnd);
  }
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

void TrackedArray::store(MDB_txn* txn, MDB_dbi db, uint64_t id, SessionStats* counters) const {
  if (staleFrom_ != kNone) deleteBlocksFrom(txn, db, id, (staleFrom_ + blockBytes_ - 1) / blockBytes_);
  for (const auto& [index, bytes] : dirty_) {
    // Store only up to the array's end and drop trailing zeros: a growing tail block costs
    // what it holds, and an all-zero block is no block at all (it reads as zeros).
    uint64_t start = index * blockBytes_;
    size_t size = start >= byteLength_ ? 0 : size_t(std::min<uint64_t>(blockBytes_, byteLength_ - start));
    while (size > 0 && bytes[size - 1] == 0) --size;
    keys::BlockKey key(id, index);
    MDB_val k{sizeof key.bytes, key.bytes};
    int rc;
    if (size == 0) {
      rc = mdb_del(txn, db, &k, nullptr);
      if (rc == MDB_NOTFOUND) rc = 0;
    } else {
      MDB_val v{size, const_cast<uint8_t*>(bytes.data())};
      rc = mdb_put(txn, db, &k, &v, 0);
      ++counters->blocksWritten;
      counters->bytesWritten += size;
    }
    if (rc) throwLmdb(rc, "store block");
  }
}

void TrackedArray::markCommitted() {
  dirty_.clear();
  staleFrom_ = kNone;
  committedLength_ = byteLength_;
}

void TrackedArray::discardChanges() {
  dirty_.clear();
  staleFrom_ = kNone;
  byteLength_ = committedLength_;
}

void TrackedArray::adoptCommittedLength(uint64_t byteLength) {
  committedLength_ = byteLength;
  if (dirty_.empty() && staleFrom_ == kNone) byteLength_ = byteLength;
}

}  // namespace txa
