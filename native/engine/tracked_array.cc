#include "tracked_array.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <shared_mutex>

#include "error.h"
#include "keys.h"
#include "pread_batch.h"
#include "session_stats.h"

namespace txa {
namespace {

// Address space reserved per array. An array with views gets room to grow without moving
// them (moving detaches them): 64 GiB, ~2000 such arrays in 47 bits. A region opened
// without views (for memory statistics) gets twice the array's size (at least 1 MiB) and
// moves as it grows. MAP_NORESERVE makes it free until touched.
constexpr uint64_t kViewReserve = uint64_t(64) << 30;
constexpr uint64_t kWriteReserve = uint64_t(1) << 20;

uint64_t reserveFor(uint64_t byteLength, uint32_t blockBytes, bool forViews) {
  uint64_t want = std::max(forViews ? kViewReserve : kWriteReserve, byteLength * 2);
  return (want + blockBytes - 1) / blockBytes * blockBytes;
}

// Invalidating more blocks than this one by one costs more than dropping everything.
constexpr uint64_t kMaxInvalidateList = 1 << 16;

}  // namespace

TrackedArray::TrackedArray(std::shared_ptr<SnapshotHolder> holder, uint64_t id, uint32_t blockBytes,
                           uint64_t byteLength, std::shared_ptr<vmem::Budget> budget, std::shared_ptr<SessionStats> stats,
                           std::string name)
    : holder_(holder),
      source_(holder, id),
      blockBytes_(blockBytes),
      byteLength_(byteLength),
      committedLength_(byteLength),
      budget_(std::move(budget)),
      staged_(blockBytes ? blockBytes : 1),
      stats_(std::move(stats)),
      name_(std::move(name)) {
  if (blockBytes == 0) throw Error(ErrorCode::kArgument, "blockBytes must be positive");
}

TrackedArray::~TrackedArray() { close(); }

std::unique_ptr<vmem::Region> TrackedArray::openRegion(uint64_t reserveBytes) {
  vmem::RegionOptions options;
  options.reserveBytes = reserveBytes;
  options.blockBytes = blockBytes_;
  options.budget = budget_.get();
  vmem::Error err;
  std::unique_ptr<vmem::Region> region = vmem::Region::open(&source_, options, &err);
  if (!region) {
    const bool tooLarge = err.status == vmem::Status::InvalidArgument || err.status == vmem::Status::TooManyRegions;
    throw Error(tooLarge ? ErrorCode::kTooLarge : ErrorCode::kStorage,
                err.status == vmem::Status::TooManyRegions
                    ? "more than " + std::to_string(vmem::kMaxRegions) +
                          " arrays of this process have views at once"
                    : "cannot reserve memory for the array: " + vmem::describe(err));
  }
  return region;
}

vmem::Region* TrackedArray::ensureRegion(bool forViews) {
  checkOpen();
  if (!region_) {
    // Filled before it is kept: a failure leaves the staged blocks staged.
    std::unique_ptr<vmem::Region> region = openRegion(reserveFor(byteLength_, blockBytes_, forViews));
    if (staleFrom_ != kNone) region->setSourceLimit(staleFrom_);
    vmem::Error err;
    staged_.forgetCommitted();  // commits through the region do not keep it up to date
    staged_.forEach([&](uint64_t index, const uint8_t* bytes) {
      if (err.status == vmem::Status::Ok) region->write(index * blockBytes_, bytes, blockBytes_, &err);
    });
    if (err.status != vmem::Status::Ok) raiseError(err);
    dropStaged(false);
    forViews_ = forViews;
    region_ = std::move(region);
  } else if (forViews && !forViews_) {
    relocate(reserveFor(byteLength_, blockBytes_, true));  // no view exists yet to detach
    forViews_ = true;
  }
  return region_.get();
}

void TrackedArray::populate(uint64_t offset, uint64_t bytes) {
  vmem::Error err;
  if (ensureRegion(true)->populate(offset, bytes, &err) != vmem::Status::Ok) raiseError(err);
}

void TrackedArray::loadSequential(uint64_t offset, uint64_t bytes) {
  vmem::Error err;
  if (ensureRegion(true)->loadSequential(offset, bytes, &err) != vmem::Status::Ok) raiseError(err);
}

void TrackedArray::close() {
  closed_ = true;
  if (region_) region_->close();
  region_.reset();
  staged_.release();
  // Views may keep this object alive until the GC runs: let go of the snapshot now.
  source_.release();
  holder_.reset();
}

void TrackedArray::checkOpen() const {
  if (closed_) throw Error(ErrorCode::kClosed, "the store is closed");
}

void TrackedArray::raiseError(const vmem::Error& e) const {
  throw Error(ErrorCode::kStorage, "array memory: " + vmem::describe(e));
}

uint8_t* TrackedArray::base() { return ensureRegion(true)->base(); }

uint64_t TrackedArray::reservedBytes() { return ensureRegion(true)->reserveBytes(); }

bool TrackedArray::hasChanges() {
  if (closed_) return false;
  return staleFrom_ != kNone || !staged_.empty() || (region_ && !region_->dirtyBlocks().empty());
}

void TrackedArray::dropStaged(bool forgetCommitted) {
  lastStored_ = StoredChecksum{};
  if (forgetCommitted) staged_.forgetCommitted();
  staged_.clear();
  stagedFrom_ = kNone;
}

std::vector<uint64_t> TrackedArray::changedBlocks() {
  return region_ ? region_->dirtyBlocks() : staged_.indexes();
}

uint8_t* TrackedArray::stageBlock(uint64_t index, bool overwritten) {
  if (uint8_t* bytes = staged_.find(index)) return bytes;
  if (uint8_t* bytes = staged_.stageCommitted(index)) {
    // The copy kept from this handle's last commit: the committed bytes, but for a shrink.
    const uint64_t start = index * blockBytes_;
    if (staleFrom_ < start + blockBytes_) {
      const uint64_t keep = staleFrom_ > start ? staleFrom_ - start : 0;
      memset(bytes + keep, 0, blockBytes_ - keep);
    }
    return bytes;
  }
  uint8_t* bytes = staged_.add(index);
  if (overwritten) return bytes;
  try {
    std::shared_ptr<Snapshot> snap = holder_->get();
    std::shared_lock<std::shared_mutex> mapGuard(snap->env().mapLock);
    BlockView committed = committedBlock(*snap, index);
    const uint64_t have = std::min<uint64_t>(committed.data ? committed.size : 0, blockBytes_);
    if (have) memcpy(bytes, committed.data, have);
    memset(bytes + have, 0, blockBytes_ - have);
  } catch (...) {
    staged_.remove(index);
    throw;
  }
  return bytes;
}

BlockView TrackedArray::committedBlock(Snapshot& snap, uint64_t index) {
  BlockView view;
  uint64_t id = source_.arrayId();
  if (id == 0) return view;  // created in this transaction: nothing committed
  uint64_t start = index * blockBytes_;
  if (start >= staleFrom_) return view;
  if (snap.block(id, index, &view)) ++stats_->blocksRead;
  if (staleFrom_ != kNone) view.size = std::min<uint64_t>(view.size, staleFrom_ - start);
  return view;
}

namespace {

// Clean blocks are copied with pread/preadv at their file offsets: no page of LMDB's map
// is touched, so a copy adds no minor fault and no RssFile (memcpy from the map mapped
// every page it copied: 3 GB of RssFile after the S1 bench's take() passes). Measured in
// docs/format.md. TXARRAY_COPY_PATH=map selects memcpy from LMDB's map, for the bench to
// compare the two.
const bool gCopyWithPread = [] {
  const char* v = getenv("TXARRAY_COPY_PATH");
  return v == nullptr || strcmp(v, "map") != 0;
}();

}  // namespace

void TrackedArray::loadBlock(Snapshot& snap, uint64_t index, BlockCache& cache) {
  cache.index = index;
  if (uint8_t* staged = staged_.find(index)) {  // copied like a dirty block of the region
    cache.inRegion = true;
    cache.view = BlockView{staged, blockBytes_};
    cache.location = BlockLocation{};
    cache.checked = nullptr;
    return;
  }
  cache.inRegion = std::binary_search(cache.dirty.begin(), cache.dirty.end(), index);
  cache.view = BlockView{};
  cache.location = BlockLocation{};
  cache.checked = nullptr;
  if (cache.inRegion) {
    cache.view = BlockView{region_->blockPtr(index), blockBytes_};
    return;
  }
  const uint64_t id = source_.arrayId();
  const uint64_t start = index * blockBytes_;
  if (id == 0 || start >= staleFrom_) return;  // new array, or hidden by a shrink: zeros
  // Without checksums, a page-aligned block's header is not read: copying touches no page
  // of LMDB's map but the data (none with pread).
  StoredBlock found;
  if (!(cache.verify ? snap.stored(id, index, &found, &name_) : snap.storedData(id, index, &found, &name_))) return;
  ++stats_->blocksRead;
  cache.view = found.data;
  cache.location = found.location;
  if (cache.verify) {
    // The checksum is computed over the bytes the copy then reads: a copy made with pread,
    // or LMDB's map itself.
    const uint64_t stored = found.header.storedIn(found.valueSize);
    const uint8_t* bytes = found.value + found.header.dataOffset;
    if (gCopyWithPread && found.location.mappable) {
      checked_.resize(stored);
      uint64_t done = preadUpTo(found.location.fd, checked_.data(), stored, found.location.fileOffset);
      memcpy(checked_.data() + done, bytes + done, stored - done);
      bytes = checked_.data();
    }
    if (!blockfmt::checksumMatches(found.value, found.header, bytes, stored)) {
      throw Error(ErrorCode::kCorrupt, "array '" + name_ + "' block " + std::to_string(index) + ": " +
                                           blockfmt::describe(blockfmt::Problem::kChecksum));
    }
    cache.checked = bytes;
  }
  if (staleFrom_ != kNone) cache.view.size = std::min<uint64_t>(cache.view.size, staleFrom_ - start);
}

void TrackedArray::copyCommitted(const BlockCache& cache, uint64_t within, uint64_t n, uint8_t* dst) {
  if (cache.checked) {
    memcpy(dst, cache.checked + within, n);
    return;
  }
  if (cache.location.mappable && gCopyWithPread) {
    uint64_t done = preadUpTo(cache.location.fd, dst, n, cache.location.fileOffset + within);
    within += done;
    dst += done;
    n -= done;
  }
  if (n) memcpy(dst, cache.view.data + within, n);
}

// Copies [offset, offset + bytes) of the array as this transaction sees it to dst: dirty
// blocks from the region, clean ones from the store: queued on cache.batch (pread) when
// they are page-aligned, else copyCommitted. Every destination byte is written by one
// copy, so the batch's runs may land in any order (pread_batch.h); anything else ends the
// current run first. Caller holds the map lock shared, has checked the bounds, and
// finishes the batch at the end.
void TrackedArray::copyOut(Snapshot& snap, uint64_t offset, uint64_t bytes, uint8_t* dst, BlockCache& cache) {
  PreadBatch& batch = *cache.batch;
  while (bytes > 0) {
    uint64_t index = offset / blockBytes_;
    uint64_t within = offset % blockBytes_;
    uint64_t n = std::min<uint64_t>(bytes, blockBytes_ - within);
    if (index != cache.index) loadBlock(snap, index, cache);
    if (cache.inRegion) {
      batch.flush();
      memmove(dst, cache.view.data + within, n);  // dst may be a view of this region
    } else {
      uint64_t have = cache.view.size > within ? std::min<uint64_t>(n, cache.view.size - within) : 0;
      if (have && !cache.checked && cache.location.mappable && gCopyWithPread) {
        batch.add(cache.location.fileOffset + within, dst, have, cache.view.data + within);
      } else if (have) {
        batch.flush();
        copyCommitted(cache, within, have, dst);
      }
      if (have < n) {
        batch.flush();
        memset(dst + have, 0, n - have);
      }
    }
    offset += n;
    dst += n;
    bytes -= n;
  }
}

bool TrackedArray::inRegion(const uint8_t* p, uint64_t bytes) const {
  if (!region_ || bytes == 0) return false;
  uintptr_t lo = reinterpret_cast<uintptr_t>(region_->base());
  uintptr_t hi = lo + region_->reserveBytes();
  uintptr_t at = reinterpret_cast<uintptr_t>(p);
  return at < hi && at + bytes > lo;
}

void TrackedArray::gather(Snapshot& snap, const Strided& sel, uint8_t* dst, bool verify) {
  checkOpen();
  sel.checkWithin(byteLength_);
  copyOutAll(snap, dst, sel.elementCount() * sel.itemBytes, verify, [&](uint8_t* out, BlockCache& cache) {
    sel.forEachRun([&](uint64_t offset, uint64_t n, uint64_t at) { copyOut(snap, offset, n, out + at, cache); });
  });
  noteRegionErrors();
}

void TrackedArray::copyOutAll(Snapshot& snap, uint8_t* dst, uint64_t bytes, bool verify,
                              const std::function<void(uint8_t* out, BlockCache& cache)>& copy) {
  // dst inside a region (a view of this or another array): copy into a buffer first. For
  // this array's view, no byte is read after the copy has overwritten it; for any view, a
  // fault there may wait for a fetch (vmem.h, THE WAITING RULE), and the fetcher's thread
  // may need mapLock exclusively meanwhile (its cache write grows the map), so dst is
  // touched only once mapLock is released.
  std::vector<uint8_t> staged;
  uint8_t* out = dst;
  if (vmem::inAnyRegion(dst, bytes)) {
    staged.resize(bytes);
    out = staged.data();
  }
  {
    // Shared map lock: LMDB pointers stay valid. out is never a view (see above).
    std::shared_lock<std::shared_mutex> mapGuard(snap.env().mapLock);
    const unsigned threads = bytes >= PreadBatch::kThreadedMinBytes ? PreadBatch::defaultThreads() : 1;
    PreadBatch batch(snap.env().dataFd(), snap.env().pageSize(), threads);
    BlockCache cache;
    cache.verify = verify;
    if (region_) cache.dirty = region_->dirtyBlocks();
    cache.batch = &batch;
    copy(out, cache);
    batch.finish();
  }
  if (out != dst) memcpy(dst, out, bytes);
}

void TrackedArray::take(Snapshot& snap, const uint64_t* offsets, size_t count, uint64_t windowBytes, uint8_t* dst,
                        bool verify) {
  checkOpen();
  for (size_t i = 0; i < count; ++i) {
    if (offsets[i] > byteLength_ || windowBytes > byteLength_ - offsets[i]) {
      throw Error(ErrorCode::kBounds, "window " + std::to_string(i) + " reaches past the end of the array");
    }
  }
  // the caller checked that dst holds count * windowBytes
  copyOutAll(snap, dst, count * windowBytes, verify, [&](uint8_t* out, BlockCache& cache) {
    for (size_t i = 0; i < count; ++i) copyOut(snap, offsets[i], windowBytes, out + i * windowBytes, cache);
  });
}

void TrackedArray::scatterStaged(const Strided& sel, const uint8_t* src) {
  // No region, so src is no view of this array. A run of several blocks copies block by
  // block; consecutive short runs mostly stay in one block (looked up once).
  uint64_t lastIndex = UINT64_MAX;
  uint8_t* lastBlock = nullptr;
  sel.forEachRun([&](uint64_t offset, uint64_t bytes, uint64_t at) {
    stagedFrom_ = std::min(stagedFrom_, offset);
    const uint8_t* from = src + at;
    while (bytes > 0) {
      const uint64_t index = offset / blockBytes_, within = offset % blockBytes_;
      const uint64_t n = std::min<uint64_t>(bytes, blockBytes_ - within);
      if (index != lastIndex) {
        lastBlock = stageBlock(index, n == blockBytes_);
        lastIndex = index;
      }
      memcpy(lastBlock + within, from, n);
      offset += n;
      from += n;
      bytes -= n;
    }
  });
}

void TrackedArray::scatter(const Strided& sel, const uint8_t* src) {
  checkOpen();
  sel.checkWithin(byteLength_);
  if (!region_) {
    scatterStaged(sel, src);
    return;
  }
  sel.checkWithin(region_->reserveBytes());  // byteLength_ <= reservation is an invariant
  // src inside this region and meeting the selection (a view of this array, reversed or
  // shifted): copy it first, so that every element is read before any is overwritten.
  std::vector<uint8_t> staged;
  const uint64_t srcBytes = sel.elementCount() * sel.itemBytes;
  uint64_t lo, hi;
  sel.span(&lo, &hi);
  if (inRegion(src, srcBytes) && src < region_->base() + hi && src + srcBytes > region_->base() + lo) {
    staged.assign(src, src + srcBytes);
    src = staged.data();
  }
  // Region::write()/prepareWrite() mark the blocks dirty: an explicit write is a change even
  // when it stores the bytes already there. No lock is held here (they call pin()).
  // Short runs (a strided selection) are plain stores into blocks prepared once per block
  // (prepareWrite: mapped and dirty); long runs go through write().
  const uint64_t minWriteRun = 256;
  uint8_t* base = region_->base();
  vmem::Error err;
  vmem::Status status = vmem::Status::Ok;
  uint64_t preparedBlock = UINT64_MAX;
  sel.forEachRun([&](uint64_t offset, uint64_t bytes, uint64_t at) {
    if (status != vmem::Status::Ok) return;
    if (bytes >= minWriteRun) {
      status = region_->write(offset, src + at, bytes, &err);
      return;
    }
    uint64_t first = offset / blockBytes_, last = (offset + bytes - 1) / blockBytes_;
    if (first != preparedBlock || last != preparedBlock) {
      uint64_t reached;
      status = region_->prepareWrite(offset, bytes, &reached, &err);
      if (status != vmem::Status::Ok) return;
      preparedBlock = first == last ? first : UINT64_MAX;
    }
    memmove(base + offset, src + at, bytes);  // src may be a view of this region
  });
  // A source failure is also recorded on the region (as by a fault): it poisons the
  // transaction (commit refuses it) and is reported here.
  noteRegionErrors();
  if (status != vmem::Status::Ok) raiseError(err);
  if (!poisoned_.empty()) throw Error(ErrorCode::kStorage, "array memory: " + poisoned_);
}

void TrackedArray::ensureReserved(uint64_t byteLength) {
  if (!region_ || byteLength <= region_->reserveBytes()) return;
  relocate(reserveFor(byteLength, blockBytes_, forViews_));
}

void TrackedArray::relocate(uint64_t reserveBytes) {
  // The new region is opened and filled before anything of the old one is given up, so a
  // failure (address space, registry full) leaves the transaction as it was. Dirty blocks
  // move one at a time (no heap copy of them all); the shrink limit moves too; views of
  // the old region are detached last.
  std::unique_ptr<vmem::Region> fresh = openRegion(reserveBytes);
  uint64_t limit = region_->sourceLimit();
  if (limit != UINT64_MAX) fresh->setSourceLimit(limit);
  scratch_.resize(blockBytes_);
  for (uint64_t index : region_->dirtyBlocks()) {
    vmem::Error err;  // copyBlock/write: no faults; the blocks come out dirty as they were
    if (region_->copyBlock(index, scratch_.data(), &err) != vmem::Status::Ok) raiseError(err);
    if (fresh->write(index * blockBytes_, scratch_.data(), blockBytes_, &err) != vmem::Status::Ok) raiseError(err);
  }
  if (beforeRelocate_) beforeRelocate_();
  region_->close();
  region_ = std::move(fresh);
}

void TrackedArray::resize(uint64_t byteLength) {
  checkOpen();
  ensureReserved(byteLength);
  vmem::Error err;
  if (byteLength < byteLength_) {
    // A cut inside a block makes that block dirty (stored again without its tail); blocks
    // past the cut are dropped.
    if (region_) {
      if (region_->discard(byteLength, &err) != vmem::Status::Ok) raiseError(err);
    } else {
      const uint64_t within = byteLength % blockBytes_;
      if (within) {
        uint8_t* tail = stageBlock(byteLength / blockBytes_, false);
        memset(tail + within, 0, blockBytes_ - within);
        stagedFrom_ = std::min(stagedFrom_, byteLength);
      }
      staged_.dropFrom((byteLength + blockBytes_ - 1) / blockBytes_);
    }
    staleFrom_ = std::min(staleFrom_, byteLength);
  } else if (byteLength > byteLength_ && region_) {
    // Growing shows zeros: whatever a view taken before a shrink stored past the end goes.
    if (region_->dropFrom(byteLength_, &err) != vmem::Status::Ok) raiseError(err);
  }
  byteLength_ = byteLength;
}

void TrackedArray::noteRegionErrors() {
  vmem::Error err;
  if (region_ && region_->takeError(&err) && poisoned_.empty()) poisoned_ = vmem::describe(err);
}

void TrackedArray::describeChanges(ChangeSet* out) {
  checkOpen();
  // A fault that could not read LMDB served zeros: never let them reach a commit. The
  // error sticks until abort/refresh, however often commit() is tried.
  noteRegionErrors();
  if (!poisoned_.empty()) {
    throw Error(ErrorCode::kStorage, "a page of this transaction could not be read from the store (" + poisoned_ +
                "); abort() and retry");
  }
  uint64_t id = source_.arrayId();
  for (uint64_t index : changedBlocks()) out->addBlocks(id, index, index);
  if (staleFrom_ != kNone) {
    out->addBlocks(id, (staleFrom_ + blockBytes_ - 1) / blockBytes_, keys::kToEnd);
  }
}

void TrackedArray::plan(Planned* out) {
  ChangeSet checked;
  describeChanges(&checked);  // refuses a region poisoned by an unreadable fault
  *out = Planned();
  if (staleFrom_ != kNone) out->shrinkFromBlock = int64_t((staleFrom_ + blockBytes_ - 1) / blockBytes_);
  if (appendOnly()) {
    out->appendOnly = true;
    out->appended.resize(size_t(byteLength_ - committedLength_));
    copyUncommitted(committedLength_, byteLength_ - committedLength_, out->appended.data());
    return;
  }
  // Up to the array's end, without trailing zeros, as store() writes them.
  auto add = [&](uint64_t index, const uint8_t* bytes) {
    PlannedBlock block;
    block.index = index;
    const uint64_t start = index * blockBytes_;
    size_t size = start >= byteLength_ ? 0 : size_t(std::min<uint64_t>(blockBytes_, byteLength_ - start));
    while (size > 0 && bytes[size - 1] == 0) --size;
    block.data.assign(bytes, bytes + size);
    out->blocks.push_back(std::move(block));
  };
  staged_.forEach([&](uint64_t index, const uint8_t* bytes) { add(index, bytes); });
  if (!region_) return;
  scratch_.resize(blockBytes_);
  for (uint64_t index : region_->dirtyBlocks()) {
    vmem::Error err;  // copyBlock never faults
    if (region_->copyBlock(index, scratch_.data(), &err) != vmem::Status::Ok) raiseError(err);
    add(index, scratch_.data());
  }
}

void TrackedArray::store(BlockWrite& write, uint64_t id, uint64_t serial, SessionStats* counters) {
  checkOpen();
  if (staleFrom_ != kNone) write.deleteBlocksFrom(id, (staleFrom_ + blockBytes_ - 1) / blockBytes_);
  // Stored only up to the array's end, without trailing zeros (putBlock): a growing tail
  // block costs what it holds, and an all-zero block is no block at all (reads as zeros).
  auto sizeOf = [&](uint64_t index) {
    const uint64_t start = index * blockBytes_;
    return start >= byteLength_ ? size_t(0) : size_t(std::min<uint64_t>(blockBytes_, byteLength_ - start));
  };
  lastStored_ = StoredChecksum{};
  staged_.forEach([&](uint64_t index, const uint8_t* bytes) {
    // A block continued from the committed copy: the checksum of its committed bytes holds
    // while nothing was written below their end (no write since staging starts lower).
    DataChecksum known = staged_.committedChecksum(index);
    if (staleFrom_ != kNone || stagedFrom_ < index * blockBytes_ + known.length) known = DataChecksum{};
    write.putBlock(id, index, blockBytes_, serial, bytes, sizeOf(index), counters, &known);
    lastStored_ = StoredChecksum{index, known};
  });
  if (!region_) return;
  scratch_.resize(blockBytes_);
  for (uint64_t index : region_->dirtyBlocks()) {
    const size_t size = sizeOf(index);
    if (size) {
      vmem::Error err;  // copyBlock never faults: we may hold locks the fault path needs
      if (region_->copyBlock(index, scratch_.data(), &err) != vmem::Status::Ok) raiseError(err);
    }
    write.putBlock(id, index, blockBytes_, serial, scratch_.data(), size, counters);
  }
}

void TrackedArray::invalidateChanged(const ChangeSet& others, bool othersUnknown) {
  if (!region_) return;
  region_->dropUnreadable();  // zeros served for unreadable blocks: read them again
  if (othersUnknown) {
    region_->invalidateAll();
    return;
  }
  auto it = others.byArray().find(source_.arrayId());
  if (it == others.byArray().end() || source_.arrayId() == 0) return;
  uint64_t lastBlock = region_->blockCount() - 1;
  std::vector<uint64_t> blocks;
  for (const auto& [first, last] : it->second.blocks) {
    uint64_t end = std::min(last, lastBlock);
    if (first > end) continue;
    if (blocks.size() + (end - first + 1) > kMaxInvalidateList) {
      region_->invalidateAll();
      return;
    }
    for (uint64_t b = first; b <= end; ++b) blocks.push_back(b);
  }
  if (!blocks.empty()) region_->invalidate(blocks.data(), blocks.size());
}

bool TrackedArray::appendOnly() {
  if ((!region_ && staged_.empty()) || id() == 0 || staleFrom_ != kNone || byteLength_ <= committedLength_) {
    return false;
  }
  // Staged writes all at or past the committed length: nothing below it changed.
  if (!region_ && stagedFrom_ >= committedLength_) return true;
  const uint64_t boundary = committedLength_ / blockBytes_;
  std::vector<uint64_t> dirty = changedBlocks();
  if (!dirty.empty() && dirty.front() < boundary) return false;
  const uint64_t within = committedLength_ % blockBytes_;
  if (within == 0 || !std::binary_search(dirty.begin(), dirty.end(), boundary)) return true;
  // The boundary block is dirty: an append dirties it, so does a write below the old end.
  const uint8_t* bytes = staged_.find(boundary);
  if (!bytes) {
    scratch_.resize(blockBytes_);
    vmem::Error err;
    if (region_->copyBlock(boundary, scratch_.data(), &err) != vmem::Status::Ok) raiseError(err);
    bytes = scratch_.data();
  }
  std::shared_ptr<Snapshot> snap = holder_->get();
  std::shared_lock<std::shared_mutex> mapGuard(snap->env().mapLock);
  BlockView committed = committedBlock(*snap, boundary);
  uint64_t have = std::min<uint64_t>(committed.size, within);
  if (have && memcmp(bytes, committed.data, have) != 0) return false;
  for (uint64_t i = have; i < within; ++i) {
    if (bytes[i] != 0) return false;
  }
  return true;
}

void TrackedArray::copyUncommitted(uint64_t offset, uint64_t bytes, uint8_t* dst) {
  checkOpen();
  scratch_.resize(blockBytes_);
  while (bytes > 0) {
    uint64_t index = offset / blockBytes_, within = offset % blockBytes_;
    uint64_t n = std::min<uint64_t>(bytes, blockBytes_ - within);
    if (const uint8_t* staged = staged_.find(index)) {
      memcpy(dst, staged + within, n);
    } else if (region_) {
      vmem::Error err;
      if (region_->copyBlock(index, scratch_.data(), &err) != vmem::Status::Ok) raiseError(err);
      memcpy(dst, scratch_.data() + within, n);
    } else {
      memset(dst, 0, n);  // appended rows never written read as zeros
    }
    offset += n;
    dst += n;
    bytes -= n;
  }
}

void TrackedArray::afterRebase(uint64_t byteLength) {
  dropStaged(true);
  if (region_) {
    region_->dropDirty();
    region_->invalidateAll();
    if (staleFrom_ != kNone) region_->setSourceLimit(UINT64_MAX);
  }
  staleFrom_ = kNone;
  committedLength_ = byteLength_ = byteLength;
}

void TrackedArray::afterCommit(uint64_t assignedId, const ChangeSet& others, bool othersUnknown) {
  if (closed_) return;
  if (assignedId) source_.setArrayId(assignedId);
  // Stored: the buffers stay in the pool for the next transaction, and the last block as
  // the committed copy a stream of appends continues, unless something else may have
  // changed it (other commits, or the blocks this commit deleted after a shrink).
  const bool othersTouched = othersUnknown || others.byArray().count(source_.arrayId()) != 0;
  if (region_ || staleFrom_ != kNone || othersTouched) {
    dropStaged(true);
  } else {
    staged_.keepLastAsCommitted(lastStored_.index, lastStored_.checksum);
    stagedFrom_ = kNone;
  }
  lastStored_ = StoredChecksum{};
  if (region_) {
    // The stored blocks move to new file pages: map them afresh (before the old snapshot,
    // whose pages the current mappings show, is released).
    std::vector<uint64_t> dirty = region_->dirtyBlocks();
    region_->markClean(dirty.data(), dirty.size());
    if (staleFrom_ != kNone) region_->setSourceLimit(UINT64_MAX);  // stale blocks are gone now
    if (!forViews_) region_.reset();  // nothing of it is left to see: free the reservation
  }
  staleFrom_ = kNone;
  committedLength_ = byteLength_;
  invalidateChanged(others, othersUnknown);
}

void TrackedArray::afterCommitUnmoved(uint64_t assignedId) {
  if (closed_) return;
  if (assignedId) source_.setArrayId(assignedId);
  // Committed, but the handle still reads its old snapshot: drop our pages so that what it
  // shows stays consistent with that snapshot until refresh(); keep the shrink limit.
  dropStaged(true);
  if (region_) region_->dropDirty();
  committedLength_ = byteLength_;
}

void TrackedArray::discardChanges() {
  noteRegionErrors();
  poisoned_.clear();  // the pages it concerned are dropped now
  if (closed_) return;
  dropStaged(false);
  if (region_) region_->dropDirty();
  byteLength_ = committedLength_;
}

void TrackedArray::afterRefresh(const ChangeSet& others, bool othersUnknown) {
  if (closed_) return;
  if (othersUnknown || others.byArray().count(source_.arrayId())) staged_.forgetCommitted();
  if (region_ && staleFrom_ != kNone) region_->setSourceLimit(UINT64_MAX);
  staleFrom_ = kNone;
  invalidateChanged(others, othersUnknown);
}

void TrackedArray::adoptCommittedLength(uint64_t byteLength) {
  staged_.forgetCommitted();  // another handle changed the array
  if (region_) ensureReserved(byteLength);  // another handle grew it past our reservation
  committedLength_ = byteLength;
  if (!hasChanges()) byteLength_ = byteLength;
}

}  // namespace txa
