#include "staged_blocks.h"

#include <algorithm>
#include <atomic>

namespace txa {
namespace {

// Bytes of buffers kept between transactions (pools and committed copies), all arrays of
// the process: an application writing tens of thousands of arrays keeps at most this much.
constexpr size_t kRetainBytes = size_t(32) << 20;
std::atomic<size_t> gRetained{0};

bool retain(size_t bytes) noexcept {
  size_t now = gRetained.load(std::memory_order_relaxed);
  do {
    if (now + bytes > kRetainBytes) return false;
  } while (!gRetained.compare_exchange_weak(now, now + bytes, std::memory_order_relaxed));
  return true;
}

void unretain(size_t bytes) noexcept { gRetained.fetch_sub(bytes, std::memory_order_relaxed); }

}  // namespace

StagedBlocks::~StagedBlocks() { release(); }

uint8_t* StagedBlocks::find(uint64_t index) const {
  auto it = staged_.find(index);
  return it == staged_.end() ? nullptr : it->second.get();
}

size_t StagedBlocks::poolLimit() const { return std::max<size_t>(2, kPoolBytes / blockBytes_); }

uint8_t* StagedBlocks::add(uint64_t index) {
  pool_.reserve(poolLimit());  // so that recycling never allocates
  std::unique_ptr<uint8_t[]> buffer;
  if (!pool_.empty()) {
    buffer = std::move(pool_.back());
    pool_.pop_back();
    unretain(blockBytes_);
  } else {
    buffer.reset(new uint8_t[blockBytes_]);
  }
  uint8_t* bytes = buffer.get();
  try {
    staged_.emplace(index, std::move(buffer));
  } catch (...) {
    recycle(std::move(buffer));
    throw;
  }
  return bytes;
}

std::vector<uint64_t> StagedBlocks::indexes() const {
  std::vector<uint64_t> out;
  out.reserve(staged_.size());
  for (const auto& entry : staged_) out.push_back(entry.first);
  return out;
}

void StagedBlocks::recycle(std::unique_ptr<uint8_t[]> buffer) noexcept {
  if (pool_.size() < std::min(pool_.capacity(), poolLimit()) && retain(blockBytes_)) pool_.push_back(std::move(buffer));
}

uint8_t* StagedBlocks::stageCommitted(uint64_t index) noexcept {
  if (!committed_ || committedIndex_ != index || staged_.count(index)) return nullptr;
  uint8_t* bytes = committed_.get();
  try {
    staged_.emplace(index, std::move(committed_));
  } catch (...) {  // the node could not be allocated: committed_ was not moved from
    return nullptr;
  }
  unretain(blockBytes_);
  restagedIndex_ = index;
  restagedChecksum_ = committedChecksum_;
  return bytes;
}

DataChecksum StagedBlocks::committedChecksum(uint64_t index) const noexcept {
  return index == restagedIndex_ ? restagedChecksum_ : DataChecksum{};
}

void StagedBlocks::keepLastAsCommitted(uint64_t storedIndex, DataChecksum stored) noexcept {
  forgetCommitted();
  if (!staged_.empty() && retain(blockBytes_)) {
    auto last = std::prev(staged_.end());
    committedIndex_ = last->first;
    committedChecksum_ = last->first == storedIndex ? stored : DataChecksum{};
    committed_ = std::move(last->second);
    staged_.erase(last);
  }
  clear();
}

void StagedBlocks::forgetCommitted() noexcept {
  committedChecksum_ = DataChecksum{};
  if (!committed_) return;
  unretain(blockBytes_);
  recycle(std::move(committed_));
  committed_.reset();
}

void StagedBlocks::remove(uint64_t index) noexcept {
  auto it = staged_.find(index);
  if (it == staged_.end()) return;
  if (index == restagedIndex_) restagedIndex_ = UINT64_MAX;
  recycle(std::move(it->second));
  staged_.erase(it);
}

void StagedBlocks::dropFrom(uint64_t first) noexcept {
  if (restagedIndex_ >= first) restagedIndex_ = UINT64_MAX;
  for (auto it = staged_.lower_bound(first); it != staged_.end();) {
    recycle(std::move(it->second));
    it = staged_.erase(it);
  }
}

void StagedBlocks::clear() noexcept { dropFrom(0); }

void StagedBlocks::release() noexcept {
  staged_.clear();
  restagedIndex_ = UINT64_MAX;
  committedChecksum_ = DataChecksum{};
  if (committed_) unretain(blockBytes_);
  committed_.reset();
  unretain(pool_.size() * size_t(blockBytes_));
  std::vector<std::unique_ptr<uint8_t[]>>().swap(pool_);
}

}  // namespace txa
