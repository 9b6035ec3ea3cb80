// The seam between storage and the virtual-memory layer.
//
// vmem never talks to LMDB: when it must fill a page it asks a BlockSource for the
// committed bytes of one block. The engine implements BlockSource over an LMDB read
// snapshot; tests implement it over RAM. (This is the "load a block" half of the
// two-function block interface; "store a block" lives in the engine's commit path.)
#pragma once
#include <cstddef>
#include <cstdint>

namespace txa {

// Committed bytes of one block. `size` may be smaller than the block size (or 0 with
// data == nullptr): the bytes past `size` read as zeros. Sparse arrays cost nothing.
struct BlockView {
  const uint8_t* data = nullptr;
  size_t size = 0;
};

// Where the committed bytes of one block live in the store's data file, for a caller that
// maps them (mmap MAP_PRIVATE of `fd` at `fileOffset`) or reads them (pread).
//   fd          the data file; valid while the snapshot that answered is held
//   fileOffset  page-aligned offset of the block's first data byte
//   bytes       data bytes stored there, a whole number of pages (the block's bytes, then
//               zeros); 0: the block is not stored, it reads as zeros
//   mappable    false when the value is not laid out page-aligned (then copy it instead,
//               from the BlockView of the same block)
struct BlockLocation {
  int fd = -1;
  uint64_t fileOffset = 0;
  uint64_t bytes = 0;
  bool mappable = false;
};

class BlockSource {
 public:
  virtual ~BlockSource() = default;

  // Pins the current snapshot and returns block `index`. The view stays valid until the
  // matching unpin(). Called from the fault-service thread (userfaultfd mode) or from the
  // faulting thread inside a signal handler (SIGSEGV mode), so implementations:
  //   - never call into JavaScript, never allocate with malloc in a way that could
  //     deadlock a signal handler (they may take a mutex that is never held by code that
  //     can fault on our regions), and
  //   - must be callable from any thread.
  // Returns false if the block cannot be read (I/O error, snapshot closed); the fault is
  // then served with zeros and the error is recorded on the region.
  virtual bool pin(uint64_t index, BlockView* out) = 0;
  virtual void unpin() = 0;

  // Like pin(), and also says where block `index` lies in the data file (`loc`), so that
  // vmem can map it instead of copying `view`. Same calling rules; unpin() ends it when it
  // returns true. The default locates nothing (mappable false): vmem copies the view.
  virtual bool locate(uint64_t index, BlockLocation* loc, BlockView* view) {
    *loc = BlockLocation{};
    return pin(index, view);
  }

  // False when block `index` cannot be read now without waiting for something far away
  // (a stub of a lazily cached remote store, not fetched yet): the blocks mapped around
  // a fault skip it, so that it faults when touched (and is served, or reported, then)
  // instead of being read ahead as zeros. Same calling rules as pin(); needs no unpin().
  virtual bool ready(uint64_t) { return true; }

  // For a block ready() calls not ready, in userfaultfd mode only (the fault service thread,
  // or a thread resuming waiting faults, Region::mu held): asks for its bytes to be fetched,
  // without blocking, allocating or calling JavaScript, and returns how long (ns) a fault
  // may wait for them at most; 0: nothing will fetch them (no fetcher, the fetch failed in
  // this snapshot, the fetcher is closed or full): the fault is served as an unreadable
  // block. The same request made again while it is in flight is not sent twice. Whoever
  // answers makes the block ready (or failed) and then calls vmem::resumeWaitingFaults().
  virtual uint64_t requestFetch(uint64_t) { return 0; }

  // Like requestFetch() for a block read ahead of a fault, which no fault waits for: the
  // fetcher may refuse it to keep room for blocks faults wait for. The default asks as
  // requestFetch() does.
  virtual void requestFetchAhead(uint64_t index) { requestFetch(index); }
};

}  // namespace txa
