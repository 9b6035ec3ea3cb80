// Budget: bounds the mappings (VMAs) the mapped blocks of a group of regions cost.
//
// Accounting: a mapped block is a VMA of its own (its file pages are never contiguous with
// a neighbour's: LMDB's overflow header lies between), two where a FILE block's stored
// bytes end before the block does (an anonymous tail), and it splits the placeholder it
// lies in unless a neighbour is mapped. So mapping block b adds its pieces plus 1 when both
// its neighbours are placeholders, plus 0 when one is, minus 1 when neither is (its
// one-block placeholder is gone); unmapping it gives back the same, the placeholders
// merging again. The region's edges count as placeholders, and anonymous blocks side by
// side as separate mappings though the kernel may merge them: the count errs high, never
// low. It is a function of the blocks' states, so it stays exact whatever order blocks
// change in (chargeLocked: atomic counters, so the fault path adds to them under its
// region lock only).
//
// Eviction runs BEFORE a fault maps past the limit, on the faulting path (service thread
// or signal handler), so it is async-signal-safe: no allocation, FutexMutex only. It frees
// a batch (limit/16) below the limit, asking regions round-robin; each region runs a clock
// over its mapped span and scans for writes only the runs the clock picked, so that written
// blocks stay. Where clean blocks do not make enough room, dirty blocks are spilled
// (spill.cc) the same way, so the limit holds whatever a transaction writes.
//
// vm.max_map_count bounds a process, so by default every handle of a process shares one
// budget (processBudget()): three quarters of the limit, the rest left to the program.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "internal.h"

