// vmem cases: faults that wait for a fetch (vmem.h, FAULTS THAT WAIT FOR A FETCH), over a
// RAM source whose blocks may be "stubs" that a fetcher thread makes ready (or fails).
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "../vmem/vmem.h"
#include "harness.h"
#include "vmem_waiting_test.h"

using namespace txa;
using namespace txa::vmem;

#define CHECK_OK(expr) CHECK((expr) == Status::Ok)

namespace {

constexpr uint64_t B = 64 << 10;
constexpr uint64_t N = 32;
constexpr uint8_t kReady = 0, kStub = 1, kFailed = 2;

uint8_t byteOf(uint64_t b, uint64_t off) { return static_cast<uint8_t>(b * 37 + off * 11 + 5); }

// Blocks in memory; a stub reads as unreadable until the fetcher makes it ready.
class FetchingSource : public BlockSource {
 public:
  FetchingSource() : bytes_(N * B) {
    for (uint64_t b = 0; b < N; b++)
      for (uint64_t i = 0; i < B; i++) bytes_[b * B + i] = byteOf(b, i);
    for (uint64_t b = 0; b < N; b++) state[b] = kReady, requests[b] = 0, inFlight[b] = 0;
  }
  bool pin(uint64_t index, BlockView* out) override {
    *out = BlockView{};
    if (index >= N) return true;
    if (state[index] != kReady) return false;
    out->data = bytes_.data() + index * B;
    out->size = B;
    return true;
  }
  void unpin() override {}
  bool ready(uint64_t index) override { return index >= N || state[index] == kReady; }
  uint64_t requestFetch(uint64_t index) override {
    if (!fetching || index >= N || state[index] == kFailed) return 0;
    if (inFlight[index].exchange(1) == 0) requests[index]++;
    return waitNs;
  }
  std::atomic<uint8_t> state[N];
  std::atomic<int> requests[N];
  std::atomic<int> inFlight[N];
  bool fetching = true;
  uint64_t waitNs = 5'000'000'000;

 private:
  std::vector<uint8_t> bytes_;
};

// Answers the source's requests after `delay`: ready, or failed; then resumes the faults.
class Fetcher {
 public:
  // staleFirst: the first answer for each block is for a version the source no longer
  // names (it moved meanwhile): the block stays unready, the fault must be asked again.
  Fetcher(FetchingSource& src, bool fail, std::chrono::milliseconds delay, bool staleFirst = false) : src_(src) {
    thread_ = std::thread([this, fail, delay, staleFirst] {
      while (!stop_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        bool any = false;
        for (uint64_t b = 0; b < N; b++) any = any || src_.inFlight[b];
        if (!any) continue;
        std::this_thread::sleep_for(delay);
        for (uint64_t b = 0; b < N; b++) {
          if (!src_.inFlight[b]) continue;
          if (!(staleFirst && src_.requests[b] == 1)) src_.state[b] = fail ? kFailed : kReady;
          src_.inFlight[b] = 0;
        }
        resumeWaitingFaults();
      }
    });
  }
  ~Fetcher() {
    stop_ = true;
    thread_.join();
  }

