// vmem — the virtual-memory layer of txarray: views over the kernel's page cache.
//
// CAVEATS FIRST
//   - Linux only. Plain C++17; no Node/N-API here (the binding wraps it).
//   - A clean block of a view IS the data file's page cache: it is mapped MAP_PRIVATE from
//     the store's file. Such a mapping is exact only while the snapshot it came from is held
//     (LMDB never rewrites a page a live reader can see). The engine therefore calls
//     invalidate()/markClean()/dropDirty() for every block another commit (or its own)
//     changed BEFORE it releases the old snapshot.
//   - System calls on pages that are not mapped yet work only in Uffd mode with kernel
//     faults allowed (FaultInfo::kernelFaults). Elsewhere they fail with EFAULT: call
//     populate() on the range first (the binding offers it as `view(..., {populate})`).
//   - Regions are not served in a fork()ed child.
//
// Vocabulary
//   region  — one reserved address range per open array (per Store handle); byte o of the
//             array lives at base() + o.
//   block   — the storage unit (blockBytes, a power of two, a multiple of the page).
//   window  — what one fault maps: the faultBytes-aligned run of blocks around the fault,
//             growing up to kReadAheadMaxBytes while faults are sequential (Uffd mode);
//             after a fault far from the last one (beyond a window of it) whose reader went
//             on into the blocks the last far fault mapped past its own (a probe of their
//             pages' presence in the page tables, one PAGEMAP_SCAN), the blocks holding
//             faultBytes from the faulting address on (a reader copying runs out from their
//             starts takes one fault per run); the faulting block alone while faults are
//             scattered (far, twice in a row or more, with no such evidence).
//
// Block states (per block, guarded by Region::mu)
//   UNMAPPED  a placeholder: nothing present. Uffd: anonymous, registered for MISSING
//             faults. Sigsegv: PROT_NONE. Touching it is a fault that maps the block.
//   FILE      [0, fileBytes) is a MAP_PRIVATE mapping of the block's data-file pages, the
//             rest an anonymous read-write mapping (reads the zero page). A first write to
//             a page is the kernel's copy-on-write: the page becomes private anonymous.
//   ANON      the whole block is anonymous read-write: a block the store does not hold
//             (zeros), one whose value is not page-aligned in the file, or one clipped by
//             sourceLimit; in the last two cases the source's bytes were copied in
//             (`copied`). Also a block of a scan window (below): copied, and read-only
//             until the window's first write.
//   SPILL     the whole block is a MAP_SHARED mapping of the region's spill file, which
//             holds the block's bytes (a spilled block touched again). Always dirty.
//   dirty     a flag on a mapped block: it holds writes this transaction has not
//             committed. Set by write(), discard(), and by the write scan (below).
//   spilled   the block's bytes live in the spill file: SPILL, or UNMAPPED ("parked").
//             A parked block is dirty for every call (dirtyBlocks, isDirty, invalidate);
//             touching it maps it SPILL, copyBlock() preads it.
//
// The spill file (keeps the budget whatever a transaction writes)
//   When clean blocks do not make room in the budget (or mmap fails at vm.max_map_count),
//   dirty blocks are spilled: made read-only, their bytes pwritten to a per-region memfd at
//   the block's offset, and their range turned back into a placeholder (its VMAs merge
//   away). A run the kernel refuses to make read-only (at vm.max_map_count) stays mapped.
//   SPILL blocks are unmapped at no cost (the file holds them). A store racing with a
//   spill faults on the read-only block and waits for Region::mu (see THE FAULT RULE).
//   markClean/dropDirty/
//   discard/dropFrom forget spilled blocks; the memfd is closed once none is left. Its
//   pages count as the process's RssShmem (not RssAnon) and are swappable like tmpfs.
//
// Finding writes without faults (the write scan)
//   A written page of a FILE or ANON block is present, not a file page and not the zero
//   page: PAGEMAP_SCAN (Linux >= 6.7) reports exactly those, one ioctl over the mapped span.
//   Without PAGEMAP_SCAN, /proc/self/pagemap is read instead and candidate pages of
//   anonymous parts are compared with zeros. A `copied` block is compared with the hash taken
//   when its bytes were copied in.
//   The scan runs in dirtyBlocks(), isDirty(), and before anything unmaps clean blocks
//   (the budget scans only the runs it is about to unmap).
//
// SCAN WINDOWS (scan_windows.cc): huge-page copies for sequential readers
//   loadSequential() and faults inside the range it recorded load a kScanWindowBytes-
//   aligned run of UNMAPPED blocks (base() is aligned to it) into one anonymous mapping
//   advised MADV_HUGEPAGE: filled by preadv at the blocks' file offsets before it becomes
//   visible (mremap into place), so a reader maps 2 MiB per page-table entry instead of
//   4 KiB. A window is two huge pages: each page-table call of its load and eviction
//   covers 4 MiB. Its blocks are ANON with `copied` = shut.
//   - A window is a snapshot copy, exact while its snapshot is held, like a FILE block:
//     markClean/dropDirty/invalidate treat its blocks as any mapped block (unmapped one run
//     per call), so the same rule (before the old snapshot is released) covers it.
//   - Writes: a shut window is read-only (Sigsegv mode: PROT_READ; Uffd mode: write-
//     protected by the userfaultfd, so system calls that write into it are served too). The
//     first write opens it: one mprotect / UFFDIO_WRITEPROTECT per run of its shut blocks,
//     inside the fault; its blocks become `open` (where the kernel refuses, see THE FAULT
//     RULE). The write scan compares each open block
//     with the source: a block is dirty exactly when its bytes differ. markClean() and
//     dropDirty() shut the open blocks that hold the source's bytes again (compared first;
//     one call per run).
//   - At most kScanWindowsMax windows per region; loading one more first evicts the least
//     recently used window: a whole shut window is recycled (mremap to the region's spare
//     slot, and the next window is read into that huge page), any other has its clean
//     blocks unmapped (one call when none is dirty). RssAnon: kScanWindowsMax + 1 windows.
//   - Uffd mode: after a fault served with a scan window whose previous window is loaded
//     (a sequential reader), the service thread loads up to
//     kScanPrefetchWindows further windows (of the loadSequential() range, or just past it:
//     the next chunk of views()) while no fault waits (same locks, same order as a fault). The map budget
//     counts their blocks and may unmap single blocks of a window, like any clean block.
//   - Not used where THP is off or its PMD does not divide kScanWindowBytes, blocks are larger than
//     a window, or TXARRAY_SCAN_WINDOWS=0. Faults outside the recorded range never load
//     windows.
//
// Page-table work is O(1) per fault window, per commit and per eviction batch: blocks are
// mapped into empty placeholders (no TLB flush), and unmapping goes one call per run of
// adjacent blocks.
//
// Threads and locks
//   registry     process-wide table of regions, looked up lock-free from the fault paths.
//   Budget::mu   one per Budget (list of regions, eviction passes; its counts are atomic).
//   Region::mu   one per region: block states, the budget charge of the region, the
//                kernel-side mappings of the region, the error slot.
//   Lock order: Budget::mu before Region::mu. The fault path takes Budget::mu (to make
//   room) WITHOUT a Region::mu held, then Region::mu.
//   THE RULE: no thread touches an UNMAPPED block of a region while holding a Region::mu,
//   a Budget::mu, or a lock that BlockSource::locate()/pin() take: the fault would wait for
//   that lock; nor WRITES a block of a shut scan window (below) while holding them: the
//   write fault opens the window under Region::mu. Other mapped blocks are ordinary
//   memory: touching them never enters our code. Every Region method obeys THE RULE.
//   THE FAULT RULE (a fault racing with unmaps and spills never ends the process):
//   - Whenever Region::mu is free, every mapped block of the region is read-write, except
//     the blocks of shut scan windows (read-only until a write fault opens the window under
//     Region::mu), and every unmapped one is a placeholder. Only a spill or an eviction
//     makes blocks read-only otherwise, holding Region::mu throughout, and before
//     unlocking it leaves them parked (placeholder, bytes in the spill file), unmapped, or
//     read-write as they were.
//   - A dirty block's bytes are copied out only while the block is read-only, so no store
//     can land in memory that is about to be dropped. Likewise a clean block is unmapped
//     by the budget or a scan window's eviction only while read-only from before the write
//     scan that found it clean (holdStoresLocked): a racing store faults and waits instead
//     of being dropped; blocks that scan finds written are opened again before
//     Region::mu is released. (Where the kernel refuses the protection at vm.max_map_count,
//     the budget leaves the run mapped; a scan window is then evicted unguarded.)
//   - A fault waits for Region::mu, then either finds its block mapped (served already) or
//     maps it (from the spill file if parked). It judges success by that one locked step
//     alone: another thread may evict or spill the block before the faulting thread
//     retries, and the retry faults again and is served again.
//   - At the VMA limit the faulting region first unmaps its own clean blocks, then spills
//     its dirty ones pass after pass; if that is not enough (other handles hold the VMAs:
//     each budget sees only its own regions), every other region of the process does the
//     same, one Region::mu at a time with none held by the fault (no lock order to break).
//   - A write into a shut scan window opens it. Where the kernel refuses (mprotect ENOMEM:
//     the copies lie inside a larger VMA at vm.max_map_count; UFFDIO_WRITEPROTECT), room
//     is made as above and the window opened again; else its shut copies go back to
//     placeholders (they hold the source's bytes) and the write faults again, on the
//     placeholder (Uffd: the writer is woken and faults through the MISSING path), served
//     read-write by the ordinary path (scan_write_fault.cc).
//   - THE WRITE-PROTECTION RULE: a shut copy becomes writable only as an open block (which
//     the write scan compares with the source) or after its block is marked dirty, so every
//     write through it is committed; nothing else lifts a protection.
//   - In Sigsegv mode a fault ends the process only when its block cannot be mapped, not
//     even as zeros, nor a shut copy opened or dropped, after all of that: the kernel
//     refused every mapping (in Uffd mode the faulting thread of a MISSING fault retries;
//     a write into a shut copy that can be neither opened nor dropped marks its block dirty
//     and lifts the protection of that block alone, and ends the process if even that is
//     refused, rather than let the writer fault forever).
//   What runs inside a fault (the uffd service thread, or a SIGSEGV handler): the
//   BlockSource's locate()/pin()/unpin()/ready()/requestFetch(), mmap, mremap, mprotect, madvise, munmap, ioctl,
//   pread(v), pwrite, memfd_create, memcpy, atomics, Region::mu, Budget::mu. Never malloc,
//   exceptions, stdio or JavaScript.
//
// FAULTS THAT WAIT FOR A FETCH (Uffd mode only; waiting_faults.cc)
//   A block the source must fetch from far away first (BlockSource::ready() false: a stub of
//   a lazily cached remote store) is not served zeros when a fault touches it: the service
//   thread, holding Region::mu (Budget::mu released), asks the source for it
//   (requestFetch(): no blocking, no malloc; the unready blocks of the fault's window ride
//   along in the same request), records the block in the region's waiting list (at most
//   kWaitingFaultsMax blocks per region) and leaves the fault unanswered: the faulting
//   thread sleeps in the kernel, the service thread goes on serving other faults.
//   - Served: whoever fetched makes the block ready in the source (the engine gives the
//     bytes to the snapshot that named the version) and calls resumeWaitingFaults() from
//     its own thread, holding no lock: each waiting block is served again by the ordinary
//     fault path (Budget::mu, then Region::mu, then the source's locate()/pin(): the same
//     locks as any fault) and every page of it woken. The block is read from the source's
//     CURRENT snapshot at that moment, as any fault would read it: the fetched bytes serve
//     it only if that snapshot names the very version fetched; after a move to a snapshot
//     naming another version the block is still unready, is asked for again, and waits on.
//     No fault is ever served bytes of a snapshot other than the one the source pins.
//   - THE WAITING RULE: the fetcher's path to serve a waiting fault takes only the locks a
//     fault takes (THE RULE keeps every thread that touches an unmapped block from holding
//     them), plus locks of its own never held while touching region memory. A faulting
//     thread may hold anything else — the engine's write lock, a snapshot's copy in
//     progress, a kernel lock inside write(2) — and the fetch still completes.
//   - Failed: a source whose fetch failed answers requestFetch() with 0 for that version
//     (until it moves to another snapshot); the fault is then served as an unreadable block
//     (zeros, the error recorded on the region: THE FAULT RULE, the engine refuses to commit).
//   - Never for ever: a fault waits at most the time requestFetch() returned; while any
//     fault waits the service thread serves waiting blocks again every 100 ms, answering
//     those past their time as unreadable (fetchWaitsExpired). A full waiting list, or a
//     closed or absent fetcher, serves the fault as unreadable at once.
//   - close(): the list is dropped and the unregistration wakes the waiting threads (what
//     they touch next is the caller's business, as for any fault racing close()).
//   - Sigsegv mode never waits: the handler runs on the faulting thread, which may hold
//     what the fetcher needs (the engine fetches a view's blocks before it is made there).
//
// Errors: methods return Status with details in Error; nothing throws across the fault
// path. A fault that cannot map a block maps zeros (ANON) and records the error on the
// region (takeError()): the engine refuses to commit such a transaction.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../block_source.h"

