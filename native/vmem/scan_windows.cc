// Scan windows: huge-page copies of kScanWindowBytes-aligned runs of blocks (4 MiB: two
// huge pages), loaded for a sequential reader (Region::loadSequential, vmem.h).
//
// Why: every page-table entry a view maps costs tens of µs on some virtual machines, and a
// block's file pages cannot be mapped in 2 MiB entries (each block lies behind its own
// header page in the data file). A private copy can: an anonymous window advised
// MADV_HUGEPAGE and filled by preadv takes one page-table entry per 2 MiB. A window spans
// two huge pages because its load and eviction cost a fixed number of page-table calls
// (mremap, mprotect, uffd ioctls), each costing per call more than per huge page: 4 MiB
// windows spend about a third less in them per byte than 2 MiB ones (docs/vmem.md).
//
// How a window is loaded (loadWindowLocked), all blocks of it UNMAPPED and under the
// source limit: a window-aligned temporary mapping is advised MADV_HUGEPAGE and populated
// (MADV_POPULATE_WRITE: every page present, so write protection covers them all), filled with the
// blocks' bytes (preadv at their file offsets, header pages between them read into a
// scratch page; memcpy for a block that is not page-aligned), made read-only, and moved
// into place by mremap (the page-table entry moves, nothing is copied), so no thread ever
// sees it half-filled. Its blocks become ANON, copied = kCopiedScanShut.
//
// Writes: a shut window cannot be written without a fault. Sigsegv mode: it stays
// PROT_READ, and the SIGSEGV handler opens it (mprotect of its shut blocks, one call per
// run). Uffd mode: it is registered for write-protect faults, write-protected and then
// made read-write, so that writes from system calls are served too; the service thread
// opens it (UFFDIO_WRITEPROTECT off, one call per run, which also wakes the writer).
// Opened blocks are kCopiedScanOpen: the write scan compares each of them with the source
// (compareScanCopiesLocked), so exactly the blocks whose bytes changed are dirty.
//
// When: loadSequential(range) loads the range's first window and records the range; a
// fault on an unmapped block inside the recorded range loads that block's window
// (serveScanFault, from the fault path) instead of mapping file pages when the reader goes
// on from the window before it (that window is in the pool, or the range's last fault was
// there or in this window). Random access inside a range (one views() chunk read at random
// places) and faults elsewhere take the ordinary path: they never read 4 MiB per touch.
//
// The pool: at most kScanWindowsMax windows per region. Loading one more first evicts the
// least recently used window: a whole shut window moves (mremap) to the region's spare
// slot and the new window is read into that huge page, so a long scan allocates and zeroes
// no new huge page per window; any other window's clean blocks are unmapped (one call when
// none is dirty) back to placeholders. The map budget may also unmap single blocks of a
// window, like any clean block (such a window is not recycled).
//
// Loading ahead (Uffd mode): after a fault served with a scan window, the service thread
// loads the next windows of the range (prefetchScanWindow) while no fault waits, so the
// reader computes on one window while the next is read.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "../iovec_advance.h"
#include "internal.h"
#include "linux_uapi.h"

