// vmem — the virtual-memory layer of txarray.
//
// A Region is one reserved address range per open array (per snapshot). Byte `o` of the
// array lives at base() + o. Pages are loaded lazily from a BlockSource when touched,
// writes are tracked, and the engine asks which blocks were written when it commits.
// Plain C++17, Linux only, no Node/N-API here: the binding wraps this.
//
// ---------------------------------------------------------------------------------------
// Vocabulary
//   page   — the kernel page (sysconf(_SC_PAGESIZE), 4 KiB here).
//   fault window (faultBytes) — what one missing fault loads: the faultBytes-aligned
//            window around the faulting address (a power of two, a multiple of the page).
//            It may be smaller than a block or span several blocks: small blocks keep
//            appends cheap (little write amplification), big windows keep scans cheap (the
//            fault round trip, not the copy, dominates small faults).
//   unit   — min(faultBytes, blockBytes): the granularity of the "loaded" state. A unit
//            lies in exactly one block. A fault loads the faulting unit, then the other
//            units of its window that are not loaded yet.
//   block  — the storage unit of the BlockSource (blockBytes, a power of two, a multiple
//            of the unit). Dirtiness is kept per BLOCK, because the engine stores blocks:
//            the first write to a clean block makes all of its loaded pages writable, so
//            one write fault per block per transaction is all we ever take (measured:
//            a synchronous write-protect fault costs 7-34 µs, so per-page tracking would
//            cost more than it saves, and per-page mprotect in SIGSEGV mode exhausts
//            vm.max_map_count).
//
// Page state machine (per unit for "loaded", per block for "dirty")
//
//     NOT_LOADED --read fault: fill from source, map write-protected--> CLEAN
//     NOT_LOADED --write fault: fill, block becomes DIRTY-------------> DIRTY
//     NOT_LOADED --write(): block DIRTY, fill with source+written bytes> DIRTY
//     CLEAN      --write fault / write(): DIRTY, unprotect block------> DIRTY
//     CLEAN      --eviction / invalidate / invalidateAll--------------> NOT_LOADED
//     DIRTY      --markClean (after the engine stored the block)------> CLEAN
//     DIRTY      --dropDirty (abort) / discard (shrink)---------------> NOT_LOADED
//
//   A unit of a DIRTY block that is not loaded stays NOT_LOADED until touched; when it is
//   touched it is loaded writable (the block already is dirty). Dirty blocks are never
//   evicted and never invalidated: they are the only copy of this transaction's writes.
//
// What a fill reads. Unit u of block b gets bytes [off, off+unitBytes) of the view the
//   source returns for b, where bytes past view.size read as zeros, and bytes at or past
//   sourceLimit() read as zeros whatever the source holds (see discard()). A source that
//   fails (pin() returns false) yields zeros and records an Error on the region.
//
// ---------------------------------------------------------------------------------------
// Fault services (FaultMode) — chosen per region when it is opened.
//
//   Uffd     userfaultfd. One process-wide service thread reads one userfaultfd (two if
//            both write-protect flavours are in use) and serves every uffd region: the
//            faulting thread sleeps in the kernel until the service thread has copied the
//            unit in (UFFDIO_COPY straight from the source's memory, or memcpy into
//            recycled pages moved in with UFFDIO_MOVE: "Page recycling" below). Faults taken inside
//            system calls (write(fd, base+o, n), read(fd, base+o, n)) are served the same
//            way, because we never ask for UFFD_USER_MODE_ONLY (root, or
//            vm.unprivileged_userfaultfd=1, or access to /dev/userfaultfd, is needed).
//   Sigsegv  fallback: the region starts PROT_NONE; the faulting thread itself serves the
//            fault inside our SIGSEGV handler (SA_SIGINFO|SA_ONSTACK), which chains to the
//            handler installed before ours (Node's, V8's) for addresses that are not in a
//            region, so an unrelated segfault still crashes exactly as before. A fill
//            writes through /proc/self/mem (the kernel's FOLL_FORCE path writes into the
//            PROT_NONE pages) and only then opens the unit with mprotect: other threads
//            never see a half-filled unit. Where /proc/self/mem is not writable, the fill
//            falls back to mprotect(RW)+memcpy (another thread may then observe a
//            half-filled unit for the duration of the copy; TXARRAY_VMEM_NO_PROC_MEM=1
//            forces this fallback, for tests). System calls on untouched pages fail
//            with EFAULT in this mode (as the kernel never raises signals for them): the
//            binding must touch pages first.
//
// Dirty tracking in Uffd mode (WpMode)
//   Sync   write-protect faults reach the service thread (UFFDIO_WRITEPROTECT); it marks
//          the block dirty and removes the protection of the whole block.
//   Async  UFFD_FEATURE_WP_ASYNC: the kernel resolves write-protect faults itself, without
//          waking anybody, and PAGEMAP_SCAN on /proc/self/pagemap (PAGE_IS_WRITTEN and
//          PAGE_IS_PRESENT: an unpopulated page otherwise reads as "written") tells which
//          pages were written. We scan before answering dirtyBlocks() and before evicting,
//          invalidating, dropping or discarding.
//          KNOWN RACE: between that scan and the MADV_DONTNEED (or the move to the page
//          pool) of an eviction, a write by ANOTHER thread to the clean block being
//          evicted is lost (the kernel offers no "drop unless written"). Sync mode has no
//          such window. Use Async only where one thread writes a region and eviction runs
//          on that same thread or not at all.
//
// Mode choice (FaultMode::Auto): env TXARRAY_FAULT_MODE=uffd|sigsegv|auto, else uffd if a
//   userfaultfd can be opened (/dev/userfaultfd USERFAULTFD_IOC_NEW, then the
//   userfaultfd(2) system call), else sigsegv. WpMode::Auto: env TXARRAY_WP_MODE=sync|async,
//   else Sync. Why Sync, although Async is available here: with dirtiness per block and the
//   service thread's short busy-poll, Sync measured 13-24 µs per first write to a 64 KiB
//   block (Async 12-16 µs: ~1 µs per written page plus a PAGEMAP_SCAN of ~1 ms per 256 MiB
//   loaded) and 37-72 µs per 1 MiB block (Async ~200 µs), and Sync has no eviction race.
//   Forcing a mode that is not available fails with Status::Unsupported.
//
// ---------------------------------------------------------------------------------------
// Page recycling (Uffd mode; SystemInfo::uffdMove)
//   Why: a fresh anonymous page costs ~1.2-1.4 µs here (memcg charge, zeroing, balloon
//   free-page reporting), against ~0.2 µs to memcpy 4 KiB into a page that exists; with
//   UFFDIO_COPY every fill pays it (the service thread spent 55% in the copy+allocation).
//   How: one pool per userfaultfd: a ring of at most kPagePoolMaxBytes of private anonymous
//   4 KiB pages (MADV_NOHUGEPAGE, MADV_DONTFORK), registered with that fd in WP mode only
//   (UFFDIO_MOVE wants its destination registered with the fd it runs on; without MISSING
//   mode a touch of a pool hole never reaches the service thread). A fill takes populated
//   pages from the pool, memcpys the unit's bytes (the source's, then zeros) into them
//   (pool memory: no uffd fault), and moves them into the region with UFFDIO_MOVE
//   (DONTWAKE; the window is woken once, as before). UFFDIO_MOVE maps a page writable and
//   without the uffd-wp bit (it has no WP mode; measured: a write-protected pool page
//   arrives unprotected), so a clean fill then write-protects the moved range
//   (UFFDIO_WRITEPROTECT, ~0.1 µs/page) BEFORE anybody is woken, in both WP modes (Async:
//   an unprotected page reads as written).
//   The window between the move and the protection: a store from ANOTHER thread that finds
//   the page present then does not fault. So after protecting, the fill compares the pages
//   with the bytes they must hold (source, zeros) and marks the block dirty if they differ
//   (a store of the same bytes changes nothing). This read of region memory under
//   Region::mu is the one exception to THE RULE: the pages were just mapped and nothing can
//   unmap them while the lock is held, so it cannot fault on us.
//   Drops (eviction, invalidate, dropDirty, discard, setSourceLimit) move the pages back
//   into the pool (UFFDIO_MOVE region->pool, ~0.12 µs/page against ~0.3-0.4 for
//   MADV_DONTNEED, and the page is not freed), as long as the pool holds less than
//   kPagePoolFloorBytes plus the region's budget batch (what one eviction pass frees,
//   limit/16 capped at 64 MiB: the pages the next fills of that pass want); the rest, and
//   every page a move refuses, go with MADV_DONTNEED as before.
//   Fallbacks: UFFDIO_MOVE refuses pages that are not exclusive (shared with a fork()ed
//   child: EBUSY), huge pages, holes, ...: a fill then copies the rest from the pool pages
//   (UFFDIO_COPY), a drop madvises the rest. An empty pool (first touch: nothing evicted
//   yet) means UFFDIO_COPY as before. Kernels without UFFD_FEATURE_MOVE (< 6.8), or
//   TXARRAY_VMEM_NO_MOVE=1, use UFFDIO_COPY/MADV_DONTNEED only. Budget accounting is
//   unchanged: pool pages are not loaded and not charged; the pool adds at most
//   kPagePoolMaxBytes per fd to the RSS (pagePoolStats()).
//   Locking: Pool::mu is a leaf, taken with a Region::mu held (drops) or none; producers
//   (drops, any thread) hold it while they move pages in at the ring's tail; the one
//   consumer (the service thread) holds it only to read and advance the head. No pin(), no
//   touch of region memory under it. In the fault: memcpy/memset into pool pages, memcmp,
//   UFFDIO_MOVE/WRITEPROTECT/COPY, madvise: no allocation.
//
// Read-ahead (Uffd mode)
//   Why: a scan pays one round trip per fault window, and the JS thread waits while the
//   service thread fills. A missing READ fault on the unit right after the last one loaded
//   by the previous read fault of the region (R->raNext) is sequential; from the SECOND
//   sequential fault in a row (one alone is what a random read straddling two windows
//   takes: it must not read ahead; measured, S1 first-touch lost 24%), the window grows by
//   `ra` units (loaded before the wake-up; ra starts at the window and doubles per
//   sequential fault, up to kReadAheadMaxBytes, and under a budget to limit/16), and after
//   waking the thread the service thread prefetches `ra` more, yielding as soon as another
//   fault is waiting (poll on the fds between units) so that read-ahead never delays a
//   waiting thread by more than one unit. Any other fault resets the stream (a non-
//   sequential read fault keeps the plain faultBytes window: random reads read no more than
//   before); a write fault ends it (reading ahead of a writer would load clean units that
//   each take a write-protect fault). Read-ahead stops at a loaded unit, at a unit with no
//   source bytes (a hole or past sourceLimit: zeros are not worth loading early; a failed
//   pin there is not recorded, the touch will record it), after a fault whose source
//   failed, and at the end of the reservation. Room is made in the budget first (without
//   the lock, as for a fault). Read-ahead units are loaded clean and counted in faults,
//   bytesLoaded and readAheadBytes. The stream state is owned by the service thread.
//   Sigsegv mode has no read-ahead (the fault is served on the faulting thread itself:
//   there is nothing to overlap with).
//
// ---------------------------------------------------------------------------------------
// Threads and locks
//
//   registry    process-wide table of regions, looked up by address from the fault path
//               without locks (a per-slot use count makes unregistration wait for lookups
//               that are still using the region). Insert/remove take a plain mutex.
//   Region::mu  one futex-based mutex per region. It protects the unit/block states, the
//               clock hand, sourceLimit, the error slot and the kernel-side page states
//               (present, write-protected, mprotect) of that region. It is held while a
//               fault is served, including while BlockSource::pin()/unpin() run.
//   Budget::mu  one per Budget: protects its list of regions and its round-robin hand.
//
//   Lock order: Budget::mu before Region::mu. Nothing takes Budget::mu while holding a
//   Region::mu.
//
//   THE RULE: no thread may touch region memory while holding a Region::mu, a Budget::mu,
//   or any lock that a BlockSource's pin() may take. In Uffd mode the touch would wait for
//   the service thread, which waits for that lock: deadlock. In Sigsegv mode the handler
//   would try to take it on the same thread. Every Region/Budget method obeys it (they
//   never touch region memory with a lock held; discard() writes zeros and write() copies
//   into loaded units after unlocking).
//   The engine must obey it too: e.g. do not hold the LMDB/engine mutex that pin() takes
//   while reading a block through blockPtr() — use copyBlock(), which does not fault.
//
//   Pool::mu   one per page pool (Uffd mode, see "Page recycling"): a leaf lock.
//
//   What runs inside a fault (service thread, or a signal handler in Sigsegv mode):
//   BlockSource::pin()/unpin(), memcpy, system calls, atomics, Region::mu, Budget::mu and
//   Pool::mu; in Uffd mode also read-ahead (after the wake-up) and the comparison of
//   freshly moved-in pages (the exception to THE RULE explained under "Page recycling").
//   Never malloc/free, never C++ exceptions, never stdio, never JavaScript.
//
//   BlockSource: pin()/unpin() may be called from the service thread, from any faulting
//   thread (Sigsegv mode), and from the caller of copyBlock() or write(); they are called
//   with the region's mu held and one pin is outstanding at a time per fault. unpin() is
//   called only after a pin() that returned true.
//
//   Region methods are thread-safe (they take Region::mu) unless noted. A region must not
//   be closed while another thread still touches its memory or calls its methods (the
//   binding detaches views first).
//
// Errors: methods return Status; details are in Error. No exception crosses the fault
//   path. open() reports failure through its Error out-parameter. Methods returning
//   std::vector may throw std::bad_alloc on the caller's thread.
//
// fork(): regions are not served in a child process (their memory is a plain private
//   copy there, not registered with the parent's userfaultfd). Do not use them in a child.
// ---------------------------------------------------------------------------------------
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../block_source.h"

