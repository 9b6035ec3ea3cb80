// Process-wide table of regions, looked up by address from the fault paths.
//
// Lookups run in a signal handler (Sigsegv mode) or on the service thread, so they take no
// lock and allocate nothing: a fixed array of slots, each with the region's range and a
// use count. A lookup raises the use count BEFORE reading the region pointer, and removal
// clears the pointer BEFORE waiting for the use count to reach zero: with sequentially
// consistent atomics, either the lookup sees nullptr, or the removal sees its count.
#include <sched.h>

#include <atomic>
#include <mutex>

#include "internal.h"

namespace txa {
namespace vmem {
namespace {

struct Slot {
  std::atomic<uintptr_t> lo{0};
  std::atomic<uintptr_t> hi{0};
  std::atomic<RegionImpl*> region{nullptr};
  std::atomic<int> users{0};
};

Slot g_slots[kMaxRegions];
std::atomic<size_t> g_highWater{0};  // slots at or past this are unused
std::mutex g_insertMu;               // serializes insert/remove (never on a fault path)

}  // namespace

RegionImpl* registryAcquire(uintptr_t addr, int* slot) {
  size_t n = g_highWater.load();
  for (size_t i = 0; i < n; i++) {
    Slot& s = g_slots[i];
    // Cheap prefilter on the range; the authoritative check is after raising the count.
    if (addr < s.lo.load(std::memory_order_relaxed) ||
        addr >= s.hi.load(std::memory_order_relaxed))
      continue;
    s.users.fetch_add(1);
    RegionImpl* r = s.region.load();
    if (r && addr >= reinterpret_cast<uintptr_t>(r->base) &&
        addr < reinterpret_cast<uintptr_t>(r->base) + r->reserve) {
      *slot = static_cast<int>(i);
      return r;
    }
    s.users.fetch_sub(1);
  }
  return nullptr;
}

void registryRelease(int slot) { g_slots[slot].users.fetch_sub(1); }

void registryForEach(void (*fn)(RegionImpl*, void*), void* ctx) {
  size_t n = g_highWater.load();
  for (size_t i = 0; i < n; i++) {
    Slot& s = g_slots[i];
    if (s.region.load(std::memory_order_relaxed) == nullptr) continue;  // prefilter
    s.users.fetch_add(1);  // as registryAcquire: the region stays until we are done
    if (RegionImpl* r = s.region.load()) fn(r, ctx);
    s.users.fetch_sub(1);
  }
}

bool inAnyRegion(const void* p, uint64_t bytes) {
  if (bytes == 0) return false;
  const uintptr_t lo = reinterpret_cast<uintptr_t>(p);
  return registryOverlaps(lo, lo + bytes);
}

bool registryOverlaps(uintptr_t lo, uintptr_t hi) {
  size_t n = g_highWater.load();
  for (size_t i = 0; i < n; i++) {
    const Slot& s = g_slots[i];
    // A freed slot holds [0, 0), which overlaps nothing.
    if (lo < s.hi.load(std::memory_order_relaxed) && s.lo.load(std::memory_order_relaxed) < hi)
      return true;
  }
  return false;
}

int registryInsert(RegionImpl* R) {
  std::lock_guard<std::mutex> g(g_insertMu);
  size_t n = g_highWater.load();
  for (size_t i = 0; i < kMaxRegions; i++) {
    Slot& s = g_slots[i];
    if (s.region.load() != nullptr) continue;
    // A slot freed by registryRemove has users == 0 (it waited), so it is safe to reuse.
    s.lo.store(reinterpret_cast<uintptr_t>(R->base));
    s.hi.store(reinterpret_cast<uintptr_t>(R->base) + R->reserve);
    s.region.store(R);
    if (i >= n) g_highWater.store(i + 1);
    return static_cast<int>(i);
  }
  return -1;
}

void registryRemove(int slot) {
  std::lock_guard<std::mutex> g(g_insertMu);
  Slot& s = g_slots[slot];
  s.region.store(nullptr);
  s.lo.store(0);
  s.hi.store(0);
  // A fault path that found the region before we cleared it is still serving a fault;
  // the region's memory and state must stay until it is done. This waits at most one
  // fault service (it never waits for the caller: THE RULE).
  while (s.users.load() != 0) sched_yield();
}

}  // namespace vmem
}  // namespace txa
