// vmem test program: the Region contract (vmem.h) over a file-backed BlockSource, in both
// fault modes. No Node, no LMDB.
//   vmem_test            run every case in every available mode
//
// Each test function run for one mode is a case. Ends with two lines, checks (single
// assertions) then cases:
//   checks: N passed, N failed
//   cases: N passed, N failed, N skipped
// A case that cannot run here prints "skipped" with the reason. Exit status 0 only if
// nothing failed.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <algorithm>
#include <thread>
#include <vector>

#include "../vmem/vmem.h"
#include "harness.h"

using namespace txa;
using namespace txa::vmem;

#define CHECK_OK(expr) CHECK((expr) == Status::Ok)

static const uint64_t kPage = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));

static uint8_t pat(uint64_t block, uint64_t off, uint8_t gen) {
  return static_cast<uint8_t>(block * 131 + off * 7 + 1 + gen * 29 + (off >> 12));
}

// Blocks stored page-aligned in a temporary file, at shuffled offsets (block b of generation
// g lives in slot table_[b]); `commit` writes a new generation of some blocks to new slots,
// as a store does, leaving the old slots intact (a live snapshot keeps its pages).
class FileSource : public BlockSource {
 public:
  FileSource(uint64_t blockBytes, uint64_t nBlocks) : blockBytes_(blockBytes), table_(nBlocks, UINT64_MAX), sizes_(nBlocks, 0) {
    char path[] = "/tmp/vmem-test-XXXXXX";
    fd_ = mkstemp(path);
    unlink(path);
  }
  ~FileSource() override { close(fd_); }
  // Block b holds `size` bytes (rounded up to pages, zero-filled) of generation gen; 0: not stored.
  void put(uint64_t b, uint64_t size, uint8_t gen) {
    if (size == 0) {
      table_[b] = UINT64_MAX;
      sizes_[b] = 0;
      return;
    }
    uint64_t stored = (size + kPage - 1) / kPage * kPage;
    std::vector<uint8_t> buf(stored, 0);
    for (uint64_t i = 0; i < size; i++) buf[i] = pat(b, i, gen);
    uint64_t slot = nextSlot_++;
    ssize_t n = pwrite(fd_, buf.data(), stored, static_cast<off_t>(slot * (blockBytes_ + kPage)));
    if (n != static_cast<ssize_t>(stored)) abort();
    table_[b] = slot;
    sizes_[b] = stored;
  }
  bool locate(uint64_t index, BlockLocation* loc, BlockView* view) override {
    *loc = BlockLocation{};
    *view = BlockView{};
    if (failing) return false;
    if (index >= table_.size() || table_[index] == UINT64_MAX) return true;
    loc->fd = fd_;
    loc->fileOffset = table_[index] * (blockBytes_ + kPage);
    loc->bytes = sizes_[index];
    loc->mappable = mappable;
    if (!mappable) {  // the copy path reads the bytes through a view
      copy_.resize(sizes_[index]);
      if (pread(fd_, copy_.data(), sizes_[index], static_cast<off_t>(loc->fileOffset)) < 0) return false;
      view->data = copy_.data();
      view->size = copy_.size();
    }
    return true;
  }
  bool pin(uint64_t index, BlockView* out) override {
    BlockLocation loc;
    return locate(index, &loc, out);
  }
  void unpin() override {}
  bool mappable = true;
  bool failing = false;

 private:
  int fd_ = -1;
  uint64_t blockBytes_;
  uint64_t nextSlot_ = 3;  // not at offset 0: offsets are real
  std::vector<uint64_t> table_, sizes_;
  std::vector<uint8_t> copy_;  // pre-sized in setup so that a fault never allocates
};

struct Fixture {
  static constexpr uint64_t B = 64 << 10;
  static constexpr uint64_t N = 64;
  FileSource src{B, N};
  std::unique_ptr<Region> r;
  Fixture(FaultMode mode, Budget* budget = nullptr, bool mappable = true, uint64_t reserveBlocks = N) {
    src.mappable = mappable;
    for (uint64_t b = 0; b < N; b++) src.put(b, b % 7 == 3 ? 0 : b % 5 == 1 ? 5000 : B, 0);
    if (!mappable) {  // warm the copy buffer outside any fault
      BlockView v;
      src.pin(0, &v);
    }
    RegionOptions o;
    o.reserveBytes = reserveBlocks * B;
    o.blockBytes = B;
    o.mode = mode;
    o.budget = budget;
    Error err;
    r = Region::open(&src, o, &err);
    if (!r) fprintf(stderr, "open: %s\n", describe(err).c_str());
  }
  uint8_t expect(uint64_t b, uint64_t off, uint8_t gen = 0) const {
    uint64_t size = b % 7 == 3 ? 0 : b % 5 == 1 ? 5000 : B;
    return off < size ? pat(b, off, gen) : 0;
  }
  bool sameAsSource(uint64_t b, uint8_t gen = 0) const {
    const uint8_t* p = r->blockPtr(b);
    for (uint64_t i = 0; i < B; i += 61)
      if (p[i] != expect(b, i, gen)) return false;
    return p[B - 1] == expect(b, B - 1, gen);
  }
};