namespace txa {
namespace vmem {

enum class FaultMode : int { Auto = 0, Uffd = 1, Sigsegv = 2 };
enum class WpMode : int { Auto = 0, Sync = 1, Async = 2 };  // meaningful in Uffd mode only

enum class Status : int {
  Ok = 0,
  InvalidArgument,  // a parameter breaks a documented precondition
  Unsupported,      // the forced mode is not available on this system
  SystemError,      // a system call failed; Error::sysErrno says which errno
  SourceError,      // BlockSource::pin() failed during a fault; zeros were served
  TooManyRegions,   // the process-wide registry is full (kMaxRegions)
};

struct Error {
  Status status = Status::Ok;
  int sysErrno = 0;       // errno of the failed call, when status == SystemError
  uint64_t block = 0;     // block concerned, when there is one
  const char* what = "";  // static text naming the operation (never freed, never owned)
};
std::string describe(const Error& e);  // "what: strerror (block N)"
const char* statusName(Status s);
const char* faultModeName(FaultMode m);  // "auto" "uffd" "sigsegv"
const char* wpModeName(WpMode m);        // "auto" "sync" "async"

constexpr size_t kMaxRegions = 4096;  // registry slots (lookup cost is linear in use)

// What this system offers. Probes once (opens and closes userfaultfds), then caches.
struct SystemInfo {
  bool uffd = false;          // a userfaultfd with MISSING+WP registration can be opened
  bool uffdAsyncWp = false;   // ... with UFFD_FEATURE_WP_ASYNC, and PAGEMAP_SCAN works
  bool uffdMove = false;      // ... with UFFD_FEATURE_MOVE/UFFDIO_MOVE (page recycling)
  bool procSelfMemWrite = false;  // Sigsegv fills can write PROT_NONE pages atomically
  size_t pageBytes = 0;
  FaultMode defaultMode = FaultMode::Sigsegv;  // what Auto resolves to (env included)
  WpMode defaultWp = WpMode::Sync;             // what Auto resolves to (env included)
  Error envError;  // set when TXARRAY_FAULT_MODE / TXARRAY_WP_MODE hold an unknown value
};
const SystemInfo& systemInfo();

class Budget;
struct RegionImpl;
struct BudgetImpl;

struct RegionOptions {
  // Address space to reserve (rounded up to blockBytes). Costs no memory: MAP_NORESERVE.
  // The array may grow up to this size without moving. Per-unit and per-block state is
  // reserved the same way (1 byte per unit, 8 per block; touched lazily).
  uint64_t reserveBytes = 0;
  uint64_t blockBytes = 64 << 10;  // power of two, multiple of the page
  uint64_t faultBytes = 0;         // fault window; 0 = default for the mode (see below)
  FaultMode mode = FaultMode::Auto;
  WpMode wp = WpMode::Auto;
  Budget* budget = nullptr;  // optional; must outlive the region
};

// Default fault window (sequential faults grow it in Uffd mode: "Read-ahead"):
// kDefaultUffdFaultBytes in Uffd mode (the wake-up round trip,
// ~10-60 µs, dominates small faults; `vmem_test --bench` measured 1.2-1.5 GB/s first-touch
// at 64 KiB, 2.2-2.9 at 256 KiB, 3.8-4.1 at 1 MiB; 256 KiB bounds the read amplification of
// random small reads), the block in Sigsegv mode (a signal costs less than a uffd round
// trip: 1.7 GB/s at 64 KiB, 2.0 at 1 MiB).
constexpr uint64_t kDefaultUffdFaultBytes = 256 << 10;
constexpr uint64_t kMaxFaultBytes = 64 << 20;
// After serving a fault the uffd service thread busy-polls this long for the next one
// before sleeping (env TXARRAY_UFFD_SPIN_US overrides; 0 disables). Faults come in bursts,
// and a sleep/wake-up across CPUs costs ~50 µs: measured, a write-protect fault on a
// 64 KiB block costs 68 µs without spinning, 20 µs with 20 µs, 13 µs with 100 µs. The
// price is up to this much CPU time per burst of faults.
constexpr uint64_t kDefaultUffdSpinMicros = 50;
// Page recycling (Uffd mode, see "Page recycling" above): the most a page pool holds (one
// pool per userfaultfd, i.e. per WP flavour in use), and the floor of its bound.
constexpr uint64_t kPagePoolMaxBytes = 64 << 20;
constexpr uint64_t kPagePoolFloorBytes = 4 << 20;
// Sequential read-ahead (Uffd mode, see "Read-ahead" above): the longest run loaded ahead
// after one fault (env TXARRAY_VMEM_READAHEAD_KB overrides; 0 disables).
constexpr uint64_t kReadAheadMaxBytes = 4 << 20;

struct RegionStats {
  uint64_t faults = 0;         // units loaded by faults (read-ahead of the window included)
  uint64_t bytesLoaded = 0;    // bytes loaded by faults (cumulative)
  uint64_t writeFaults = 0;    // blocks that went CLEAN/NOT_LOADED -> DIRTY
  uint64_t residentBytes = 0;  // bytes of loaded units now (clean + dirty)
  uint64_t evictions = 0;      // blocks evicted by the budget
  uint64_t evictedBytes = 0;   // bytes evicted by the budget
  uint64_t droppedBytes = 0;   // bytes dropped by invalidate/dropDirty/discard/limit
  uint64_t scans = 0;          // PAGEMAP_SCAN passes (Async mode)
  uint64_t sourceErrors = 0;   // pin() failures (zeros served)
  uint64_t spurious = 0;       // faults that found the unit already served
  uint64_t writeFills = 0;     // units populated by write() (no fault; not in `faults`)
  uint64_t readAheadBytes = 0; // bytes loaded by sequential read-ahead (also in bytesLoaded)
  uint64_t movedBytes = 0;     // bytes filled by moving pool pages in (UFFDIO_MOVE)
  uint64_t recycledBytes = 0;  // bytes of dropped pages moved to the pool (not unmapped)
};

// The page pools of the uffd service (process-wide, summed over both WP flavours).
struct PagePoolStats {
  bool enabled = false;        // UFFDIO_MOVE is in use (some pool exists)
  uint64_t pages = 0;          // populated pages waiting in the pools now
  uint64_t capacityPages = 0;  // kPagePoolMaxBytes / page per pool
  uint64_t movedIn = 0;        // pages moved from the pools into regions by fills
  uint64_t recycled = 0;       // pages moved from regions into the pools by drops
  uint64_t fallbacks = 0;      // UFFDIO_MOVE calls that stopped early (copy/madvise instead)
};
PagePoolStats pagePoolStats();

class Region {
 public:
  // Reserves, registers with the fault service, attaches to the budget.
  // Preconditions: reserveBytes > 0; blockBytes and faultBytes (if non-zero) powers of two,
  // page <= blockBytes, page <= faultBytes <= kMaxFaultBytes; `source` outlives the region.
  // reserveBytes is rounded up to a multiple of max(blockBytes, faultBytes).
  // Returns nullptr and fills *err (if non-null) on failure.
  static std::unique_ptr<Region> open(BlockSource* source, const RegionOptions& options,
                                      Error* err);
  ~Region();  // close()
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

