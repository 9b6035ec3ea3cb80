// Write faults on shut scan windows: open the window, and where the kernel refuses, fall
// back so that no write is lost and no writer faults forever.
//
// A shut window is read-only to writes: PROT_READ in Sigsegv mode, write-protected by the
// userfaultfd in Uffd mode (scan_windows.cc). The first write opens it: one mprotect or
// UFFDIO_WRITEPROTECT per run of its shut blocks. The kernel may refuse: mprotect with
// ENOMEM where the window shares its VMA with a neighbouring window (adjacent windows
// merge) and the split would pass vm.max_map_count; UFFDIO_WRITEPROTECT for reasons of its
// own. Then, in order:
//   1. ENOMEM: room is made as for a refused mapping (the region's clean blocks unmapped,
//      then its dirty ones spilled, pass after pass) and the window is opened again.
//      Unmapping the clean blocks may take the faulting block too: then as in 2.
//   2. The window's shut copies go back to placeholders: they hold the source's bytes, so
//      nothing is lost. The writer retries, faults on the placeholder (Uffd: woken, it
//      faults through the MISSING path) and the ordinary fault path maps the block
//      read-write. The views() range is forgotten, so that the retry does not load the
//      window again.
//   3. With the region lock released, the other regions of the process make room (their
//      clean blocks, then also their dirty ones), and 1-2 are tried again.
//   4. Sigsegv mode: Failed; the handler ends the process (THE FAULT RULE). Uffd mode: the
//      block is marked dirty, then the write protection of that block alone is lifted (a
//      change of page-table entries, no VMA); if even that fails the process ends, since
//      a writer that faults forever is worse.
// THE WRITE-PROTECTION RULE: a shut copy becomes writable only as an open block (which
// the write scan compares with the source) or as a block marked dirty first, so every
// write through it is committed.
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "internal.h"
#include "linux_uapi.h"

