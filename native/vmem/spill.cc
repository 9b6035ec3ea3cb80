// The spill file: dirty blocks out of the mapping budget.
//
// Every mapped block costs a VMA or two, and a dirty block cannot go back to the data file,
// so a transaction writing into more blocks than the budget would keep mapping more, up to
// vm.max_map_count, where mmap fails. Instead the budget spills dirty blocks: the block is
// made read-only, its bytes are written to the region's spill file (a memfd as large as
// the reservation: byte o of the array at offset o) and the block goes back to the
// placeholder, which merges with its neighbours (its VMAs are freed). The block is then
// parked: Unmapped with `spilled` set, not mapped, not counted by the budget.
//
// A touch of a parked block maps its range of the spill file MAP_SHARED over the
// placeholder (state Spill): one VMA, which the budget may unmap again at once since the
// file holds the bytes. copyBlock() preads parked blocks (it never faults). Commit and
// abort forget spilled blocks; the file is closed (its memory freed) once none is left.
//
// A store racing with a spill hits the read-only block and takes SIGSEGV: the handler waits
// for Region::mu (held here), then finds the block parked, or mapped read-write again if
// the spill failed, and the store lands (see "Faults racing with unmaps" in vmem.h). A
// block's bytes are never copied out while another thread could still store into it: a
// run that cannot be made read-only is not spilled. Everything here may run inside a
// fault: system calls, no allocation.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "internal.h"