namespace txa {
namespace vmem {
namespace {

constexpr uint64_t kNoWindow = UINT64_MAX;

// 1: available, 0: not (no THP, a PMD size that does not divide a window, or
// TXARRAY_SCAN_WINDOWS=0), -1: unknown.
std::atomic<int> g_available{-1};

bool readSmallFile(const char* path, char* buf, size_t n) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t r = read(fd, buf, n - 1);
  close(fd);
  if (r <= 0) return false;
  buf[r] = 0;
  return true;
}

bool probeAvailable() {
  if (const char* e = getenv("TXARRAY_SCAN_WINDOWS"))
    if (!strcmp(e, "0")) return false;
  char buf[128];
  if (!readSmallFile("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", buf, sizeof buf)) return false;
  const uint64_t pmd = strtoull(buf, nullptr, 10);
  if (pmd == 0 || kScanWindowBytes % pmd) return false;
  if (!readSmallFile("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof buf)) return false;
  return strstr(buf, "[never]") == nullptr;
}

uint64_t windowBlocks(const RegionImpl* R) { return kScanWindowBytes / R->blockBytes; }

// A kScanWindowBytes-aligned anonymous read-write mapping of kScanWindowBytes, advised MADV_HUGEPAGE,
// followed by one scratch page (`page` bytes: the header pages between blocks are read
// there). Unmap both with releaseTemp. nullptr with errno set on failure.
uint8_t* alignedHugeTemp(uint64_t page) {
  const uint64_t W = kScanWindowBytes, total = 2 * W + page;
  void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  uint8_t* raw = static_cast<uint8_t*>(p);
  uint8_t* at = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(raw) + W - 1) & ~uintptr_t(W - 1));
  uint8_t* end = at + W + page;
  int e = 0;
  if (at > raw && munmap(raw, size_t(at - raw)) != 0) e = errno;
  if (!e && raw + total > end && munmap(end, size_t(raw + total - end)) != 0) e = errno;
  if (!e && madvise(at, W, MADV_HUGEPAGE) != 0) e = errno;
  // Every page present before it is filled: a page first touched after the window is
  // write-protected would escape the protection (and a zero block's pages stay absent).
  if (!e && madvise(at, W, MADV_POPULATE_WRITE) != 0) e = errno;
  if (e) {
    munmap(raw, total);  // whatever is left of it
    errno = e;
    return nullptr;
  }
  return at;
}

void releaseTemp(uint8_t* at, uint64_t page, bool windowMoved) {
  if (windowMoved) munmap(at + kScanWindowBytes, page);
  else munmap(at, kScanWindowBytes + page);
}

// preadv of pieces whose file ranges follow each other with gaps of at most one page (the
// gaps land in `gap`). Pieces that cannot join start a new call.
class WindowReader {
 public:
  WindowReader(int fd, uint8_t* gap, uint64_t gapBytes) : fd_(fd), gap_(gap), gapBytes_(gapBytes) {}
  // 0 or errno
  int add(uint64_t at, uint8_t* dst, uint64_t n) {
    if (count_ && !(at >= end_ && at - end_ <= gapBytes_ && count_ + 2 <= kMaxIov))
      if (int e = flush()) return e;
    if (count_ == 0) {
      start_ = end_ = at;
    } else if (at > end_) {
      iov_[count_++] = iovec{gap_, size_t(at - end_)};
    }
    iov_[count_++] = iovec{dst, size_t(n)};
    end_ = at + n;
    return 0;
  }
  int flush() {
    uint64_t done = 0;
    const uint64_t total = end_ - start_;
    size_t first = 0;
    while (done < total) {
      ssize_t r = preadv(fd_, iov_ + first, int(count_ - first), off_t(start_ + done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        count_ = 0;
        return r < 0 ? errno : EIO;
      }
      done += uint64_t(r);
      advanceIovecs(iov_, count_, &first, uint64_t(r));
    }
    count_ = 0;
    return 0;
  }

 private:
  static constexpr size_t kMaxIov = 80;  // small: this may run on a signal stack
  int fd_;
  uint8_t* gap_;
  uint64_t gapBytes_;
  iovec iov_[kMaxIov];
  size_t count_ = 0;
  uint64_t start_ = 0, end_ = 0;
};

// Fills `tmp` with the source's bytes of blocks [b0, b0 + windowBlocks); header pages between
// blocks are read into `gap` (one page). `recycled`: tmp holds old bytes, so whatever the
// source does not cover is zeroed (a fresh tmp is zeros already). 0 or errno; ENOENT when
// the source could not locate a block.
int fillWindowLocked(RegionImpl* R, uint64_t b0, uint8_t* tmp, uint8_t* gap, bool recycled) {
  const uint64_t B = R->blockBytes, wb = windowBlocks(R);
  int fd = -1;
  WindowReader* reader = nullptr;
  alignas(WindowReader) unsigned char readerStore[sizeof(WindowReader)];
  int e = 0;
  for (uint64_t i = 0; i < wb && !e; i++) {
    BlockLocation loc;
    BlockView view;
    if (!R->source->locate(b0 + i, &loc, &view)) {
      e = ENOENT;
      break;
    }
    uint8_t* dst = tmp + i * B;
    const bool aligned = loc.mappable && loc.fd >= 0 && loc.fileOffset % R->pageBytes == 0;
    if (aligned && loc.bytes > 0) {
      if (reader && loc.fd != fd) {
        e = reader->flush();
        reader->~WindowReader();
        reader = nullptr;
      }
      if (!e && !reader) {
        fd = loc.fd;
        reader = new (readerStore) WindowReader(fd, gap, R->pageBytes);
      }
      const uint64_t n = std::min<uint64_t>(loc.bytes, B);
      if (!e) e = reader->add(loc.fileOffset, dst, n);
      if (recycled && n < B) memset(dst + n, 0, B - n);
    } else if (view.data && view.size) {
      const uint64_t n = std::min<uint64_t>(view.size, B);
      memcpy(dst, view.data, n);
      if (recycled && n < B) memset(dst + n, 0, B - n);
    } else if (recycled) {
      memset(dst, 0, B);
    }
    R->source->unpin();
  }
  if (reader) {
    if (!e) e = reader->flush();
    reader->~WindowReader();
  }
  return e;
}

// The spare slot: a kScanWindowBytes-aligned PROT_NONE reservation, then one read-write
// scratch page. Reserved at the first use; true if it exists.
bool ensureSpareLocked(RegionImpl* R) {
  ScanPool& P = R->scan;
  if (P.spareSlot) return true;
  const uint64_t W = kScanWindowBytes, page = R->pageBytes, total = 2 * W + page;
  void* p = mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return false;
  uint8_t* raw = static_cast<uint8_t*>(p);
  uint8_t* at = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(raw) + W - 1) & ~uintptr_t(W - 1));
  uint8_t* end = at + W + page;
  bool ok = !(at > raw && munmap(raw, size_t(at - raw)) != 0);
  ok = ok && !(raw + total > end && munmap(end, size_t(raw + total - end)) != 0);
  ok = ok && mprotect(at + W, page, PROT_READ | PROT_WRITE) == 0;
  if (!ok) {
    munmap(raw, total);
    return false;
  }
  P.spareSlot = at;
  return true;
}

// The spare's window was moved into the region: its slot is a hole again, reserved anew
// (MAP_FIXED_NOREPLACE: if another mapping of the process took the hole meanwhile, the
// slot is given up and a new one reserved at the next use).
void reserveSpareAgainLocked(RegionImpl* R) {
  ScanPool& P = R->scan;
  P.spareHeld = false;
  void* p = mmap(P.spareSlot, kScanWindowBytes, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == P.spareSlot) return;
  if (p != MAP_FAILED) munmap(p, kScanWindowBytes);  // a kernel without NOREPLACE put it elsewhere
  munmap(P.spareSlot + kScanWindowBytes, R->pageBytes);
  P.spareSlot = nullptr;
}

void forgetWindow(ScanPool& P, size_t i) {
  P.window[i] = kNoWindow;
  P.lastUse[i] = 0;
}

// Unmaps the clean blocks of pool entry i's window (a window with no dirty block: one
// call) and forgets the entry.
void evictWindowLocked(RegionImpl* R, size_t i) {
  ScanPool& P = R->scan;
  const uint64_t b0 = P.window[i] * windowBlocks(R), b1 = b0 + windowBlocks(R);
  forgetWindow(P, i);
  // A window whose mapped blocks are all shut holds no write: no scan needed.
  bool allShut = true;
  for (uint64_t b = b0; b < b1 && allShut; b++)
    allShut = R->blocks[b].state == BlockState::Unmapped || R->blocks[b].copied == kCopiedScanShut;
  if (!allShut) {
    // Stores held off from the scan to the unmap. Where the kernel refuses that (ENOMEM
    // at vm.max_map_count), the window is scanned and unmapped unguarded below: a store
    // landing between the two is the one case an eviction can still drop.
    if (holdStoresLocked(R, b0, b1)) {
      scanWritesLocked(R, b0, b1);
      unmapCleanReopenWrittenLocked(R, b0, b1);
      R->st.scanWindowEvictions++;
      return;
    }
    scanWritesLocked(R, b0, b1);
  }
  // A whole shut window (no block unmapped, opened or dirty since it was loaded) moves to
  // the spare slot instead of being freed: the next window is read into its huge page,
  // which then needs no new allocation, zeroing or compaction. Its range becomes a hole,
  // made a placeholder below (an access meanwhile takes SIGSEGV and waits for R->mu).
  bool whole = true;
  for (uint64_t b = b0; b < b1 && whole; b++)
    whole = R->blocks[b].state == BlockState::Anon && R->blocks[b].copied == kCopiedScanShut && !R->blocks[b].dirty;
  if (whole && !R->scan.spareHeld && ensureSpareLocked(R) &&
      mremap(R->blockAddr(b0), kScanWindowBytes, kScanWindowBytes, MREMAP_MAYMOVE | MREMAP_FIXED, R->scan.spareSlot) !=
          MAP_FAILED) {
    R->scan.spareHeld = true;
    R->st.scanWindowsRecycled++;
  }
  UnmapBatch batch(R);
  for (uint64_t b = b0; b < b1; b++)
    if (R->blocks[b].state != BlockState::Unmapped && !R->blocks[b].dirty) batch.add(b);
  batch.flush();
  R->st.scanWindowEvictions++;
}

// Window w has an entry in the pool (the budget unmapped its blocks since), or one is free.
bool poolHasRoomLocked(RegionImpl* R, uint64_t w) {
  for (size_t i = 0; i < kScanWindowsMax; i++)
    if (R->scan.window[i] == w || R->scan.window[i] == kNoWindow) return true;
  return false;
}

void evictLruLocked(RegionImpl* R) {
  ScanPool& P = R->scan;
  size_t lru = 0;
  for (size_t i = 1; i < kScanWindowsMax; i++)
    if (P.lastUse[i] < P.lastUse[lru]) lru = i;
  evictWindowLocked(R, lru);
}

// A pool entry for window w: its old entry (the budget unmapped its blocks since), a free
// one, or the least recently used one, evicted.
size_t poolSlotLocked(RegionImpl* R, uint64_t w) {
  ScanPool& P = R->scan;
  size_t lru = 0;
  for (size_t i = 0; i < kScanWindowsMax; i++) {
    if (P.window[i] == w) return i;
    if (P.lastUse[i] < P.lastUse[lru]) lru = i;
  }
  for (size_t i = 0; i < kScanWindowsMax; i++)
    if (P.window[i] == kNoWindow) return i;
  evictWindowLocked(R, lru);
  return lru;
}

int writeProtect(int uffd, uint8_t* at, uint64_t len, bool on) {
  uffdio_writeprotect wp;
  memset(&wp, 0, sizeof wp);
  wp.range.start = reinterpret_cast<uint64_t>(at);
  wp.range.len = len;
  wp.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
  return ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) == 0 ? 0 : errno;
}