  // Idempotent. Detaches from the budget, unregisters from the kernel (waking any thread
  // still waiting on a fault there: it then sees plain zero memory), removes the region
  // from the registry (waiting until no fault path uses it), unmaps. After close() returns
  // no fault-service code touches the range. Touching the range afterwards is a bug of the
  // caller (it segfaults).
  void close();

  uint8_t* base() const;
  uint64_t reserveBytes() const;
  uint64_t blockBytes() const;
  uint64_t faultBytes() const;  // the fault window
  FaultMode mode() const;  // Uffd or Sigsegv, never Auto
  WpMode wpMode() const;   // Sync or Async in Uffd mode; Sync in Sigsegv mode (per block)
  uint64_t blockCount() const;                    // reserveBytes / blockBytes
  uint8_t* blockPtr(uint64_t index) const;        // base + index * blockBytes (no check)

  // Sorted indexes of blocks holding writes not yet marked clean. Async mode scans first.
  std::vector<uint64_t> dirtyBlocks();
  bool isDirty(uint64_t block);
  // Whether the unit holding byte `offset` is loaded (touching it will not fault for a read).
  bool isLoaded(uint64_t offset);

  // Copies block `index` (blockBytes bytes) to `dst` WITHOUT faulting: loaded units from
  // region memory, the others straight from the source (pin on this thread), honouring
  // sourceLimit. For the engine's commit, which may hold locks pin() needs... except that
  // pin() itself is called here, so the caller must not hold a lock that pin() takes.
  // `dst` must not lie inside any region. Returns SourceError if pin() failed (dst then
  // holds zeros for those units).
  Status copyBlock(uint64_t index, uint8_t* dst, Error* err = nullptr);

