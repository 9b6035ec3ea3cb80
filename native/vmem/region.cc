// Region: reservation, page states, and the public API. The fault services (uffd_service.cc,
// sigsegv_service.cc) call loadUnitLocked/markDirtyLocked here; the budget (budget.cc)
// calls evictLocked. Invariants (with R->mu held, outside a running transition):
//   - unit u is loaded  <=>  unitLoaded[u] == 1  <=>  all its pages are present (Uffd) /
//     accessible (Sigsegv). A unit is loaded and dropped whole, never page by page.
//   - blocks[b].loadedUnits == number of loaded units of block b.
//   - block b dirty => its loaded pages are writable without a fault (Sync, Sigsegv);
//     block b clean => its loaded pages are write-protected (Sync, Async) / PROT_READ.
//     In Async mode a clean-flagged block may hold written pages the next scan will find.
//   - Sigsegv mode: a unit that is not loaded is PROT_NONE and unpopulated (reads zero), so
//     a fill only has to write the source's bytes.
//   - st.residentBytes == unitBytes * (number of loaded units).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "internal.h"
#include "linux_uapi.h"

namespace txa {
namespace vmem {

namespace {

bool isPow2(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

void* mapAnon(size_t bytes, int prot) {
  void* p = mmap(nullptr, bytes, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

// Applies "clean" or "dirty" protection to a loaded range.
int applyProtection(RegionImpl* R, uint8_t* addr, uint64_t len, bool dirty) {
  if (R->mode == FaultMode::Sigsegv)
    return mprotect(addr, len, dirty ? PROT_READ | PROT_WRITE : PROT_READ) == 0 ? 0 : errno;
  if (R->wp == WpMode::Async && dirty) return 0;  // the kernel unprotects on write by itself
  return uffdWriteProtect(R->uffd, addr, len, !dirty);
}

// How many bytes the page pool may hold after a drop from R: a floor, plus what one
// eviction pass of R's budget frees (the pages the next fills of that pass will want).
uint64_t poolLimitBytes(const RegionImpl* R) {
  return kPagePoolFloorBytes + (R->budget ? budgetBatchBytes(R->budget) : 0);
}

// Coalesces adjacent ranges so that one system call covers a run of units or blocks
// (batched eviction is ~3x faster than one call per block).
class RunBatcher {
 public:
  enum Op { Drop, ProtectClean, ProtectDirty };
  RunBatcher(RegionImpl* R, Op op) : R_(R), op_(op) {}
  ~RunBatcher() { flush(); }
  void add(uint8_t* a, uint64_t len) {
    if (start_ && start_ + len_ == a) {
      len_ += len;
      return;
    }
    flush();
    start_ = a;
    len_ = len;
  }
  void flush() {
    if (!start_) return;
    int e = 0;
    const char* what = "";
    if (op_ == Drop) {
      // Sigsegv: close the range before dropping it, so that a concurrent reader faults
      // (and waits for our lock) instead of reading the zeros of the dropped pages.
      if (R_->mode == FaultMode::Sigsegv && mprotect(start_, len_, PROT_NONE) != 0) {
        e = errno;
        what = "mprotect(PROT_NONE) before drop";
      }
      if (!e && R_->move) {
        uint64_t recycled = 0;
        e = uffdDrop(R_, start_, len_, poolLimitBytes(R_), &recycled);
        R_->st.recycledBytes += recycled;
        what = "madvise(MADV_DONTNEED)";
      } else if (!e && madvise(start_, len_, MADV_DONTNEED) != 0) {
        e = errno;
        what = "madvise(MADV_DONTNEED)";
      }
    } else {
      e = applyProtection(R_, start_, len_, op_ == ProtectDirty);
      what = op_ == ProtectDirty ? "unprotect dirty block" : "write-protect clean block";
    }
    if (e)
      recordErrorLocked(R_, Status::SystemError, e,
                        static_cast<uint64_t>(start_ - R_->base) / R_->blockBytes, what);
    start_ = nullptr;
    len_ = 0;
  }

 private:
  RegionImpl* R_;
  Op op_;
  uint8_t* start_ = nullptr;
  uint64_t len_ = 0;
};

// Adds the loaded runs of block b with unit index in [uFrom, uTo) to the batcher; if
// `unload`, marks them not loaded. Returns the bytes concerned.
uint64_t visitLoadedUnits(RegionImpl* R, uint64_t b, uint64_t uFrom, uint64_t uTo,
                          RunBatcher& batch, bool unload) {
  BlockMeta& m = R->blocks[b];
  if (m.loadedUnits == 0) return 0;
  uint64_t u0 = std::max(uFrom, b * R->unitsPerBlock);
  uint64_t u1 = std::min(uTo, (b + 1) * R->unitsPerBlock);
  uint64_t bytes = 0;
  for (uint64_t u = u0; u < u1; u++) {
    if (!unitIsLoaded(R, u)) continue;
    batch.add(R->unitAddr(u), R->unitBytes);
    bytes += R->unitBytes;
    if (unload) {
      setUnitLoaded(R, u, false);
      m.loadedUnits--;
    }
  }
  return bytes;
}

uint64_t dropBlockUnitsLocked(RegionImpl* R, uint64_t b, uint64_t uFrom, uint64_t uTo,
                              RunBatcher& batch) {
  uint64_t bytes = visitLoadedUnits(R, b, uFrom, uTo, batch, true);
  R->st.residentBytes -= bytes;
  chargeLocked(R, -static_cast<int64_t>(bytes));
  return bytes;
}

void setCleanLocked(RegionImpl* R, uint64_t b) {
  if (!R->blocks[b].dirty) return;
  R->blocks[b].dirty = 0;
  if (--R->dirtyCount == 0) R->dirtyLo = R->dirtyHi = 0;
}

void resetRangesIfEmpty(RegionImpl* R) {
  if (R->st.residentBytes == 0) R->loadedLo = R->loadedHi = 0;
}

void scanRangeLocked(RegionImpl* R, uint64_t b0, uint64_t b1) {
  if (R->mode != FaultMode::Uffd || R->wp != WpMode::Async) return;
  b0 = std::max(b0, R->loadedLo);
  b1 = std::min(b1, R->loadedHi);
  if (b0 >= b1) return;
  int fd = pagemapFd();
  if (fd < 0) {
    recordErrorLocked(R, Status::Unsupported, ENOTTY, 0, "PAGEMAP_SCAN unavailable");
    return;
  }
  page_region vec[64];
  pm_scan_arg a;
  memset(&a, 0, sizeof a);
  a.size = sizeof a;
  a.start = reinterpret_cast<uint64_t>(R->base + b0 * R->blockBytes);
  a.end = reinterpret_cast<uint64_t>(R->base + b1 * R->blockBytes);
  a.vec = reinterpret_cast<uint64_t>(vec);
  a.vec_len = 64;
  // PRESENT is required: a page that was never populated has no write-protect bit and
  // would otherwise read as WRITTEN.
  a.category_mask = PAGE_IS_WRITTEN | PAGE_IS_PRESENT;
  a.return_mask = PAGE_IS_WRITTEN | PAGE_IS_PRESENT;
  const uint64_t end = a.end;
  for (;;) {
    long n = ioctl(fd, PAGEMAP_SCAN, &a);
    if (n < 0) {
      if (errno == EINTR) continue;
      recordErrorLocked(R, Status::SystemError, errno, b0, "ioctl(PAGEMAP_SCAN)");
      return;
    }
    for (long i = 0; i < n; i++) {
      uint64_t first = (vec[i].start - reinterpret_cast<uint64_t>(R->base)) / R->blockBytes;
      uint64_t last = (vec[i].end - 1 - reinterpret_cast<uint64_t>(R->base)) / R->blockBytes;
      for (uint64_t b = first; b <= last && b < R->blockCount; b++) markDirtyLocked(R, b);
    }
    if (a.walk_end >= end || n < static_cast<long>(a.vec_len)) break;
    a.start = a.walk_end;
  }
  R->st.scans++;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Transitions used by the fault services and the budget.

void recordErrorLocked(RegionImpl* R, Status s, int err, uint64_t block, const char* what) {
  if (R->hasError) return;  // keep the first: it is usually the cause of the others
  R->hasError = true;
  R->error.status = s;
  R->error.sysErrno = err;
  R->error.block = block;
  R->error.what = what;
}

void chargeLocked(RegionImpl* R, int64_t delta) {
  if (R->budget && R->budgetAttached)
    R->budget->charged.fetch_add(static_cast<uint64_t>(delta));  // wraps correctly
}

void markDirtyLocked(RegionImpl* R, uint64_t b) {
  BlockMeta& m = R->blocks[b];
  if (m.dirty) return;
  m.dirty = 1;
  if (R->dirtyCount++ == 0) {
    R->dirtyLo = b;
    R->dirtyHi = b + 1;
  } else {
    R->dirtyLo = std::min(R->dirtyLo, b);
    R->dirtyHi = std::max(R->dirtyHi, b + 1);
  }
  R->st.writeFaults++;
  if (m.loadedUnits && !(R->mode == FaultMode::Uffd && R->wp == WpMode::Async)) {
    // Unprotect every loaded unit of the block at once: one write fault per block per
    // transaction. (In Sync mode this also wakes the thread waiting on the WP fault.)
    RunBatcher batch(R, RunBatcher::ProtectDirty);
    visitLoadedUnits(R, b, 0, UINT64_MAX, batch, false);
  }
}

namespace {

// The committed bytes of the units of one block, as a fill must see them: the source's view
// of the block, cut at sourceLimit. Pins the block on first use and unpins at scope end
// (R->mu held throughout). A failed pin is recorded and reads as no bytes (zeros served).
class BlockSourcePin {
 public:
  // quiet (read-ahead): a failed pin is not recorded (the block will fault on its own).
  BlockSourcePin(RegionImpl* R, uint64_t b, bool quiet = false) : R_(R), b_(b), quiet_(quiet) {}
  ~BlockSourcePin() {
    if (pinned_) R_->source->unpin();
  }
  BlockSourcePin(const BlockSourcePin&) = delete;
  BlockSourcePin& operator=(const BlockSourcePin&) = delete;
  // Bytes [0, *avail) of unit u (a unit of this block) come from *src; the rest are zeros.
  void unitBytes(uint64_t u, const uint8_t** src, uint64_t* avail) {
    *src = nullptr;
    *avail = 0;
    const uint64_t unitOff = u * R_->unitBytes;
    const uint64_t blockStart = b_ * R_->blockBytes;
    const uint64_t offInBlock = unitOff - blockStart;
    if (unitOff >= R_->sourceLimit) return;
    if (!tried_) {
      tried_ = true;
      pinned_ = R_->source->pin(b_, &v_);
      failed_ = !pinned_;
    }
    if (!pinned_) {
      if (quiet_) return;
      R_->st.sourceErrors++;
      recordErrorLocked(R_, Status::SourceError, 0, b_, "BlockSource::pin failed; zeros served");
      return;
    }
    uint64_t size = std::min<uint64_t>(v_.size, R_->blockBytes);
    size = std::min(size, R_->sourceLimit - blockStart);  // sourceLimit > unitOff >= start
    if (v_.data && size > offInBlock) {
      *src = v_.data + offInBlock;
      *avail = std::min(size - offInBlock, R_->unitBytes);
    }
  }
  bool failed() const { return failed_; }

 private:
  RegionImpl* R_;
  uint64_t b_;
  BlockView v_;
  bool quiet_;
  bool tried_ = false, pinned_ = false, failed_ = false;
};

// Bookkeeping of a unit that has just been filled (R->mu held).
void noteLoadedLocked(RegionImpl* R, uint64_t u) {
  const uint64_t b = R->blockOfUnit(u);
  BlockMeta& m = R->blocks[b];
  setUnitLoaded(R, u, true);
  m.loadedUnits++;
  m.ref = 1;
  if (R->st.residentBytes == 0) {
    R->loadedLo = b;
    R->loadedHi = b + 1;
  } else {
    R->loadedLo = std::min(R->loadedLo, b);
    R->loadedHi = std::max(R->loadedHi, b + 1);
  }
  R->st.residentBytes += R->unitBytes;
  chargeLocked(R, static_cast<int64_t>(R->unitBytes));
}

}  // namespace

int loadUnitLocked(RegionImpl* R, uint64_t u, bool writeFault, bool skipEmpty) {
  const uint64_t b = R->blockOfUnit(u);
  BlockMeta& m = R->blocks[b];
  if (writeFault) markDirtyLocked(R, b);  // before the fill: the unit is loaded writable
  int e;
  bool raced = false;
  {
    BlockSourcePin pin(R, b, skipEmpty);
    const uint8_t* src;
    uint64_t avail;
    if (skipEmpty && u * R->unitBytes >= R->sourceLimit) return ENODATA;
    pin.unitBytes(u, &src, &avail);
    if (skipEmpty && avail == 0) return ENODATA;
    if (R->mode == FaultMode::Uffd)
      e = uffdFill(R, R->unitAddr(u), R->unitBytes, src, avail,
                   /*wp=*/R->wp == WpMode::Async || !m.dirty, &raced);
    else
      e = sigsegvFill(R, R->unitAddr(u), R->unitBytes, src, avail, /*writable=*/m.dirty != 0);
  }
  if (e) {
    recordErrorLocked(R, Status::SystemError, e, b, "filling a unit");
    return e;
  }
  noteLoadedLocked(R, u);
  if (raced) markDirtyLocked(R, b);  // a store landed before the protection (see uffdFill)
  R->st.faults++;
  R->st.bytesLoaded += R->unitBytes;
  return 0;
}

int loadWindowLocked(RegionImpl* R, uint64_t u, bool writeFault, uint64_t* w0, uint64_t* w1) {
  *w0 = u - u % R->windowUnits;
  *w1 = std::min(*w0 + R->windowUnits, R->unitCount);
  int e = loadUnitLocked(R, u, writeFault);
  if (e) return e;
  // Read-ahead within the window; a failure here is recorded and otherwise ignored (the
  // unit stays not loaded and will fault on its own).
  for (uint64_t v = *w0; v < *w1; v++)
    if (!unitIsLoaded(R, v) && loadUnitLocked(R, v, false) != 0) break;
  return 0;
}

namespace {
uint64_t readAheadMaxBytes() {
  static const uint64_t v = [] {
    const char* e = getenv("TXARRAY_VMEM_READAHEAD_KB");
    return e && *e ? strtoull(e, nullptr, 10) << 10 : kReadAheadMaxBytes;
  }();
  return v;
}
}  // namespace

uint64_t readAheadUnits(const RegionImpl* R, uint64_t u, bool writeFault) {
  // Two consecutive sequential faults make a stream: one alone is what a random read that
  // straddles two fault windows takes, and must not read ahead.
  if (writeFault || R->mode != FaultMode::Uffd || u != R->raNext || R->raRun < 1) return 0;
  uint64_t maxBytes = readAheadMaxBytes();
  // Under a budget: at most limit/16 grown into the window and as much prefetched after it.
  if (R->budget) maxBytes = std::min(maxBytes, R->budget->limit.load() / 16);
  const uint64_t maxUnits = maxBytes / R->unitBytes;
  return std::min(R->raUnits ? R->raUnits * 2 : R->windowUnits, maxUnits);
}

uint64_t readAheadLocked(RegionImpl* R, uint64_t from, uint64_t n, bool yield) {
  uint64_t v = from;
  for (const uint64_t end = std::min(from + n, R->unitCount); v < end; v++) {
    if (R->closing || unitIsLoaded(R, v)) break;
    if (yield && uffdFaultPending()) break;  // serve waiting threads first
    if (loadUnitLocked(R, v, false, /*skipEmpty=*/true) != 0) break;
    R->st.readAheadBytes += R->unitBytes;
  }
  return v;
}

void scanWrittenLocked(RegionImpl* R) { scanRangeLocked(R, 0, R->blockCount); }

uint64_t evictLocked(RegionImpl* R, uint64_t want, uint64_t* blocksEvicted) {
  *blocksEvicted = 0;
  if (R->closing || R->st.residentBytes == 0 || want == 0) return 0;
  scanWrittenLocked(R);  // Async: never drop a written page (see the race in vmem.h)
  const uint64_t lo = R->loadedLo, hi = R->loadedHi;
  if (R->clockHand < lo || R->clockHand >= hi) R->clockHand = lo;
  uint64_t freed = 0;
  RunBatcher batch(R, RunBatcher::Drop);
  // Two sweeps: the first may only clear reference bits (second chance).
  for (uint64_t steps = 0, span = hi - lo; freed < want && steps < 2 * span; steps++) {
    uint64_t b = R->clockHand;
    if (++R->clockHand >= hi) R->clockHand = lo;
    BlockMeta& m = R->blocks[b];
    if (m.loadedUnits == 0 || m.dirty) continue;
    if (m.ref) {
      m.ref = 0;
      continue;
    }
    freed += dropBlockUnitsLocked(R, b, 0, UINT64_MAX, batch);
    ++*blocksEvicted;
  }
  batch.flush();
  R->st.evictions += *blocksEvicted;
  R->st.evictedBytes += freed;
  resetRangesIfEmpty(R);
  return freed;
}

// ---------------------------------------------------------------------------------------
// Mode selection.

const SystemInfo& systemInfo() {
  static const SystemInfo info = [] {
    SystemInfo s;
    s.pageBytes = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    UffdProbe p = probeUffd();
    s.uffd = p.sync;
    s.uffdMove = p.move;
    s.uffdAsyncWp = p.async && pagemapFd() >= 0;
    s.procSelfMemWrite = procSelfMemWritable();
    s.defaultMode = s.uffd ? FaultMode::Uffd : FaultMode::Sigsegv;
    if (const char* e = getenv("TXARRAY_FAULT_MODE")) {
      if (!strcmp(e, "uffd")) s.defaultMode = FaultMode::Uffd;
      else if (!strcmp(e, "sigsegv")) s.defaultMode = FaultMode::Sigsegv;
      else if (*e && strcmp(e, "auto"))
        s.envError = {Status::InvalidArgument, 0, 0,
                      "TXARRAY_FAULT_MODE must be uffd, sigsegv or auto"};
    }
    // Sync by default: with dirtiness per block it costs one fault per block per
    // transaction, it has no eviction race, and it measured about as fast as Async for
    // 64 KiB blocks and faster for bigger ones (figures in vmem.h). Async is there to be
    // chosen explicitly.
    s.defaultWp = WpMode::Sync;
    if (const char* e = getenv("TXARRAY_WP_MODE")) {
      if (!strcmp(e, "sync")) s.defaultWp = WpMode::Sync;
      else if (!strcmp(e, "async")) s.defaultWp = WpMode::Async;
      else if (*e && strcmp(e, "auto"))
        s.envError = {Status::InvalidArgument, 0, 0,
                      "TXARRAY_WP_MODE must be sync, async or auto"};
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
    case Status::TooManyRegions: return "too many regions";
  }
  return "?";
}
const char* faultModeName(FaultMode m) {
  return m == FaultMode::Uffd ? "uffd" : m == FaultMode::Sigsegv ? "sigsegv" : "auto";
}
const char* wpModeName(WpMode m) {
  return m == WpMode::Sync ? "sync" : m == WpMode::Async ? "async" : "auto";
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

// ---------------------------------------------------------------------------------------
// Open / close.

namespace {

void setErr(Error* err, Status s, int errn, const char* what) {
  if (err) *err = Error{s, errn, 0, what};
}

// Releases whatever part of a region exists. R->mu is not held. Safe on a half-opened one.
void destroyRegion(RegionImpl* R, bool uffdRegistered) {
  {
    FutexLock g(R->mu);
    R->closing = true;  // the budget must not evict from it any more
  }
  if (R->budget) budgetDetach(R->budget, R);
  if (uffdRegistered) {
    // Wakes threads still waiting on faults in the range: they retry on plain memory.
    uffdio_range r{reinterpret_cast<uint64_t>(R->base), R->reserve};
    if (ioctl(R->uffd, UFFDIO_UNREGISTER, &r) != 0) {
      // Not fatal: munmap below unregisters as well. Nothing to report it to (closing).
    }
  }
  if (R->slot >= 0) registryRemove(R->slot);  // waits for a fault still being served
  if (R->base) munmap(R->base, R->reserve);
  if (R->unitLoaded) munmap(R->unitLoaded, R->unitMapBytes);
  if (R->blocks) munmap(R->blocks, R->blockMapBytes);
  delete R;
}

}  // namespace

std::unique_ptr<Region> Region::open(BlockSource* source, const RegionOptions& o, Error* err) {
  const SystemInfo& si = systemInfo();
  const uint64_t page = si.pageBytes;
  if (!source) return setErr(err, Status::InvalidArgument, 0, "source is null"), nullptr;
  if (o.reserveBytes == 0)
    return setErr(err, Status::InvalidArgument, 0, "reserveBytes is 0"), nullptr;
  if (!isPow2(o.blockBytes) || o.blockBytes < page)
    return setErr(err, Status::InvalidArgument, 0,
                  "blockBytes must be a power of two and a multiple of the page"),
           nullptr;
  if (o.faultBytes && (!isPow2(o.faultBytes) || o.faultBytes < page ||
                       o.faultBytes > kMaxFaultBytes))
    return setErr(err, Status::InvalidArgument, 0,
                  "faultBytes must be a power of two between the page and kMaxFaultBytes"),
           nullptr;
  if (o.reserveBytes > (UINT64_C(1) << 47))
    return setErr(err, Status::InvalidArgument, 0, "reserveBytes larger than 128 TiB"),
           nullptr;
  if (o.mode == FaultMode::Auto || o.wp == WpMode::Auto) {
    if (si.envError.status != Status::Ok) {
      if (err) *err = si.envError;
      return nullptr;
    }
  }
  FaultMode mode = o.mode == FaultMode::Auto ? si.defaultMode : o.mode;
  if (mode == FaultMode::Uffd && !si.uffd)
    return setErr(err, Status::Unsupported, 0, "userfaultfd is not available"), nullptr;
  WpMode wp = WpMode::Sync;
  if (mode == FaultMode::Uffd) {
    wp = o.wp == WpMode::Auto ? si.defaultWp : o.wp;
    if (wp == WpMode::Async && !si.uffdAsyncWp)
      return setErr(err, Status::Unsupported, 0,
                    "UFFD_FEATURE_WP_ASYNC or PAGEMAP_SCAN is not available"),
             nullptr;
  }

  RegionImpl* R = new (std::nothrow) RegionImpl;
  if (!R) return setErr(err, Status::SystemError, ENOMEM, "allocating region state"), nullptr;
  R->source = source;
  R->pageBytes = page;
  R->blockBytes = o.blockBytes;
  R->faultBytes = o.faultBytes ? o.faultBytes
                  : mode == FaultMode::Uffd ? kDefaultUffdFaultBytes
                                            : o.blockBytes;
  R->unitBytes = std::min(R->faultBytes, o.blockBytes);
  R->windowUnits = R->faultBytes / R->unitBytes;
  const uint64_t align = std::max(o.blockBytes, R->faultBytes);
  R->reserve = (o.reserveBytes + align - 1) / align * align;
  R->blockCount = R->reserve / R->blockBytes;
  R->unitCount = R->reserve / R->unitBytes;
  R->unitsPerBlock = R->blockBytes / R->unitBytes;
  R->mode = mode;
  R->wp = wp;
  R->budget = o.budget ? o.budget->impl() : nullptr;
  bool registered = false;
  auto fail = [&](Status s, int e, const char* what) -> std::unique_ptr<Region> {
    setErr(err, s, e, what);
    destroyRegion(R, registered);
    return nullptr;
  };

  R->unitMapBytes = (R->unitCount + page - 1) / page * page;
  R->blockMapBytes = (R->blockCount * sizeof(BlockMeta) + page - 1) / page * page;
  R->unitLoaded = static_cast<uint8_t*>(mapAnon(R->unitMapBytes, PROT_READ | PROT_WRITE));
  if (!R->unitLoaded) return fail(Status::SystemError, errno, "mmap(unit states)");
  R->blocks = static_cast<BlockMeta*>(mapAnon(R->blockMapBytes, PROT_READ | PROT_WRITE));
  if (!R->blocks) return fail(Status::SystemError, errno, "mmap(block states)");
  // Uffd: the range must be accessible; the kernel sends us the missing faults.
  // Sigsegv: PROT_NONE, every first touch traps.
  R->base = static_cast<uint8_t*>(
      mapAnon(R->reserve, mode == FaultMode::Uffd ? PROT_READ | PROT_WRITE : PROT_NONE));
  if (!R->base) return fail(Status::SystemError, errno, "mmap(reserve)");
  // Transparent huge pages would make a 4 KiB fill populate 2 MiB (Sigsegv) and split on
  // every partial eviction. EINVAL means THP is not configured: nothing to turn off.
  if (madvise(R->base, R->reserve, MADV_NOHUGEPAGE) != 0 && errno != EINVAL)
    return fail(Status::SystemError, errno, "madvise(MADV_NOHUGEPAGE)");

  if (mode == FaultMode::Sigsegv) {
    if (int e = sigsegvServiceStart()) return fail(Status::SystemError, e, "sigaction(SIGSEGV)");
  }
  R->slot = registryInsert(R);
  if (R->slot < 0) return fail(Status::TooManyRegions, 0, "region registry is full");
  if (mode == FaultMode::Uffd) {
    R->uffd = uffdServiceFd(wp);
    if (R->uffd < 0) return fail(Status::SystemError, errno, "starting the userfaultfd service");
    uffdio_register reg;
    memset(&reg, 0, sizeof reg);
    reg.range.start = reinterpret_cast<uint64_t>(R->base);
    reg.range.len = R->reserve;
    reg.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP;
    if (ioctl(R->uffd, UFFDIO_REGISTER, &reg) != 0)
      return fail(Status::SystemError, errno, "ioctl(UFFDIO_REGISTER)");
    registered = true;
    const uint64_t need = (UINT64_C(1) << _UFFDIO_COPY) | (UINT64_C(1) << _UFFDIO_WAKE) |
                          (UINT64_C(1) << _UFFDIO_WRITEPROTECT);
    if ((reg.ioctls & need) != need)
      return fail(Status::Unsupported, 0, "UFFDIO_COPY/WAKE/WRITEPROTECT not offered");
    R->move = uffdMoveAvailable(wp) && (reg.ioctls & (UINT64_C(1) << _UFFDIO_MOVE)) != 0;
  }
  if (R->budget) {
    try {
      budgetAttach(R->budget, R);
    } catch (const std::bad_alloc&) {
      return fail(Status::SystemError, ENOMEM, "attaching to the budget");
    }
  }
  std::unique_ptr<Region> region(new (std::nothrow) Region(R));
  if (!region) return fail(Status::SystemError, ENOMEM, "allocating region");
  return region;
}

Region::~Region() { close(); }

void Region::close() {
  if (!impl_) return;
  RegionImpl* R = impl_;
  impl_ = nullptr;
  destroyRegion(R, R->mode == FaultMode::Uffd);
}

uint8_t* Region::base() const { return impl_ ? impl_->base : nullptr; }
uint64_t Region::reserveBytes() const { return impl_ ? impl_->reserve : 0; }
uint64_t Region::blockBytes() const { return impl_ ? impl_->blockBytes : 0; }
uint64_t Region::faultBytes() const { return impl_ ? impl_->faultBytes : 0; }
FaultMode Region::mode() const { return impl_ ? impl_->mode : FaultMode::Auto; }
WpMode Region::wpMode() const { return impl_ ? impl_->wp : WpMode::Auto; }
uint64_t Region::blockCount() const { return impl_ ? impl_->blockCount : 0; }
uint8_t* Region::blockPtr(uint64_t index) const {
  return impl_ ? impl_->base + index * impl_->blockBytes : nullptr;
}

// ---------------------------------------------------------------------------------------
// Queries.

#define TXA_REQUIRE_OPEN()                                                  \
  do {                                                                      \
    if (!impl_) {                                                           \
      setErr(err, Status::InvalidArgument, 0, "region is closed");          \
      return Status::InvalidArgument;                                       \
    }                                                                       \
  } while (0)

std::vector<uint64_t> Region::dirtyBlocks() {
  std::vector<uint64_t> out;
  if (!impl_) return out;
  RegionImpl* R = impl_;
  FutexLock g(R->mu);
  scanWrittenLocked(R);
  out.reserve(R->dirtyCount);
  for (uint64_t b = R->dirtyLo; b < R->dirtyHi; b++)
    if (R->blocks[b].dirty) out.push_back(b);
  return out;
}

bool Region::isDirty(uint64_t block) {
  if (!impl_ || block >= impl_->blockCount) return false;
  RegionImpl* R = impl_;
  FutexLock g(R->mu);
  scanRangeLocked(R, block, block + 1);
  return R->blocks[block].dirty != 0;
}

bool Region::isLoaded(uint64_t offset) {
  if (!impl_ || offset >= impl_->reserve) return false;
  FutexLock g(impl_->mu);
  return unitIsLoaded(impl_, impl_->unitOf(offset));
}

Status Region::copyBlock(uint64_t index, uint8_t* dst, Error* err) {
  TXA_REQUIRE_OPEN();
  RegionImpl* R = impl_;
  if (index >= R->blockCount) return setErr(err, Status::InvalidArgument, 0, "block out of range"), Status::InvalidArgument;
  FutexLock g(R->mu);
  const uint64_t blockStart = index * R->blockBytes;
  BlockView v;
  bool pinned = false, pinTried = false, failed = false;
  for (uint64_t i = 0; i < R->unitsPerBlock; i++) {
    const uint64_t u = index * R->unitsPerBlock + i;
    uint8_t* out = dst + i * R->unitBytes;
    if (unitIsLoaded(R, u)) {  // present: reading it cannot fault
      memcpy(out, R->unitAddr(u), R->unitBytes);
      continue;
    }
    const uint64_t off = i * R->unitBytes;
    uint64_t avail = 0;
    if (blockStart + off < R->sourceLimit) {
      if (!pinTried) {
        pinTried = true;
        pinned = R->source->pin(index, &v);
        failed = !pinned;
      }
      if (pinned && v.data) {
        uint64_t size = std::min<uint64_t>(v.size, R->blockBytes);
        size = std::min(size, R->sourceLimit - blockStart);
        if (size > off) avail = std::min(size - off, R->unitBytes);
        if (avail) memcpy(out, v.data + off, avail);
      }
    }
    memset(out + avail, 0, R->unitBytes - avail);
  }
  if (pinned) R->source->unpin();
  if (failed) {
    if (err) *err = Error{Status::SourceError, 0, index, "BlockSource::pin failed"};
    return Status::SourceError;
  }
  return Status::Ok;
}

// ---------------------------------------------------------------------------------------
// write(): stores without faults.

namespace {

// write() from another region's memory copies through a buffer of at most this much.
constexpr uint64_t kWriteBounceBytes = 1 << 20;

// What a unit populated by write() must hold: the committed bytes [0, avail) from `source`,
// overwritten by the caller's bytes at unit offsets [w0, w1) (`data` is the one for w0),
// zeros elsewhere.
struct UnitImage {
  const uint8_t* source;
  uint64_t avail;
  const uint8_t* data;
  uint64_t w0, w1;
};

// Uffd: UFFDIO_COPY takes whole pages, so the unit goes in by runs of pages of one kind:
// inside the write (straight from the caller's buffer), outside it (straight from the
// source, or zeros), and the few pages that mix them, composed in `*bounce` (one page,
// allocated on first use; write() runs on the caller's thread, where malloc is allowed).
int fillUnitUffd(RegionImpl* R, uint8_t* dst, const UnitImage& im, uint8_t** bounce) {
  const uint64_t page = R->pageBytes, n = R->unitBytes;
  enum Kind { Data, Source, Zero, Mixed };
  auto kindOf = [&](uint64_t ps) {
    const uint64_t pe = ps + page;
    if (ps >= im.w0 && pe <= im.w1) return Data;
    if (pe > im.w0 && ps < im.w1) return Mixed;
    if (pe <= im.avail) return Source;
    if (ps >= im.avail) return Zero;
    return Mixed;  // the source's last bytes end inside this page
  };
  // Not write-protected, in every WP mode: the block is dirty (Sync: its loaded pages are
  // writable), and in Async mode an unprotected page reads as written, which it is.
  const bool wp = false;
  for (uint64_t p = 0; p < n;) {
    const Kind k = kindOf(p);
    uint64_t q = p + page;
    const uint8_t* from = nullptr;
    if (k == Mixed) {
      if (!*bounce && !(*bounce = static_cast<uint8_t*>(malloc(page)))) return ENOMEM;
      memset(*bounce, 0, page);
      if (im.avail > p) memcpy(*bounce, im.source + p, std::min(im.avail, q) - p);
      const uint64_t a = std::max(p, im.w0), z = std::min(q, im.w1);
      if (a < z) memcpy(*bounce + (a - p), im.data + (a - im.w0), z - a);
      from = *bounce;
    } else {
      while (q < n && kindOf(q) == k) q += page;
      from = k == Data ? im.data + (p - im.w0) : k == Source ? im.source + p : nullptr;
    }
    if (int e = uffdCopyIn(R, dst + p, from, q - p, wp)) return e;
    p = q;
  }
  return 0;
}

// Sigsegv: /proc/self/mem takes any byte range, so the unit goes in as (at most) three
// segments, then opens read-write (its block is dirty).
int fillUnitSigsegv(RegionImpl* R, uint8_t* dst, const UnitImage& im) {
  FillSegment segs[3];
  int n = 0;
  const uint64_t pre = std::min(im.avail, im.w0);
  if (pre) segs[n++] = FillSegment{0, pre, im.source};
  segs[n++] = FillSegment{im.w0, im.w1 - im.w0, im.data};
  if (im.avail > im.w1) segs[n++] = FillSegment{im.w1, im.avail - im.w1, im.source + im.w1};
  return sigsegvFillSegments(R, dst, R->unitBytes, segs, n, /*writable=*/true);
}

int fillUnitForWriteLocked(RegionImpl* R, uint64_t u, const UnitImage& im, uint8_t** bounce) {
  if (R->mode == FaultMode::Uffd) {
    int e = fillUnitUffd(R, R->unitAddr(u), im, bounce);
    // A unit is loaded whole or not at all: drop the pages a failed fill did populate,
    // or the next fill would find them present.
    if (e) madvise(R->unitAddr(u), R->unitBytes, MADV_DONTNEED);
    return e;
  }
  int e = fillUnitSigsegv(R, R->unitAddr(u), im);
  if (e == ENOMEM) {
    // As in the SIGSEGV handler: most likely vm.max_map_count. Dropping the region's clean
    // blocks merges their areas back; then try once more.
    uint64_t n;
    evictLocked(R, UINT64_MAX, &n);
    e = fillUnitSigsegv(R, R->unitAddr(u), im);
  }
  return e;
}

// write() with `src` outside every region: reading it under R->mu touches no region.
Status writeDirect(RegionImpl* R, uint64_t offset, const uint8_t* src, uint64_t len,
                   Error* err) {
  const uint64_t end = offset + len;
  uint8_t* bounce = nullptr;
  Status result = Status::Ok;
  // Parts of the write that land in units loaded before it: copied after unlocking (THE
  // RULE), into a block that is already dirty, so the copy takes no fault. Nothing can
  // unload them meanwhile: eviction, invalidate() and setSourceLimit() leave dirty blocks
  // alone. (dropDirty() or discard() racing with this write from another thread could;
  // the copy then faults and the fault service reloads the unit, as for any store.)
  struct Run {
    uint64_t a, z;
  };
  constexpr int kMaxRuns = 8;
  for (uint64_t b = offset / R->blockBytes; b * R->blockBytes < end; b++) {
    const uint64_t bStart = b * R->blockBytes;
    const uint64_t wS = std::max(offset, bStart), wE = std::min(end, bStart + R->blockBytes);
    uint64_t u = wS / R->unitBytes;
    const uint64_t uEnd = (wE - 1) / R->unitBytes + 1;
    while (u < uEnd) {
      if (R->budget) {
        // As the fault path: make room without the lock (lock order), from a peek.
        uint64_t need = 0;
        for (uint64_t v = u; v < uEnd; v++)
          if (!unitIsLoaded(R, v)) need += R->unitBytes;
        if (need) budgetMakeRoom(R->budget, need);
      }
      Run runs[kMaxRuns];
      int nRuns = 0;
      {
        FutexLock g(R->mu);
        // Dirty first, as a write fault would: unprotects the loaded units of the block.
        const bool wasDirty = R->blocks[b].dirty != 0;
        markDirtyLocked(R, b);
        BlockSourcePin pin(R, b);
        for (; u < uEnd; u++) {
          const uint64_t uStart = u * R->unitBytes;
          const uint64_t a = std::max(wS, uStart), z = std::min(wE, uStart + R->unitBytes);
          if (unitIsLoaded(R, u)) {
            if (nRuns && runs[nRuns - 1].z == a) {
              runs[nRuns - 1].z = z;
            } else if (nRuns == kMaxRuns) {
              break;  // copy these first, then go on with u
            } else {
              runs[nRuns++] = Run{a, z};
            }
            continue;
          }
          UnitImage im{nullptr, 0, src + (a - offset), a - uStart, z - uStart};
          // A unit the write covers whole needs nothing from the source.
          if (z - a < R->unitBytes) pin.unitBytes(u, &im.source, &im.avail);
          if (int e = fillUnitForWriteLocked(R, u, im, &bounce)) {
            recordErrorLocked(R, Status::SystemError, e, b, "filling a unit for write()");
            if (err) *err = Error{Status::SystemError, e, b, "filling a unit for write()"};
            result = Status::SystemError;
            break;
          }
          noteLoadedLocked(R, u);
          R->st.writeFills++;
        }
        if (pin.failed() && result == Status::Ok) {
          if (err) *err = Error{Status::SourceError, 0, b, "BlockSource::pin failed; zeros served"};
          result = Status::SourceError;
        }
        if (R->mode == FaultMode::Uffd && R->wp == WpMode::Async && !wasDirty) {
          // The kernel would resolve one write-protect fault per page (~1 µs each); one
          // ioctl per run is cheaper, for the first write to the block in a transaction
          // (later ones may find some pages protected still: then the kernel's way is
          // cheaper than an ioctl per call). Unprotected pages read as written, which they
          // are about to be. A failure costs only those faults: nothing to report.
          for (int i = 0; i < nRuns; i++) {
            const uint64_t lo = runs[i].a & ~(R->pageBytes - 1);
            const uint64_t hi = (runs[i].z + R->pageBytes - 1) & ~(R->pageBytes - 1);
            (void)uffdWriteProtect(R->uffd, R->base + lo, hi - lo, false);
          }
        }
      }
      // (After a failed fill too: these runs lie before the failing unit.)
      for (int i = 0; i < nRuns; i++)
        memcpy(R->base + runs[i].a, src + (runs[i].a - offset), runs[i].z - runs[i].a);
      if (result == Status::SystemError) break;
    }
    if (result == Status::SystemError) break;
  }
  free(bounce);
  return result;
}

}  // namespace

Status Region::write(uint64_t offset, const uint8_t* src, uint64_t len, Error* err) {
  TXA_REQUIRE_OPEN();
  RegionImpl* R = impl_;
  if (len == 0) return Status::Ok;
  if (!src || offset > R->reserve || len > R->reserve - offset) {
    setErr(err, Status::InvalidArgument, 0, "write() past the reservation, or src is null");
    return Status::InvalidArgument;
  }
  const uintptr_t s0 = reinterpret_cast<uintptr_t>(src), s1 = s0 + len;
  if (!registryOverlaps(s0, s1)) return writeDirect(R, offset, src, len, err);
  const uintptr_t r0 = reinterpret_cast<uintptr_t>(R->base), r1 = r0 + R->reserve;
  if (s0 < r1 && r0 < s1) {
    // From this very region: a plain memmove keeps memmove's meaning for overlapping
    // ranges; the fault service loads and dirties as for any store (its errors are recorded
    // on the region: takeError()).
    memmove(R->base + offset, src, len);
    return Status::Ok;
  }
  // From another region: reading it may fault, which must happen with no lock held (THE
  // RULE), so the bytes go through a bounce buffer, a chunk at a time.
  const uint64_t chunk = std::min<uint64_t>(len, kWriteBounceBytes);
  uint8_t* buf = static_cast<uint8_t*>(malloc(chunk));
  if (!buf) {
    setErr(err, Status::SystemError, ENOMEM, "allocating the write() bounce buffer");
    return Status::SystemError;
  }
  Status result = Status::Ok;
  for (uint64_t done = 0; done < len;) {
    const uint64_t n = std::min(chunk, len - done);
    memcpy(buf, src + done, n);
    Error e;
    Status s = writeDirect(R, offset + done, buf, n, &e);
    if (s != Status::Ok && result == Status::Ok) {
      result = s;
      if (err) *err = e;
    }
    if (s == Status::SystemError) break;
    done += n;
  }
  free(buf);
  return result;
}

// ---------------------------------------------------------------------------------------
// Transitions requested by the engine.

namespace {
Status takeOpError(RegionImpl* R, bool hadError, Error* err) {
  // A system call failed during this operation: report it (and keep it on the region).
  if (!hadError && R->hasError) {
    if (err) *err = R->error;
    return R->error.status;
  }
  return Status::Ok;
}
}  // namespace

Status Region::markClean(const uint64_t* blocks, size_t count, Error* err) {
  TXA_REQUIRE_OPEN();
  RegionImpl* R = impl_;
  FutexLock g(R->mu);
  const bool hadError = R->hasError;
  RunBatcher batch(R, RunBatcher::ProtectClean);
  for (size_t i = 0; i < count; i++) {
    uint64_t b = blocks[i];
    if (b >= R->blockCount || !R->blocks[b].dirty) continue;
    setCleanLocked(R, b);
    visitLoadedUnits(R, b, 0, UINT64_MAX, batch, false);
  }
  batch.flush();
  return takeOpError(R, hadError, err);
}

Status Region::dropDirty(Error* err) {
  TXA_REQUIRE_OPEN();
  RegionImpl* R = impl_;
  FutexLock g(R->mu);
  const bool hadError = R->hasError;
  scanWrittenLocked(R);
  RunBatcher batch(R, RunBatcher::Drop);
  for (uint64_t b = R->dirtyLo, hi = R->dirtyHi; b < hi; b++) {
    if (!R->blocks[b].dirty) continue;
    R->st.droppedBytes += dropBlockUnitsLocked(R, b, 0, UINT64_MAX, batch);
    setCleanLocked(R, b);
  }
  batch.flush();
  resetRangesIfEmpty(R);
  return takeOpError(R, hadError, err);
}

Status Region::invalidate(const uint64_t* blocks, size_t count, size_t* skippedDirty,
                          Error* err) {
  if (skippedDirty) *skippedDirty = 0;
  TXA_REQUIRE_OPEN();
  RegionImpl* R = impl_;
  FutexLock g(R->mu);
  const bool hadError = R->hasError;
  scanWrittenLocked(R);
  RunBatcher batch(R, RunBatcher::Drop);
  for (size_t i = 0; i < count; i++) {
    uint64_t b = blocks[i];
    if (b >= R->blockCount) continue;
    if (R->blocks[b].dirty) {
      if (skippedDirty) ++*skippedDirty;
      continue;
    }
    R->st.droppedBytes += dropBlockUnitsLocked(R, b, 0, UINT64_MAX, batch);
  }
  batch.flush();
  resetRangesIfEmpty(R);
  return takeOpError(R, hadError, err);
}

Status Region::invalidateAll(size_t* skippedDirty, Error* err) {
  if (skippedDirty) *skippedDirty = 0;
  TXA_REQUIRE_OPEN();
  RegionImpl* R = impl_;
  FutexLock g(R->mu);
  const bool hadError = R->hasError;
  scanWrittenLocked(R);
  RunBatcher batch(R, RunBatcher::Drop);
  for (uint64_t b = R->loadedLo, hi = R->loadedHi; b < hi; b++) {
    if (R->blocks[b].dirty) {
      if (skippedDirty && R->blocks[b].loadedUnits) ++*skippedDirty;
      continue;
    }
    R->st.droppedBytes += dropBlockUnitsLocked(R, b, 0, UINT64_MAX, batch);
  }
  batch.flush();
  resetRangesIfEmpty(R);
  return takeOpError(R, hadError, err);
}

Status Region::discard(uint64_t fromByte, Error* err) {
  TXA_REQUIRE_OPEN();
  RegionImpl* R = impl_;
  uint8_t* zeroFrom = nullptr;
  uint64_t zeroLen = 0;
  Status s;
  {
    FutexLock g(R->mu);
    const bool hadError = R->hasError;
    scanWrittenLocked(R);
    R->sourceLimit = std::min(R->sourceLimit, fromByte);
    if (fromByte < R->reserve) {
      const uint64_t uFirstDrop = (fromByte + R->unitBytes - 1) / R->unitBytes;
      const uint64_t bFirstWhole = (fromByte + R->blockBytes - 1) / R->blockBytes;
      const uint64_t bStart = fromByte / R->blockBytes;
      const uint64_t bEnd = std::max(R->loadedHi, R->dirtyHi);
      RunBatcher batch(R, RunBatcher::Drop);
      for (uint64_t b = bStart; b < bEnd; b++) {
        R->st.droppedBytes += dropBlockUnitsLocked(R, b, uFirstDrop, UINT64_MAX, batch);
        if (b >= bFirstWhole) setCleanLocked(R, b);
      }
      batch.flush();
      if (fromByte % R->blockBytes) markDirtyLocked(R, bStart);  // its tail must be rewritten
      // The unit holding fromByte keeps its prefix; zero its tail (after unlocking: this
      // touches the region). If it is not loaded, a later fill honours sourceLimit.
      const uint64_t u = fromByte / R->unitBytes;
      if (fromByte % R->unitBytes && unitIsLoaded(R, u)) {
        zeroFrom = R->base + fromByte;
        zeroLen = (u + 1) * R->unitBytes - fromByte;
      }
      resetRangesIfEmpty(R);
    }
    s = takeOpError(R, hadError, err);
  }
  if (zeroFrom) memset(zeroFrom, 0, zeroLen);  // the block is dirty: no write fault
  return s;
}

Status Region::setSourceLimit(uint64_t bytes, Error* err) {
  TXA_REQUIRE_OPEN();
  RegionImpl* R = impl_;
  FutexLock g(R->mu);
  const bool hadError = R->hasError;
  const uint64_t old = R->sourceLimit;
  if (bytes == old) return Status::Ok;
  scanWrittenLocked(R);
  R->sourceLimit = bytes;
  const uint64_t lo = std::min(old, bytes), hi = std::min(std::max(old, bytes), R->reserve);
  if (lo < R->reserve) {
    const uint64_t u0 = lo / R->unitBytes;
    const uint64_t u1 = (hi + R->unitBytes - 1) / R->unitBytes;
    const uint64_t b0 = std::max(lo / R->blockBytes, R->loadedLo);
    const uint64_t b1 = std::min((hi + R->blockBytes - 1) / R->blockBytes, R->loadedHi);
    RunBatcher batch(R, RunBatcher::Drop);
    for (uint64_t b = b0; b < b1; b++)
      if (!R->blocks[b].dirty) R->st.droppedBytes += dropBlockUnitsLocked(R, b, u0, u1, batch);
    batch.flush();
    resetRangesIfEmpty(R);
  }
  return takeOpError(R, hadError, err);
}

uint64_t Region::sourceLimit() {
  if (!impl_) return 0;
  FutexLock g(impl_->mu);
  return impl_->sourceLimit;
}

bool Region::takeError(Error* out) {
  if (!impl_) return false;
  FutexLock g(impl_->mu);
  if (!impl_->hasError) return false;
  if (out) *out = impl_->error;
  impl_->hasError = false;
  impl_->error = Error{};
  return true;
}

RegionStats Region::stats() {
  if (!impl_) return RegionStats{};
  FutexLock g(impl_->mu);
  return impl_->st;
}

}  // namespace vmem
}  // namespace txa
