// One array as seen by one Store handle inside its current transaction: the committed
// bytes of the handle's snapshot plus this transaction's uncommitted changes.
//
// An array with views has a vmem Region: a reserved address range where byte o of the
// array lives at base() + o. Views are windows of it. Its uncommitted data lives there
// too: a write (through a view, write() or append()) dirties the blocks it touches, and
// commit stores exactly the dirty blocks. An array without a region stages the blocks
// write() and append() change in buffers it keeps across commits (StagedBlocks), and moves
// them into the region when one is opened, so a view sees every write of its transaction.
// Reads of clean blocks skip the region and are read from the data file with pread/preadv
// at the blocks' page-aligned offsets (no page of the region or of LMDB's map is loaded
// for a read(); a destination pread cannot write, EFAULT, goes through the map);
// TXARRAY_COPY_PATH=map copies from LMDB's map instead.
//
// Shrinking hides the snapshot's bytes past the new end (the region's source limit):
// growing again reads zeros, never stale data; the stale blocks are deleted at commit.
//
// Threads: a Store handle is used by one JavaScript thread; the fault service fills pages
// concurrently through the SnapshotSource. Never touch region memory while holding a
// lock the fault path takes (vmem.h, THE RULE).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../vmem/vmem.h"
#include "block_commit.h"
#include "block_store.h"
#include "change_log.h"
#include "pread_batch.h"
#include "snapshot.h"
#include "snapshot_source.h"
#include "staged_blocks.h"
#include "strided.h"

namespace txa {

struct SessionStats;

class TrackedArray : public ArrayChanges {
 public:
  // Throws Error(kStorage/kTooLarge) if the region cannot be reserved.
  TrackedArray(std::shared_ptr<SnapshotHolder> holder, uint64_t id, uint32_t blockBytes,
               uint64_t byteLength, std::shared_ptr<vmem::Budget> budget, std::shared_ptr<SessionStats> stats,
               std::string name = std::string());
  ~TrackedArray() override;

  uint64_t id() const override { return source_.arrayId(); }
  uint32_t blockBytes() const override { return blockBytes_; }
  uint64_t byteLength() const override { return byteLength_; }
  uint64_t committedLength() const override { return committedLength_; }
  const std::string& name() const override { return name_; }
  bool hasChanges() override;
  // True if this transaction only appended: it grew, shrank nothing, and changed no byte
  // below the committed length (checked against the snapshot for the boundary block).
  bool appendOnly() override;
  bool closed() const { return closed_; }

  // The region, for views: byte o of the array is at base() + o, up to reservedBytes().
  // Reserved lazily, at the first view: an array only read or written through write() and
  // append() costs no address space. Opening it moves the staged blocks into it.
  uint8_t* base();
  uint64_t reservedBytes();
  vmem::Region* region() { return ensureRegion(false); }
  // True once the region is reserved (a view was made, or the array was written through it).
  bool hasRegion() const { return region_ != nullptr; }
  // Maps the blocks of [offset, offset+bytes) now, for system calls on a view in a fault
  // mode that cannot serve them (vmem.h). Throws Error(kStorage) if a mapping fails.
  void populate(uint64_t offset, uint64_t bytes);
  // A sequential reader (views()) is about to read [offset, offset+bytes): loads the scan
  // windows it reaches as huge-page copies where that is possible (vmem.h, SCAN WINDOWS).
  void loadSequential(uint64_t offset, uint64_t bytes);

  // Called before the region moves to a bigger reservation (the binding detaches views).
  void setBeforeRelocate(std::function<void()> hook) { beforeRelocate_ = std::move(hook); }