namespace txa {
namespace vmem {

enum class FaultMode { Auto, Uffd, Sigsegv };
enum class Status { Ok, InvalidArgument, SystemError, SourceError, Unsupported, Closed, TooManyRegions };

struct Error {
  Status status = Status::Ok;
  int sysErrno = 0;       // errno of the failed call, when status == SystemError
  uint64_t block = 0;     // block concerned, when there is one
  const char* what = "";  // static text naming the operation
};
std::string describe(const Error& e);  // "what: strerror (block N)"
const char* statusName(Status s);
const char* faultModeName(FaultMode m);  // "auto" "uffd" "sigsegv"

constexpr size_t kMaxRegions = 4096;                // registry slots
constexpr uint64_t kDefaultFaultBytes = 256 << 10;  // the first window of a fault
constexpr uint64_t kReadAheadMaxBytes = 4 << 20;    // the longest window (sequential faults)
constexpr uint64_t kDefaultMaxMapCount = 65530;     // vm.max_map_count where /proc does not tell
constexpr uint64_t kRegionMappings = 4;  // a region's own (block states, reservation, scan-window pool, spare)
constexpr uint64_t kScanWindowBytes = 4 << 20;      // a scan window: two huge pages
constexpr size_t kScanWindowsMax = 8;               // scan windows a region holds (32 MiB)
constexpr size_t kScanPrefetchWindows = 4;          // Uffd: windows loaded ahead of a views() reader (16 MiB)

// What this system offers; probed once.
struct SystemInfo {
  bool uffd = false;          // a userfaultfd with MISSING registration can be opened
  bool kernelFaults = false;  // ... and it serves faults taken inside system calls
  bool pagemapScan = false;   // PAGEMAP_SCAN works (else /proc/self/pagemap is read)
  size_t pageBytes = 0;
  FaultMode defaultMode = FaultMode::Sigsegv;  // what Auto resolves to (env included)
  Error envError;  // TXARRAY_FAULT_MODE held an unknown value
};
const SystemInfo& systemInfo();

// Serves again every fault waiting for a fetch (see FAULTS THAT WAIT FOR A FETCH): call it
// with no lock held after making blocks ready (or failed) in a source. Returns how many
// waiting blocks were served (mapped, or answered as unreadable). Never call it inside a fault.
uint64_t resumeWaitingFaults();

// True if [p, p + bytes) overlaps the reservation of an open region: touching it may fault,
// and in Uffd mode such a fault may wait for a fetch (so a caller holds no lock the fetcher
// takes while it touches such memory: THE WAITING RULE).
bool inAnyRegion(const void* p, uint64_t bytes);

class Budget;
struct RegionImpl;
struct BudgetImpl;

struct RegionOptions {
  uint64_t reserveBytes = 0;       // address space (MAP_NORESERVE: costs no memory)
  uint64_t blockBytes = 64 << 10;  // power of two, >= page
  uint64_t faultBytes = 0;         // first window; 0 = kDefaultFaultBytes (>= blockBytes)
  FaultMode mode = FaultMode::Auto;
  Budget* budget = nullptr;        // optional; must outlive the region
};

struct RegionStats {
  uint64_t faults = 0;         // faults served (one per window)
  uint64_t blocksMapped = 0;   // blocks mapped (cumulative)
  uint64_t fileBlocks = 0;     // ... of which from the data file
  uint64_t copiedBlocks = 0;   // ... of which copied (not page-aligned, or clipped)
  uint64_t mappedNow = 0;      // blocks mapped now
  uint64_t dirtyNow = 0;       // blocks known dirty now
  uint64_t evictions = 0;      // blocks unmapped by the budget
  uint64_t scans = 0;          // write scans
  uint64_t sourceErrors = 0;   // locate/pin failures (zeros served)
  uint64_t unmapCalls = 0;     // system calls that unmapped runs of blocks
  uint64_t spills = 0;         // dirty blocks written to the spill file (cumulative)
  uint64_t spilledNow = 0;     // blocks whose bytes live in the spill file now
  uint64_t scanWindows = 0;          // scan windows loaded (loadSequential)
  uint64_t scanWindowFallbacks = 0;  // windows loadSequential left to the fault path
  uint64_t scanWindowsOpened = 0;    // scan windows opened by a first write
  uint64_t scanWindowEvictions = 0;  // scan windows unmapped to make room in the pool
  uint64_t scanWindowsRecycled = 0;  // ... of which moved aside whole, their huge page reused
  uint64_t scanWindowsPrefetched = 0;  // scan windows the uffd service loaded ahead of the reader
  uint64_t scanWindowOpenRefusals = 0;  // write faults whose window the kernel refused to open
  uint64_t faultsWaited = 0;       // Uffd: faults that waited for a fetch (one per block and wait)
  uint64_t fetchWaitsExpired = 0;  // ... answered as unreadable because their wait ran out
  uint64_t waitingNow = 0;         // blocks with faults waiting for a fetch now
};

class Region {
 public:
  // Reserves, registers with the fault service, attaches to the budget. Returns nullptr
  // and fills *err on failure (InvalidArgument for bad options or no address space).
  static std::unique_ptr<Region> open(BlockSource* source, const RegionOptions& options, Error* err);
  ~Region();  // close()
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

