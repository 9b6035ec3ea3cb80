// The fault path, shared by both fault services: map the window of blocks around a fault.
//
// Window: the faultBytes-aligned run of blocks around the faulting block. In Uffd mode a
// read fault on the block right after the previous window (a sequential reader) doubles the
// window, up to kReadAheadMaxBytes; any other fault resets it. Mapping a block costs one or
// two mmap calls into an empty placeholder (no TLB flush); the kernel's own read-ahead and
// fault-around then bring the file pages in on first touch.
#include <algorithm>

#include "internal.h"

namespace txa {
namespace vmem {

void serveFault(RegionImpl* R, uintptr_t addr, bool sequentialOk, uintptr_t* lo, uintptr_t* hi) {
  const uint64_t b = (addr - reinterpret_cast<uintptr_t>(R->base)) / R->blockBytes;
  *lo = addr & ~(uintptr_t(R->pageBytes) - 1);
  *hi = *lo + R->pageBytes;
  if (b >= R->blockCount) return;
  if (serveScanFault(R, b, lo, hi)) return;  // inside a views() scan: a scan window
  // The window is decided without the lock (a hint: the state is re-read under it), so that
  // room is made in the budget with no Region::mu held (lock order).
  uint64_t w0 = b - b % R->windowBlocks, w1 = w0 + R->windowBlocks;
  bool sequential = sequentialOk && __atomic_load_n(&R->raNext, __ATOMIC_RELAXED) == b;
  uint64_t ra = 0;
  if (sequential) {
    ra = std::max<uint64_t>(__atomic_load_n(&R->raBlocks, __ATOMIC_RELAXED) * 2, R->windowBlocks);
    ra = std::min<uint64_t>(ra, std::max<uint64_t>(kReadAheadMaxBytes / R->blockBytes, 1));
    if (R->budget) ra = std::min<uint64_t>(ra, std::max<uint64_t>(R->budget->limit.load() / 4, R->windowBlocks));
    w0 = b;
    w1 = b + ra;
  }
  w1 = std::min(w1, R->blockCount);
  if (R->budget) budgetMakeRoom(R->budget, w1 - w0);
  FutexLock guard(R->mu);
  if (R->closing) return;
  if (R->blocks[b].state != BlockState::Unmapped) return;  // served already: just wake
  R->st.faults++;
  if (int e = mapBlockMakingRoomLocked(R, b)) recordErrorLocked(R, Status::SystemError, e, b, "map a block of a view");
  if (R->blocks[b].state != BlockState::Unmapped) mapRangeLocked(R, w0, w1);
  if (R->blocks[b].state == BlockState::Unmapped) {
    // Even zeros could not be mapped: leave the thread to retry (Uffd) or chain (Sigsegv).
    return;
  }
  if (sequentialOk) {
    __atomic_store_n(&R->raNext, w1, __ATOMIC_RELAXED);
    __atomic_store_n(&R->raBlocks, sequential ? ra : 0, __ATOMIC_RELAXED);
  }
  *lo = reinterpret_cast<uintptr_t>(R->blockAddr(w0));
  *hi = reinterpret_cast<uintptr_t>(R->blockAddr(w1));
}

}  // namespace vmem
}  // namespace txa
