// Budget: bounds the loaded bytes of a group of regions (cacheBytes).
//
// Accounting: each load charges unitBytes, each drop credits them back (chargeLocked, an
// atomic counter, so the fault path adds to it under its region lock only). Eviction runs
// BEFORE a load would exceed the limit, on the faulting path (service thread or signal
// handler), so it must be async-signal-safe: no allocation, FutexMutex only. It frees a
// batch below the limit, asking regions round-robin; each region runs its clock.
#include <algorithm>

#include "internal.h"

namespace txa {
namespace vmem {
namespace {

uint64_t batchOf(const BudgetImpl* B) {
  if (B->batchSet.load()) return B->batch.load();
  return std::min<uint64_t>(B->limit.load() / 16, 64 << 20);
}

// B->mu held. Evicts until charged <= target or a round over the regions frees nothing.
void evictDownTo(BudgetImpl* B, uint64_t target) {
  const size_t n = B->regions.size();
  if (n == 0) return;
  B->passes.fetch_add(1);
  for (size_t tries = 0; tries < n && B->charged.load() > target; tries++) {
    RegionImpl* R = B->regions[B->hand % n];
    B->hand = (B->hand + 1) % n;
    const uint64_t charged = B->charged.load();
    if (charged <= target) break;
    uint64_t blocks = 0, freed;
    {
      FutexLock g(R->mu);
      freed = evictLocked(R, charged - target, &blocks);
    }
    B->evictions.fetch_add(blocks);
    B->evictedBytes.fetch_add(freed);
    if (freed) tries = 0;  // progress: keep going round
  }
}

}  // namespace

uint64_t budgetBatchBytes(const BudgetImpl* B) { return batchOf(B); }

void budgetMakeRoom(BudgetImpl* B, uint64_t need) {
  const uint64_t limit = B->limit.load();
  if (B->charged.load() + need <= limit) return;
  FutexLock g(B->mu);
  if (B->charged.load() + need <= limit) return;  // another thread made room
  const uint64_t floor = need + batchOf(B);
  evictDownTo(B, limit > floor ? limit - floor : 0);
}

void budgetAttach(BudgetImpl* B, RegionImpl* R) {
  FutexLock g(B->mu);
  B->regions.push_back(R);  // may throw bad_alloc: caller's thread, nothing held after
  FutexLock r(R->mu);
  R->budgetAttached = true;
  B->charged.fetch_add(R->st.residentBytes);
}

void budgetDetach(BudgetImpl* B, RegionImpl* R) {
  FutexLock g(B->mu);
  auto it = std::find(B->regions.begin(), B->regions.end(), R);
  if (it != B->regions.end()) B->regions.erase(it);
  if (B->hand >= B->regions.size()) B->hand = 0;
  FutexLock r(R->mu);
  if (R->budgetAttached) B->charged.fetch_sub(R->st.residentBytes);
  R->budgetAttached = false;
}

Budget::Budget(uint64_t limitBytes) : impl_(new BudgetImpl) { impl_->limit = limitBytes; }

Budget::~Budget() {
  // Precondition: no region attached (they keep a pointer to us). Checked in debug builds.
#ifndef NDEBUG
  if (!impl_->regions.empty()) __builtin_trap();
#endif
  delete impl_;
}

void Budget::setLimit(uint64_t limitBytes) { impl_->limit = limitBytes; }
uint64_t Budget::limit() const { return impl_->limit.load(); }
void Budget::setBatchBytes(uint64_t bytes) {
  impl_->batch = bytes;
  impl_->batchSet = true;
}
uint64_t Budget::chargedBytes() const { return impl_->charged.load(); }

void Budget::trim() {
  FutexLock g(impl_->mu);
  evictDownTo(impl_, impl_->limit.load());
}

BudgetStats Budget::stats() const {
  BudgetStats s;
  s.limitBytes = impl_->limit.load();
  s.chargedBytes = impl_->charged.load();
  s.evictions = impl_->evictions.load();
  s.evictedBytes = impl_->evictedBytes.load();
  s.passes = impl_->passes.load();
  FutexLock g(impl_->mu);
  s.regions = impl_->regions.size();
  return s;
}

}  // namespace vmem
}  // namespace txa