  // Idempotent. Unregisters (waking threads waiting on a fault: they then see zeros) and
  // unmaps the reservation. Touching it afterwards is the caller's bug.
  void close();

  uint8_t* base() const;
  uint64_t reserveBytes() const;
  uint64_t blockBytes() const;
  uint64_t blockCount() const;
  FaultMode mode() const;  // Uffd or Sigsegv
  uint8_t* blockPtr(uint64_t index) const;

  // Sorted indexes of dirty blocks (runs the write scan first). May throw bad_alloc.
  std::vector<uint64_t> dirtyBlocks();
  bool isDirty(uint64_t block);
  bool isMapped(uint64_t block);

  // Copies block `index` to dst (outside any region) without entering the fault path:
  // mapped blocks from region memory, unmapped ones from the source. SourceError if the
  // source failed (dst then holds zeros there).
  Status copyBlock(uint64_t index, uint8_t* dst, Error* err = nullptr);

  // memcpy(base()+offset, src, len) for the engine: maps the blocks it reaches first (no
  // fault), marks them dirty, then copies with no lock held. src may lie in this region
  // (memmove semantics) or another one (copied through a bounce buffer).
  // InvalidArgument if the range leaves the reservation; SystemError if a mapping failed
  // (the bytes before the failing block are written).
  Status write(uint64_t offset, const uint8_t* src, uint64_t len, Error* err = nullptr);
  // The first half of write(): maps and marks dirty the blocks of [offset, offset+len), so
  // that the caller may then store into them. *reached: where the prepared range ends
  // (offset+len on success). Explicit writes count even when they store the bytes already
  // there; stores through views count only when they change bytes of copied blocks.
  Status prepareWrite(uint64_t offset, uint64_t len, uint64_t* reached, Error* err = nullptr);

