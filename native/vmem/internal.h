// Internals shared by the vmem source files. Not part of the contract (see vmem.h).
#pragma once
#include <atomic>
#include <cstdint>
#include <vector>

#include "futex_mutex.h"
#include "vmem.h"

namespace txa {
namespace vmem {

// Per-block state, guarded by RegionImpl::mu.
struct BlockMeta {
  uint32_t loadedUnits;  // units of this block that are loaded
  uint8_t dirty;         // holds writes not yet marked clean
  uint8_t ref;           // clock reference bit: set on load, cleared by the clock hand
  uint16_t pad;
};

struct RegionImpl {
  // ---- immutable after open ----
  BlockSource* source = nullptr;
  uint8_t* base = nullptr;
  uint64_t reserve = 0;
  uint64_t blockBytes = 0;
  uint64_t unitBytes = 0;    // state granularity: min(faultBytes, blockBytes)
  uint64_t faultBytes = 0;   // what one fault loads (a window of units, aligned)
  uint64_t windowUnits = 1;  // faultBytes / unitBytes
  uint64_t pageBytes = 0;
  uint64_t blockCount = 0;
  uint64_t unitCount = 0;
  uint64_t unitsPerBlock = 0;
  FaultMode mode = FaultMode::Sigsegv;
  WpMode wp = WpMode::Sync;
  int uffd = -1;  // the service's fd this region is registered with (Uffd mode)
  bool move = false;  // Uffd: fills and drops may use UFFDIO_MOVE with the fd's page pool
  BudgetImpl* budget = nullptr;
  int slot = -1;  // registry slot

  // ---- guarded by mu ----
  FutexMutex mu;
  uint8_t* unitLoaded = nullptr;  // unitCount bytes, 1 = loaded (mmap'd, NORESERVE)
  BlockMeta* blocks = nullptr;    // blockCount entries (mmap'd, NORESERVE)
  size_t unitMapBytes = 0, blockMapBytes = 0;
  uint64_t loadedLo = 0, loadedHi = 0;  // all blocks with loaded units are in [lo, hi)
  uint64_t dirtyLo = 0, dirtyHi = 0;    // all dirty blocks are in [lo, hi)
  uint64_t dirtyCount = 0;
  uint64_t clockHand = 0;
  uint64_t sourceLimit = UINT64_MAX;
  // Sequential read-ahead (Uffd mode; see vmem.h): the unit after the last one loaded by a
  // read fault or its read-ahead (UINT64_MAX: none yet), and the current read-ahead length.
  uint64_t raNext = UINT64_MAX;
  uint64_t raUnits = 0;
  uint64_t raRun = 0;  // consecutive sequential read faults (read-ahead starts at 2)
  bool closing = false;
  bool budgetAttached = false;
  bool hasError = false;
  Error error;
  RegionStats st;