  // Copies the selection into dst (dense, C order) / from src into the selection.
  // Throws Error(kBounds) if it reaches past byteLength(). With `verify`, every committed
  // block the copy reads is checked against its checksum first: Error(kCorrupt) names
  // the array and block that do not match. When src or dst lies in this array's region
  // (a view of it) and meets the selection, the copy behaves as if the source were copied
  // first (numpy, TypedArray.prototype.set): it goes through a buffer.
  void gather(Snapshot& snap, const Strided& sel, uint8_t* dst, bool verify = false);
  void scatter(const Strided& sel, const uint8_t* src);
  // Copies `count` windows of `windowBytes` bytes starting at byte offsets[i] into dst,
  // back to back, in one pass (the random-window workload). Throws Error(kBounds), and
  // Error(kCorrupt) as gather() does. A dst in this array's region gets the windows as
  // they were before the copy, as gather().
  void take(Snapshot& snap, const uint64_t* offsets, size_t count, uint64_t windowBytes, uint8_t* dst,
            bool verify = false);

  // Sets the logical length (see above); may relocate the region when growing past it.
  void resize(uint64_t byteLength);

  // --- commit support (used by Session) ---
  // Blocks this transaction writes or deletes, for conflict detection and the log.
  void describeChanges(ChangeSet* out) override;
  // This transaction's changes as values, for a commit to a store other than the local
  // one (the "plan" step of plan -> store -> settle, docs/scale-out.md): the dirty blocks'
  // bytes up to the array's end without trailing zeros (as store() writes them), the
  // first block a shrink cuts, and for an append-only transaction the appended bytes.
  // Throws like describeChanges() when a fault served zeros for unreadable data.
  struct PlannedBlock {
    uint64_t index = 0;
    std::vector<uint8_t> data;
  };
  struct Planned {
    std::vector<PlannedBlock> blocks;
    int64_t shrinkFromBlock = -1;
    bool appendOnly = false;
    std::vector<uint8_t> appended;
  };
  void plan(Planned* out);
  // Writes dirty blocks under array id `id` (a new array's id is assigned at commit) and
  // deletes stale ones in the store's write of commit `serial`; counts what it wrote.
  void store(BlockWrite& write, uint64_t id, uint64_t serial, SessionStats* counters) override;
  // After a successful commit, once the session has moved to the new snapshot: dirty
  // blocks become clean, and blocks other commits changed are dropped from the region.
  void afterCommit(uint64_t assignedId, const ChangeSet& others, bool othersUnknown);
  // Copies uncommitted bytes [offset, offset + bytes) out of the region without faulting
  // (Region::copyBlock), for a rebase inside the write transaction.
  void copyUncommitted(uint64_t offset, uint64_t bytes, uint8_t* dst) override;
  // After a commit that re-laid this transaction's appended rows at the newest end: the
  // region's copy is at the old place, so drop it all; the new length is committed.
  void afterRebase(uint64_t byteLength);
  // After a successful commit that could not move the session to the new snapshot: the
  // changes are durable, this transaction is over, the handle must refresh() to see them.
  void afterCommitUnmoved(uint64_t assignedId);
  // After this transaction's changes were committed by another store (a remote one, from
  // plan()): they are durable there, so they leave the region (a created array takes id
  // `assignedId`); the session's refresh() then moves to a local snapshot that holds them.
  void afterCommitElsewhere(uint64_t assignedId) { afterCommitUnmoved(assignedId); }
  // Abort, part 1 (before the snapshot moves): drop dirty pages.
  void discardChanges();
  // Abort/refresh, part 2 (after): forget the shrink limit, drop what others changed.
  void afterRefresh(const ChangeSet& others, bool othersUnknown);
  // Another handle changed the array's length: adopt the newly committed length.
  void adoptCommittedLength(uint64_t byteLength);
  // Unmaps the region (views must be detached first). Idempotent.
  void close();

 private:
  static constexpr uint64_t kNone = UINT64_MAX;