  // memcpy(base() + offset, src, len), with the dirty tracking of a store, but WITHOUT
  // taking page faults (a fault is a round trip to the service thread, or a signal): the
  // engine's way to write into the region. Per block touched, under Region::mu:
  //   - the block becomes DIRTY first, exactly as a write fault would make it (its loaded
  //     units are unprotected; writeFaults counts it);
  //   - a unit that is not loaded is populated at once, writable, with its final bytes:
  //     straight from `src` where the write covers it whole (the source is not even
  //     pinned), else the source's bytes (honouring sourceLimit: zeros at and past it, and
  //     past the source's size) with the written range over them. Uffd: UFFDIO_COPY, never
  //     write-protected (no bounce but one page per partly written page); Sigsegv: through
  //     /proc/self/mem, then opened read-write, so no other thread sees a partial unit;
  //     where /proc/self/mem is not writable, mprotect+memcpy as for a fault. It is charged
  //     to the budget as a fault's load is (room is made first, without the lock), counted
  //     in residentBytes and writeFills (not in faults/bytesLoaded). Units of the block the
  //     write does not reach stay not loaded. No read-ahead: faultBytes does not apply;
  //   - the parts landing in units that were already loaded are copied AFTER unlocking
  //     (THE RULE): the block is dirty by then, and dirty blocks are never evicted nor
  //     invalidated, so the copy does not fault and cannot lose bytes to an eviction. (A
  //     dropDirty()/discard() racing with the write from another thread is a caller bug;
  //     the copy then faults and the fault service serves it, as for any store.)
  // `src` may be anywhere, even inside a region: inside THIS region the call is a plain
  // memmove (overlap allowed; the fault service loads and dirties, and records its errors
  // on the region as for any store); inside another region it is read a chunk (1 MiB) at a
  // time into a bounce buffer with no lock held, then written as above.
  // Like copyBlock(), it calls pin() with Region::mu held: the caller must not hold a lock
  // that pin() takes. Thread-safe; concurrent writes (or stores) to the same bytes race as
  // plain stores would.
  // Returns InvalidArgument if [offset, offset+len) leaves the reservation or src is null
  // (nothing written); SourceError if pin() failed (those units got zeros around the
  // written bytes; the error is also recorded on the region, as by a fault, so that
  // takeError() sees it); SystemError if a fill failed (recorded too; the write stopped
  // part way: the bytes before the failing unit are written, the rest are not).
  Status write(uint64_t offset, const uint8_t* src, uint64_t len, Error* err = nullptr);

