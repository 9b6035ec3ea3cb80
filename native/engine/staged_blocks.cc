#include "staged_blocks.h"

#include <algorithm>

namespace txa {

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
  if (pool_.size() < std::min(pool_.capacity(), poolLimit())) pool_.push_back(std::move(buffer));
}

void StagedBlocks::remove(uint64_t index) noexcept {
  auto it = staged_.find(index);
  if (it == staged_.end()) return;
  recycle(std::move(it->second));
  staged_.erase(it);
}

void StagedBlocks::dropFrom(uint64_t first) noexcept {
  for (auto it = staged_.lower_bound(first); it != staged_.end();) {
    recycle(std::move(it->second));
    it = staged_.erase(it);
  }
}

void StagedBlocks::clear() noexcept { dropFrom(0); }

void StagedBlocks::release() {
  staged_.clear();
  pool_.clear();
  pool_.shrink_to_fit();
}

}  // namespace txa
