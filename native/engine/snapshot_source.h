// BlockSource over a Store handle's current snapshot: how vmem fills a page of one array.
//
// The handle moves to a new snapshot at every commit/abort/refresh, while the fault
// service may be filling a page of one of its arrays. SnapshotHolder is the one place
// that pointer changes: pin() copies the shared_ptr under a short mutex, so the old
// snapshot lives until the fill that pinned it is done.
//
// pin() runs inside a fault (service thread, or a SIGSEGV handler on the faulting
// thread): it takes no lock that code touching region memory may hold (swap mutex,
// Snapshot::txnLock: both only held for pointer copies and mdb_get) except Env::mapLock,
// which it takes shared and which is reader-preferring (see env.h). It never throws.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>

#include "../block_source.h"
#include "fetch_channel.h"
#include "snapshot.h"

namespace txa {

class SnapshotHolder {
 public:
  explicit SnapshotHolder(std::shared_ptr<Snapshot> snapshot) : snapshot_(std::move(snapshot)) {}
  std::shared_ptr<Snapshot> get() {
    std::lock_guard<std::mutex> guard(mu_);
    return snapshot_;
  }
  // The channel faults post fetch requests to (a Store handle of a remote store in
  // userfaultfd mode), or none. The holder keeps it alive; fetcher() is for the fault path.
  void setFetcher(std::shared_ptr<FetchChannel> channel) {
    std::lock_guard<std::mutex> guard(mu_);
    fetcher_ = std::move(channel);
  }
  FetchChannel* fetcher() {
    std::lock_guard<std::mutex> guard(mu_);
    return fetcher_.get();
  }
  // Swaps in a new snapshot. The previous one is kept until the next swap: a fault in
  // flight may still hold it pinned, and if its unpin() dropped the last reference it
  // would end an LMDB transaction and free memory inside the fault (a signal handler in
  // SIGSEGV mode). This way the last reference goes here, on the swapping thread.
  void set(std::shared_ptr<Snapshot> snapshot) {
    std::shared_ptr<Snapshot> expired;
    {
      std::lock_guard<std::mutex> guard(mu_);
      expired = std::move(retired_);
      retired_ = std::move(snapshot_);
      snapshot_ = std::move(snapshot);
    }
    // `expired` is released here, outside the mutex (ending a read transaction).
  }

 private:
  std::mutex mu_;
  std::shared_ptr<Snapshot> snapshot_;
  std::shared_ptr<Snapshot> retired_;  // the previous snapshot, see set()
  std::shared_ptr<FetchChannel> fetcher_;
};

class SnapshotSource : public BlockSource {
 public:
  SnapshotSource(std::shared_ptr<SnapshotHolder> holder, uint64_t arrayId)
      : holder_(std::move(holder)), arrayId_(arrayId) {}

  // A new array gets its id at commit; until then it has no committed blocks.
  void setArrayId(uint64_t id) { arrayId_.store(id, std::memory_order_release); }
  uint64_t arrayId() const { return arrayId_.load(std::memory_order_acquire); }

  // Drops the reference to the handle's snapshots (the region is closed: no more fills).
  // Without it a detached view, alive until the GC collects it, would keep an LMDB read
  // transaction open, and with it every page freed since (the file grows).
  void release() { holder_.reset(); }

  bool pin(uint64_t index, BlockView* out) override;
  bool locate(uint64_t index, BlockLocation* loc, BlockView* view) override;
  void unpin() override;
  // False for a stub the snapshot has not fetched (Snapshot::isStub).
  bool ready(uint64_t index) override;
  // Posts the stub's version to the holder's fetcher (fetch_channel.h) unless its fetch
  // failed in this snapshot; the fetcher's wait bound, or 0 (no fetcher, not a stub, failed,
  // closed or full).
  uint64_t requestFetch(uint64_t index) override;
  void requestFetchAhead(uint64_t index) override;

 private:
  // Pins the handle's current snapshot and takes its map lock shared (unpin() ends both);
  // false if the source was released or has no snapshot.
  bool pinSnapshot();
  // requestFetch() and requestFetchAhead(): posts the block's version to the handle's fetch
  // channel (ahead: only while the channel keeps room for blocks faults wait for).
  uint64_t postFetch(uint64_t index, bool ahead);
  std::shared_ptr<SnapshotHolder> holder_;
  std::atomic<uint64_t> arrayId_;
  // The pin in progress (vmem has at most one outstanding per region).
  std::shared_ptr<Snapshot> pinned_;
  bool mapLocked_ = false;
  // The LMDB map range the pinned block lives in, unmapped from this process at unpin().
  const uint8_t* pinnedData_ = nullptr;
  size_t pinnedSize_ = 0;
};

}  // namespace txa
