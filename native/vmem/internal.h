// Internals shared by the vmem source files. Not part of the contract (see vmem.h).
#pragma once
#include <atomic>
#include <cstdint>
#include <vector>

#include "futex_mutex.h"
#include "vmem.h"

namespace txa {
namespace vmem {

// Spill: mapped MAP_SHARED from the region's spill file, which holds the block's bytes.
enum class BlockState : uint8_t { Unmapped = 0, File = 1, Anon = 2, Spill = 3 };

// BlockMeta::copied: how an Anon block's bytes came from the source.
constexpr uint8_t kCopiedHash = 1;       // copied in one block at a time; copyHash tells writes
constexpr uint8_t kCopiedScanShut = 2;   // in a scan window not written since it was loaded
constexpr uint8_t kCopiedScanOpen = 3;   // in a scan window opened by a write: compared with the source

// Per block, guarded by RegionImpl::mu.
struct BlockMeta {
  BlockState state;
  uint8_t dirty;   // holds writes not yet committed (known so far: see the write scan)
  uint8_t copied;  // 0, or kCopied*: Anon with the source's bytes copied in
  uint8_t ref : 1;      // clock reference bit: set when mapped, cleared by the budget's hand
  uint8_t spilled : 1;  // the block's bytes live in the spill file (state Spill or Unmapped)
  uint8_t unreadable : 1;  // Anon zeros served because the source could not give the block
  uint32_t filePages;  // File: pages of [0, ...) mapped from the data file
  uint64_t copyHash;   // copied: blockHash() of the bytes copied in
};

// A 64-bit hash of a block's bytes, to tell whether a copied block was written since.
uint64_t blockHash(const uint8_t* p, uint64_t n);

// Scan windows loaded for sequential readers (scan_windows.cc), guarded by RegionImpl::mu.
struct ScanPool {
  uint64_t window[kScanWindowsMax];   // window index (offset / kScanWindowBytes), or UINT64_MAX
  uint64_t lastUse[kScanWindowsMax];  // clock value of the last load or touch; 0 when free
  uint64_t clock = 0;
  uint64_t seqLo = 0, seqHi = 0;  // the byte range of the last loadSequential()
  uint64_t lastFaultWindow = UINT64_MAX;  // window of the last fault inside that range
  // The spare (scan_windows.cc): a reserved kScanWindowBytes-aligned slot outside the
  // region where an evicted window's huge page waits to be refilled, and one read-write
  // scratch page after it (header pages between blocks are read there).
  uint8_t* spareSlot = nullptr;  // nullptr until the first window is loaded
  bool spareHeld = false;        // the slot holds a recycled window (read-write, any bytes)
  ScanPool() {
    for (size_t i = 0; i < kScanWindowsMax; i++) window[i] = UINT64_MAX, lastUse[i] = 0;
  }
};

// Faults that wait for a fetch (waiting_faults.cc), guarded by RegionImpl::mu: the blocks
// of a Uffd region with at least one fault waiting for the source to fetch them, each with
// the time (CLOCK_MONOTONIC ns) after which the fault is served as an unreadable block.
constexpr size_t kWaitingFaultsMax = 64;
// The window the fault path decided for a fault (fault_path.cc), kept while it waits so
// that serving it later maps what serving it at once would have mapped.
struct WaitingWindow {
  uint64_t w0 = 0, w1 = 0;
  uint64_t ra = 0;  // the read-ahead run, for a sequential fault
  bool sequentialOk = false;
};
struct WaitingFaults {
  uint64_t block[kWaitingFaultsMax];
  uint64_t deadlineNs[kWaitingFaultsMax];
  WaitingWindow window[kWaitingFaultsMax];
  size_t count = 0;
};

struct RegionImpl {
  // ---- immutable after open ----
  BlockSource* source = nullptr;
  uint8_t* base = nullptr;
  uint64_t reserve = 0;
  uint64_t blockBytes = 0;
  uint64_t pageBytes = 0;
  uint64_t blockCount = 0;
  uint64_t windowBlocks = 1;  // first window of a fault, in blocks
  FaultMode mode = FaultMode::Sigsegv;
  int uffd = -1;  // Uffd: the service's fd
  BudgetImpl* budget = nullptr;
  int slot = -1;  // registry slot

