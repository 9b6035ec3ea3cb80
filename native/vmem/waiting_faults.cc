// Faults that wait for a fetch (Uffd mode): see "Faults that wait for a fetch" in vmem.h.
//
// A fault on a block the source must fetch first (BlockSource::ready() false: a stub of a
// lazily cached remote store) is not answered: the block is recorded in its region's
// waiting list, the source is asked for it (and for the other unready blocks of the fault's
// window, in the same request), and the service thread goes on serving other faults. The
// fetcher, once the block is ready or failed, calls resumeWaitingFaults(): every waiting
// block of every region is served again by the ordinary fault path, and every page of a
// block that was served is woken. A fault waits at most the time the source's answer to
// requestFetch() gave; the service thread resumes waiting faults itself while any wait
// (kResumePollMs), so a fetcher that never answers leaves no thread waiting for ever.
#include <time.h>

#include <atomic>

#include "internal.h"

namespace txa {
namespace vmem {
namespace {

std::atomic<uint64_t> g_waiting{0};  // entries of every region's waiting list

// Index of b in R's waiting list, or -1.
long findLocked(const RegionImpl* R, uint64_t b) {
  for (size_t i = 0; i < R->waiting.count; i++)
    if (R->waiting.block[i] == b) return static_cast<long>(i);
  return -1;
}

void removeAtLocked(RegionImpl* R, size_t i) {
  WaitingFaults& w = R->waiting;
  w.block[i] = w.block[w.count - 1];
  w.deadlineNs[i] = w.deadlineNs[w.count - 1];
  w.window[i] = w.window[w.count - 1];
  w.count--;
  g_waiting.fetch_sub(1, std::memory_order_relaxed);
}

// R->mu held: block b is one the source must fetch, and may be asked for.
bool fetchable(RegionImpl* R, uint64_t b) {
  const BlockMeta& m = R->blocks[b];
  return m.state == BlockState::Unmapped && !m.spilled && b * R->blockBytes < R->sourceLimit && !R->source->ready(b);
}

struct Resume {
  uint64_t served = 0;
};

// One region: each waiting block is served again (no lock held here; serveFault takes
// Budget::mu then R->mu), and every page of the blocks no longer waiting is woken.
void resumeRegion(RegionImpl* R, void* ctx) {
  if (R->mode != FaultMode::Uffd) return;
  uint64_t blocks[kWaitingFaultsMax];
  WaitingWindow windows[kWaitingFaultsMax];
  size_t n = 0;
  {
    FutexLock g(R->mu);
    if (R->closing) return;
    n = R->waiting.count;
    for (size_t i = 0; i < n; i++) blocks[i] = R->waiting.block[i], windows[i] = R->waiting.window[i];
  }
  for (size_t i = 0; i < n; i++) {
    const uintptr_t at = reinterpret_cast<uintptr_t>(R->blockAddr(blocks[i]));
    const WaitingWindow& w = windows[i];
    uintptr_t lo = 0, hi = 0;
    bool waits = false;
    serveWindow(R, at, blocks[i], w.w0, w.w1, w.ra, w.sequentialOk, &lo, &hi, &waits);
    if (waits) continue;  // still waiting: the source was asked again (or is still fetching)
    uffdWake(R->uffd, at, at + R->blockBytes);
    if (hi > lo) uffdWake(R->uffd, lo, hi);
    static_cast<Resume*>(ctx)->served++;
  }
}

}  // namespace

uint64_t monoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t waitingFaultsNow() { return g_waiting.load(std::memory_order_relaxed); }

bool waitForFetchLocked(RegionImpl* R, uint64_t b, const WaitingWindow& window) {
  if (R->mode != FaultMode::Uffd || !fetchable(R, b)) return false;
  const long at = findLocked(R, b);
  const uint64_t now = monoNs();
  if (at >= 0 && now >= R->waiting.deadlineNs[at]) {
    removeAtLocked(R, static_cast<size_t>(at));
    R->st.fetchWaitsExpired++;
    return false;  // waited long enough: served as an unreadable block
  }
  // Asked again even when waiting already: after a move the snapshot may name another
  // version, and a failed fetch answers 0 (the source does not send a request twice).
  const uint64_t waitNs = R->source->requestFetch(b);
  if (waitNs == 0) {
    if (at >= 0) removeAtLocked(R, static_cast<size_t>(at));
    return false;
  }
  if (at >= 0) return true;
  if (R->waiting.count == kWaitingFaultsMax) return false;  // see vmem.h: served as unreadable
  R->waiting.block[R->waiting.count] = b;
  R->waiting.deadlineNs[R->waiting.count] = now + waitNs;
  R->waiting.window[R->waiting.count] = window;
  R->waiting.count++;
  g_waiting.fetch_add(1, std::memory_order_relaxed);
  R->st.faultsWaited++;
  // The rest of the window is asked for with it (fetched in the same round trip unless the
  // fetcher takes the requests in between), as read-ahead would map it.
  for (uint64_t n = window.w0; n < window.w1 && n < R->blockCount; n++)
    if (n != b && fetchable(R, n)) R->source->requestFetchAhead(n);
  return true;
}

bool dropWaitingLocked(RegionImpl* R, uint64_t b) {
  if (R->waiting.count == 0) return false;
  const long at = findLocked(R, b);
  if (at < 0) return false;
  removeAtLocked(R, static_cast<size_t>(at));
  return true;
}

void clearWaitingLocked(RegionImpl* R) {
  g_waiting.fetch_sub(R->waiting.count, std::memory_order_relaxed);
  R->waiting.count = 0;
}

uint64_t resumeWaitingFaults() {
  // No shortcut on waitingFaultsNow(): a fault may be between its request and its entry.
  Resume r;
  registryForEach(resumeRegion, &r);
  return r.served;
}

}  // namespace vmem
}  // namespace txa
