// Region: reservation, open/close, and the public API (vmem.h). State transitions live in
// region_state.cc, the kernel side in block_mapping.cc, the write scan in write_scan.cc.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "internal.h"

namespace txa {
namespace vmem {

const SystemInfo& systemInfo() {
  static const SystemInfo info = [] {
    SystemInfo s;
    s.pageBytes = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    UffdProbe p = probeUffd();
    s.uffd = p.ok;
    s.kernelFaults = p.kernelFaults;
    s.pagemapScan = pagemapScanWorks();
    // Uffd only where it serves faults taken in system calls too; a user-mode-only
    // userfaultfd offers nothing the SIGSEGV service does not, at a higher cost per fault.
    s.defaultMode = s.uffd && s.kernelFaults ? FaultMode::Uffd : FaultMode::Sigsegv;
    if (const char* e = getenv("TXARRAY_FAULT_MODE")) {
      if (!strcmp(e, "uffd")) s.defaultMode = FaultMode::Uffd;
      else if (!strcmp(e, "sigsegv")) s.defaultMode = FaultMode::Sigsegv;
      else if (*e && strcmp(e, "auto"))
        s.envError = {Status::InvalidArgument, 0, 0, "TXARRAY_FAULT_MODE must be uffd, sigsegv or auto"};
    }
    return s;
  }();
  return info;
}

const char* statusName(Status s) {
  switch (s) {
    case Status::Ok: return "ok";
    case Status::InvalidArgument: return "invalid argument";
    case Status::Unsupported: return "unsupported";
    case Status::SystemError: return "system error";
    case Status::SourceError: return "block source error";
    case Status::Closed: return "closed";
    case Status::TooManyRegions: return "too many regions";
  }
  return "?";
}

const char* faultModeName(FaultMode m) {
  return m == FaultMode::Uffd ? "uffd" : m == FaultMode::Sigsegv ? "sigsegv" : "auto";
}

std::string describe(const Error& e) {
  std::string s = e.what && *e.what ? e.what : statusName(e.status);
  if (e.status == Status::SystemError || e.sysErrno) {
    s += ": ";
    s += strerror(e.sysErrno);
  } else if (e.what && *e.what) {
    s += std::string(" (") + statusName(e.status) + ")";
  }
  if (e.block) s += " (block " + std::to_string(e.block) + ")";
  return s;
}

namespace {

bool isPow2(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

Status fail(Error* err, Status s, int errn, uint64_t block, const char* what) {
  if (err) *err = Error{s, errn, block, what};
  return s;
}

// Blocks from b0 on leave the transaction, dirty or not, mapped or parked. R->mu held.
int unmapFromLocked(RegionImpl* R, uint64_t b0) {
  uint64_t lo, hi;
  dirtySpanLocked(R, &lo, &hi);  // every mapped block lies in it too
  UnmapBatch batch(R);
  for (uint64_t b = std::max(b0, lo); b < hi; b++) {
    if (R->blocks[b].state != BlockState::Unmapped) batch.add(b);
    else forgetSpilledLocked(R, b);
  }
  int e = batch.flush();
  releaseSpillLocked(R, b0, R->blockCount);
  return e;
}

// Releases whatever part of a region exists. Safe on a half-opened one.
void destroyRegion(RegionImpl* R, bool registered) {
  {
    FutexLock g(R->mu);
    R->closing = true;  // faults served from now on map nothing
    clearWaitingLocked(R);  // their threads are woken by the unregistration below
  }
  if (R->budget) budgetDetach(R->budget, R);
  // Unregistering wakes threads still waiting on faults: they retry on plain memory.
  if (registered && R->mode == FaultMode::Uffd) uffdUnregister(R->uffd, R->base, R->reserve);
  if (R->slot >= 0) registryRemove(R->slot);  // waits for a fault still being served
  if (R->base) munmap(R->base, R->reserve);
  releaseScanSpare(R);
  if (R->blocks) munmap(R->blocks, R->blocksMapBytes);
  closeSpill(R);
  delete R;
}

}  // namespace

std::unique_ptr<Region> Region::open(BlockSource* source, const RegionOptions& o, Error* err) {
  const SystemInfo& si = systemInfo();
  const uint64_t page = si.pageBytes;
  if (!source) return fail(err, Status::InvalidArgument, 0, 0, "source is null"), nullptr;
  if (o.reserveBytes == 0) return fail(err, Status::InvalidArgument, 0, 0, "reserveBytes is 0"), nullptr;
  if (!isPow2(o.blockBytes) || o.blockBytes < page)
    return fail(err, Status::InvalidArgument, 0, 0, "blockBytes must be a power of two and a multiple of the page"), nullptr;
  if (o.faultBytes && !isPow2(o.faultBytes))
    return fail(err, Status::InvalidArgument, 0, 0, "faultBytes must be a power of two"), nullptr;
  if (o.reserveBytes > (UINT64_C(1) << 47))
    return fail(err, Status::InvalidArgument, 0, 0, "reserveBytes larger than 128 TiB"), nullptr;
  if (o.mode == FaultMode::Auto && si.envError.status != Status::Ok) {
    if (err) *err = si.envError;
    return nullptr;
  }
  FaultMode mode = o.mode == FaultMode::Auto ? si.defaultMode : o.mode;
  if (mode == FaultMode::Uffd && !si.uffd)
    return fail(err, Status::Unsupported, 0, 0, "userfaultfd is not available"), nullptr;

  RegionImpl* R = new (std::nothrow) RegionImpl;
  if (!R) return fail(err, Status::SystemError, ENOMEM, 0, "allocating region state"), nullptr;
  R->source = source;
  R->pageBytes = page;
  R->blockBytes = o.blockBytes;
  R->windowBlocks = std::max<uint64_t>(o.faultBytes ? o.faultBytes : kDefaultFaultBytes, o.blockBytes) / o.blockBytes;
  R->reserve = (o.reserveBytes + o.blockBytes - 1) / o.blockBytes * o.blockBytes;
  R->blockCount = R->reserve / R->blockBytes;
  R->mode = mode;
  R->budget = o.budget ? o.budget->impl() : nullptr;
  bool registered = false;
  auto failOpen = [&](Status s, int e, const char* what) -> std::unique_ptr<Region> {
    fail(err, s, e, 0, what);
    destroyRegion(R, registered);
    return nullptr;
  };
  R->blocksMapBytes = (R->blockCount * sizeof(BlockMeta) + page - 1) / page * page;
  void* meta = mmap(nullptr, R->blocksMapBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (meta == MAP_FAILED) return failOpen(Status::SystemError, errno, "mmap(block states)");
  R->blocks = static_cast<BlockMeta*>(meta);
  // Aligned to kScanWindowBytes, so that scan windows are huge pages (scan_windows.cc).
  const uint64_t align = kScanWindowBytes;
  void* raw = mmap(nullptr, R->reserve + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return failOpen(Status::InvalidArgument, errno, "reserve address space");
  {
    uint8_t* r = static_cast<uint8_t*>(raw);
    uint8_t* b = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(r) + align - 1) & ~uintptr_t(align - 1));
    R->base = b;  // destroyRegion unmaps [base, base + reserve)
    if (b > r && munmap(r, size_t(b - r)) != 0) return failOpen(Status::SystemError, errno, "trim the reservation");
    if (r + R->reserve + align > b + R->reserve && munmap(b + R->reserve, size_t(r + R->reserve + align - (b + R->reserve))) != 0)
      return failOpen(Status::SystemError, errno, "trim the reservation");
  }
  // The SIGSEGV handler serves Sigsegv regions and guards Uffd placeholders being re-made.
  if (int e = sigsegvServiceStart()) return failOpen(Status::SystemError, e, "sigaction(SIGSEGV)");
  R->slot = registryInsert(R);
  if (R->slot < 0) return failOpen(Status::TooManyRegions, 0, "region registry is full");
  if (mode == FaultMode::Uffd) {
    R->uffd = uffdServiceFd();
    if (R->uffd < 0) return failOpen(Status::SystemError, errno, "starting the userfaultfd service");
    if (int e = uffdRegister(R->uffd, R->base, R->reserve)) return failOpen(Status::SystemError, e, "ioctl(UFFDIO_REGISTER)");
    registered = true;
    if (mprotect(R->base, R->reserve, PROT_READ | PROT_WRITE) != 0)
      return failOpen(Status::SystemError, errno, "open the reservation");
  }
  if (R->budget) {
    try {
      budgetAttach(R->budget, R);
    } catch (const std::bad_alloc&) {
      return failOpen(Status::SystemError, ENOMEM, "attaching to the budget");
    }
  }
  std::unique_ptr<Region> region(new (std::nothrow) Region(R));
  if (!region) return failOpen(Status::SystemError, ENOMEM, "allocating region");
  return region;
}

Region::~Region() { close(); }

void Region::close() {
  if (!impl_) return;
  destroyRegion(impl_, true);
  impl_ = nullptr;
}

uint8_t* Region::base() const { return impl_ ? impl_->base : nullptr; }
uint64_t Region::reserveBytes() const { return impl_ ? impl_->reserve : 0; }
uint64_t Region::blockBytes() const { return impl_ ? impl_->blockBytes : 0; }
uint64_t Region::blockCount() const { return impl_ ? impl_->blockCount : 0; }
FaultMode Region::mode() const { return impl_ ? impl_->mode : FaultMode::Auto; }
uint8_t* Region::blockPtr(uint64_t index) const { return impl_->blockAddr(index); }

std::vector<uint64_t> Region::dirtyBlocks() {
  std::vector<uint64_t> out;
  RegionImpl* R = impl_;
  if (!R) return out;
  FutexLock g(R->mu);
  scanWritesLocked(R, R->mappedLo, R->mappedHi);
  if (R->dirtyCount + R->parkedCount == 0) return out;
  out.reserve(R->dirtyCount + R->parkedCount);
  uint64_t lo, hi;
  dirtySpanLocked(R, &lo, &hi);
  for (uint64_t b = lo; b < hi; b++)
    if (R->blocks[b].dirty || R->blocks[b].spilled) out.push_back(b);
  return out;
}

bool Region::isDirty(uint64_t block) {
  RegionImpl* R = impl_;
  if (!R || block >= R->blockCount) return false;
  FutexLock g(R->mu);
  scanWritesLocked(R, block, block + 1);
  return R->blocks[block].dirty || R->blocks[block].spilled;
}

bool Region::isMapped(uint64_t block) {
  RegionImpl* R = impl_;
  if (!R || block >= R->blockCount) return false;
  FutexLock g(R->mu);
  return R->blocks[block].state != BlockState::Unmapped;
}

Status Region::copyBlock(uint64_t index, uint8_t* dst, Error* err) {
  RegionImpl* R = impl_;
  if (!R) return fail(err, Status::Closed, 0, index, "region closed");
  if (index >= R->blockCount) return fail(err, Status::InvalidArgument, 0, index, "block out of range");
  FutexLock g(R->mu);
  // Mapped blocks are ordinary memory (reading them never enters the fault path), and the
  // lock keeps them mapped while they are read.
  if (R->blocks[index].state != BlockState::Unmapped) {
    memcpy(dst, R->blockAddr(index), R->blockBytes);
    return Status::Ok;
  }
  if (R->blocks[index].spilled) {
    if (int e = readSpilledLocked(R, index, dst)) return fail(err, Status::SystemError, e, index, "read a spilled block");
    return Status::Ok;
  }
  memset(dst, 0, R->blockBytes);
  const uint64_t start = index * R->blockBytes;
  if (R->sourceLimit <= start) return Status::Ok;
  BlockLocation loc;
  BlockView view;
  if (!R->source->locate(index, &loc, &view)) return fail(err, Status::SourceError, 0, index, "read block from the store");
  uint64_t n = std::min<uint64_t>(view.data ? view.size : 0, R->blockBytes);
  n = std::min(n, R->sourceLimit - start);
  if (n) memcpy(dst, view.data, n);
  R->source->unpin();
  return Status::Ok;
}

Status Region::prepareWrite(uint64_t offset, uint64_t len, uint64_t* reached, Error* err) {
  RegionImpl* R = impl_;
  *reached = offset;
  if (!R) return fail(err, Status::Closed, 0, 0, "region closed");
  if (offset > R->reserve || len > R->reserve - offset)
    return fail(err, Status::InvalidArgument, 0, 0, "write outside the reservation");
  if (len == 0) return Status::Ok;
  const uint64_t b0 = offset / R->blockBytes, b1 = (offset + len - 1) / R->blockBytes + 1;
  if (R->budget) budgetMakeRoom(R->budget, b1 - b0);
  FutexLock g(R->mu);
  for (uint64_t b = b0; b < b1; b++) {
    int e = mapBlockMakingRoomLocked(R, b);
    if (e || R->blocks[b].state == BlockState::Unmapped) {
      *reached = std::max(offset, b * R->blockBytes);
      return fail(err, Status::SystemError, e ? e : EIO, b, "map block for a write");
    }
    setDirtyLocked(R, b);
  }
  *reached = offset + len;
  return Status::Ok;
}

Status Region::write(uint64_t offset, const uint8_t* src, uint64_t len, Error* err) {
  if (!src) return fail(err, Status::InvalidArgument, 0, 0, "source is null");
  uint64_t reached;
  Status s = prepareWrite(offset, len, &reached, err);
  // No lock held: the destination blocks are dirty (the budget may have spilled some since:
  // touching them maps them again); a source inside a region faults and is served like
  // any reader.
  if (reached > offset) memmove(impl_->base + offset, src, reached - offset);
  return s;
}

Status Region::populate(uint64_t offset, uint64_t len, Error* err) {
  RegionImpl* R = impl_;
  if (!R) return fail(err, Status::Closed, 0, 0, "region closed");
  if (offset > R->reserve || len > R->reserve - offset)
    return fail(err, Status::InvalidArgument, 0, 0, "populate outside the reservation");
  if (len == 0) return Status::Ok;
  const uint64_t b0 = offset / R->blockBytes, b1 = (offset + len - 1) / R->blockBytes + 1;
  if (R->budget) budgetMakeRoom(R->budget, b1 - b0);
  FutexLock g(R->mu);
  if (int e = mapRangeLocked(R, b0, b1)) return fail(err, Status::SystemError, e, b0, "map blocks");
  // Read-only scan windows too: system calls may write into a populated range. Where the
  // kernel refuses to open them, their shut copies go back to placeholders and the range
  // is mapped again the ordinary way (read-write); where the kernel refuses that too
  // (ENOMEM: the copies lie inside a larger VMA at vm.max_map_count), the region's clean
  // blocks make room first, as for a refused mapping.
  if (openScanWindowsLocked(R, b0, b1) != 0) {
    R->st.scanWindowOpenRefusals++;
    if (dropShutCopiesLocked(R, b0, b1) != 0) evictLocked(R, UINT64_MAX);
    for (uint64_t b = b0; b < b1; b++) {
      int e = mapBlockMakingRoomLocked(R, b);
      if (e || R->blocks[b].copied == kCopiedScanShut)
        return fail(err, Status::SystemError, e ? e : EIO, b, "open scan windows");
    }
  }
  return Status::Ok;
}

Status Region::markClean(const uint64_t* blocks, size_t count, Error* err) {
  RegionImpl* R = impl_;
  if (!R) return Status::Ok;
  FutexLock g(R->mu);
  UnmapBatch batch(R);
  for (size_t i = 0; i < count; i++) {
    uint64_t b = blocks[i];
    if (b >= R->blockCount) continue;
    if (R->blocks[b].state != BlockState::Unmapped) batch.add(b);
    else forgetSpilledLocked(R, b);
  }
  int e = batch.flush();
  releaseSpillLocked(R, 0, 0);  // closes the spill file once nothing is spilled
  if (e) return fail(err, Status::SystemError, e, 0, "unmap committed blocks");
  shutScanWindowsLocked(R);
  return Status::Ok;
}

Status Region::dropDirty(Error* err) {
  RegionImpl* R = impl_;
  if (!R) return Status::Ok;
  FutexLock g(R->mu);
  scanWritesLocked(R, R->mappedLo, R->mappedHi);
  UnmapBatch batch(R);
  uint64_t lo, hi;
  dirtySpanLocked(R, &lo, &hi);
  for (uint64_t b = lo; b < hi && R->dirtyCount + R->parkedCount; b++) {
    if (R->blocks[b].dirty) batch.add(b);
    else if (R->blocks[b].spilled && R->blocks[b].state == BlockState::Unmapped) forgetSpilledLocked(R, b);
  }
  int e = batch.flush();
  releaseSpillLocked(R, 0, 0);
  if (e) return fail(err, Status::SystemError, e, 0, "unmap dirty blocks");
  shutScanWindowsLocked(R);
  return Status::Ok;
}

Status Region::dropUnreadable(Error* err) {
  RegionImpl* R = impl_;
  if (!R) return Status::Ok;
  FutexLock g(R->mu);
  if (R->unreadableCount == 0) return Status::Ok;
  scanWritesLocked(R, R->mappedLo, R->mappedHi);
  UnmapBatch batch(R);
  for (uint64_t b = R->mappedLo; b < R->mappedHi; b++)
    if (R->blocks[b].state != BlockState::Unmapped && R->blocks[b].unreadable && !R->blocks[b].dirty) batch.add(b);
  if (int e = batch.flush()) return fail(err, Status::SystemError, e, 0, "unmap unreadable blocks");
  return Status::Ok;
}

Status Region::invalidate(const uint64_t* blocks, size_t count, size_t* skippedDirty, Error* err) {
  RegionImpl* R = impl_;
  if (skippedDirty) *skippedDirty = 0;
  if (!R || count == 0) return Status::Ok;
  FutexLock g(R->mu);
  uint64_t lo = UINT64_MAX, hi = 0;
  for (size_t i = 0; i < count; i++)
    if (blocks[i] < R->blockCount) lo = std::min(lo, blocks[i]), hi = std::max(hi, blocks[i] + 1);
  if (lo >= hi) return Status::Ok;
  scanWritesLocked(R, lo, hi);
  UnmapBatch batch(R);
  for (size_t i = 0; i < count; i++) {
    uint64_t b = blocks[i];
    if (b >= R->blockCount) continue;
    if (R->blocks[b].state == BlockState::Unmapped) {
      if (R->blocks[b].spilled && skippedDirty) ++*skippedDirty;  // parked: dirty
      continue;
    }
    if (R->blocks[b].dirty) {
      if (skippedDirty) ++*skippedDirty;
      continue;
    }
    batch.add(b);
  }
  if (int e = batch.flush()) return fail(err, Status::SystemError, e, 0, "unmap changed blocks");
  return Status::Ok;
}

Status Region::invalidateAll(size_t* skippedDirty, Error* err) {
  RegionImpl* R = impl_;
  if (skippedDirty) *skippedDirty = 0;
  if (!R) return Status::Ok;
  FutexLock g(R->mu);
  scanWritesLocked(R, R->mappedLo, R->mappedHi);
  if (skippedDirty) *skippedDirty = R->parkedCount;  // parked blocks are dirty
  UnmapBatch batch(R);
  const uint64_t lo = R->mappedLo, hi = R->mappedHi;
  for (uint64_t b = lo; b < hi; b++) {
    if (R->blocks[b].state == BlockState::Unmapped) continue;
    if (R->blocks[b].dirty) {
      if (skippedDirty) ++*skippedDirty;
      continue;
    }
    batch.add(b);
  }
  if (int e = batch.flush()) return fail(err, Status::SystemError, e, 0, "unmap blocks");
  return Status::Ok;
}

Status Region::discard(uint64_t fromByte, Error* err) {
  RegionImpl* R = impl_;
  if (!R) return fail(err, Status::Closed, 0, 0, "region closed");
  if (fromByte > R->reserve) fromByte = R->reserve;
  const uint64_t partial = fromByte % R->blockBytes ? fromByte / R->blockBytes : UINT64_MAX;
  const uint64_t firstWhole = (fromByte + R->blockBytes - 1) / R->blockBytes;
  if (partial != UINT64_MAX && R->budget) budgetMakeRoom(R->budget, 1);
  int e = 0;
  {
    FutexLock g(R->mu);
    e = unmapFromLocked(R, firstWhole);
    if (partial != UINT64_MAX) {
      int me = mapBlockLocked(R, partial);
      if (me || R->blocks[partial].state == BlockState::Unmapped) e = me ? me : EIO;
      else setDirtyLocked(R, partial);
    }
    R->sourceLimit = std::min(R->sourceLimit, fromByte);
  }
  if (e) return fail(err, Status::SystemError, e, partial, "discard the tail");
  // The block holding fromByte is mapped and dirty: zero its tail with no lock held.
  if (partial != UINT64_MAX) memset(R->base + fromByte, 0, (partial + 1) * R->blockBytes - fromByte);
  return Status::Ok;
}

Status Region::dropFrom(uint64_t fromByte, Error* err) {
  RegionImpl* R = impl_;
  if (!R) return fail(err, Status::Closed, 0, 0, "region closed");
  if (fromByte >= R->reserve) return Status::Ok;
  const uint64_t firstWhole = (fromByte + R->blockBytes - 1) / R->blockBytes;
  const uint64_t partial = fromByte / R->blockBytes;
  bool partialMapped = false;
  int e = 0;
  {
    FutexLock g(R->mu);
    e = unmapFromLocked(R, firstWhole);
    // A parked block holds written bytes too: touching it maps it again (no lock held).
    partialMapped = fromByte % R->blockBytes &&
                    (R->blocks[partial].state != BlockState::Unmapped || R->blocks[partial].spilled);
  }
  if (e) return fail(err, Status::SystemError, e, firstWhole, "unmap blocks past the end");
  if (partialMapped) {
    // Reading costs nothing; a store would copy the page: zero only what is not zero.
    uint8_t* p = R->base + fromByte;
    const uint64_t n = (partial + 1) * R->blockBytes - fromByte;
    for (uint64_t i = 0; i < n; i++)
      if (p[i]) {
        memset(p + i, 0, n - i);
        break;
      }
  }
  return Status::Ok;
}

Status Region::setSourceLimit(uint64_t bytes, Error* err) {
  RegionImpl* R = impl_;
  if (!R) return Status::Ok;
  FutexLock g(R->mu);
  const uint64_t lo = std::min(R->sourceLimit, bytes), hi = std::max(R->sourceLimit, bytes);
  R->sourceLimit = bytes;
  if (lo == hi || R->mappedCount == 0) return Status::Ok;
  const uint64_t b0 = std::max(lo / R->blockBytes, R->mappedLo);
  const uint64_t b1 = std::min(hi == UINT64_MAX ? R->blockCount : (hi + R->blockBytes - 1) / R->blockBytes, R->mappedHi);
  scanWritesLocked(R, b0, b1);
  UnmapBatch batch(R);
  for (uint64_t b = b0; b < b1; b++)
    if (R->blocks[b].state != BlockState::Unmapped && !R->blocks[b].dirty) batch.add(b);
  if (int e = batch.flush()) return fail(err, Status::SystemError, e, b0, "unmap blocks past the limit");
  return Status::Ok;
}

uint64_t Region::sourceLimit() {
  RegionImpl* R = impl_;
  if (!R) return UINT64_MAX;
  FutexLock g(R->mu);
  return R->sourceLimit;
}

bool Region::takeError(Error* out) {
  RegionImpl* R = impl_;
  if (!R) return false;
  FutexLock g(R->mu);
  if (!R->hasError) return false;
  if (out) *out = R->error;
  R->hasError = false;
  R->error = Error{};
  return true;
}

RegionStats Region::stats() {
  RegionImpl* R = impl_;
  if (!R) return RegionStats{};
  FutexLock g(R->mu);
  RegionStats s = R->st;
  s.mappedNow = R->mappedCount;
  s.dirtyNow = R->dirtyCount + R->parkedCount;
  s.spilledNow = R->spilledCount;
  s.waitingNow = R->waiting.count;
  return s;
}

}  // namespace vmem
}  // namespace txa
