// The write scan: which mapped blocks hold writes, found without any write fault.
//
// A page written since its block was mapped is present, not a page of the data file and not
// the zero page (the kernel's copy-on-write gave it a private anonymous page). PAGEMAP_SCAN
// reports exactly those pages, one ioctl per span; without it /proc/self/pagemap tells
// present and file pages apart (not the zero page), and candidates in anonymous parts are
// compared with zeros. A `copied` block is all anonymous: its hash is compared with the one taken when it was
// copied in.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "internal.h"
#include "linux_uapi.h"

namespace txa {
namespace vmem {
namespace {

int g_pagemapFd = -2;  // -2: not opened yet; -1: unavailable
FutexMutex g_openMu;

int pagemapFd() {
  FutexLock guard(g_openMu);
  if (g_pagemapFd == -2) g_pagemapFd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  return g_pagemapFd;
}

bool allZero(const uint8_t* p, uint64_t n) {
  for (uint64_t i = 0; i < n; i += 8) {
    uint64_t v;
    memcpy(&v, p + i, 8);
    if (v) return false;
  }
  return true;
}

// A copied block is dirty if its bytes no longer hash as they did when copied in (the
// source may have moved to another snapshot since: it cannot be compared with).
void compareCopiedLocked(RegionImpl* R, uint64_t b) {
  if (blockHash(R->blockAddr(b), R->blockBytes) != R->blocks[b].copyHash) setDirtyLocked(R, b);
}

// A written candidate page at `addr`: dirty unless it lies in an anonymous part and holds
// zeros. Anonymous parts are always compared: a read of fresh anonymous memory does not
// always map the zero page (huge or multi-size pages of merged anonymous mappings).
void candidatePageLocked(RegionImpl* R, uintptr_t addr, bool zeroPageKnown) {
  uint64_t off = addr - reinterpret_cast<uintptr_t>(R->base);
  uint64_t b = off / R->blockBytes;
  if (b >= R->blockCount) return;
  BlockMeta& m = R->blocks[b];
  if (m.state == BlockState::Unmapped || m.copied || m.dirty) return;
  uint64_t inBlock = off % R->blockBytes;
  bool filePart = m.state == BlockState::File && inBlock < uint64_t(m.filePages) * R->pageBytes;
  if (!filePart && !zeroPageKnown && allZero(reinterpret_cast<const uint8_t*>(addr), R->pageBytes)) return;
  setDirtyLocked(R, b);
}

bool scanWithPagemapScan(RegionImpl* R, int fd, uintptr_t lo, uintptr_t hi) {
  page_region vec[64];
  pm_scan_arg a;
  memset(&a, 0, sizeof a);
  a.size = sizeof a;
  a.start = lo;
  a.end = hi;
  a.vec = reinterpret_cast<uint64_t>(vec);
  a.vec_len = 64;
  a.category_mask = PAGE_IS_PRESENT | PAGE_IS_FILE | PAGE_IS_PFNZERO;
  a.category_inverted = PAGE_IS_FILE | PAGE_IS_PFNZERO;
  a.return_mask = PAGE_IS_PRESENT;
  for (;;) {
    long n = ioctl(fd, PAGEMAP_SCAN, &a);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    for (long i = 0; i < n; i++)
      for (uintptr_t p = vec[i].start; p < vec[i].end; p += R->pageBytes) {
        uint64_t b = (p - reinterpret_cast<uintptr_t>(R->base)) / R->blockBytes;
        candidatePageLocked(R, p, false);
        // the rest of this block's pages in the run decide nothing more
        uintptr_t next = reinterpret_cast<uintptr_t>(R->blockAddr(b + 1));
        if (R->blocks[b].dirty && next > p + R->pageBytes) p = std::min<uintptr_t>(next, vec[i].end) - R->pageBytes;
      }
    if (a.walk_end >= hi || n < static_cast<long>(a.vec_len)) return true;
    a.start = a.walk_end;
  }
}

void scanWithPagemap(RegionImpl* R, int fd, uint64_t b0, uint64_t b1) {
  const uint64_t pages = R->blockBytes / R->pageBytes;
  uint64_t entries[256];
  for (uint64_t b = b0; b < b1; b++) {
    BlockMeta& m = R->blocks[b];
    if (m.state == BlockState::Unmapped || m.copied || m.dirty) continue;
    uintptr_t addr = reinterpret_cast<uintptr_t>(R->blockAddr(b));
    for (uint64_t p0 = 0; p0 < pages && !m.dirty; p0 += 256) {
      uint64_t n = std::min<uint64_t>(256, pages - p0);
      off_t at = static_cast<off_t>((addr / R->pageBytes + p0) * 8);
      if (pread(fd, entries, n * 8, at) != static_cast<ssize_t>(n * 8)) {
        setDirtyLocked(R, b);  // cannot tell: keep what the region holds
        break;
      }
      for (uint64_t i = 0; i < n && !m.dirty; i++) {
        bool present = entries[i] >> 63 & 1, file = entries[i] >> 61 & 1;
        if (present && !file) candidatePageLocked(R, addr + (p0 + i) * R->pageBytes, false);
      }
    }
  }
}

}  // namespace

bool pagemapScanWorks() {
  int fd = pagemapFd();
  if (fd < 0) return false;
  pm_scan_arg a;
  memset(&a, 0, sizeof a);
  a.size = sizeof a;
  static uint8_t probe[4096] __attribute__((aligned(4096)));
  a.start = reinterpret_cast<uint64_t>(probe);
  a.end = a.start + sizeof probe;
  a.category_mask = PAGE_IS_PRESENT;
  a.return_mask = PAGE_IS_PRESENT;
  page_region vec[1];
  a.vec = reinterpret_cast<uint64_t>(vec);
  a.vec_len = 1;
  return ioctl(fd, PAGEMAP_SCAN, &a) >= 0;
}

bool anyPagePresent(uintptr_t lo, uintptr_t hi, uint64_t pageBytes) {
  if (lo >= hi) return false;
  int fd = pagemapFd();
  if (fd < 0) return false;
  if (systemInfo().pagemapScan) {
    pm_scan_arg a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.start = lo;
    a.end = hi;
    page_region vec[1];
    a.vec = reinterpret_cast<uint64_t>(vec);
    a.vec_len = 1;
    a.max_pages = 1;
    a.category_mask = PAGE_IS_PRESENT;
    a.return_mask = PAGE_IS_PRESENT;
    long n;
    do n = ioctl(fd, PAGEMAP_SCAN, &a);
    while (n < 0 && errno == EINTR);
    if (n >= 0) return n > 0;
  }
  uint64_t entries[64];
  for (uintptr_t at = lo; at < hi;) {
    const uint64_t n = std::min<uint64_t>(64, (hi - at) / pageBytes);
    if (n == 0) return false;
    ssize_t r = pread(fd, entries, n * 8, static_cast<off_t>(at / pageBytes * 8));
    if (r < 0 && errno == EINTR) continue;
    if (r != static_cast<ssize_t>(n * 8)) return false;
    for (uint64_t i = 0; i < n; i++)
      if (entries[i] >> 63 & 1) return true;
    at += n * pageBytes;
  }
  return false;
}

void scanWritesLocked(RegionImpl* R, uint64_t b0, uint64_t b1) {
  b0 = std::max(b0, R->mappedLo);
  b1 = std::min(b1, R->mappedHi);
  if (b0 >= b1 || R->mappedCount == 0) return;
  R->st.scans++;
  for (uint64_t b = b0; b < b1; b++)
    if (R->blocks[b].copied == kCopiedHash && !R->blocks[b].dirty) compareCopiedLocked(R, b);
  compareScanCopiesLocked(R, b0, b1);
  int fd = pagemapFd();
  if (fd < 0) {
    // Nothing can tell writes apart: every mapped block counts as written.
    for (uint64_t b = b0; b < b1; b++)
      if (R->blocks[b].state != BlockState::Unmapped) setDirtyLocked(R, b);
    recordErrorLocked(R, Status::Unsupported, errno, b0, "open /proc/self/pagemap");
    return;
  }
  const bool scan = systemInfo().pagemapScan;
  uintptr_t lo = reinterpret_cast<uintptr_t>(R->blockAddr(b0)), hi = reinterpret_cast<uintptr_t>(R->blockAddr(b1));
  if (scan && scanWithPagemapScan(R, fd, lo, hi)) return;
  scanWithPagemap(R, fd, b0, b1);
}

}  // namespace vmem
}  // namespace txa