namespace txa {
namespace vmem {
namespace {

uint64_t batchOf(const BudgetImpl* B) { return std::max<uint64_t>(B->limit.load() / 16, 16); }

// B->mu held. Unmaps blocks with `unmapSome` (evictLocked: clean ones; spillLocked: dirty
// ones) until the mappings are at most target or a round over the regions frees nothing.
void unmapDownTo(BudgetImpl* B, uint64_t target, uint64_t (*unmapSome)(RegionImpl*, uint64_t),
                 std::atomic<uint64_t>* counter) {
  const size_t n = B->regions.size();
  for (size_t tries = 0; tries < n && B->mappings.load() > target; tries++) {
    RegionImpl* R = B->regions[B->hand % n];
    B->hand = (B->hand + 1) % n;
    const uint64_t mapped = B->mappings.load();
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
  if (B->mappings.load() > target) unmapDownTo(B, target, spillLocked, nullptr);  // counts its own
}

}  // namespace

void chargeLocked(RegionImpl* R, uint64_t b, bool mapped) {
  const bool left = b > 0 && R->blocks[b - 1].state != BlockState::Unmapped;
  const bool right = b + 1 < R->blockCount && R->blocks[b + 1].state != BlockState::Unmapped;
  const BlockMeta& m = R->blocks[b];
  const bool tail = m.state == BlockState::File && uint64_t(m.filePages) * R->pageBytes < R->blockBytes;
  const uint64_t cost = 2 + uint64_t(tail) - uint64_t(left) - uint64_t(right);
  if (mapped) {
    R->mappings += cost;
  } else {
    R->mappings -= cost;
  }
  if (!R->budget || !R->budgetAttached) return;
  if (mapped) {
    R->budget->mappings.fetch_add(cost);
    R->budget->blocks.fetch_add(1);
  } else {
    R->budget->mappings.fetch_sub(cost);
    R->budget->blocks.fetch_sub(1);
  }
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
  // A run of blocks splits one placeholder at most, and each block may bring an anonymous
  // tail (its value's trailing zeros are not stored).
  const uint64_t more = 2 * blocks + 1;
  if (B->mappings.load() + more <= limit) return;
  FutexLock g(B->mu);
  if (B->mappings.load() + more <= limit) return;  // another thread made room
  const uint64_t floor = more + batchOf(B);
  evictDownTo(B, limit > floor ? limit - floor : 0);
}

void budgetAttach(BudgetImpl* B, RegionImpl* R) {
  FutexLock g(B->mu);
  B->regions.push_back(R);  // may throw bad_alloc: caller's thread, nothing held after
  FutexLock r(R->mu);
  R->budgetAttached = true;
  B->mappings.fetch_add(R->mappings + kRegionMappings);
  B->blocks.fetch_add(R->mappedCount);
}

void budgetDetach(BudgetImpl* B, RegionImpl* R) {
  FutexLock g(B->mu);
  auto it = std::find(B->regions.begin(), B->regions.end(), R);
  if (it != B->regions.end()) B->regions.erase(it);
  if (B->hand >= B->regions.size()) B->hand = 0;
  FutexLock r(R->mu);
  if (R->budgetAttached) {
    B->mappings.fetch_sub(R->mappings + kRegionMappings);
    B->blocks.fetch_sub(R->mappedCount);
  }
  R->budgetAttached = false;
}

Budget::Budget(uint64_t limitMappings) : impl_(new BudgetImpl) { impl_->limit = limitMappings; }

Budget::~Budget() { delete impl_; }  // precondition: no region attached

void Budget::setLimit(uint64_t limitMappings) { impl_->limit = limitMappings; }
uint64_t Budget::limit() const { return impl_->limit.load(); }

void Budget::trim() {
  FutexLock g(impl_->mu);
  evictDownTo(impl_, impl_->limit.load());
}

BudgetStats Budget::stats() const {
  BudgetStats s;
  s.limit = impl_->limit.load();
  s.mappings = impl_->mappings.load();
  s.mappedBlocks = impl_->blocks.load();
  s.evictions = impl_->evictions.load();
  s.spills = impl_->spills.load();
  s.passes = impl_->passes.load();
  FutexLock g(impl_->mu);
  s.regions = impl_->regions.size();
  return s;
}

uint64_t processMappingsDefault() {
  uint64_t maxMapCount = kDefaultMaxMapCount;
  if (FILE* f = fopen("/proc/sys/vm/max_map_count", "re")) {
    unsigned long long v = 0;
    if (fscanf(f, "%llu", &v) == 1 && v > 0) maxMapCount = v;
    fclose(f);
  }
  return maxMapCount / 4 * 3;
}

Status parseMappingsLimit(const char* text, uint64_t* limit, Error* err) {
  uint64_t v = 0;
  bool ok = text && *text;
  for (const char* p = text; ok && *p; p++) {
    ok = *p >= '0' && *p <= '9';
    if (ok) v = v * 10 + uint64_t(*p - '0');
    ok = ok && v <= kMaxMappingsLimit;
  }
  if (!ok || v == 0) {
    if (err) *err = Error{Status::InvalidArgument, 0, 0, "TXARRAY_MAPPINGS must be a whole number of mappings from 1 to 2147483647"};
    return Status::InvalidArgument;
  }
  *limit = v;
  return Status::Ok;
}

namespace {

struct ProcessBudget {
  std::shared_ptr<Budget> budget;  // null where TXARRAY_MAPPINGS was invalid
  Error error;
};

ProcessBudget* makeProcessBudget() {
  auto* P = new ProcessBudget;
  uint64_t limit = 0;
  const char* text = getenv("TXARRAY_MAPPINGS");
  if (!text) limit = processMappingsDefault();
  else if (parseMappingsLimit(text, &limit, &P->error) != Status::Ok) return P;
  P->budget = std::make_shared<Budget>(limit);
  return P;
}

}  // namespace

std::shared_ptr<Budget> processBudget(Error* err) {
  // Never destroyed: views may outlive every handle, up to the process's exit.
  static ProcessBudget* const shared = makeProcessBudget();
  if (!shared->budget && err) *err = shared->error;
  return shared->budget;
}

}  // namespace vmem
}  // namespace txa
