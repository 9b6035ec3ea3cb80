#include "snapshot_source.h"

#include <sys/mman.h>
#include <unistd.h>

namespace txa {

bool SnapshotSource::pinSnapshot() {
  if (!holder_) return false;  // released: the region is closed
  pinned_ = holder_->get();
  if (!pinned_) return false;
  pinned_->env().mapLock.lock_shared();
  mapLocked_ = true;
  return true;
}

bool SnapshotSource::pin(uint64_t index, BlockView* out) {
  *out = BlockView{};
  uint64_t id = arrayId();
  if (!pinSnapshot()) return false;
  if (id == 0) return true;  // not committed yet: reads as zeros
  if (pinned_->tryBlock(id, index, out) != 0) {
    unpin();
    return false;
  }
  pinnedData_ = out->data;
  pinnedSize_ = out->size;
  return true;
}

bool SnapshotSource::locate(uint64_t index, BlockLocation* loc, BlockView* view) {
  *loc = BlockLocation{};
  *view = BlockView{};
  uint64_t id = arrayId();
  if (!pinSnapshot()) return false;
  if (id == 0) return true;  // not committed yet: reads as zeros
  // The location reads only LMDB's branch/leaf pages and the value's first page, never the
  // data pages: mapping them costs no copy and no page of LMDB's map.
  if (pinned_->tryBlockLocation(id, index, loc) != 0) {
    unpin();
    return false;
  }
  if (loc->bytes == 0 || loc->mappable) return true;
  if (pinned_->tryBlock(id, index, view) != 0) {
    unpin();
    return false;
  }
  pinnedData_ = view->data;
  pinnedSize_ = view->size;
  return true;
}

bool SnapshotSource::ready(uint64_t index) {
  uint64_t id = arrayId();
  if (id == 0 || !pinSnapshot()) return true;  // nothing to wait for: pin() answers
  const bool stub = pinned_->isStub(id, index);
  unpin();
  return !stub;
}

uint64_t SnapshotSource::requestFetch(uint64_t index) { return postFetch(index, false); }

void SnapshotSource::requestFetchAhead(uint64_t index) { postFetch(index, true); }

uint64_t SnapshotSource::postFetch(uint64_t index, bool ahead) {
  FetchChannel* channel = holder_ ? holder_->fetcher() : nullptr;
  const uint64_t id = arrayId();
  if (!channel || id == 0 || !pinSnapshot()) return 0;
  FetchChannel::Request r;
  r.arrayId = id;
  r.index = index;
  const bool posted = pinned_->stubVersion(id, index, &r.serial, &r.length) &&
                      !pinned_->fetchFailed(id, index, r.serial) && channel->post(r, ahead);
  unpin();
  return posted ? channel->waitNs() : 0;
}

void SnapshotSource::unpin() {
  // A scan stays within cacheBytes in RssFile too: a fill copies the block out of LMDB's
  // (read-only, shared, file-backed) map, which leaves those file pages mapped in this
  // process, and nothing else unmaps them (view-memory.test.ts). The block lives in the
  // region now, so drop our mapping of its LMDB pages: MADV_DONTNEED on a shared file mapping only removes page-table entries (the
  // page cache keeps the data, and another thread still reading these pages just takes a
  // minor fault). Rounded outwards: an overflow value owns its pages; a small value's leaf
  // page merely refaults. Done before releasing mapLock, while the address is still LMDB's.
  // Fetched bytes of a stub (Snapshot::addFetched) live in memory, not in the map: kept.
  if (pinnedSize_ > 0 && pinned_->env().inFile(pinnedData_, pinnedSize_)) {
    static const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
    uintptr_t lo = reinterpret_cast<uintptr_t>(pinnedData_) & ~(page - 1);
    uintptr_t hi = (reinterpret_cast<uintptr_t>(pinnedData_) + pinnedSize_ + page - 1) & ~(page - 1);
    madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);  // best effort: errors change nothing
  }
  pinnedData_ = nullptr;
  pinnedSize_ = 0;
  if (mapLocked_) {
    pinned_->env().mapLock.unlock_shared();
    mapLocked_ = false;
  }
  pinned_.reset();
}

}  // namespace txa
