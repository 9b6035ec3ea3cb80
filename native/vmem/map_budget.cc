// Budget: bounds the mapped blocks of a group of regions (each costs up to two VMAs).
//
// Accounting: each mapped block charges one, each unmapped one credits it back
// (chargeLocked: an atomic counter, so the fault path adds to it under its region lock
// only). Eviction runs BEFORE a fault maps past the limit, on the faulting path (service
// thread or signal handler), so it is async-signal-safe: no allocation, FutexMutex only.
// It frees a batch (limit/16) below the limit, asking regions round-robin; each region
// runs a clock over its mapped span and scans for writes only the runs the clock picked,
// so that written blocks stay. Where clean blocks do not make enough room, dirty blocks are
// spilled (spill.cc) the same way, so the limit holds whatever a transaction writes.
#include <algorithm>

#include "internal.h"

namespace txa {
namespace vmem {
namespace {

uint64_t batchOf(const BudgetImpl* B) { return std::max<uint64_t>(B->limit.load() / 16, 16); }

// B->mu held. Unmaps blocks with `unmapSome` (evictLocked: clean ones; spillLocked: dirty
// ones) until mapped <= target or a round over the regions frees nothing.
void unmapDownTo(BudgetImpl* B, uint64_t target, uint64_t (*unmapSome)(RegionImpl*, uint64_t),
                 std::atomic<uint64_t>* counter) {
  const size_t n = B->regions.size();
  for (size_t tries = 0; tries < n && B->mapped.load() > target; tries++) {
    RegionImpl* R = B->regions[B->hand % n];
    B->hand = (B->hand + 1) % n;
    const uint64_t mapped = B->mapped.load();
    if (mapped <= target) break;
    uint64_t freed;
    {
      FutexLock g(R->mu);
      freed = unmapSome(R, mapped - target);
    }
    if (counter) counter->fetch_add(freed);
    if (freed) tries = 0;  // progress: keep going round
  }
}

// B->mu held. Clean blocks first; dirty ones (spilled) only for the room still missing.
void evictDownTo(BudgetImpl* B, uint64_t target) {
  if (B->regions.empty()) return;
  B->passes.fetch_add(1);
  unmapDownTo(B, target, evictLocked, &B->evictions);
  if (B->mapped.load() > target) unmapDownTo(B, target, spillLocked, nullptr);  // counts its own
}

}  // namespace

void chargeLocked(RegionImpl* R, int64_t blocks) {
  if (R->budget && R->budgetAttached) R->budget->mapped.fetch_add(static_cast<uint64_t>(blocks));
}

namespace {

// Unmaps the blocks of [b0, b1) that hold no writes, after a write scan of that range only:
// the clock picked every mapped block in it, the rest are placeholders already (a run
// joins picked blocks across them, one call for the lot). Returns how many it unmapped.
//
// Stores are held off from the scan to the unmap (holdStoresLocked, block_mapping.cc).
uint64_t unmapPickedRunLocked(RegionImpl* R, uint64_t b0, uint64_t b1) {
  if (b0 >= b1 || !holdStoresLocked(R, b0, b1)) return 0;
  scanWritesLocked(R, b0, b1);
  return unmapCleanReopenWrittenLocked(R, b0, b1);
}

}  // namespace

uint64_t evictLocked(RegionImpl* R, uint64_t want) {
  if (R->mappedCount == R->dirtyCount || want == 0) return 0;
  uint64_t freed = 0, picked = 0;
  uint64_t r0 = 0, r1 = 0;  // the open run: picked blocks, and placeholders between them
  const uint64_t lo = R->mappedLo, hi = R->mappedHi;
  if (R->clockHand < lo || R->clockHand >= hi) R->clockHand = lo;
  // Two turns at most: the first clears reference bits, the second finds them clear.
  for (uint64_t steps = 0; steps < 2 * (hi - lo) && picked < want; steps++) {
    uint64_t b = R->clockHand;
    R->clockHand = b + 1 >= hi ? lo : b + 1;
    BlockMeta& m = R->blocks[b];
    if (m.state != BlockState::Unmapped) {
      if (m.dirty || m.ref) {
        m.ref = 0;
        freed += unmapPickedRunLocked(R, r0, r1);  // a block that stays closes the run
        r0 = r1 = 0;
      } else {
        if (r0 == r1) r0 = b;
        r1 = b + 1;
        picked++;
      }
    }
    if (R->clockHand == lo) {  // a run never wraps around
      freed += unmapPickedRunLocked(R, r0, r1);
      r0 = r1 = 0;
    }
  }
  freed += unmapPickedRunLocked(R, r0, r1);
  R->st.evictions += freed;
  return freed;
}

void budgetMakeRoom(BudgetImpl* B, uint64_t blocks) {
  const uint64_t limit = B->limit.load();
  if (B->mapped.load() + blocks <= limit) return;
  FutexLock g(B->mu);
  if (B->mapped.load() + blocks <= limit) return;  // another thread made room
  const uint64_t floor = blocks + batchOf(B);
  evictDownTo(B, limit > floor ? limit - floor : 0);
}

void budgetAttach(BudgetImpl* B, RegionImpl* R) {
  FutexLock g(B->mu);
  B->regions.push_back(R);  // may throw bad_alloc: caller's thread, nothing held after
  FutexLock r(R->mu);
  R->budgetAttached = true;
  B->mapped.fetch_add(R->mappedCount);
}

void budgetDetach(BudgetImpl* B, RegionImpl* R) {
  FutexLock g(B->mu);
  auto it = std::find(B->regions.begin(), B->regions.end(), R);
  if (it != B->regions.end()) B->regions.erase(it);
  if (B->hand >= B->regions.size()) B->hand = 0;
  FutexLock r(R->mu);
  if (R->budgetAttached) B->mapped.fetch_sub(R->mappedCount);
  R->budgetAttached = false;
}

Budget::Budget(uint64_t limitBlocks) : impl_(new BudgetImpl) { impl_->limit = limitBlocks; }

Budget::~Budget() { delete impl_; }  // precondition: no region attached

void Budget::setLimit(uint64_t limitBlocks) { impl_->limit = limitBlocks; }
uint64_t Budget::limit() const { return impl_->limit.load(); }

void Budget::trim() {
  FutexLock g(impl_->mu);
  evictDownTo(impl_, impl_->limit.load());
}

BudgetStats Budget::stats() const {
  BudgetStats s;
  s.limitBlocks = impl_->limit.load();
  s.mappedBlocks = impl_->mapped.load();
  s.evictions = impl_->evictions.load();
  s.spills = impl_->spills.load();
  s.passes = impl_->passes.load();
  FutexLock g(impl_->mu);
  s.regions = impl_->regions.size();
  return s;
}

}  // namespace vmem
}  // namespace txa
