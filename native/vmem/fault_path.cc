// The fault path, shared by both fault services: map the window of blocks around a fault.
//
// Window: the faultBytes-aligned run of blocks around the faulting block; but a fault far
// from the last one (beyond a window of it) whose reader went on into the blocks the last
// far fault mapped past its own (a presence probe of their pages) maps the blocks holding
// faultBytes from the faulting address on: a reader starting on random runs (S1's windows)
// takes one fault per run, where the aligned window would leave its end to a second fault. In Uffd mode a
// read fault on the block right after the previous window (a sequential reader) doubles the
// window, up to kReadAheadMaxBytes; any other fault resets it. While faults land far from
// each other (twice in a row) and the reader did not go on into the blocks the last far
// fault mapped past its own (a presence probe of their pages), a fault maps its block alone. Mapping a block costs one or
// two mmap calls into an empty placeholder (no TLB flush); the kernel's own read-ahead and
// fault-around then bring the file pages in on first touch.
//
// At vm.max_map_count a region first unmaps its own blocks (region_state.cc); where that
// is not enough, every other region of the process does (handles with budgets of their
// own, and mappings no budget counts, may reach the limit while each budget is under its own).
#include <algorithm>
#include <cerrno>

#include "internal.h"

namespace txa {
namespace vmem {

namespace {

// Far faults in a row after which a fault maps its block alone.
constexpr uint64_t kScatteredFaults = 2;

enum class Served { Already, Mapped, Failed, NoRoom, Waiting };

// R->mu held. Maps the faulting block b (making room in R at the VMA limit), then the
// rest of its window. NoRoom: the kernel refused even after R unmapped all it could.
// Waiting (only where `waits` is given): b waits for a fetch, nothing was mapped.
Served mapWindowLocked(RegionImpl* R, uint64_t b, uint64_t w0, uint64_t w1, uint64_t ra, bool sequentialOk, bool* waits,
                       int* err) {
  if (R->closing || R->blocks[b].state != BlockState::Unmapped) return Served::Already;
  if (waits && waitForFetchLocked(R, b, WaitingWindow{w0, w1, ra, sequentialOk})) return Served::Waiting;
  *err = mapBlockMakingRoomLocked(R, b);
  if (R->blocks[b].state == BlockState::Unmapped) return *err == ENOMEM ? Served::NoRoom : Served::Failed;
  mapRangeLocked(R, w0, w1);
  return Served::Mapped;
}

}  // namespace

void makeRoomInProcess(RegionImpl* self, bool spill) {
  struct Pass {
    RegionImpl* self;
    bool spill;
  } pass{self, spill};
  registryForEach(
      [](RegionImpl* R, void* ctx) {
        const Pass* p = static_cast<const Pass*>(ctx);
        if (R == p->self) return;
        FutexLock g(R->mu);
        if (R->closing) return;
        if (!p->spill) {
          evictLocked(R, UINT64_MAX);
          return;
        }
        while (spillLocked(R, UINT64_MAX)) {
        }
      },
      &pass);
}

bool serveFault(RegionImpl* R, uintptr_t addr, bool sequentialOk, uintptr_t* lo, uintptr_t* hi, bool* waits) {
  if (waits) *waits = false;
  const uint64_t b = (addr - reinterpret_cast<uintptr_t>(R->base)) / R->blockBytes;
  *lo = addr & ~(uintptr_t(R->pageBytes) - 1);
  *hi = *lo + R->pageBytes;
  if (b >= R->blockCount) return true;
  if (serveScanFault(R, b, lo, hi)) return true;  // inside a views() scan: a scan window
  // The window is decided without the lock (a hint: the state is re-read under it), so that
  // room is made in the budget with no Region::mu held (lock order).
  uint64_t w0 = b - b % R->windowBlocks, w1 = w0 + R->windowBlocks;
  bool sequential = sequentialOk && __atomic_load_n(&R->raNext, __ATOMIC_RELAXED) == b;
  uint64_t ra = 0;
  // Faults that keep landing far from each other (scattered stores, strided reads) map
  // their block alone: the rest of a window would be mapped for nothing, and charged to the
  // budget. A fault within a window of the last one brings whole windows back.
  const uint64_t last = __atomic_load_n(&R->lastFault, __ATOMIC_RELAXED);
  const bool near = sequential || (last != UINT64_MAX && b + R->windowBlocks >= last && b <= last + R->windowBlocks);
  uint64_t far = 0;
  bool readOn = false;
  if (!near) {
    // A reader that went on into the blocks the last far fault mapped past its own (a run
    // copied out from its start: random windows) is no scattered writer, however far apart
    // its runs lie: its far faults keep their windows.
    const uint64_t usedLo = __atomic_load_n(&R->readOnLo, __ATOMIC_RELAXED);
    const uint64_t usedHi = __atomic_load_n(&R->readOnHi, __ATOMIC_RELAXED);
    readOn = usedLo < usedHi && usedHi <= R->blockCount &&
                        anyPagePresent(reinterpret_cast<uintptr_t>(R->blockAddr(usedLo)),
                                       reinterpret_cast<uintptr_t>(R->blockAddr(usedHi)), R->pageBytes);
    far = readOn ? 1 : __atomic_load_n(&R->farFaults, __ATOMIC_RELAXED) + 1;
  }
  __atomic_store_n(&R->farFaults, far, __ATOMIC_RELAXED);
  __atomic_store_n(&R->lastFault, b, __ATOMIC_RELAXED);
  if (far >= kScatteredFaults) {
    w0 = b;
    w1 = b + 1;
  } else if (readOn && R->windowBlocks > 1) {
    // A far fault of a reader that went on from its last far fault is where it starts on
    // a new run: the window is the blocks that hold faultBytes from the faulting address on
    // (one fault for a window copied out from its start, where the aligned window would
    // leave its end to a second fault). Without that evidence (a first fault, a reader
    // going backwards) the aligned window stays.
    const uint64_t from = addr - reinterpret_cast<uintptr_t>(R->base);
    w0 = b;
    w1 = (from + R->windowBlocks * R->blockBytes - 1) / R->blockBytes + 1;
  }
  if (far) {  // near faults leave the last far fault's record (a run's later windows)
    __atomic_store_n(&R->readOnLo, far == 1 ? b + 1 : 0, __ATOMIC_RELAXED);
    __atomic_store_n(&R->readOnHi, far == 1 ? std::min(w1, R->blockCount) : 0, __ATOMIC_RELAXED);
  }
  if (sequential) {
    ra = std::max<uint64_t>(__atomic_load_n(&R->raBlocks, __ATOMIC_RELAXED) * 2, R->windowBlocks);
    ra = std::min<uint64_t>(ra, std::max<uint64_t>(kReadAheadMaxBytes / R->blockBytes, 1));
    if (R->budget) ra = std::min<uint64_t>(ra, std::max<uint64_t>(R->budget->limit.load() / 4, R->windowBlocks));
    w0 = b;
    w1 = b + ra;
  }
  w1 = std::min(w1, R->blockCount);
  return serveWindow(R, addr, b, w0, w1, sequential ? ra : 0, sequentialOk, lo, hi, waits);
}

bool serveWindow(RegionImpl* R, uintptr_t addr, uint64_t b, uint64_t w0, uint64_t w1, uint64_t ra, bool sequentialOk,
                 uintptr_t* lo, uintptr_t* hi, bool* waits) {
  if (waits) *waits = false;
  *lo = addr & ~(uintptr_t(R->pageBytes) - 1);
  *hi = *lo + R->pageBytes;
  const bool sequential = ra != 0;
  if (R->budget) budgetMakeRoom(R->budget, w1 - w0);
  // At the VMA limit with nothing left to unmap here, the rest of the process makes room:
  // clean blocks first, then dirty ones; the region lock is not held meanwhile (THE RULE).
  int err = 0;
  bool wakeBlock = false;  // b had waiting faults: wake every page of it, not just this one
  Served served = Served::NoRoom;
  for (int attempt = 0; attempt < 3 && served == Served::NoRoom; attempt++) {
    if (attempt > 0) makeRoomInProcess(R, attempt == 2);
    FutexLock guard(R->mu);
    served = mapWindowLocked(R, b, w0, w1, ra, sequentialOk, waits, &err);
    if (served == Served::Waiting) {
      *waits = true;
      return true;
    }
    if (waits && dropWaitingLocked(R, b)) wakeBlock = true;
    if (attempt == 0 && served != Served::Already) R->st.faults++;
    if (served == Served::Failed || (served == Served::NoRoom && attempt == 2))
      recordErrorLocked(R, Status::SystemError, err, b, "map a block of a view");
    if (served != Served::Mapped) continue;
    if (sequentialOk) {
      __atomic_store_n(&R->raNext, w1, __ATOMIC_RELAXED);
      __atomic_store_n(&R->raBlocks, sequential ? ra : 0, __ATOMIC_RELAXED);
    }
    *lo = reinterpret_cast<uintptr_t>(R->blockAddr(w0));
    *hi = reinterpret_cast<uintptr_t>(R->blockAddr(w1));
  }
  if (wakeBlock) uffdWake(R->uffd, reinterpret_cast<uintptr_t>(R->blockAddr(b)), reinterpret_cast<uintptr_t>(R->blockAddr(b + 1)));
  // Already: served by another thread, or the region is closing (it maps nothing): wake.
  return served == Served::Mapped || served == Served::Already;  // else not even zeros mapped
}

}  // namespace vmem
}  // namespace txa