int registerForWrites(int uffd, uint8_t* at, uint64_t len) {
  uffdio_register reg;
  memset(&reg, 0, sizeof reg);
  reg.range.start = reinterpret_cast<uint64_t>(at);
  reg.range.len = len;
  reg.mode = UFFDIO_REGISTER_MODE_WP;  // every page is present: no MISSING fault can come
  if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) return errno;
  const uint64_t need = UINT64_C(1) << _UFFDIO_WRITEPROTECT;
  return (reg.ioctls & need) == need ? 0 : ENOTSUP;
}

// Window w is in the pool and its first block still a copy: marks it used, true.
bool touchLoadedLocked(RegionImpl* R, uint64_t w) {
  ScanPool& P = R->scan;
  const uint64_t b0 = w * windowBlocks(R);
  for (size_t i = 0; i < kScanWindowsMax; i++)
    if (P.window[i] == w && b0 < R->blockCount && R->blocks[b0].copied >= kCopiedScanShut) {
      P.lastUse[i] = ++P.clock;
      return true;
    }
  return false;
}

// Loads window w as a huge-page copy if all its blocks are UNMAPPED and under the source
// limit. true if it is loaded (now or before).
bool loadWindowLocked(RegionImpl* R, uint64_t w) {
  const uint64_t wb = windowBlocks(R), b0 = w * wb, b1 = b0 + wb;
  ScanPool& P = R->scan;
  if (touchLoadedLocked(R, w)) return true;
  if (b1 > R->blockCount || R->sourceLimit < b1 * R->blockBytes) return false;
  for (uint64_t b = b0; b < b1; b++)
    if (R->blocks[b].state != BlockState::Unmapped) return false;
  // The pool's least recently used window makes room first, so that its huge page (moved
  // to the spare slot) is the one this window is read into.
  if (!poolHasRoomLocked(R, w)) evictLruLocked(R);
  const bool recycled = P.spareHeld;
  uint8_t* tmp = recycled ? P.spareSlot : alignedHugeTemp(R->pageBytes);
  if (!tmp) {
    if (errno == EINVAL) g_available.store(0);  // MADV_HUGEPAGE or MADV_POPULATE_WRITE refused
    return false;
  }
  uint8_t* gap = recycled ? P.spareSlot + kScanWindowBytes : tmp + kScanWindowBytes;
  uint8_t* at = R->blockAddr(b0);
  int e = 0;
  // A recycled window was read-only where it was (Sigsegv mode: PROT_READ).
  if (recycled && R->mode != FaultMode::Uffd && mprotect(tmp, kScanWindowBytes, PROT_READ | PROT_WRITE) != 0) e = errno;
  if (!e) e = fillWindowLocked(R, b0, tmp, gap, recycled);
  if (!e && mprotect(tmp, kScanWindowBytes, PROT_READ) != 0) e = errno;
  if (e) {
    if (!recycled) releaseTemp(tmp, R->pageBytes, false);  // a spare stays held, bytes and all
    return false;  // the fault path serves these blocks (and reports what fails there)
  }
  // From here the window's placeholder is replaced: on failure it is re-made.
  if (mremap(tmp, kScanWindowBytes, kScanWindowBytes, MREMAP_MAYMOVE | MREMAP_FIXED, at) == MAP_FAILED) {
    if (!recycled) releaseTemp(tmp, R->pageBytes, false);
    makePlaceholder(R, at, kScanWindowBytes);
    return false;
  }
  if (recycled) reserveSpareAgainLocked(R);
  else releaseTemp(tmp, R->pageBytes, true);
  if (R->mode == FaultMode::Uffd) {
    e = registerForWrites(R->uffd, at, kScanWindowBytes);
    if (!e) e = writeProtect(R->uffd, at, kScanWindowBytes, true);
    if (!e && mprotect(at, kScanWindowBytes, PROT_READ | PROT_WRITE) != 0) e = errno;
    if (e) {
      if (int pe = makePlaceholder(R, at, kScanWindowBytes))
        recordErrorLocked(R, Status::SystemError, pe, b0, "re-make a scan window's placeholder");
      return false;
    }
  }
  for (uint64_t b = b0; b < b1; b++) {
    noteMappedLocked(R, b, BlockState::Anon);
    R->blocks[b].copied = kCopiedScanShut;
  }
  R->st.scanWindows++;
  size_t i = poolSlotLocked(R, w);
  P.window[i] = w;
  P.lastUse[i] = ++P.clock;
  return true;
}

