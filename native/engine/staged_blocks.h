// Uncommitted blocks of an array that has no region (no view): whole blocks staged in
// buffers the array keeps across commits.
//
// write() and append() to an array without views change copies of its blocks here rather
// than region memory: no mapping is made or removed, and once a buffer has been used its
// pages stay resident, so a stream of commits touches no fresh page and makes no
// page-table change. Each staged block holds the whole block as this transaction sees it
// (committed bytes, then the writes; zeros past the array's end). The array moves its
// staged blocks into a region when one is opened (a view sees them), and gives the buffers
// back to the pool at commit or abort.
//
// After a commit, the last block it stored can be kept as the committed copy of that block
// (keepLastAsCommitted): the next append of a stream continues that block, and staging it
// again then costs no read of the store. The array forgets the copy whenever the block may
// have changed otherwise (other commits, a shrink, a region). The copy keeps the checksum
// of its data as stored, so that the next commit of that block checksums only the bytes
// after the ones it kept unchanged (block_store.h, BlockWrite::putBlock).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "block_store.h"

namespace txa {

class StagedBlocks {
 public:
  explicit StagedBlocks(uint32_t blockBytes) : blockBytes_(blockBytes) {}
  ~StagedBlocks();
  StagedBlocks(const StagedBlocks&) = delete;
  StagedBlocks& operator=(const StagedBlocks&) = delete;

  bool empty() const { return staged_.empty(); }
  size_t size() const { return staged_.size(); }
  // The staged copy of block `index`, or nullptr.
  uint8_t* find(uint64_t index) const;
  // A buffer for block `index`, which must not be staged yet: from the pool, or new.
  // Its content is undefined; the caller fills all of it. May throw bad_alloc.
  uint8_t* add(uint64_t index);
  // Staged block indexes in increasing order.
  std::vector<uint64_t> indexes() const;
  // Calls fn(index, bytes) for each staged block in increasing order.
  template <typename Fn>
  void forEach(Fn&& fn) const {
    for (const auto& [index, buffer] : staged_) fn(index, static_cast<const uint8_t*>(buffer.get()));
  }
  // Stages block `index` from the committed copy if that is the block kept; else nullptr.
  uint8_t* stageCommitted(uint64_t index) noexcept;
  // The checksum of the committed data that staged block `index` starts with, when it was
  // staged from the committed copy (stageCommitted); else an empty one. The caller knows
  // whether it has written into those bytes since.
  DataChecksum committedChecksum(uint64_t index) const noexcept;
  // Keeps the highest staged block as the committed copy (the caller has just committed
  // exactly these bytes, with data checksum `stored` if `storedIndex` is that block), and
  // drops the rest.
  void keepLastAsCommitted(uint64_t storedIndex, DataChecksum stored) noexcept;
  void forgetCommitted() noexcept;
  // Drops block `index` if it is staged (its buffer goes back to the pool).
  void remove(uint64_t index) noexcept;
  // Drops blocks `first`.. (their buffers go back to the pool).
  void dropFrom(uint64_t first) noexcept;
  // Drops every block; the pool keeps up to kPoolBytes of buffers (at least two), within
  // a budget of 32 MiB kept by all arrays of the process.
  void clear() noexcept;
  // Drops every block, the pool and the committed copy.
  void release() noexcept;

 private:
  static constexpr size_t kPoolBytes = size_t(1) << 20;
  size_t poolLimit() const;
  void recycle(std::unique_ptr<uint8_t[]> buffer) noexcept;

  uint32_t blockBytes_;
  std::map<uint64_t, std::unique_ptr<uint8_t[]>> staged_;
  std::vector<std::unique_ptr<uint8_t[]>> pool_;
  uint64_t committedIndex_ = 0;
  std::unique_ptr<uint8_t[]> committed_;  // null: no committed copy kept
  DataChecksum committedChecksum_;        // of committed_'s data as stored
  // The block staged from the committed copy, and that copy's checksum (while staged).
  uint64_t restagedIndex_ = UINT64_MAX;
  DataChecksum restagedChecksum_;
};

}  // namespace txa