static void testReadsMatchSource(FaultMode m) {
  Fixture f(m);
  bool all = true;
  for (uint64_t b = 0; b < Fixture::N; b++) all = all && f.sameAsSource(b);
  CHECK(all);
  RegionStats st = f.r->stats();
  CHECK(st.fileBlocks > 0);
  CHECK(st.copiedBlocks == 0);
  std::vector<uint64_t> d = f.r->dirtyBlocks();
  CHECK(d.empty());
}

static void testWritesFoundWithoutFaults(FaultMode m) {
  Fixture f(m);
  uint8_t* base = f.r->base();
  volatile uint8_t sink = base[0] + base[5 * Fixture::B] + base[3 * Fixture::B];
  (void)sink;
  base[5 * Fixture::B + 100] ^= 0xff;            // a file page
  base[3 * Fixture::B + 7] = 9;                  // a hole (zero page)
  base[1 * Fixture::B + 20000] = 1;              // past the stored bytes of a short block
  volatile uint8_t* same = base + 9 * Fixture::B + 4;
  *same = *same;  // an untouched file block, same byte: the kernel copied the page
  std::vector<uint64_t> d = f.r->dirtyBlocks();
  CHECK((d == std::vector<uint64_t>{1, 3, 5, 9}));
  CHECK(!f.r->isDirty(0));
}

static void testAbortRemaps(FaultMode m) {
  Fixture f(m);
  uint8_t* base = f.r->base();
  memset(base + 2 * Fixture::B, 0xee, Fixture::B);
  CHECK(f.r->isDirty(2));
  CHECK_OK(f.r->dropDirty());
  CHECK(f.sameAsSource(2));
  CHECK(f.r->dirtyBlocks().empty());
}

static void testCommitAndOthers(FaultMode m) {
  Fixture f(m);
  uint8_t* base = f.r->base();
  for (uint64_t b = 0; b < Fixture::N; b++) (void)*(volatile uint8_t*)(base + b * Fixture::B);
  base[4 * Fixture::B] = 77;
  // "commit": block 4 stored anew (generation 1 with our byte), block 6 changed by another
  f.src.put(4, Fixture::B, 1);
  f.src.put(6, 5000, 1);  // block 6 is a short one
  uint64_t four = 4, six = 6;
  CHECK_OK(f.r->markClean(&four, 1));
  size_t skipped = 99;
  CHECK_OK(f.r->invalidate(&six, 1, &skipped));
  CHECK(skipped == 0);
  CHECK(f.sameAsSource(4, 1));
  CHECK(f.sameAsSource(6, 1));
  CHECK(f.sameAsSource(8, 0));
  // a dirty block is not invalidated
  base[8 * Fixture::B] = 1;
  uint64_t eight = 8;
  CHECK_OK(f.r->invalidate(&eight, 1, &skipped));
  CHECK(skipped == 1);
  CHECK(base[8 * Fixture::B] == 1);
}

static void testBudgetBoundsMappings(FaultMode m) {
  Budget budget(8);
  Fixture f(m, &budget);
  bool all = true;
  for (int pass = 0; pass < 2; pass++)
    for (uint64_t b = 0; b < Fixture::N; b++) all = all && f.sameAsSource(b);
  CHECK(all);
  RegionStats st = f.r->stats();
  CHECK(st.evictions > 0);
  CHECK(budget.stats().mappedBlocks <= 8 + 4);
  // dirty blocks stay mapped over the limit
  for (uint64_t b = 0; b < 20; b++) f.r->base()[b * Fixture::B + 1] = 0x42;
  for (uint64_t b = 20; b < Fixture::N; b++) all = all && f.sameAsSource(b);
  CHECK(all);
  std::vector<uint64_t> d = f.r->dirtyBlocks();
  CHECK(d.size() == 20);
  bool kept = true;
  for (uint64_t b = 0; b < 20; b++) kept = kept && f.r->base()[b * Fixture::B + 1] == 0x42;
  CHECK(kept);
  f.r.reset();  // detach before the budget goes
}