// Calls f(r0, r1) for each run of blocks of [b0, b1) whose copied == kCopiedScanShut.
template <class F>
int forShutRuns(RegionImpl* R, uint64_t b0, uint64_t b1, F f) {
  for (uint64_t b = b0; b < b1;) {
    if (R->blocks[b].copied != kCopiedScanShut) {
      b++;
      continue;
    }
    uint64_t r1 = b + 1;
    while (r1 < b1 && R->blocks[r1].copied == kCopiedScanShut) r1++;
    if (int e = f(b, r1)) return e;
    b = r1;
  }
  return 0;
}

bool sameBytes(const uint8_t* a, const uint8_t* b, uint64_t n) { return memcmp(a, b, n) == 0; }

bool zeros(const uint8_t* p, uint64_t n) {
  for (uint64_t i = 0; i < n; i++)
    if (p[i]) return false;
  return true;
}

}  // namespace

bool scanWindowsAvailable() {
  int a = g_available.load();
  if (a < 0) {
    a = probeAvailable() ? 1 : 0;
    g_available.store(a);
  }
  return a == 1;
}

int openScanWindowsLocked(RegionImpl* R, uint64_t b0, uint64_t b1) {
  b1 = std::min(b1, R->blockCount);
  return forShutRuns(R, b0, b1, [&](uint64_t r0, uint64_t r1) -> int {
    if (injectedFailure(g_scanWriteFaults.open)) return EAGAIN;
    uint8_t* at = R->blockAddr(r0);
    const uint64_t len = (r1 - r0) * R->blockBytes;
    int e = R->mode == FaultMode::Uffd ? writeProtect(R->uffd, at, len, false)
                                        : mprotect(at, len, PROT_READ | PROT_WRITE) == 0 ? 0 : errno;
    // A run is open (writable) as soon as its call succeeds: it is marked so at once, so
    // that the write scan compares it whatever happens to the runs after it.
    if (!e)
      for (uint64_t b = r0; b < r1; b++) R->blocks[b].copied = kCopiedScanOpen;
    return e;
  });
}

