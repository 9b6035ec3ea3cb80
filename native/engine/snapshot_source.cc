#include "snapshot_source.h"

namespace txa {

bool SnapshotSource::pin(uint64_t index, BlockView* out) {
  *out = BlockView{};
  uint64_t id = arrayId();
  pinned_ = holder_->get();
  if (!pinned_) return false;
  pinned_->env().mapLock.lock_shared();
  mapLocked_ = true;
  if (id == 0) return true;  // not committed yet: reads as zeros
  if (pinned_->tryBlock(id, index, out) != 0) {
    unpin();
    return false;
  }
  return true;
}

void SnapshotSource::unpin() {
  if (mapLocked_) {
    pinned_->env().mapLock.unlock_shared();
    mapLocked_ = false;
  }
  pinned_.reset();
}

}  // namespace txa