  // The block a copy is reading (consecutive copies mostly fall in the same one).
  struct BlockCache {
    uint64_t index = UINT64_MAX;
    bool inRegion = false;     // dirty: its bytes are in the region
    bool verify = false;       // check committed blocks' checksums before copying them
    BlockView view;            // clean: its data bytes in LMDB's map (zeros after them)
    BlockLocation location;    // clean: the same bytes in the data file
    const uint8_t* checked = nullptr;  // clean and verified: the data bytes checked
    std::vector<uint64_t> dirty;       // the region's dirty blocks, sorted (one scan per call)
    PreadBatch* batch = nullptr;       // where clean page-aligned pieces are queued
  };
  void copyOut(Snapshot& snap, uint64_t offset, uint64_t bytes, uint8_t* dst, BlockCache& cache);
  // Runs copy(out, cache) under the map lock with one block cache and pread batch, where out
  // is dst, or a staging buffer copied to dst afterwards when dst lies in this region.
  void copyOutAll(Snapshot& snap, uint8_t* dst, uint64_t bytes, bool verify,
                  const std::function<void(uint8_t* out, BlockCache& cache)>& copy);
  void loadBlock(Snapshot& snap, uint64_t index, BlockCache& cache);
  // Copies data bytes [within, within + n) of the cached clean block to dst.
  void copyCommitted(const BlockCache& cache, uint64_t within, uint64_t n, uint8_t* dst);
  // True if [p, p + bytes) meets this array's region.
  bool inRegion(const uint8_t* p, uint64_t bytes) const;
  std::unique_ptr<vmem::Region> openRegion(uint64_t reserveBytes);
  // The staged copy of block `index`, staged now if it is not: the committed bytes, unless
  // `overwritten` (the caller is about to write the whole block). Throws like a read.
  uint8_t* stageBlock(uint64_t index, bool overwritten);
  void scatterStaged(const Strided& sel, const uint8_t* src);
  // Sorted indexes of the blocks this transaction changed (the region's dirty blocks, or
  // the staged ones).
  std::vector<uint64_t> changedBlocks();
  // Drops the staged blocks (and the committed copy, if asked).
  void dropStaged(bool forgetCommitted);
  // Opens the region at first use (forViews: with room for views to stay put as the array
  // grows); throws kClosed after close().
  vmem::Region* ensureRegion(bool forViews = false);
  void relocate(uint64_t reserveBytes);  // moves to a new reservation (views are detached)
  // Moves to a bigger reservation if `byteLength` does not fit (views are detached).
  void ensureReserved(uint64_t byteLength);
  // Moves errors recorded by the fault path into poisoned_ (sticky until abort/refresh).
  void noteRegionErrors();
  void checkOpen() const;
  void invalidateChanged(const ChangeSet& others, bool othersUnknown);
  // Committed bytes of block `index` as this transaction sees them (clipped at
  // staleFrom). Caller holds the map lock shared.
  BlockView committedBlock(Snapshot& snap, uint64_t index);
  void raiseError(const vmem::Error& e) const;

  std::shared_ptr<SnapshotHolder> holder_;
  SnapshotSource source_;
  uint32_t blockBytes_;
  uint64_t byteLength_;
  uint64_t committedLength_;
  uint64_t staleFrom_ = kNone;
  std::shared_ptr<vmem::Budget> budget_;   // must outlive region_ (declared first)
  std::unique_ptr<vmem::Region> region_;  // null until first needed
  StagedBlocks staged_;  // changed blocks while region_ is null (empty while it is not)
  uint64_t stagedFrom_ = kNone;  // the lowest byte offset written into staged_ since it was empty
  bool closed_ = false;
  bool forViews_ = false;  // the region has been reserved for views
  std::string poisoned_;  // a fault served zeros for unreadable data: commit is refused
  std::function<void()> beforeRelocate_;
  // The checksum store() computed for the highest staged block, kept with the committed
  // copy after the commit (StagedBlocks::keepLastAsCommitted).
  struct StoredChecksum {
    uint64_t index = kNone;
    DataChecksum checksum;
  };
  StoredChecksum lastStored_;
  std::vector<uint8_t> scratch_;  // one block, for commit
  std::vector<uint8_t> checked_;  // one block's stored bytes, for verified reads with pread
  std::shared_ptr<SessionStats> stats_;
  std::string name_;  // for error messages
};

}  // namespace txa