namespace txa {
namespace vmem {

ScanWriteFaultInjection g_scanWriteFaults;

bool injectedFailure(std::atomic<int>& count) {
  int n = count.load(std::memory_order_relaxed);
  while (n > 0)
    if (count.compare_exchange_weak(n, n - 1, std::memory_order_relaxed)) return true;
  return false;
}

namespace {

bool isShut(const RegionImpl* R, uint64_t b) {
  return R->blocks[b].state == BlockState::Anon && R->blocks[b].copied == kCopiedScanShut;
}

void endProcess(const char* why) {
  ssize_t r = write(2, why, strlen(why));
  (void)r;  // nothing to do if stderr is gone
  abort();
}

// Uffd mode: lifts the write protection of block b alone (page-table entries only: no
// VMA is made or split). 0 or errno.
int liftBlockLocked(RegionImpl* R, uint64_t b) {
  if (injectedFailure(g_scanWriteFaults.lift)) return EAGAIN;
  uffdio_writeprotect wp;
  memset(&wp, 0, sizeof wp);
  wp.range.start = reinterpret_cast<uint64_t>(R->blockAddr(b));
  wp.range.len = R->blockBytes;
  wp.mode = 0;  // protection off, and wake the writers of the range
  return ioctl(R->uffd, UFFDIO_WRITEPROTECT, &wp) == 0 ? 0 : errno;
}

// Uffd mode, R->mu held: block b is writable by the rules (open, or marked dirty), yet a
// write faulted on it: a protection call that failed half-way may have left some of its
// pages protected. Lifting it again is allowed by THE WRITE-PROTECTION RULE.
ScanWrite liftAgainLocked(RegionImpl* R, uint64_t b) {
  if (int e = liftBlockLocked(R, b)) {
    recordErrorLocked(R, Status::SystemError, e, b, "lift a scan window's write protection");
    endProcess("txarray vmem: cannot make a block of a view writable (see the region's error); terminating\n");
  }
  return ScanWrite::Opened;
}

// R->mu held; block b is a shut copy of window [w0, w1). Opens the window; where the
// kernel refuses: makes room (ENOMEM) and opens again, else drops the window's shut
// copies. Failed with *err set when neither worked.
ScanWrite openOrDropLocked(RegionImpl* R, uint64_t b, uint64_t w0, uint64_t w1, int* err) {
  int e = openScanWindowsLocked(R, w0, w1);
  if (!e) return ScanWrite::Opened;
  R->st.scanWindowOpenRefusals++;
  if (e == ENOMEM) {
    // Most likely vm.max_map_count (a split of the window's VMA): as for a refused mapping
    // (mapBlockMakingRoomLocked), the region's clean blocks first, then its dirty ones.
    bool freed = evictLocked(R, UINT64_MAX) > 0;
    while (freed && isShut(R, b)) {
      e = openScanWindowsLocked(R, w0, w1);
      if (!e) return ScanWrite::Opened;
      if (e != ENOMEM) break;
      freed = spillLocked(R, UINT64_MAX) > 0;
    }
    if (R->blocks[b].state == BlockState::Unmapped) return ScanWrite::Dropped;
  }
  *err = e;
  if (dropShutCopiesLocked(R, w0, w1) == 0 || R->blocks[b].state == BlockState::Unmapped) return ScanWrite::Dropped;
  return ScanWrite::Failed;
}

// R->mu held; block b is no shut copy (any more).
ScanWrite notShutLocked(RegionImpl* R, uint64_t b) {
  if (R->mode != FaultMode::Uffd || R->closing) return ScanWrite::NotShut;
  const BlockMeta& m = R->blocks[b];
  if (m.state == BlockState::Anon && m.copied == kCopiedScanOpen) return liftAgainLocked(R, b);
  if (m.state == BlockState::Unmapped) {
    // A write-protect fault here comes from a copy that was unmapped since (the writer is
    // woken and faults through the MISSING path), or from one whose placeholder the kernel
    // refused (unmapRunLocked records that): making the placeholder again ends that.
    if (int e = makePlaceholder(R, R->blockAddr(b), R->blockBytes))
      recordErrorLocked(R, Status::SystemError, e, b, "re-make a placeholder");
  }
  return ScanWrite::NotShut;
}

}  // namespace

ScanWrite serveScanWriteFault(RegionImpl* R, uintptr_t addr) {
  const uint64_t b = (addr - reinterpret_cast<uintptr_t>(R->base)) / R->blockBytes;
  if (b >= R->blockCount) return ScanWrite::NotShut;
  const uint64_t wb = std::max<uint64_t>(kScanWindowBytes / R->blockBytes, 1), w0 = b - b % wb;
  const uint64_t w1 = std::min(w0 + wb, R->blockCount);
  int err = 0;
  for (int attempt = 0; attempt < 3; attempt++) {
    // Other regions make room with no Region::mu held (THE RULE): clean blocks, then dirty.
    if (attempt > 0) makeRoomInProcess(R, attempt == 2);
    FutexLock g(R->mu);
    if (R->closing || !isShut(R, b)) return notShutLocked(R, b);
    const ScanWrite w = openOrDropLocked(R, b, w0, w1, &err);
    if (w == ScanWrite::Opened) R->st.scanWindowsOpened++;
    if (w == ScanWrite::Dropped) R->scan.seqLo = R->scan.seqHi = 0;  // the retry maps it read-write
    if (w != ScanWrite::Failed) return w;
  }
  FutexLock g(R->mu);
  if (R->closing || !isShut(R, b)) return notShutLocked(R, b);
  if (R->mode != FaultMode::Uffd) {
    recordErrorLocked(R, Status::SystemError, err, b, "open a scan window for writing");
    return ScanWrite::Failed;
  }
  // The write protection of this block alone, after the block is marked dirty (THE
  // WRITE-PROTECTION RULE): the write lands, and the block is committed whatever it holds
  // (no error: nothing is lost).
  setDirtyLocked(R, b);
  R->blocks[b].copied = kCopiedScanOpen;
  return liftAgainLocked(R, b);
}

}  // namespace vmem
}  // namespace txa