  // DIRTY -> CLEAN for the given blocks (the engine has stored them): write-protects their
  // loaded pages again. Blocks that are not dirty are left as they are.
  Status markClean(const uint64_t* blocks, size_t count, Error* err = nullptr);
  // Abort: every dirty block -> NOT_LOADED; the next touch reloads committed bytes.
  Status dropDirty(Error* err = nullptr);
  // Another process changed these blocks: their loaded CLEAN units -> NOT_LOADED so they
  // refault from the source's new snapshot. A DIRTY block is left untouched (it holds this
  // transaction's writes; the engine should treat it as a conflict) and counted in
  // *skippedDirty if given. Blocks past blockCount() are ignored.
  Status invalidate(const uint64_t* blocks, size_t count, size_t* skippedDirty = nullptr,
                    Error* err = nullptr);
  Status invalidateAll(size_t* skippedDirty = nullptr, Error* err = nullptr);

  // Shrink to `fromByte` bytes. Afterwards:
  //  - every byte at or past fromByte reads as zero, whether loaded, dirty or in the
  //    source: the units entirely past fromByte are dropped (dirty or not) and the blocks
  //    entirely past it are no longer dirty; the tail [fromByte, end of its unit) of the
  //    unit containing fromByte is zeroed in place (after unlocking; this touches the
  //    region, so the caller must obey THE RULE);
  //  - the bytes before fromByte are unchanged;
  //  - if fromByte is not block-aligned, the block containing it is DIRTY (its stored value
  //    must be rewritten without its tail);
  //  - sourceLimit() becomes min(sourceLimit(), fromByte): a later read past fromByte
  //    (e.g. after growing again in the same transaction) yields zeros, not the stale
  //    committed bytes. At commit the engine must delete/truncate stored blocks past
  //    fromByte (other than the dirty ones it writes) and may then raise the limit again.
  Status discard(uint64_t fromByte, Error* err = nullptr);

