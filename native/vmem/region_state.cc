// Block state transitions: UNMAPPED -> FILE | ANON, and the dirty flag (see vmem.h).
// Every function here requires R->mu held.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "internal.h"

namespace txa {
namespace vmem {

void recordErrorLocked(RegionImpl* R, Status s, int err, uint64_t block, const char* what) {
  if (R->hasError) return;  // the first is usually the cause of the others
  R->hasError = true;
  R->error = Error{s, err, block, what};
}

void setDirtyLocked(RegionImpl* R, uint64_t b) {
  BlockMeta& m = R->blocks[b];
  if (m.dirty) return;
  m.dirty = 1;
  R->dirtyCount++;
}

void setCleanLocked(RegionImpl* R, uint64_t b) {
  BlockMeta& m = R->blocks[b];
  if (!m.dirty) return;
  m.dirty = 0;
  R->dirtyCount--;
}

void noteMappedLocked(RegionImpl* R, uint64_t b, BlockState state) {
  BlockMeta& m = R->blocks[b];
  m.state = state;
  m.ref = 1;
  if (R->mappedCount++ == 0) {
    R->mappedLo = b;
    R->mappedHi = b + 1;
  } else {
    R->mappedLo = std::min(R->mappedLo, b);
    R->mappedHi = std::max(R->mappedHi, b + 1);
  }
  R->st.blocksMapped++;
  chargeLocked(R, b, true);
}

namespace {

// Fills a fresh anonymous block with `n` bytes of src before it becomes visible at `at`:
// built at a temporary address, then moved into place by mremap (page tables move, no
// copy), so no other thread ever sees it half-filled.
// The bytes come from `src`, or where it is null from `fd` at `offset` (pread).
int mapCopy(RegionImpl* R, uint8_t* at, const uint8_t* src, int fd, uint64_t offset, uint64_t n, uint64_t* hash) {
  void* tmp = mmap(nullptr, R->blockBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (tmp == MAP_FAILED) return errno;
  if (src) {
    memcpy(tmp, src, n);
  } else {
    for (uint64_t done = 0; done < n;) {
      ssize_t r = pread(fd, static_cast<uint8_t*>(tmp) + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        int e = r < 0 ? errno : EIO;
        munmap(tmp, R->blockBytes);
        return e;
      }
      done += static_cast<uint64_t>(r);
    }
  }
  *hash = blockHash(static_cast<const uint8_t*>(tmp), R->blockBytes);
  void* p = mremap(tmp, R->blockBytes, R->blockBytes, MREMAP_MAYMOVE | MREMAP_FIXED, at);
  if (p == MAP_FAILED) {
    int e = errno;
    munmap(tmp, R->blockBytes);
    return e;
  }
  return 0;
}

}  // namespace

uint64_t blockHash(const uint8_t* p, uint64_t n) {
  uint64_t h = 0x9e3779b97f4a7c15u;
  for (uint64_t i = 0; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdu;
    h ^= h >> 29;
  }
  return h;
}

int mapBlockLocked(RegionImpl* R, uint64_t b) {
  BlockMeta& m = R->blocks[b];
  if (m.state != BlockState::Unmapped) return 0;
  if (m.spilled) return mapSpilledLocked(R, b);  // the transaction's bytes, not the source's
  uint8_t* at = R->blockAddr(b);
  const uint64_t start = b * R->blockBytes;
  const uint64_t B = R->blockBytes;
  if (R->sourceLimit <= start) {  // hidden by a shrink: zeros
    int e = mapAnonRW(R, at, B);
    if (e == ENOMEM) return e;  // the caller may make room
    if (e) return recordErrorLocked(R, Status::SystemError, e, b, "map zero block"), e;
    noteMappedLocked(R, b, BlockState::Anon);
    return 0;
  }
  BlockLocation loc;
  BlockView view;
  if (!R->source->locate(b, &loc, &view)) {
    R->st.sourceErrors++;
    recordErrorLocked(R, Status::SourceError, 0, b, "read block from the store");
    int e = mapAnonRW(R, at, B);
    if (e) return e;
    noteMappedLocked(R, b, BlockState::Anon);
    m.unreadable = 1;  // dropUnreadable() unmaps it after the next move
    R->unreadableCount++;
    return 0;
  }
  const bool clipped = R->sourceLimit < start + B;
  const uint64_t page = R->pageBytes;
  const bool aligned = loc.mappable && loc.fileOffset % page == 0 && loc.bytes % page == 0;
  int e = 0;
  if (aligned && !clipped && loc.bytes > 0) {
    uint64_t fileBytes = std::min<uint64_t>(loc.bytes, B);
    e = mapFilePages(R, at, fileBytes, loc.fd, loc.fileOffset);
    if (!e && fileBytes < B) e = mapAnonRW(R, at + fileBytes, B - fileBytes);
    R->source->unpin();
    if (e) {
      // The block stays UNMAPPED: the caller may make room (ENOMEM: vm.max_map_count) and
      // try again. Whatever part was mapped goes back to the placeholder.
      makePlaceholder(R, at, B);
      return e;
    }
    m.filePages = static_cast<uint32_t>(fileBytes / page);
    noteMappedLocked(R, b, BlockState::File);
    R->st.fileBlocks++;
    return 0;
  }
  // Copied: the view's bytes, or (a mappable block clipped by sourceLimit) the file's.
  const bool fromFile = !view.data && loc.fd >= 0 && loc.bytes > 0;
  uint64_t n = std::min<uint64_t>(view.data ? view.size : fromFile ? loc.bytes : 0, B);
  if (clipped) n = std::min(n, R->sourceLimit - start);
  uint64_t hash = 0;
  e = n ? mapCopy(R, at, view.data, loc.fd, loc.fileOffset, n, &hash) : mapAnonRW(R, at, B);
  R->source->unpin();
  if (e) {
    if (e != ENOMEM) recordErrorLocked(R, Status::SystemError, e, b, "copy block into the region");
    return e;  // ENOMEM: the caller may make room
  }
  noteMappedLocked(R, b, BlockState::Anon);
  if (n) {
    m.copied = kCopiedHash;
    m.copyHash = hash;
    R->st.copiedBlocks++;
  }
  return 0;
}

int mapBlockMakingRoomLocked(RegionImpl* R, uint64_t b) {
  int e = mapBlockLocked(R, b);
  if (e != ENOMEM) return e;
  // Most likely vm.max_map_count: every mapped block is a VMA or two. Unmapping the
  // region's clean blocks merges their placeholders back; then try once more; then spill
  // its dirty blocks too, pass after pass while one frees blocks (a run whose read-only
  // guard needed a VMA the limit refused may be spilled once others freed theirs).
  if (evictLocked(R, UINT64_MAX)) {
    e = mapBlockLocked(R, b);
    if (e != ENOMEM) return e;
  }
  while (spillLocked(R, UINT64_MAX)) {
    e = mapBlockLocked(R, b);
    if (e != ENOMEM) return e;
  }
  return e;
}

int mapRangeLocked(RegionImpl* R, uint64_t b0, uint64_t b1) {
  for (uint64_t b = b0; b < b1 && b < R->blockCount; b++) {
    if (R->blocks[b].state != BlockState::Unmapped) continue;
    if (!R->blocks[b].spilled && !R->source->ready(b)) continue;  // faults when touched
    if (int e = mapBlockLocked(R, b)) return e;
  }
  return 0;
}

}  // namespace vmem
}  // namespace txa