  // ---- guarded by mu ----
  FutexMutex mu;
  BlockMeta* blocks = nullptr;  // blockCount entries (mmap'd, NORESERVE)
  size_t blocksMapBytes = 0;
  uint64_t mappedLo = 0, mappedHi = 0;  // every mapped block lies in [lo, hi)
  uint64_t mappedCount = 0;
  uint64_t mappings = 0;  // VMAs the mapped blocks add to the region's one (map_budget.cc)
  uint64_t dirtyCount = 0;
  uint64_t unreadableCount = 0;  // blocks with `unreadable` set
  uint64_t clockHand = 0;
  uint64_t sourceLimit = UINT64_MAX;
  uint64_t raNext = UINT64_MAX;  // Uffd: the block after the last window a read fault mapped
  uint64_t raBlocks = 0;         // Uffd: the current window while faults are sequential
  // Scattered faults (fault_path.cc): hints read and written with relaxed atomics, no lock.
  uint64_t lastFault = UINT64_MAX;  // the block of the last fault
  uint64_t farFaults = 0;           // faults in a row that landed beyond a window of the last
  uint64_t readOnLo = 0, readOnHi = 0;  // blocks the last far fault mapped past its own block
  // The spill file (spill.cc): dirty blocks the budget unmapped keep their bytes there.
  int spillFd = -1;             // a memfd of reserve bytes, created at the first spill
  uint64_t spilledCount = 0;    // blocks with `spilled` set
  uint64_t parkedCount = 0;     // ... of which Unmapped (not in mappedCount nor dirtyCount)
  uint64_t spillLo = 0, spillHi = 0;  // every spilled block lies in [lo, hi)
  uint64_t spillHand = 0;
  bool closing = false;
  bool budgetAttached = false;
  bool hasError = false;
  Error error;
  RegionStats st;
  ScanPool scan;
  WaitingFaults waiting;

  uint8_t* blockAddr(uint64_t b) const { return base + b * blockBytes; }
};

struct BudgetImpl {
  FutexMutex mu;  // guards regions, hand
  std::vector<RegionImpl*> regions;
  size_t hand = 0;
  std::atomic<uint64_t> limit{0};     // in mappings (VMAs)
  std::atomic<uint64_t> mappings{0};  // charged by the attached regions
  std::atomic<uint64_t> blocks{0};    // mapped blocks of the attached regions
  std::atomic<uint64_t> evictions{0}, spills{0}, passes{0};
};

// ---- region_state.cc: transitions (every "Locked" function requires R->mu held) ----
void recordErrorLocked(RegionImpl* R, Status s, int err, uint64_t block, const char* what);
// Maps block b (UNMAPPED) from the source: FILE, or ANON (zeros or a copy). A source that
// fails gives zeros and a recorded error (return 0). A failed system call leaves the block
// UNMAPPED and returns its errno (ENOMEM: vm.max_map_count, the caller may make room).
int mapBlockLocked(RegionImpl* R, uint64_t b);
// mapBlockLocked, and on ENOMEM unmaps the region's clean blocks and tries once more.
int mapBlockMakingRoomLocked(RegionImpl* R, uint64_t b);
// Maps every UNMAPPED block of [b0, b1); stops at the first failure (errno returned).
int mapRangeLocked(RegionImpl* R, uint64_t b0, uint64_t b1);
void setDirtyLocked(RegionImpl* R, uint64_t b);
void setCleanLocked(RegionImpl* R, uint64_t b);
// Block b became mapped in `state`: counts, span, budget charge.
void noteMappedLocked(RegionImpl* R, uint64_t b, BlockState state);
// [*lo, *hi): every block that is mapped or spilled lies in it.
void dirtySpanLocked(const RegionImpl* R, uint64_t* lo, uint64_t* hi);

// ---- block_mapping.cc: the kernel side of a block (R->mu held) ----
// Turns [b0, b1) back into a placeholder in one call (any mix of states). 0 or errno.
int unmapRunLocked(RegionImpl* R, uint64_t b0, uint64_t b1);
// [b0, b1) is a placeholder now (made by the caller): its blocks become UNMAPPED and clean,
// leave the spill file, and credit the budget.
void noteUnmappedLocked(RegionImpl* R, uint64_t b0, uint64_t b1);
int mapFilePages(RegionImpl* R, uint8_t* at, uint64_t len, int fd, uint64_t offset);
int mapAnonRW(RegionImpl* R, uint8_t* at, uint64_t len);
int makePlaceholder(RegionImpl* R, uint8_t* at, uint64_t len);
// Collects runs of adjacent blocks and unmaps each run with one call.
// Holds off stores into the mapped blocks of [b0, b1) until Region::mu is released: they
// are made read-only (one call per run of them; placeholders between stay as they are, so
// an access there still faults), so that a store racing with a write scan and the unmap
// after it faults, waits for Region::mu and lands in the block mapped again (THE FAULT
// RULE) instead of being dropped with a block the scan found clean. false: the kernel
// refused (ENOMEM at vm.max_map_count) and the range is as it was.
bool holdStoresLocked(RegionImpl* R, uint64_t b0, uint64_t b1);
// After holdStoresLocked() and a write scan of [b0, b1): unmaps the clean blocks and
// placeholders, opens the written blocks read-write again; returns how many mapped blocks
// it unmapped.
uint64_t unmapCleanReopenWrittenLocked(RegionImpl* R, uint64_t b0, uint64_t b1);
class UnmapBatch {
 public:
  explicit UnmapBatch(RegionImpl* R) : R_(R) {}
  ~UnmapBatch() { flush(); }
  void add(uint64_t b);  // b mapped, or a placeholder (redone); it is UNMAPPED once flushed
  int flush();

