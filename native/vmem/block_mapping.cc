// The kernel side of a block: file mappings, anonymous mappings and placeholders.
//
// A placeholder never passes through a state where a concurrent access could see memory
// that is neither the old block nor a fault: it is created PROT_NONE (an access then takes
// SIGSEGV, which our handler turns into a wait for Region::mu, held here), registered with
// the userfaultfd (Uffd mode), and only then opened for MISSING faults.
#include <sys/mman.h>

#include <cerrno>

#include "internal.h"

namespace txa {
namespace vmem {

int mapFilePages(RegionImpl*, uint8_t* at, uint64_t len, int fd, uint64_t offset) {
  void* p = mmap(at, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, static_cast<off_t>(offset));
  return p == MAP_FAILED ? errno : 0;
}

int mapAnonRW(RegionImpl*, uint8_t* at, uint64_t len) {
  void* p = mmap(at, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? errno : 0;
}

int makePlaceholder(RegionImpl* R, uint8_t* at, uint64_t len) {
  const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE;
  void* p = mmap(at, len, PROT_NONE, flags, -1, 0);
  // At vm.max_map_count the kernel refuses to map over a mapping (the new one would exist
  // before the old one goes): unmap first, then map into the hole, which merges with its
  // neighbours. An access in between takes SIGSEGV and waits for Region::mu, held here.
  if (p == MAP_FAILED && errno == ENOMEM && munmap(at, len) == 0) p = mmap(at, len, PROT_NONE, flags, -1, 0);
  if (p == MAP_FAILED) return errno;
  if (R->mode != FaultMode::Uffd) return 0;
  if (int e = uffdRegister(R->uffd, at, len)) return e;
  return mprotect(at, len, PROT_READ | PROT_WRITE) == 0 ? 0 : errno;
}

int unmapRunLocked(RegionImpl* R, uint64_t b0, uint64_t b1) {
  if (b0 >= b1) return 0;
  int e = makePlaceholder(R, R->blockAddr(b0), (b1 - b0) * R->blockBytes);
  noteUnmappedLocked(R, b0, b1);
  if (e) recordErrorLocked(R, Status::SystemError, e, b0, "unmap blocks");
  return e;
}

void noteUnmappedLocked(RegionImpl* R, uint64_t b0, uint64_t b1) {
  R->st.unmapCalls++;
  for (uint64_t b = b0; b < b1; b++) {
    BlockMeta& m = R->blocks[b];
    if (m.state == BlockState::Unmapped) continue;
    setCleanLocked(R, b);
    forgetSpilledLocked(R, b);  // a Spill block leaves the transaction with the others
    if (m.unreadable) R->unreadableCount--;
    m = BlockMeta{};
    R->mappedCount--;
    chargeLocked(R, -1);
  }
  if (R->mappedCount == 0) R->mappedLo = R->mappedHi = 0;
}

void UnmapBatch::add(uint64_t b) {
  if (b0_ < b1_ && b == b1_) {
    b1_++;
    return;
  }
  flush();
  b0_ = b;
  b1_ = b + 1;
}

int UnmapBatch::flush() {
  int e = unmapRunLocked(R_, b0_, b1_);
  b0_ = b1_ = 0;
  return e;
}

}  // namespace vmem
}  // namespace txa