  // Maps every block of [offset, offset+len) now (for system calls in modes without kernel
  // faults), and opens the scan windows there for writes (where the kernel refuses, their
  // shut copies there are unmapped and the blocks mapped the ordinary way). The budget may
  // unmap them again later, as any clean block.
  Status populate(uint64_t offset, uint64_t len, Error* err = nullptr);

  // A sequential reader is about to read [offset, offset+len): the kScanWindowBytes-aligned
  // window holding offset is loaded now as a private huge-page copy, and the range is
  // recorded: until the next call, a fault on an UNMAPPED block inside it loads that block's
  // window (see SCAN WINDOWS above). A window is loaded only if its blocks are all UNMAPPED
  // and under sourceLimit; anything else (a block of it mapped or dirty, the window crossing
  // sourceLimit or the reservation's end, no THP, a failed read) is left to the ordinary
  // fault path: Ok either way. InvalidArgument if the range leaves the reservation; Closed
  // after close(). Takes Budget::mu then Region::mu; never call it inside a fault.
  // Obeys THE RULE.
  Status loadSequential(uint64_t offset, uint64_t len, Error* err = nullptr);

  // The engine stored these dirty blocks: they are unmapped (one call per run) so that the
  // next touch maps the new file pages. Call before the old snapshot is released.
  Status markClean(const uint64_t* blocks, size_t count, Error* err = nullptr);
  // Abort: every dirty block is unmapped (scan first).
  Status dropDirty(Error* err = nullptr);
  // Other commits changed these blocks: the clean mapped ones are unmapped; dirty ones are
  // left (the engine reports a conflict) and counted in *skippedDirty.
  Status invalidate(const uint64_t* blocks, size_t count, size_t* skippedDirty = nullptr, Error* err = nullptr);
  Status invalidateAll(size_t* skippedDirty = nullptr, Error* err = nullptr);
  // After a move to another snapshot: the clean blocks a fault served as zeros because the
  // source could not give them (THE FAULT RULE) are unmapped, so that the next touch reads
  // the new snapshot (or waits for its fetch) instead of the zeros. Dirty ones stay (the
  // engine drops them with dropDirty()).
  Status dropUnreadable(Error* err = nullptr);