  uint64_t unitOf(uint64_t off) const { return off / unitBytes; }
  uint64_t blockOfUnit(uint64_t u) const { return u / unitsPerBlock; }
  uint8_t* unitAddr(uint64_t u) const { return base + u * unitBytes; }
};

struct BudgetImpl {
  FutexMutex mu;                    // guards regions, hand
  std::vector<RegionImpl*> regions;  // modified only outside fault paths
  size_t hand = 0;
  std::atomic<uint64_t> limit{0};
  std::atomic<uint64_t> batch{0};
  std::atomic<bool> batchSet{false};
  std::atomic<uint64_t> charged{0};
  std::atomic<uint64_t> evictions{0}, evictedBytes{0}, passes{0};
};

// The fault paths peek at a unit's loaded byte without the lock (to decide whether to make
// room in the budget first), so every access to these bytes is atomic (relaxed: under the
// lock, the lock orders them; the unlocked peek is only a hint).
inline bool unitIsLoaded(const RegionImpl* R, uint64_t u) {
  return __atomic_load_n(&R->unitLoaded[u], __ATOMIC_RELAXED) != 0;
}
inline void setUnitLoaded(RegionImpl* R, uint64_t u, bool v) {
  __atomic_store_n(&R->unitLoaded[u], static_cast<uint8_t>(v ? 1 : 0), __ATOMIC_RELAXED);
}

// ---- region.cc: state transitions (all "Locked" functions require R->mu held) ----
void recordErrorLocked(RegionImpl* R, Status s, int err, uint64_t block, const char* what);
// Serves a missing fault on unit u. writeFault: the access was a write (the block becomes
// dirty before the fill, so the unit is loaded writable). Returns 0, or the errno of the
// fill that failed (recorded on the region; the unit stays not loaded).
// skipEmpty (read-ahead): a unit with no source bytes is not loaded; returns ENODATA.
int loadUnitLocked(RegionImpl* R, uint64_t u, bool writeFault, bool skipEmpty = false);
// Serves a missing fault on unit u: loads u, then the other units of its fault window
// (faultBytes-aligned) that are not loaded yet, as clean. Returns the result for u, and the
// window [*w0, *w1) in units (to wake).
int loadWindowLocked(RegionImpl* R, uint64_t u, bool writeFault, uint64_t* w0, uint64_t* w1);
// Sequential read-ahead (vmem.h, "Read-ahead"). R->raNext and R->raUnits are owned by
// the uffd service thread (only it reads or writes them; R->mu held when it does).
// How many units a missing fault on unit u should read ahead (0: not sequential).
uint64_t readAheadUnits(const RegionImpl* R, uint64_t u, bool writeFault);
// Loads up to n units from `from` as clean, stopping at a loaded unit, a unit without source
// bytes, the end of the reservation, a failure, or (yield) when a fault is waiting to be
// served. Returns the unit where it stopped.
uint64_t readAheadLocked(RegionImpl* R, uint64_t from, uint64_t n, bool yield);
// A write hit a loaded unit of block b (Sync WP fault or SIGSEGV on a read-only unit).
void markDirtyLocked(RegionImpl* R, uint64_t b);
// Async mode: PAGEMAP_SCAN the loaded range, mark blocks holding written pages dirty.
void scanWrittenLocked(RegionImpl* R);
// Evicts clean blocks by the clock until `want` bytes are freed or none is left.
uint64_t evictLocked(RegionImpl* R, uint64_t want, uint64_t* blocksEvicted);
// Budget charge bookkeeping (atomics; callable with R->mu held).
void chargeLocked(RegionImpl* R, int64_t delta);

// ---- uffd_service.cc ----
struct UffdProbe {
  bool sync = false, async = false, move = false;
};
UffdProbe probeUffd();
// Returns the fd of the (started) process-wide service for this WP flavour, or -1 with
// errno set.
int uffdServiceFd(WpMode wp);
// Fill [dst, dst+len) (page-aligned) of an uffd region: `avail` bytes from src, zeros after.
// Returns 0 or an errno. Runs on the service thread only (it owns the bounce buffer and is
// the only consumer of the page pools). With the pool (R->move), pages are memcpy'd into
// pool pages and moved in; if `wp`, they are write-protected afterwards and compared with
// the bytes they must hold: *raced is set if a store from another thread landed between
// the move and the protection (the caller then marks the block dirty).
int uffdFill(RegionImpl* R, uint8_t* dst, uint64_t len, const uint8_t* src, uint64_t avail,
             bool wp, bool* raced);
// Drops [addr, addr+len) (page-aligned, loaded pages of R): moves as many pages as the pool
// takes (bounded by poolLimitBytes) into the fd's pool, MADV_DONTNEED for the rest. Returns
// 0 or an errno (of the madvise; a failed move just falls back). Any thread, R->mu held.
int uffdDrop(RegionImpl* R, uint8_t* addr, uint64_t len, uint64_t poolLimitBytes,
             uint64_t* recycled);
// Whether a fault message is waiting on any service fd (read-ahead yields to it).
bool uffdFaultPending();
// Whether the started service's fd for this flavour has UFFDIO_MOVE and a page pool.
bool uffdMoveAvailable(WpMode wp);
// Region::write(): UFFDIO_COPY [src, src+len) (src nullptr: zeros) into missing pages of
// R (dst and len page-aligned; src may be unaligned), waking threads waiting on them.
// Callable from any thread. A page already present is an error (EEXIST), not skipped.
int uffdCopyIn(RegionImpl* R, uint8_t* dst, const uint8_t* src, uint64_t len, bool wp);
int uffdWriteProtect(int uffd, uint8_t* addr, uint64_t len, bool protect);
int uffdWake(int uffd, uint8_t* addr, uint64_t len);
int pagemapFd();  // /proc/self/pagemap, opened once; -1 if unavailable

// ---- sigsegv_service.cc ----
// `len` bytes from `src` go to unit offset `at` (segments do not overlap).
struct FillSegment {
  uint64_t at;
  uint64_t len;
  const uint8_t* src;
};
// Installs the process-wide SIGSEGV handler once. Returns 0 or an errno.
int sigsegvServiceStart();
bool procSelfMemWritable();
// Fill a PROT_NONE, unpopulated unit with `avail` bytes of src (zeros after are already
// there). Returns 0 or an errno.
int sigsegvFill(RegionImpl* R, uint8_t* dst, uint64_t len, const uint8_t* src,
                uint64_t avail, bool writable);
// The same with the unit's bytes given as segments (zeros between and after them).
int sigsegvFillSegments(RegionImpl* R, uint8_t* dst, uint64_t len, const FillSegment* segs,
                        int count, bool writable);

// ---- registry.cc ----
// Lock-free lookup for the fault paths: returns the region containing addr with its slot's
// use count raised (release with registryRelease), or nullptr.
RegionImpl* registryAcquire(uintptr_t addr, int* slot);
void registryRelease(int slot);
// Whether [lo, hi) overlaps a registered region (no use count taken: an answer only).
bool registryOverlaps(uintptr_t lo, uintptr_t hi);
int registryInsert(RegionImpl* R);  // slot or -1 (full)
void registryRemove(int slot);      // waits until no fault path uses the slot

// ---- budget.cc ----
// Called by the fault path WITHOUT R->mu held, before loading `need` bytes.
void budgetMakeRoom(BudgetImpl* B, uint64_t need);
uint64_t budgetBatchBytes(const BudgetImpl* B);  // what one eviction pass frees below limit
void budgetAttach(BudgetImpl* B, RegionImpl* R);
void budgetDetach(BudgetImpl* B, RegionImpl* R);

}  // namespace vmem
}  // namespace txa