 private:
  RegionImpl* R_;
  uint64_t b0_ = 0, b1_ = 0;
};

// ---- spill.cc: dirty blocks out of the mapping budget (R->mu held) ----
// Unmaps up to `want` mapped dirty blocks, their bytes kept in the spill file; returns how
// many. Spill-state blocks go first (their bytes are there already). Async-signal-safe.
uint64_t spillLocked(RegionImpl* R, uint64_t want);
// Maps a parked block (Unmapped, spilled) from the spill file: state Spill. 0 or errno.
int mapSpilledLocked(RegionImpl* R, uint64_t b);
// Copies a parked block's bytes to dst. 0 or errno.
int readSpilledLocked(RegionImpl* R, uint64_t b, uint8_t* dst);
// b's bytes leave the transaction: clears `spilled` (b must be Unmapped, or about to be).
void forgetSpilledLocked(RegionImpl* R, uint64_t b);
// Frees the spill file's memory for [b0, b1) (or all of it once nothing is spilled).
void releaseSpillLocked(RegionImpl* R, uint64_t b0, uint64_t b1);
void closeSpill(RegionImpl* R);

// ---- write_scan.cc ----
// Finds written pages of the mapped blocks in [b0, b1) and marks their blocks dirty;
// compares `copied` blocks with their source. R->mu held.
void scanWritesLocked(RegionImpl* R, uint64_t b0, uint64_t b1);
bool pagemapScanWorks();
// Whether any page of [lo, hi) is present in this process's page tables (a hint: false
// when it cannot tell). One PAGEMAP_SCAN ioctl, or reads of /proc/self/pagemap. No lock
// needed; async-signal-safe.
bool anyPagePresent(uintptr_t lo, uintptr_t hi, uint64_t pageBytes);

// ---- scan_windows.cc ----
// THP with 2 MiB PMDs is on (not "never") and TXARRAY_SCAN_WINDOWS is not 0; probed once.
bool scanWindowsAvailable();
// A fault on unmapped block b: if b lies in the range of the last loadSequential() and the
// reader goes on from the window before (the range's first window, the window before in the
// pool, or the last fault in the range in that window or this one), loads its window
// (Budget::mu then R->mu, taken here) and returns true with the window's byte range in
// [*lo, *hi). false: serve the fault the ordinary way. Async-signal-safe.
bool serveScanFault(RegionImpl* R, uint64_t b, uintptr_t* lo, uintptr_t* hi);
// Opens the shut scan-window blocks of [b0, b1) for writes (one call per run). 0 or errno;
// on failure the runs before the failing one are open.
int openScanWindowsLocked(RegionImpl* R, uint64_t b0, uint64_t b1);
// Unmaps the shut scan-window blocks of [b0, b1) back to placeholders (one call per run;
// they hold the source's bytes, so nothing is lost). 0 or errno.
int dropShutCopiesLocked(RegionImpl* R, uint64_t b0, uint64_t b1);
// After a commit or abort: the open blocks of the pool's windows that hold the source's
// bytes (compared first) are shut again, one call per run, so that later write scans need
// not compare them. A failed call leaves its run open. R->mu held.
void shutScanWindowsLocked(RegionImpl* R);
// The uffd service after serving a fault at addr: if the fault lay in a scan window of
// the current views() range and the window before it is loaded (a sequential reader),
// [*from, *to) are the windows after it to load ahead (at most
// kScanPrefetchWindows, at most that many past the range: views() reads on). Takes R->mu.
bool scanPrefetchRange(RegionImpl* R, uintptr_t addr, uintptr_t* from, uintptr_t* to);
// Loads the scan window at `at` (a window address of R) ahead of the reader, if it lies in
// the current views() range (or within kScanPrefetchWindows past it) and is not loaded: Budget::mu then R->mu, taken here (none
// held by the caller). true if it loaded a window now.
bool prefetchScanWindow(RegionImpl* R, uintptr_t at);
// At close: the spare slot and its scratch page are unmapped.
void releaseScanSpare(RegionImpl* R);
// The write scan's part for scan windows: each open copy in [b0, b1) is compared with the
// source and marked dirty if it differs. R->mu held.
void compareScanCopiesLocked(RegionImpl* R, uint64_t b0, uint64_t b1);

// ---- scan_write_fault.cc ----
// What a write fault on a shut scan window came to (serveScanWriteFault).
enum class ScanWrite {
  NotShut,  // addr lies in no shut window: serve the fault the ordinary way
  Opened,   // the block is writable now (Uffd: the writer is woken): retry the access
  Dropped,  // the window's shut copies are placeholders again: retry the access, which
            // faults again and maps the block the ordinary way (Uffd: woken here)
  Failed,   // nothing could make the block writable (the error is recorded): Sigsegv mode
            // ends the process (THE FAULT RULE); Uffd mode never returns it (it ends the
            // process itself rather than let the writer fault forever)
};
// A write fault at addr (a SIGSEGV on a read-only page in Sigsegv mode, a write-protect
// fault in Uffd mode). In a shut scan window: opens the window; where the kernel refuses,
// makes room (ENOMEM: the region's clean blocks, then its dirty ones spilled; then the
// other regions of the process) and opens again, else drops the window's shut copies;
// Uffd mode, when even that fails: marks the block dirty BEFORE lifting the write
// protection of that block alone. Takes R->mu (and, making room, Budget-free region
// locks one at a time with R->mu released). Async-signal-safe.
ScanWrite serveScanWriteFault(RegionImpl* R, uintptr_t addr);
// Native tests only: the next n calls of each kind fail with EAGAIN, as a refused
// mprotect / UFFDIO_WRITEPROTECT / placeholder would (opening a window, dropping its shut
// copies, lifting one block's write protection in Uffd mode).
struct ScanWriteFaultInjection {
  std::atomic<int> open{0}, drop{0}, lift{0};
};
extern ScanWriteFaultInjection g_scanWriteFaults;
// true (and one fewer to come) if the next call of this kind is to fail.
bool injectedFailure(std::atomic<int>& count);

// ---- waiting_faults.cc (Uffd mode; see "Faults that wait for a fetch" in vmem.h) ----
// R->mu held, b UNMAPPED. If b is a block the source must fetch (not ready) and the source
// asked for it (requestFetch), records a waiting fault on b (once per block; an entry
// past its deadline is dropped and false returned), asks for the other not-ready blocks
// of [w0, w1) in the same request, and returns true: the caller leaves the fault unanswered.
// false: serve the fault the ordinary way (an unready block then reads as zeros, the error
// recorded).
bool waitForFetchLocked(RegionImpl* R, uint64_t b, const WaitingWindow& window);
// R->mu held: b has no waiting fault any more (mapped, or served otherwise); true if it had
// (the caller wakes every page of b).
bool dropWaitingLocked(RegionImpl* R, uint64_t b);
// R->mu held (closing): every entry goes; the threads are woken by the unregistration.
void clearWaitingLocked(RegionImpl* R);
// Waiting faults of the whole process (a hint for the service's poll timeout).
uint64_t waitingFaultsNow();
uint64_t monoNs();

// ---- fault_path.cc ----
// Serves a fault at addr (inside R): maps the window around it. `sequentialOk`: the
// service may grow the window for sequential faults (Uffd). Gives the mapped byte range
// to wake in [*lo, *hi). Takes Budget::mu then R->mu itself. Returns false only if the
// faulting block could not be mapped (even as zeros, after making room); true if it was
// mapped when R->mu was released (by this call or before it), or the region is closing.
// What happens to the block after that (another fault may evict or spill it before the
// faulting thread retries) is no failure: the retry faults again and is served again.
// `waits`: nullptr where a fault cannot wait (Sigsegv mode: the handler runs on the faulting
// thread); else set true when the fault now waits for a fetch (waitForFetchLocked): then
// nothing is woken for it, *lo and *hi stay the faulting page.
bool serveFault(RegionImpl* R, uintptr_t addr, bool sequentialOk, uintptr_t* lo, uintptr_t* hi, bool* waits);
// The second half of serveFault(): the window [w0, w1) around block b decided (ra: the
// read-ahead run of a sequential fault, else 0), made room for and mapped. Serving a
// waiting fault again calls it with the window decided when the fault came.
bool serveWindow(RegionImpl* R, uintptr_t addr, uint64_t b, uint64_t w0, uint64_t w1, uint64_t ra, bool sequentialOk,
                 uintptr_t* lo, uintptr_t* hi, bool* waits);
// No lock held. The other regions of the process (other handles, whose budgets do not see
// `self`) give back their VMAs: their clean blocks, or (`spill`) their dirty ones too.
void makeRoomInProcess(RegionImpl* self, bool spill);

// ---- uffd_service.cc ----
struct UffdProbe {
  bool ok = false;
  bool kernelFaults = false;
};
UffdProbe probeUffd();
int uffdServiceFd();  // the started service's fd, or -1 with errno set
int uffdRegister(int fd, uint8_t* at, uint64_t len);
int uffdUnregister(int fd, uint8_t* at, uint64_t len);
int uffdWake(int fd, uintptr_t lo, uintptr_t hi);  // 0 or errno

// ---- sigsegv_service.cc ----
int sigsegvServiceStart();  // installs the process-wide handler once; 0 or errno

// ---- registry.cc ----
RegionImpl* registryAcquire(uintptr_t addr, int* slot);
void registryRelease(int slot);
// Calls fn(region, ctx) for every registered region, each kept alive meanwhile (no lock
// taken: fn runs with none of ours held unless it takes them). Async-signal-safe.
void registryForEach(void (*fn)(RegionImpl*, void*), void* ctx);
bool registryOverlaps(uintptr_t lo, uintptr_t hi);
int registryInsert(RegionImpl* R);  // slot or -1 (full)
void registryRemove(int slot);      // waits until no fault path uses the slot

// ---- map_budget.cc ----
// Called WITHOUT R->mu held, before mapping a run of `blocks` more blocks of some region
// (at most 2 * blocks + 1 more mappings: a piece and a tail each, one placeholder split).
void budgetMakeRoom(BudgetImpl* B, uint64_t blocks);
void budgetAttach(BudgetImpl* B, RegionImpl* R);
void budgetDetach(BudgetImpl* B, RegionImpl* R);
// Unmaps up to `want` clean blocks of R by the clock; returns how many. R->mu held.
uint64_t evictLocked(RegionImpl* R, uint64_t want);
// Charges block b's change of state to R (and its budget), with b's neighbours in their
// current states: right after b became mapped (mapped = true), or right before its meta is
// reset as it becomes a placeholder (false).
void chargeLocked(RegionImpl* R, uint64_t b, bool mapped);

}  // namespace vmem
}  // namespace txa