int dropShutCopiesLocked(RegionImpl* R, uint64_t b0, uint64_t b1) {
  b1 = std::min(b1, R->blockCount);
  return forShutRuns(R, b0, b1, [&](uint64_t r0, uint64_t r1) -> int {
    if (injectedFailure(g_scanWriteFaults.drop)) return EAGAIN;
    // A refused placeholder leaves the copies mapped (the kernel refuses the mmap or the
    // munmap before it changes anything): they stay shut copies.
    if (int e = makePlaceholder(R, R->blockAddr(r0), (r1 - r0) * R->blockBytes)) return e;
    noteUnmappedLocked(R, r0, r1);
    return 0;
  });
}

void shutScanWindowsLocked(RegionImpl* R) {
  const uint64_t wb = windowBlocks(R);
  for (size_t i = 0; i < kScanWindowsMax; i++) {
    if (R->scan.window[i] == kNoWindow) continue;
    const uint64_t b0 = R->scan.window[i] * wb, b1 = b0 + wb;
    compareScanCopiesLocked(R, b0, b1);
    for (uint64_t b = b0; b < b1;) {
      auto clean = [&](uint64_t x) { return R->blocks[x].copied == kCopiedScanOpen && !R->blocks[x].dirty; };
      if (!clean(b)) {
        b++;
        continue;
      }
      uint64_t r1 = b + 1;
      while (r1 < b1 && clean(r1)) r1++;
      uint8_t* at = R->blockAddr(b);
      const uint64_t len = (r1 - b) * R->blockBytes;
      int e = R->mode == FaultMode::Uffd ? writeProtect(R->uffd, at, len, true)
                                          : mprotect(at, len, PROT_READ) == 0 ? 0 : errno;
      if (!e)
        for (uint64_t x = b; x < r1; x++) R->blocks[x].copied = kCopiedScanShut;
      b = r1;
    }
  }
}