static void testCopyPath(FaultMode m) {
  Fixture f(m, nullptr, false);
  bool all = true;
  for (uint64_t b = 0; b < Fixture::N; b++) all = all && f.sameAsSource(b);
  CHECK(all);
  CHECK(f.r->stats().copiedBlocks > 0);
  CHECK(f.r->stats().fileBlocks == 0);
  uint8_t* p = f.r->base() + 2 * Fixture::B;
  p[10] = p[10];  // same byte: no change
  std::vector<uint64_t> d0 = f.r->dirtyBlocks();
  CHECK(d0.empty());
  p[11] ^= 1;
  CHECK((f.r->dirtyBlocks() == std::vector<uint64_t>{2}));
}

static void testWriteAndDiscard(FaultMode m) {
  Fixture f(m);
  std::vector<uint8_t> bytes(3 * Fixture::B, 0x5a);
  CHECK_OK(f.r->write(Fixture::B / 2, bytes.data(), bytes.size()));
  CHECK((f.r->dirtyBlocks() == std::vector<uint64_t>{0, 1, 2, 3}));
  CHECK(f.r->base()[Fixture::B / 2 + 5] == 0x5a && f.r->base()[Fixture::B / 2 - 1] == f.expect(0, Fixture::B / 2 - 1));
  const uint64_t cut = 10 * Fixture::B + 1000;
  CHECK_OK(f.r->discard(cut));
  CHECK(f.r->base()[cut - 1] == f.expect(10, 999));
  CHECK(f.r->base()[cut] == 0 && f.r->base()[cut + 5000] == 0);
  CHECK(f.r->base()[12 * Fixture::B + 5] == 0);  // past the limit reads zeros
  CHECK(f.r->isDirty(10));
  CHECK(f.r->sourceLimit() == cut);
}

static void testSystemCalls(FaultMode m) {
  if (m == FaultMode::Uffd && !systemInfo().kernelFaults) return skip("userfaultfd serves user-mode faults only here");
  Fixture f(m);
  char path[] = "/tmp/vmem-test-sys-XXXXXX";
  int fd = mkstemp(path);
  unlink(path);
  if (m == FaultMode::Sigsegv) {
    ssize_t n = ::write(fd, f.r->base() + 2 * Fixture::B, 100);
    CHECK(n < 0 && errno == EFAULT);
    CHECK_OK(f.r->populate(2 * Fixture::B, Fixture::B));
  }
  ssize_t n = ::write(fd, f.r->base() + 2 * Fixture::B, Fixture::B);
  CHECK(n == static_cast<ssize_t>(Fixture::B));
  uint8_t back[64];
  CHECK(pread(fd, back, 64, 0) == 64 && back[7] == f.expect(2, 7));
  close(fd);
}

static void testConcurrentReaders(FaultMode m) {
  Fixture f(m);
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; t++)
    ts.emplace_back([&, t] {
      for (uint64_t k = 0; k < Fixture::N; k++) {
        uint64_t b = (k * 7 + t * 13) % Fixture::N;
        if (!f.sameAsSource(b)) bad++;
      }
    });
  for (auto& t : ts) t.join();
  CHECK(bad.load() == 0);
}

static void testSourceFailureRecorded(FaultMode m) {
  Fixture f(m);
  f.src.failing = true;
  CHECK(f.r->base()[7 * Fixture::B] == 0);
  Error e;
  CHECK(f.r->takeError(&e));
  CHECK(e.status == Status::SourceError);
}

static bool scanWindowsOn() {
  FILE* f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (!f) return false;
  char buf[128] = {0};
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char* e = getenv("TXARRAY_SCAN_WINDOWS");
  return !strstr(buf, "[never]") && !(e && !strcmp(e, "0"));
}