namespace txa {
namespace vmem {
namespace {

int ensureSpillFile(RegionImpl* R) {
  if (R->spillFd >= 0) return 0;
  int fd = static_cast<int>(syscall(SYS_memfd_create, "txarray-spill", MFD_CLOEXEC));
  if (fd < 0) return errno;
  if (ftruncate(fd, static_cast<off_t>(R->reserve)) != 0) {
    int e = errno;
    close(fd);
    return e;
  }
  R->spillFd = fd;
  return 0;
}

int writeAll(int fd, const uint8_t* p, uint64_t n, uint64_t offset) {
  while (n) {
    ssize_t w = pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return w < 0 ? errno : EIO;
    p += w;
    n -= static_cast<uint64_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return 0;
}

// Block b (mapped) is now a placeholder whose bytes are in the spill file.
void parkLocked(RegionImpl* R, uint64_t b) {
  BlockMeta& m = R->blocks[b];
  const bool wasSpilled = m.spilled;
  setCleanLocked(R, b);
  chargeLocked(R, b, false);
  m = BlockMeta{};
  m.spilled = 1;
  R->mappedCount--;
  R->parkedCount++;
  if (wasSpilled) return;
  if (R->spilledCount++ == 0) {
    R->spillLo = b;
    R->spillHi = b + 1;
  } else {
    R->spillLo = std::min(R->spillLo, b);
    R->spillHi = std::max(R->spillHi, b + 1);
  }
}

// Collects runs of adjacent blocks of one kind (Spill state, or private File/Anon) and
// spills each run with one mprotect, one pwrite and one placeholder call.
class SpillBatch {
 public:
  explicit SpillBatch(RegionImpl* R) : R_(R) {}
  bool failed() const { return err_ != 0; }
  void add(uint64_t b) {
    const bool shared = R_->blocks[b].state == BlockState::Spill;
    if (b0_ < b1_ && b == b1_ && shared == shared_) {
      b1_++;
      return;
    }
    flush();
    b0_ = b;
    b1_ = b + 1;
    shared_ = shared;
  }
  void flush() {
    if (b0_ < b1_ && !err_) err_ = spillRun();
    b0_ = b1_ = 0;
  }

 private:
  int spillRun() {
    RegionImpl* R = R_;
    uint8_t* at = R->blockAddr(b0_);
    const uint64_t len = (b1_ - b0_) * R->blockBytes;
    if (!shared_) {
      // Read-only first: a store from another thread now faults and waits for us. Where
      // the kernel refuses (ENOMEM: the protection would split a VMA at vm.max_map_count)
      // the run stays mapped: copying it unguarded could lose a racing store. Other runs
      // (whole VMAs need no split) free VMAs; the caller may then try again.
      if (mprotect(at, len, PROT_READ) != 0) {
        // The kernel may have changed the VMAs before the one it refused: open them again
        // (that merges them back and needs no new VMA).
        if (mprotect(at, len, PROT_READ | PROT_WRITE) != 0)
          recordErrorLocked(R, Status::SystemError, errno, b0_, "reopen blocks after a refused spill");
        return 0;
      }
      if (int e = writeAll(R->spillFd, at, len, b0_ * R->blockBytes)) {
        // As it was, nothing lost. The range's VMAs are exactly those the protection made,
        // so opening them again needs no new VMA.
        if (mprotect(at, len, PROT_READ | PROT_WRITE) != 0)
          recordErrorLocked(R, Status::SystemError, errno, b0_, "reopen blocks after a failed spill");
        return e;
      }
    }
    if (int e = makePlaceholder(R, at, len)) {
      // The old mappings most likely stand (a failed MAP_FIXED mmap restores them): open
      // them again and keep the blocks mapped. If even that fails, the spill file holds
      // the bytes: park the blocks (the error is recorded, as for any failed unmap).
      if (shared_ || mprotect(at, len, PROT_READ | PROT_WRITE) == 0) return e;
      recordErrorLocked(R, Status::SystemError, e, b0_, "spill dirty blocks");
    }
    R->st.unmapCalls++;
    for (uint64_t b = b0_; b < b1_; b++) {
      if (!shared_) R->st.spills++;
      parkLocked(R, b);
    }
    if (R->budget) R->budget->spills.fetch_add(b1_ - b0_);
    return 0;
  }

  RegionImpl* R_;
  uint64_t b0_ = 0, b1_ = 0;
  bool shared_ = false;
  int err_ = 0;
};

}  // namespace

void dirtySpanLocked(const RegionImpl* R, uint64_t* lo, uint64_t* hi) {
  *lo = R->mappedLo;
  *hi = R->mappedHi;
  if (R->parkedCount == 0) return;
  if (R->mappedCount == 0) {
    *lo = R->spillLo;
    *hi = R->spillHi;
    return;
  }
  *lo = std::min(*lo, R->spillLo);
  *hi = std::max(*hi, R->spillHi);
}

uint64_t spillLocked(RegionImpl* R, uint64_t want) {
  if (R->dirtyCount == 0 || want == 0 || R->closing) return 0;
  // No spill file: the blocks stay mapped, over the budget; nothing is lost.
  if (ensureSpillFile(R)) return 0;
  const uint64_t before = R->mappedCount;
  const uint64_t lo = R->mappedLo, hi = R->mappedHi;
  if (R->spillHand < lo || R->spillHand >= hi) R->spillHand = lo;
  SpillBatch batch(R);
  uint64_t chosen = 0;
  // A clock over the dirty blocks, two turns at most. Spill-state blocks go at once (their
  // bytes are in the file); the others get a second chance by their reference bit.
  for (uint64_t steps = 0; steps < 2 * (hi - lo) && chosen < want && !batch.failed(); steps++) {
    const uint64_t b = R->spillHand;
    const bool wraps = b + 1 >= hi;
    R->spillHand = wraps ? lo : b + 1;
    BlockMeta& m = R->blocks[b];
    if (m.state != BlockState::Unmapped && m.dirty) {
      if (m.state != BlockState::Spill && m.ref) {
        m.ref = 0;
      } else {
        batch.add(b);
        chosen++;
      }
    }
    // A run never wraps around, and a block chosen in the first turn is spilled before the
    // second turn could choose it again.
    if (wraps) batch.flush();
  }
  batch.flush();
  if (R->mappedCount == 0) R->mappedLo = R->mappedHi = 0;
  return before - R->mappedCount;
}

int mapSpilledLocked(RegionImpl* R, uint64_t b) {
  void* p = mmap(R->blockAddr(b), R->blockBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, R->spillFd,
                 static_cast<off_t>(b * R->blockBytes));
  if (p == MAP_FAILED) return errno;
  R->parkedCount--;
  noteMappedLocked(R, b, BlockState::Spill);
  setDirtyLocked(R, b);
  return 0;
}

int readSpilledLocked(RegionImpl* R, uint64_t b, uint8_t* dst) {
  uint64_t done = 0;
  const uint64_t n = R->blockBytes, at = b * R->blockBytes;
  while (done < n) {
    ssize_t r = pread(R->spillFd, dst + done, n - done, static_cast<off_t>(at + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return r < 0 ? errno : EIO;
    done += static_cast<uint64_t>(r);
  }
  return 0;
}

void forgetSpilledLocked(RegionImpl* R, uint64_t b) {
  BlockMeta& m = R->blocks[b];
  if (!m.spilled) return;
  m.spilled = 0;
  R->spilledCount--;
  if (m.state == BlockState::Unmapped) R->parkedCount--;
  if (R->spilledCount == 0) R->spillLo = R->spillHi = 0;
}

void releaseSpillLocked(RegionImpl* R, uint64_t b0, uint64_t b1) {
  if (R->spillFd < 0) return;
  if (R->spilledCount == 0) {
    closeSpill(R);  // frees every page of it; the next spill makes a new one
    return;
  }
  b1 = std::min(b1, R->blockCount);
  if (b0 >= b1) return;
  // Frees the pages of blocks no longer spilled. A failure only keeps that memory until the
  // file is closed: what it holds there is never read (a spill writes whole blocks).
  (void)fallocate(R->spillFd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(b0 * R->blockBytes),
                  static_cast<off_t>((b1 - b0) * R->blockBytes));
}

void closeSpill(RegionImpl* R) {
  if (R->spillFd < 0) return;
  close(R->spillFd);  // a memfd's close cannot lose data we still need: nothing refers to it
  R->spillFd = -1;
}

}  // namespace vmem
}  // namespace txa