void compareScanCopiesLocked(RegionImpl* R, uint64_t b0, uint64_t b1) {
  const uint64_t B = R->blockBytes;
  uint8_t* scratch = nullptr;  // mmap'd at the first block to compare (async-signal-safe)
  for (uint64_t b = b0; b < b1; b++) {
    BlockMeta& m = R->blocks[b];
    if (m.copied != kCopiedScanOpen || m.dirty) continue;
    const uint8_t* have = R->blockAddr(b);
    BlockLocation loc;
    BlockView view;
    if (!R->source->locate(b, &loc, &view)) {
      setDirtyLocked(R, b);  // cannot tell: keep what the region holds
      continue;
    }
    bool same = false;
    if (loc.mappable && loc.fd >= 0 && loc.fileOffset % R->pageBytes == 0 && loc.bytes > 0) {
      if (!scratch) {
        void* p = mmap(nullptr, B, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        scratch = p == MAP_FAILED ? nullptr : static_cast<uint8_t*>(p);
      }
      const uint64_t n = std::min<uint64_t>(loc.bytes, B);
      uint64_t done = 0;
      while (scratch && done < n) {
        ssize_t r = pread(loc.fd, scratch + done, size_t(n - done), off_t(loc.fileOffset + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        done += uint64_t(r);
      }
      same = scratch && done == n && sameBytes(have, scratch, n) && zeros(have + n, B - n);
    } else {
      const uint64_t n = view.data ? std::min<uint64_t>(view.size, B) : 0;
      same = (n == 0 || sameBytes(have, view.data, n)) && zeros(have + n, B - n);
    }
    R->source->unpin();
    if (!same) setDirtyLocked(R, b);
  }
  if (scratch) munmap(scratch, B);
}

bool serveScanFault(RegionImpl* R, uint64_t b, uintptr_t* lo, uintptr_t* hi) {
  if (R->blockBytes > kScanWindowBytes || reinterpret_cast<uintptr_t>(R->base) % kScanWindowBytes) return false;
  const uint64_t wb = windowBlocks(R), w = b / wb;
  {
    FutexLock g(R->mu);
    const uint64_t off = b * R->blockBytes;
    if (R->closing || off < R->scan.seqLo || off >= R->scan.seqHi) return false;
    const uint64_t last = R->scan.lastFaultWindow;
    R->scan.lastFaultWindow = w;
    bool onward = w == R->scan.seqLo / kScanWindowBytes || (w > 0 && (last == w - 1 || last == w));
    for (size_t i = 0; i < kScanWindowsMax && w > 0 && !onward; i++)
      onward = R->scan.window[i] == w - 1;
    if (!onward) return false;
  }
  if (g_available.load() != 1) return false;  // probed by loadSequential, which set the range
  if (R->budget) budgetMakeRoom(R->budget, wb);
  FutexLock g(R->mu);
  if (R->closing) return false;
  // A window loaded before may have lost this block since (committed, evicted): then the
  // ordinary path maps it.
  if (!loadWindowLocked(R, w) || R->blocks[b].state == BlockState::Unmapped) return false;
  R->st.faults++;
  *lo = reinterpret_cast<uintptr_t>(R->blockAddr(w * wb));
  *hi = reinterpret_cast<uintptr_t>(R->blockAddr(w * wb + wb));
  return true;
}

bool scanPrefetchRange(RegionImpl* R, uintptr_t addr, uintptr_t* from, uintptr_t* to) {
  if (R->blockBytes > kScanWindowBytes || reinterpret_cast<uintptr_t>(R->base) % kScanWindowBytes) return false;
  const uintptr_t base = reinterpret_cast<uintptr_t>(R->base);
  const uint64_t off = addr - base, b = off / R->blockBytes, w = off / kScanWindowBytes;
  FutexLock g(R->mu);
  if (R->closing || b >= R->blockCount || off < R->scan.seqLo || off >= R->scan.seqHi) return false;
  if (R->blocks[b].copied < kCopiedScanShut) return false;  // served by the ordinary path
  // Only a reader that came from the window before reads on: one touching a chunk here and
  // there (a first and a last element) would have windows read ahead for nothing.
  bool fromPrevious = false;
  for (size_t i = 0; i < kScanWindowsMax && w > 0; i++)
    fromPrevious = fromPrevious || (R->scan.window[i] == w - 1 && R->blocks[(w - 1) * windowBlocks(R)].copied >= kCopiedScanShut);
  if (!fromPrevious) return false;
  // views() announces its next chunk when the reader gets there: the windows just past this
  // one are loaded ahead too (a scan left early reads at most kScanPrefetchWindows for nothing).
  const uint64_t lastWindow = (R->scan.seqHi - 1) / kScanWindowBytes + kScanPrefetchWindows;
  *from = base + (w + 1) * kScanWindowBytes;
  *to = base + (std::min<uint64_t>(w + kScanPrefetchWindows, lastWindow) + 1) * kScanWindowBytes;
  return true;
}

bool prefetchScanWindow(RegionImpl* R, uintptr_t at) {
  if (g_available.load() != 1) return false;
  const uint64_t off = at - reinterpret_cast<uintptr_t>(R->base), w = off / kScanWindowBytes;
  const uint64_t wb = windowBlocks(R);
  auto ahead = [&] {  // in the range, or among the windows just past it
    return off >= R->scan.seqLo && off < R->scan.seqHi + kScanPrefetchWindows * kScanWindowBytes;
  };
  {
    FutexLock g(R->mu);
    if (R->closing || !ahead()) return false;
    for (size_t i = 0; i < kScanWindowsMax; i++)
      if (R->scan.window[i] == w && w * wb < R->blockCount && R->blocks[w * wb].copied >= kCopiedScanShut) return false;
  }
  if (R->budget) budgetMakeRoom(R->budget, wb);
  FutexLock g(R->mu);
  if (R->closing || !ahead()) return false;
  const uint64_t before = R->st.scanWindows;
  if (!loadWindowLocked(R, w) || R->st.scanWindows == before) return false;
  R->st.scanWindowsPrefetched++;
  return true;
}

void releaseScanSpare(RegionImpl* R) {
  if (!R->scan.spareSlot) return;
  munmap(R->scan.spareSlot, kScanWindowBytes + R->pageBytes);
  R->scan.spareSlot = nullptr;
  R->scan.spareHeld = false;
}

Status Region::loadSequential(uint64_t offset, uint64_t len, Error* err) {
  RegionImpl* R = impl_;
  if (!R) {
    if (err) *err = Error{Status::Closed, 0, 0, "region closed"};
    return Status::Closed;
  }
  if (offset > R->reserve || len > R->reserve - offset) {
    if (err) *err = Error{Status::InvalidArgument, 0, 0, "range outside the reservation"};
    return Status::InvalidArgument;
  }
  if (len == 0 || R->blockBytes > kScanWindowBytes || !scanWindowsAvailable()) return Status::Ok;
  if (reinterpret_cast<uintptr_t>(R->base) % kScanWindowBytes) return Status::Ok;
  // The first window now; the others of the range when a fault reaches them (a view larger
  // than the pool would otherwise evict its own windows before they are read).
  {
    FutexLock g(R->mu);
    R->scan.seqLo = offset;
    R->scan.seqHi = offset + len;
  }
  const uint64_t w0 = offset / kScanWindowBytes;
  const uint64_t w1 = std::min<uint64_t>((offset + len - 1) / kScanWindowBytes + 1, w0 + 1);
  for (uint64_t w = w0; w < w1; w++) {
    {
      FutexLock g(R->mu);
      if (R->closing) break;
      if (touchLoadedLocked(R, w)) continue;
    }
    // Room in the budget first, with no Region::mu held (lock order).
    if (R->budget) budgetMakeRoom(R->budget, windowBlocks(R));
    FutexLock g(R->mu);
    if (R->closing) break;
    if (!loadWindowLocked(R, w)) R->st.scanWindowFallbacks++;
  }
  return Status::Ok;
}

}  // namespace vmem
}  // namespace txa
