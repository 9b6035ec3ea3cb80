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

namespace {

// Uffd mode: [*at, *at + *len) (whole blocks) widened over the UNMAPPED blocks on either side
// (the placeholders it joins), up to kPlaceholderReach blocks each way; where every block
// that way is UNMAPPED (outside mappedLo..mappedHi) up to the region's edge.
//
// Why: a write fault on a placeholder (PROT_READ|PROT_WRITE there, registered MISSING)
// makes the kernel give its VMA an anon_vma before it hands the fault to the service, and
// VMAs of different anon_vmas never merge. Placeholders faulted apart would then stay
// separate VMAs side by side once the blocks between them are unmapped, which the budget
// (map_budget.cc: one VMA per unmapped stretch) does not count. A placeholder made over the
// whole stretch replaces them with one fresh VMA. Its price: the stretch's blocks pass
// through PROT_NONE too, like the run being unmapped (a store there waits for R->mu in the
// SIGSEGV handler; a system call reaching one of them in that moment fails with EFAULT).
constexpr uint64_t kPlaceholderReach = 16384;  // 1 GiB of 64 KiB blocks: 0.5 MiB of states

void widenOverPlaceholders(const RegionImpl* R, uint8_t** at, uint64_t* len) {
  const uint64_t B = R->blockBytes;
  const uint64_t off = uint64_t(*at - R->base);
  if (off % B || *len % B) return;
  uint64_t b0 = off / B, b1 = b0 + *len / B;
  if (b1 > R->blockCount) return;
  // Every mapped block lies in [mappedLo, mappedHi): none below b0 where b0 <= mappedLo.
  const bool none = R->mappedCount == 0;
  if (none || b0 <= R->mappedLo) {
    b0 = 0;
  } else {
    for (uint64_t n = 0; n < kPlaceholderReach && b0 > 0 && R->blocks[b0 - 1].state == BlockState::Unmapped; n++) b0--;
  }
  if (none || b1 >= R->mappedHi) {
    b1 = R->blockCount;
  } else {
    for (uint64_t n = 0; n < kPlaceholderReach && b1 < R->blockCount && R->blocks[b1].state == BlockState::Unmapped; n++) b1++;
  }
  *at = R->base + b0 * B;
  *len = (b1 - b0) * B;
}

}  // namespace

int makePlaceholder(RegionImpl* R, uint8_t* at, uint64_t len) {
  if (R->mode == FaultMode::Uffd) widenOverPlaceholders(R, &at, &len);
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
    chargeLocked(R, b, false);
    m = BlockMeta{};
    R->mappedCount--;
  }
  if (R->mappedCount == 0) R->mappedLo = R->mappedHi = 0;
}

namespace {

// Calls fn(m0, m1) for each run [m0, m1) of mapped blocks in [b0, b1), in order, while fn
// returns true; returns where it stopped (b1 when every call returned true).
template <class Fn>
uint64_t forMappedRuns(const RegionImpl* R, uint64_t b0, uint64_t b1, Fn fn) {
  for (uint64_t m0 = b0; m0 < b1;) {
    if (R->blocks[m0].state == BlockState::Unmapped) {
      m0++;
      continue;
    }
    uint64_t m1 = m0 + 1;
    while (m1 < b1 && R->blocks[m1].state != BlockState::Unmapped) m1++;
    if (!fn(m0, m1)) return m0;
    m0 = m1;
  }
  return b1;
}

// Opens [w0, w1) read-write again. Its VMAs are exactly those a protection made, so this
// needs no new VMA; a refusal is recorded.
void reopenLocked(RegionImpl* R, uint64_t w0, uint64_t w1) {
  if (w0 < w1 && mprotect(R->blockAddr(w0), (w1 - w0) * R->blockBytes, PROT_READ | PROT_WRITE) != 0)
    recordErrorLocked(R, Status::SystemError, errno, w0, "reopen blocks after a write scan");
}

}  // namespace

bool holdStoresLocked(RegionImpl* R, uint64_t b0, uint64_t b1) {
  const uint64_t held = forMappedRuns(R, b0, b1, [R](uint64_t m0, uint64_t m1) {
    return mprotect(R->blockAddr(m0), (m1 - m0) * R->blockBytes, PROT_READ) == 0;
  });
  if (held == b1) return true;
  // Open what was made read-only, and the refused run too: the kernel may have changed
  // its VMAs before the one it refused.
  forMappedRuns(R, b0, held, [R](uint64_t m0, uint64_t m1) {
    reopenLocked(R, m0, m1);
    return true;
  });
  forMappedRuns(R, held, b1, [R](uint64_t m0, uint64_t m1) {
    reopenLocked(R, m0, m1);
    return false;
  });
  return false;
}

uint64_t unmapCleanReopenWrittenLocked(RegionImpl* R, uint64_t b0, uint64_t b1) {
  uint64_t freed = 0, w0 = 0, w1 = 0;  // [w0, w1): written blocks, opened again together
  UnmapBatch batch(R);
  for (uint64_t b = b0; b < b1; b++) {
    const BlockMeta& m = R->blocks[b];
    if (m.dirty) {
      batch.flush();
      if (w0 == w1) w0 = b;
      w1 = b + 1;
      continue;
    }
    reopenLocked(R, w0, w1);
    w0 = w1 = 0;
    batch.add(b);
    if (m.state != BlockState::Unmapped) freed++;
  }
  batch.flush();
  reopenLocked(R, w0, w1);
  return freed;
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