  // Shrink to fromByte: blocks entirely past it are unmapped (dirty or not) and clean; the
  // tail of the block holding fromByte is zeroed in place (after unlocking: THE RULE) and
  // that block is dirty; sourceLimit() becomes min(sourceLimit(), fromByte).
  Status discard(uint64_t fromByte, Error* err = nullptr);
  // Growing from fromByte: whatever region memory holds at or past it (stores through a view
  // taken before a shrink) is dropped: blocks entirely past it are unmapped (dirty or not),
  // the tail of the block holding it is zeroed in place where it is not zero (no lock held).
  // sourceLimit is unchanged.
  Status dropFrom(uint64_t fromByte, Error* err = nullptr);
  // Bytes at or past the limit read as zeros whatever the source holds. Changing it unmaps
  // the clean blocks it crosses. Default UINT64_MAX.
  Status setSourceLimit(uint64_t bytes, Error* err = nullptr);
  uint64_t sourceLimit();

  bool takeError(Error* out);  // the first error the fault path recorded; clears it
  RegionStats stats();

  RegionImpl* impl() const { return impl_; }

 private:
  explicit Region(RegionImpl* impl) : impl_(impl) {}
  RegionImpl* impl_;
};

struct BudgetStats {
  uint64_t limit = 0;         // in mappings (VMAs)
  uint64_t mappings = 0;      // mappings the attached regions' mapped blocks cost now
  uint64_t mappedBlocks = 0;  // mapped blocks of all attached regions
  uint64_t evictions = 0;     // clean blocks unmapped to stay under the limit
  uint64_t spills = 0;        // dirty blocks unmapped to the spill file to stay under it
  uint64_t passes = 0;
  uint64_t regions = 0;
};

// A budget of mappings (VMAs of vm.max_map_count, 65530 by default) shared by a group of
// regions; not memory (clean pages are page cache the kernel reclaims). A mapped block is a
// mapping of its own and splits its placeholder unless a neighbour is mapped: it costs 0 to
// 2 mappings, counted exactly from its neighbours' states (the region's edges count as
// placeholders). Before a fault maps past the limit, clean blocks picked by a clock are
// unmapped, a batch at a time (limit/16), each run of picked blocks (and the placeholders
// between them) in one call; where that is not enough, dirty blocks are spilled (see "The
// spill file"), so the limit holds for any transaction (a fault may still map one window
// past it). Each attached region is charged kRegionMappings for its own mappings besides
// its blocks'. Mappings outside the regions (the program's own) are not counted: the
// default leaves them a quarter of the process's limit. The count needs each unmapped
// stretch of a region to be one VMA: Uffd mode makes a placeholder over the whole stretch
// it joins (block_mapping.cc), since placeholders that took write faults apart hold
// different anon_vmas and the kernel never merges those.
class Budget {
 public:
  explicit Budget(uint64_t limitMappings);
  ~Budget();  // requires that no region is attached
  Budget(const Budget&) = delete;
  Budget& operator=(const Budget&) = delete;
  void setLimit(uint64_t limitMappings);
  uint64_t limit() const;
  void trim();  // unmaps clean blocks, then spills dirty ones, until the count is at most the limit
  BudgetStats stats() const;
  BudgetImpl* impl() const { return impl_; }