  // Bytes at or past the limit are filled with zeros instead of the source's bytes.
  // Default: UINT64_MAX (no limit). Changing it drops the loaded CLEAN units overlapping
  // [min(old,new), max(old,new)) so that they refault under the new limit; dirty blocks
  // keep their units. Typical: after abort, dropDirty() then setSourceLimit(UINT64_MAX).
  Status setSourceLimit(uint64_t bytes, Error* err = nullptr);
  uint64_t sourceLimit();

  // The first error recorded by the fault path since the last call (source failures,
  // failed fills). Returns false if there was none. Clears it.
  bool takeError(Error* out);
  RegionStats stats();

  RegionImpl* impl() const { return impl_; }

 private:
  explicit Region(RegionImpl* impl) : impl_(impl) {}
  RegionImpl* impl_;
};

struct BudgetStats {
  uint64_t limitBytes = 0;
  uint64_t chargedBytes = 0;  // loaded bytes of all attached regions (clean + dirty)
  uint64_t evictions = 0;     // blocks evicted
  uint64_t evictedBytes = 0;
  uint64_t passes = 0;        // eviction passes (each frees a batch)
  uint64_t regions = 0;
};

// A RAM budget (cacheBytes) shared by a group of regions. Before a fault loads a unit that
// would take the group over the limit, CLEAN blocks are evicted (MADV_DONTNEED, in batches
// of batchBytes, least-recently-loaded first by a per-region clock with a reference bit,
// round-robin over the regions). Dirty blocks are never evicted, so a transaction that
// dirties more than the limit goes over it. With several threads faulting at once in
// Sigsegv mode the charge may exceed the limit by one unit per concurrent fault.
// Must outlive its regions (Budget's destructor requires that none is attached).
class Budget {
 public:
  explicit Budget(uint64_t limitBytes);
  ~Budget();
  Budget(const Budget&) = delete;
  Budget& operator=(const Budget&) = delete;

  void setLimit(uint64_t limitBytes);  // takes effect at the next fault or trim()
  uint64_t limit() const;
  // Eviction frees at least this much below the limit each time it runs (hysteresis:
  // batching is ~3x cheaper than evicting one block per fault). Default limit/16, capped
  // at 64 MiB; 0 = evict just enough.
  void setBatchBytes(uint64_t bytes);
  uint64_t chargedBytes() const;
  // Evicts clean blocks now until the charge is at most the limit (or nothing is left).
  void trim();
  BudgetStats stats() const;

  BudgetImpl* impl() const { return impl_; }

 private:
  BudgetImpl* impl_;
};

}  // namespace vmem
}  // namespace txa