 private:
  FetchingSource& src_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::unique_ptr<Region> openRegion(FetchingSource& src, FaultMode m) {
  RegionOptions o;
  o.reserveBytes = N * B;
  o.blockBytes = B;
  o.faultBytes = 4 * B;
  o.mode = m;
  Error err;
  auto r = Region::open(&src, o, &err);
  if (!r) fprintf(stderr, "open: %s\n", describe(err).c_str());
  return r;
}

double secondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

void testFaultWaitsForFetch(FaultMode m) {
  FetchingSource src;
  for (uint64_t b = 0; b < N; b++) src.state[b] = kStub;
  auto r = openRegion(src, m);
  CHECK(r != nullptr);
  if (!r) return;
  if (m == FaultMode::Sigsegv) {  // never waits: an unready block reads as unreadable
    CHECK(r->base()[5 * B + 10] == 0);
    Error e;
    CHECK(r->takeError(&e) && e.status == Status::SourceError);
    CHECK(src.requests[5] == 0);
    return;
  }
  Fetcher fetcher(src, false, std::chrono::milliseconds(30));
  CHECK(r->base()[5 * B + 10] == byteOf(5, 10));
  // The fault's window [4, 8) was asked for in the same request; nothing else.
  for (uint64_t b = 0; b < N; b++) CHECK(src.requests[b] == (b >= 4 && b < 8 ? 1 : 0));
  CHECK(r->base()[7 * B + B - 1] == byteOf(7, B - 1));
  CHECK(src.requests[7] == 1);
  // Several threads faulting on pages of one stub block: one request, every thread served.
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; t++)
    readers.emplace_back([&, t] {
      const uint64_t off = static_cast<uint64_t>(t) * 4096 * 3 + 17;
      if (r->base()[13 * B + off] != byteOf(13, off)) bad++;
    });
  for (auto& t : readers) t.join();
  CHECK(bad == 0);
  CHECK(src.requests[13] == 1);
  Error e;
  CHECK(!r->takeError(&e));
  RegionStats st = r->stats();
  CHECK(st.faultsWaited >= 2 && st.waitingNow == 0 && st.fetchWaitsExpired == 0);
}

void testMoveWhileWaiting(FaultMode m) {
  if (m == FaultMode::Sigsegv) return skip("faults wait for fetches in userfaultfd mode only");
  FetchingSource src;
  src.state[17] = kStub;
  auto r = openRegion(src, m);
  CHECK(r != nullptr);
  if (!r) return;
  Fetcher fetcher(src, false, std::chrono::milliseconds(20), true);
  // The first answer leaves the block unready (the source moved to another version): the
  // fault is not served with it, the source is asked again, and the second answer serves it.
  CHECK(r->base()[17 * B + 3] == byteOf(17, 3));
  CHECK(src.requests[17] == 2);
  Error e;
  CHECK(!r->takeError(&e));
  CHECK(r->stats().faultsWaited == 1);
}

void testFailedFetchServesZeros(FaultMode m) {
  if (m == FaultMode::Sigsegv) return skip("faults wait for fetches in userfaultfd mode only");
  FetchingSource src;
  src.state[3] = kStub;
  auto r = openRegion(src, m);
  CHECK(r != nullptr);
  if (!r) return;
  Fetcher fetcher(src, true, std::chrono::milliseconds(10));
  CHECK(r->base()[3 * B + 100] == 0);
  Error e;
  CHECK(r->takeError(&e) && e.status == Status::SourceError && e.block == 3);
  CHECK(src.requests[3] == 1);
  CHECK(r->base()[2 * B + 100] == byteOf(2, 100));  // the rest reads on
  // The next move: the zeros go, the block is read again (here: ready now).
  src.state[3] = kReady;
  CHECK(r->base()[3 * B + 100] == 0);
  CHECK_OK(r->dropUnreadable());
  CHECK(!r->isMapped(3));
  CHECK(r->base()[3 * B + 100] == byteOf(3, 100));
  CHECK(!r->takeError(&e));
}

void testUnansweredFetchExpires(FaultMode m) {
  if (m == FaultMode::Sigsegv) return skip("faults wait for fetches in userfaultfd mode only");
  FetchingSource src;
  src.state[6] = kStub;
  src.waitNs = 300'000'000;
  auto r = openRegion(src, m);
  CHECK(r != nullptr);
  if (!r) return;
  auto t0 = std::chrono::steady_clock::now();
  CHECK(r->base()[6 * B] == 0);  // nobody answers: served as unreadable once the wait ran out
  const double waited = secondsSince(t0);
  CHECK(waited >= 0.29 && waited < 3);
  Error e;
  CHECK(r->takeError(&e) && e.status == Status::SourceError);
  CHECK(r->stats().fetchWaitsExpired == 1);
  // No fetcher at all: served at once.
  src.fetching = false;
  src.state[20] = kStub;
  t0 = std::chrono::steady_clock::now();
  CHECK(r->base()[20 * B] == 0);
  CHECK(secondsSince(t0) < 0.2);
}

void testKernelFaultWaits(FaultMode m) {
  if (m == FaultMode::Sigsegv) return skip("faults wait for fetches in userfaultfd mode only");
  if (!systemInfo().kernelFaults) return skip("userfaultfd serves user-mode faults only here");
  FetchingSource src;
  src.state[9] = kStub;
  src.state[10] = kStub;
  auto r = openRegion(src, m);
  CHECK(r != nullptr);
  if (!r) return;
  Fetcher fetcher(src, false, std::chrono::milliseconds(20));
  char path[] = "/tmp/vmem-test-wait-XXXXXX";
  int fd = mkstemp(path);
  unlink(path);
  // write(2) reads the view inside the kernel: its fault waits, is served, the copy goes on.
  CHECK(::write(fd, r->base() + 9 * B, 2 * B) == static_cast<ssize_t>(2 * B));
  std::vector<uint8_t> back(2 * B);
  CHECK(pread(fd, back.data(), back.size(), 0) == static_cast<ssize_t>(back.size()));
  CHECK(back[5] == byteOf(9, 5) && back[B + 77] == byteOf(10, 77) && back[2 * B - 1] == byteOf(10, B - 1));
  close(fd);
}

void testCloseWhileWaiting(FaultMode m) {
  if (m == FaultMode::Sigsegv) return skip("faults wait for fetches in userfaultfd mode only");
  if (!systemInfo().kernelFaults) return skip("userfaultfd serves user-mode faults only here");
  FetchingSource src;
  src.state[4] = kStub;
  src.waitNs = 20'000'000'000;  // nobody answers within the case
  auto r = openRegion(src, m);
  CHECK(r != nullptr);
  if (!r) return;
  char path[] = "/tmp/vmem-test-wait-XXXXXX";
  int fd = mkstemp(path);
  unlink(path);
  std::atomic<bool> done{false};
  uint8_t* at = r->base() + 4 * B;
  std::thread writer([&] {
    ssize_t n = ::write(fd, at, B);  // waits for the fetch in the kernel
    (void)n;  // the bytes, or EFAULT once the region is gone: either way it returns
    done = true;
  });
  for (int i = 0; i < 100 && r->stats().waitingNow == 0; i++) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(r->stats().waitingNow == 1);
  CHECK(!done);
  const auto t0 = std::chrono::steady_clock::now();
  r->close();
  writer.join();
  CHECK(done && secondsSince(t0) < 2);
  close(fd);
}