static void testScanWindows(FaultMode m, bool mappable) {
  if (!scanWindowsOn()) return skip("transparent huge pages are off");
  Fixture f(m, nullptr, mappable);
  const uint64_t B = Fixture::B;
  CHECK_OK(f.r->loadSequential(0, Fixture::N * B));
  CHECK(f.r->stats().scanWindows == 1);  // the first window now, the next at its first fault
  bool all = true;
  for (uint64_t b = 0; b < Fixture::N; b++) all = all && f.sameAsSource(b);
  CHECK(all);
  RegionStats st = f.r->stats();
  CHECK(st.scanWindows == 2);
  CHECK(st.faults == 1);
  CHECK(st.fileBlocks == 0 && st.copiedBlocks == 0);
  CHECK(f.r->dirtyBlocks().empty());
  uint8_t* base = f.r->base();
  // a write from another thread opens the window; only changed blocks are dirty
  std::thread([&] { base[5 * B + 100] ^= 0xff; }).join();
  base[3 * B + 7] = 9;                                     // a hole
  volatile uint8_t* same = base + 9 * B + 4;
  *same = *same;                                           // the same byte: not a change
  base[40 * B + 1] ^= 1;                                   // the second window
  CHECK((f.r->dirtyBlocks() == std::vector<uint64_t>{3, 5, 40}));
  CHECK(f.r->stats().scanWindowsOpened == 2);
  CHECK_OK(f.r->dropDirty());
  CHECK(f.sameAsSource(3) && f.sameAsSource(5) && f.sameAsSource(40) && f.sameAsSource(9));
  CHECK(f.r->dirtyBlocks().empty());
  // abort shut the windows again: a later write is found (and opens it once more)
  base[6 * B] ^= 2;
  CHECK((f.r->dirtyBlocks() == std::vector<uint64_t>{6}));
  CHECK(f.r->stats().scanWindowsOpened == 3);
  // a system call reads a shut window; writing into one needs kernel faults or populate()
  std::vector<uint64_t> none;
  CHECK_OK(f.r->markClean(none.data(), 0));  // shuts the clean rest again
  char path[] = "/tmp/vmem-scan-XXXXXX";
  int fd = mkstemp(path);
  unlink(path);
  CHECK(write(fd, base + 10 * B, B) == static_cast<ssize_t>(B));
  if (m == FaultMode::Sigsegv) CHECK_OK(f.r->populate(20 * B, B));
  CHECK(pread(fd, base + 20 * B, B, 0) == static_cast<ssize_t>(B));
  CHECK(memcmp(base + 20 * B, base + 10 * B, B) == 0);
  close(fd);
  std::vector<uint64_t> d = f.r->dirtyBlocks();
  CHECK(std::find(d.begin(), d.end(), 20) != d.end());
  // a window with a mapped block is left to the fault path
  CHECK_OK(f.r->dropDirty());
  CHECK_OK(f.r->invalidateAll());
  (void)*(volatile uint8_t*)(base + 33 * B);
  const uint64_t before = f.r->stats().scanWindows;
  CHECK_OK(f.r->loadSequential(32 * B, 32 * B));
  CHECK(f.r->stats().scanWindows == before);
  CHECK(f.sameAsSource(50));
}

int main() {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  const SystemInfo& si = systemInfo();
  printf("mode uffd=%d kernelFaults=%d pagemapScan=%d default=%s\n", si.uffd, si.kernelFaults, si.pagemapScan,
         faultModeName(si.defaultMode));
  for (FaultMode m : {FaultMode::Uffd, FaultMode::Sigsegv}) {
    std::string mode = faultModeName(m);
    struct Case {
      const char* name;
      void (*fn)(FaultMode);
    } cases[] = {
        {"reads match the source", testReadsMatchSource},
        {"writes found without faults", testWritesFoundWithoutFaults},
        {"abort remaps", testAbortRemaps},
        {"commit and others' changes remap", testCommitAndOthers},
        {"budget bounds mappings", testBudgetBoundsMappings},
        {"copy path", testCopyPath},
        {"write and discard", testWriteAndDiscard},
        {"system calls", testSystemCalls},
        {"concurrent readers", testConcurrentReaders},
        {"source failure recorded", testSourceFailureRecorded},
        {"scan windows", [](FaultMode fm) { testScanWindows(fm, true); }},
        {"scan windows, copied blocks", [](FaultMode fm) { testScanWindows(fm, false); }},
    };
    for (const Case& c : cases) {
      std::string name = mode + " " + c.name;
      if (m == FaultMode::Uffd && !si.uffd) {
        g_casesSkipped++;
        printf("skipped %s: userfaultfd is not available\n", name.c_str());
        continue;
      }
      g_ctx = name;
      runCase(name, [&] { c.fn(m); });
    }
  }
  printSummary();
  return g_failed ? 1 : 0;
}