 private:
  BudgetImpl* impl_;
};

// Three quarters of the process's vm.max_map_count (read once per call from /proc;
// kDefaultMaxMapCount where it cannot be read).
uint64_t processMappingsDefault();

// The largest mapping limit a budget takes from TXARRAY_MAPPINGS or the binding (the
// largest vm.max_map_count the kernel accepts).
constexpr uint64_t kMaxMappingsLimit = 0x7fffffff;

// Parses a value of TXARRAY_MAPPINGS: decimal digits only, 1 to kMaxMappingsLimit. Ok with
// *limit set, or InvalidArgument with *err set (nothing else changed).
Status parseMappingsLimit(const char* text, uint64_t* limit, Error* err);

// The budget every handle of the process shares unless it asks for its own: vm.max_map_count
// bounds the process, not a handle. Created at the first call and never destroyed (views
// may outlive every handle). Its limit: TXARRAY_MAPPINGS, read once at that first call, or
// processMappingsDefault() where it is unset; Budget::setLimit changes it later. Where
// TXARRAY_MAPPINGS held anything but a valid limit at the first call, this and every later
// call return nullptr with *err set (InvalidArgument): the process has no shared budget.
// Thread-safe; not for a signal handler (it may allocate).
std::shared_ptr<Budget> processBudget(Error* err);

}  // namespace vmem
}  // namespace txa
