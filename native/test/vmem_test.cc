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
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <algorithm>
#include <thread>
#include <vector>

#include "../vmem/internal.h"  // the fault injection of scan-window writes
#include "../vmem/vmem.h"
#include "harness.h"
#include "vmem_waiting_test.h"

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

// A region of reserveBytes over src, blockBytes per block, in mode m; faultBytes 0 is the
// default first window. Null (and the reason printed) where it cannot be opened.
static std::unique_ptr<Region> openOver(FileSource& src, uint64_t reserveBytes, uint64_t blockBytes, FaultMode m,
                                        uint64_t faultBytes = 0, Budget* budget = nullptr) {
  RegionOptions o;
  o.reserveBytes = reserveBytes;
  o.blockBytes = blockBytes;
  o.faultBytes = faultBytes;
  o.mode = m;
  o.budget = budget;
  Error err;
  std::unique_ptr<Region> r = Region::open(&src, o, &err);
  if (!r) fprintf(stderr, "open: %s\n", describe(err).c_str());
  return r;
}

struct Fixture {
  static constexpr uint64_t B = 64 << 10;
  static constexpr uint64_t N = 2 * kScanWindowBytes / B;  // two scan windows
  FileSource src{B, N};
  std::unique_ptr<Region> r;
  Fixture(FaultMode mode, Budget* budget = nullptr, bool mappable = true, uint64_t reserveBlocks = N) {
    src.mappable = mappable;
    for (uint64_t b = 0; b < N; b++) src.put(b, b % 7 == 3 ? 0 : b % 5 == 1 ? 5000 : B, 0);
    if (!mappable) {  // warm the copy buffer outside any fault
      BlockView v;
      src.pin(0, &v);
    }
    r = openOver(src, reserveBlocks * B, B, mode, 0, budget);
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

// ---- the spill file: dirty blocks out of the mapping budget ----

static uint64_t sizeOfBlock(uint64_t b) { return b % 7 == 3 ? 0 : b % 5 == 1 ? 5000 : Fixture::B; }

// VMAs of this process that meet [lo, hi), and all of them (/proc/self/maps).
static size_t countVmas(const uint8_t* lo, const uint8_t* hi, size_t* all = nullptr) {
  FILE* f = fopen("/proc/self/maps", "r");
  if (!f) return SIZE_MAX;
  size_t in = 0, total = 0;
  unsigned long a, z;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "%lx-%lx", &a, &z) != 2) continue;
    total++;
    if (a < reinterpret_cast<uintptr_t>(hi) && z > reinterpret_cast<uintptr_t>(lo)) in++;
  }
  fclose(f);
  if (all) *all = total;
  return in;
}

// Open spill files of this process (memfds named by spill.cc).
static int openSpillFiles() {
  int n = 0;
  for (int fd = 0; fd < 4096; fd++) {
    char link[64], target[256];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, target, sizeof target - 1);
    if (len <= 0) continue;
    target[len] = 0;
    if (strstr(target, "txarray-spill")) n++;
  }
  return n;
}

// The budget counts the mappings the kernel makes for mapped blocks (/proc/self/maps): a
// block and the split of its placeholder, nothing where it joins mapped neighbours, one
// more for an anonymous tail; one too many at the region's start (it counts as a
// placeholder), never too few; all given back as blocks are unmapped.
static void testBudgetCountsMappings(FaultMode m) {
  Budget budget(1 << 20);
  Fixture f(m, &budget);
  f.src.put(46, 2 * 4096, 0);  // two file pages, then a tail
  const uint8_t* lo = f.r->base();
  const uint8_t* hi = lo + Fixture::N * Fixture::B;
  const size_t start = countVmas(lo, hi);
  auto populate = [&](uint64_t b) { CHECK_OK(f.r->populate(b * Fixture::B, Fixture::B)); };
  auto grown = [&] { return countVmas(lo, hi) - start; };
  // The region's own mappings are charged while it is attached, besides its blocks'.
  auto counted = [&] { return budget.stats().mappings - kRegionMappings; };
  CHECK(budget.stats().mappings == kRegionMappings);
  for (uint64_t b : {40, 42, 44}) populate(b);  // full file blocks, apart
  CHECK(counted() == 6);
  CHECK(grown() == 6);
  populate(43);  // joins 42 and 44
  populate(41);  // joins 40 and 42; 5000 bytes stored in two file pages: and a tail
  CHECK(budget.stats().mappedBlocks == 5);
  CHECK(counted() == 7);
  CHECK(grown() == 7);
  populate(46);  // apart, and short: file pages, tail, split
  CHECK(counted() == 10);
  CHECK(grown() == 10);
  populate(0);  // the region's start: charged as a split the kernel does not make
  CHECK(counted() == 12);
  CHECK(grown() == 11);
  budget.setLimit(0);
  budget.trim();
  CHECK(budget.stats().mappedBlocks == 0);
  CHECK(counted() == 0);
  CHECK(grown() == 0);
}

static uint8_t mark(uint64_t b) { return static_cast<uint8_t>(~pat(b, 100, 0)); }
static bool holdsMark(const uint8_t* p, const Fixture& f, uint64_t b);

// Every way a block changes state, in random order: the budget never counts fewer
// mappings than the kernel makes in the region (a count that ran low would let views
// reach vm.max_map_count), and gives them all back when the blocks are unmapped. Uffd
// mode: a store into an unmapped block gives its placeholder an anon_vma before the fault
// reaches the service, and placeholders of different anon_vmas never merge; they did not
// (7 mappings counted as 6 after 110 steps) until a placeholder was made over the whole
// unmapped stretch it joins.
static void testBudgetNeverCountsLow(FaultMode m) {
  Budget budget(1 << 20);
  Fixture f(m, &budget);
  const uint8_t* lo = f.r->base();
  const uint8_t* hi = lo + Fixture::N * Fixture::B;
  const size_t start = countVmas(lo, hi);
  uint64_t seed = 0x9e3779b97f4a7c15u;
  auto rnd = [&](uint64_t n) {
    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
    return seed % n;
  };
  bool low = false, values = true;
  for (int op = 0; op < 400 && !low; op++) {
    const uint64_t b = rnd(Fixture::N);
    switch (rnd(8)) {
      case 0:
      case 1:
        values = values && f.sameAsSource(b);  // one fault window
        break;
      case 2:
        CHECK_OK(f.r->populate(b * Fixture::B, std::min<uint64_t>(1 + rnd(6), Fixture::N - b) * Fixture::B));
        break;
      case 3:
        f.r->base()[b * Fixture::B + 100] = mark(b);  // dirty: spilled, not evicted
        break;
      case 4:
        budget.setLimit(2 + rnd(40));
        budget.trim();  // clean blocks by the clock, then dirty ones to the spill file
        budget.setLimit(1 << 20);
        break;
      case 5:
        CHECK_OK(f.r->loadSequential((b - b % 64) * Fixture::B, 64 * Fixture::B));
        values = values && f.sameAsSource(b);  // perhaps a scan window
        break;
      case 6: {
        const uint64_t one = b;
        size_t skipped = 0;
        CHECK_OK(f.r->invalidate(&one, 1, &skipped));
        break;
      }
      default:
        if (rnd(4) == 0) CHECK_OK(f.r->dropDirty());  // abort: dirty and spilled blocks go
        break;
    }
    const size_t grown = countVmas(lo, hi) - start;
    const uint64_t counted = budget.stats().mappings - kRegionMappings;  // the region's own apart
    low = grown > counted;
    if (low) fprintf(stderr, "  op %d: the kernel holds %zu mappings, the budget counts %llu\n", op, grown, (unsigned long long)counted);
  }
  CHECK(!low);
  CHECK(values);
  CHECK_OK(f.r->dropDirty());
  budget.setLimit(0);
  budget.trim();
  CHECK(budget.stats().mappedBlocks == 0);
  CHECK(budget.stats().mappings == kRegionMappings);
  CHECK(countVmas(lo, hi) == start);
  f.r.reset();
  CHECK(budget.stats().mappings == 0);
}

// One budget shared by the regions of several threads (as the process's budget is by
// every handle), each thread reading and writing random windows of its region while the
// others' faults evict and spill its blocks: the values read are the source's, every
// write stays until the thread's region is dirty in exactly the blocks it wrote, and the
// regions' mappings stay within the limit plus what the faults in flight map past it.
static void testSharedBudgetAcrossThreads(FaultMode m) {
  constexpr uint64_t kLimit = 48;
  constexpr int kThreads = 4;
  Budget budget(kLimit);
  std::vector<std::unique_ptr<Fixture>> fx;
  for (int t = 0; t < kThreads; t++) fx.push_back(std::make_unique<Fixture>(m, &budget));
  std::vector<size_t> start(kThreads);
  auto span = [&](int t) {
    const uint8_t* lo = fx[t]->r->base();
    return std::make_pair(lo, lo + Fixture::N * Fixture::B);
  };
  for (int t = 0; t < kThreads; t++) start[t] = countVmas(span(t).first, span(t).second);
  auto grownAll = [&] {
    size_t g = 0;
    for (int t = 0; t < kThreads; t++) g += countVmas(span(t).first, span(t).second) - start[t];
    return g;
  };
  std::atomic<bool> done{false};
  std::atomic<size_t> peak{0};
  std::thread monitor([&] {
    while (!done.load()) {
      size_t g = grownAll();
      if (g > peak.load()) peak.store(g);
      usleep(200);
    }
  });
  std::vector<std::vector<bool>> wrote(kThreads, std::vector<bool>(Fixture::N));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      Fixture& f = *fx[t];
      uint64_t seed = 0x2545f4914f6cdd1du * uint64_t(t + 1);
      for (int i = 0; i < 600; i++) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        const uint64_t b = seed % Fixture::N;
        uint8_t* p = f.r->base() + b * Fixture::B;
        if (!f.sameAsSource(b)) wrong.fetch_add(1);
        if (wrote[t][b] ? p[100] != mark(b) : p[100] != f.expect(b, 100)) wrong.fetch_add(1);
        if (seed % 5 == 0) {
          p[100] = mark(b);
          wrote[t][b] = true;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  done.store(true);
  monitor.join();
  CHECK(wrong.load() == 0);
  for (int t = 0; t < kThreads; t++) {
    std::vector<uint64_t> expectDirty;
    bool kept = true;
    for (uint64_t b = 0; b < Fixture::N; b++) {
      if (!wrote[t][b]) continue;
      expectDirty.push_back(b);
      kept = kept && holdsMark(fx[t]->r->blockPtr(b), *fx[t], b);
    }
    CHECK(kept);
    CHECK(fx[t]->r->dirtyBlocks() == expectDirty);
  }
  CHECK(budget.stats().spills > 0);
  CHECK(budget.stats().evictions > 0);
  // A fault maps its window (4 blocks here: up to 5 mappings past the room it made) after
  // making room: each thread's fault in flight may add that much.
  const size_t slack = kThreads * (2 * (kDefaultFaultBytes / Fixture::B) + 1);
  printf("    peak %zu mappings over %d regions, limit %llu\n", peak.load(), kThreads, (unsigned long long)kLimit);
  CHECK(peak.load() <= kLimit + slack);
  CHECK(grownAll() <= budget.stats().mappings);
  fx.clear();  // detach before the budget goes
}

// Dirties every block of the fixture with a byte the source does not hold at offset 100.
static void dirtyAll(Fixture& f, Budget* budget, uint64_t* maxMapped) {
  for (uint64_t b = 0; b < Fixture::N; b++) {
    f.r->base()[b * Fixture::B + 100] = mark(b);
    if (budget) *maxMapped = std::max<uint64_t>(*maxMapped, budget->stats().mappedBlocks);
  }
}

// Block b as dirtyAll left it: the source's bytes (generation 0) and the mark.
static bool holdsMark(const uint8_t* p, const Fixture& f, uint64_t b) {
  for (uint64_t i = 0; i < Fixture::B; i += 61)
    if (i != 100 && p[i] != f.expect(b, i)) return false;
  return p[100] == mark(b) && p[Fixture::B - 1] == f.expect(b, Fixture::B - 1);
}

static void testSpillKeepsWritesUnderBudget(FaultMode m) {
  Budget budget(8);
  Fixture f(m, &budget);
  uint64_t maxMapped = 0;
  dirtyAll(f, &budget, &maxMapped);
  const uint64_t window = kDefaultFaultBytes / Fixture::B;
  CHECK(maxMapped <= 8 + window);
  RegionStats st = f.r->stats();
  CHECK(st.spills > 0);
  CHECK(st.spilledNow > 0);
  CHECK(budget.stats().spills > 0);
  CHECK(f.r->dirtyBlocks().size() == Fixture::N);
  CHECK(f.r->stats().dirtyNow == Fixture::N);
  CHECK(openSpillFiles() == 1);
  // copyBlock (no fault) reads parked blocks from the spill file, mapped ones in place
  std::vector<uint8_t> buf(Fixture::B);
  bool copies = true, reads = true;
  for (uint64_t b = 0; b < Fixture::N; b++) {
    copies = copies && f.r->copyBlock(b, buf.data()) == Status::Ok && holdsMark(buf.data(), f, b);
    reads = reads && holdsMark(f.r->blockPtr(b), f, b);  // faults parked blocks back in
    maxMapped = std::max<uint64_t>(maxMapped, budget.stats().mappedBlocks);
  }
  CHECK(copies);
  CHECK(reads);
  CHECK(maxMapped <= 8 + window);
  // "commit": the blocks are stored anew (generation 1) and the region let go of them
  std::vector<uint64_t> all = f.r->dirtyBlocks();
  for (uint64_t b = 0; b < Fixture::N; b++) f.src.put(b, sizeOfBlock(b), 1);
  CHECK_OK(f.r->markClean(all.data(), all.size()));
  CHECK(f.r->stats().spilledNow == 0);
  CHECK(f.r->dirtyBlocks().empty());
  CHECK(openSpillFiles() == 0);
  bool fresh = true;
  for (uint64_t b = 0; b < Fixture::N; b++) fresh = fresh && f.sameAsSource(b, 1);
  CHECK(fresh);
  f.r.reset();
}

static void testSpillAbortDrops(FaultMode m) {
  Budget budget(8);
  Fixture f(m, &budget);
  uint64_t maxMapped = 0;
  dirtyAll(f, &budget, &maxMapped);
  CHECK(f.r->stats().spilledNow > 0);
  CHECK_OK(f.r->dropDirty());
  CHECK(f.r->dirtyBlocks().empty());
  CHECK(f.r->stats().spilledNow == 0 && f.r->stats().dirtyNow == 0);
  CHECK(openSpillFiles() == 0);
  bool original = true;
  for (uint64_t b = 0; b < Fixture::N; b++) original = original && f.sameAsSource(b);
  CHECK(original);
  f.r.reset();
}

// Parked blocks (spilled, unmapped) in every call that meets dirty blocks.
static void testParkedBlocksAreDirty(FaultMode m) {
  Budget budget(64);
  Fixture f(m, &budget);
  for (uint64_t b = 0; b < 20; b++) f.r->base()[b * Fixture::B + 100] = mark(b);
  budget.setLimit(0);
  budget.trim();  // nothing clean is left: every dirty block is spilled
  CHECK(budget.stats().mappedBlocks == 0);
  CHECK(f.r->stats().spilledNow == 20 && f.r->stats().mappedNow == 0);
  budget.setLimit(64);
  CHECK(!f.r->isMapped(4) && f.r->isDirty(4));
  size_t skipped = 0;
  uint64_t four = 4;
  CHECK_OK(f.r->invalidate(&four, 1, &skipped));
  CHECK(skipped == 1);
  CHECK_OK(f.r->invalidateAll(&skipped));
  CHECK(skipped == 20);
  // an explicit write into a parked block keeps its spilled bytes
  uint8_t one = 0x11;
  CHECK_OK(f.r->write(5 * Fixture::B + 7, &one, 1));
  CHECK(f.r->blockPtr(5)[7] == 0x11 && f.r->blockPtr(5)[100] == mark(5));
  // a shrink inside parked block 10: its head stays, blocks past it leave the transaction
  CHECK_OK(f.r->discard(10 * Fixture::B + 50));
  CHECK(f.r->blockPtr(10)[10] == f.expect(10, 10) && f.r->blockPtr(10)[100] == 0);
  std::vector<uint64_t> d = f.r->dirtyBlocks();
  CHECK(d.size() == 11 && d.back() == 10);
  // growing again past a parked block's cut drops its tail too
  budget.trim();
  CHECK_OK(f.r->dropFrom(3 * Fixture::B + 50));
  CHECK(f.r->blockPtr(3)[100] == 0 && f.r->blockPtr(3)[10] == f.expect(3, 10));
  CHECK((f.r->dirtyBlocks() == std::vector<uint64_t>{0, 1, 2, 3}));
  CHECK_OK(f.r->dropDirty());
  CHECK(f.r->stats().spilledNow == 0);
  CHECK(openSpillFiles() == 0);
  f.r.reset();
}

// A store racing with the spill of its block lands (the block is read-only while spilled).
static void testStoresRacingSpills(FaultMode m) {
  Budget budget(8);
  Fixture f(m, &budget);
  std::atomic<bool> done{false};
  std::atomic<int> wrong{0};
  std::thread reader([&] {  // faults clean parts in, which makes the budget spill
    while (!done.load())
      for (uint64_t b = 0; b < Fixture::N; b++)
        if (f.r->blockPtr(b)[Fixture::B - 1] != f.expect(b, Fixture::B - 1)) wrong++;
  });
  const int rounds = 30;
  for (int round = 1; round <= rounds; round++)
    for (uint64_t b = 0; b < Fixture::N; b++) f.r->blockPtr(b)[8] = static_cast<uint8_t>(round);
  done = true;
  reader.join();
  CHECK(wrong.load() == 0);
  CHECK(f.r->stats().spills > 0);
  std::vector<uint8_t> buf(Fixture::B);
  bool last = true;
  for (uint64_t b = 0; b < Fixture::N; b++)
    last = last && f.r->copyBlock(b, buf.data()) == Status::Ok && buf[8] == rounds;
  CHECK(last);
  f.r.reset();
}

// A first store into a clean mapped block while another thread's faults evict clean
// blocks: the eviction never drops the store (the block is found written, or the store
// faults and lands in the block mapped again).
static void testStoresRacingEvictions(FaultMode m) {
  int lost = 0, rounds = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  while (std::chrono::steady_clock::now() < until && lost == 0) {
    rounds++;
    Budget budget(8);
    Fixture f(m, &budget);
    std::atomic<bool> done{false};
    std::thread reader([&] {  // faults clean blocks in: the budget evicts clean ones
      while (!done.load())
        for (uint64_t b = 0; b < Fixture::N; b += 3) (void)*reinterpret_cast<volatile const uint8_t*>(f.r->blockPtr(b) + 100);
    });
    for (uint64_t b = 0; b < Fixture::N; b++) {
      volatile uint8_t* p = f.r->blockPtr(b);
      (void)p[200];  // mapped clean
      for (int spin = 0; spin < 200; spin++) (void)p[300];
      p[8] = static_cast<uint8_t>(0xA0 | (b & 0xF));
    }
    done = true;
    reader.join();
    for (uint64_t b = 0; b < Fixture::N; b++)
      if (f.r->blockPtr(b)[8] != static_cast<uint8_t>(0xA0 | (b & 0xF))) {
        lost++;
        if (getenv("VMEM_TEST_VERBOSE")) fprintf(stderr, "round %d block %lu (%s) lost its store\n", rounds, (unsigned long)b, b % 7 == 3 ? "empty" : b % 5 == 1 ? "small" : "full");
      }
    f.r.reset();
  }
  CHECK(lost == 0);
  CHECK(rounds > 0);
}

// More scattered dirty blocks than vm.max_map_count allows VMAs, with no budget at all: a
// refused mapping evicts, then spills, and every write is kept.
static void testPastMaxMapCount(FaultMode m) {
  uint64_t maxMaps = 0;
  if (FILE* f = fopen("/proc/sys/vm/max_map_count", "r")) {
    if (fscanf(f, "%lu", &maxMaps) != 1) maxMaps = 0;
    fclose(f);
  }
  if (maxMaps == 0 || maxMaps > 200000) return skip("vm.max_map_count unknown or too large to reach");
  const uint64_t B = kPage, dirty = maxMaps + 5000, blocks = 2 * dirty;
  FileSource src(B, blocks);  // nothing stored: every block maps as zeros
  std::unique_ptr<Region> r = openOver(src, blocks * B, B, m, B);  // one block per fault: every other block is a VMA of its own
  CHECK(r != nullptr);
  if (!r) return;
  for (uint64_t i = 0; i < dirty; i++) r->base()[2 * i * B + i % B] = static_cast<uint8_t>(i | 1);
  RegionStats st = r->stats();
  CHECK(st.spills > 0);
  Error err;
  CHECK(!r->takeError(&err));
  std::vector<uint64_t> d = r->dirtyBlocks();
  CHECK(d.size() == dirty);
  bool kept = true;
  for (uint64_t i = 0; i < dirty; i++) kept = kept && r->base()[2 * i * B + i % B] == static_cast<uint8_t>(i | 1);
  CHECK(kept);
  std::vector<uint8_t> buf(B);
  bool copied = true;
  for (uint64_t i = 0; i < dirty; i += 97)
    copied = copied && r->copyBlock(2 * i, buf.data()) == Status::Ok && buf[i % B] == static_cast<uint8_t>(i | 1);
  CHECK(copied);
  CHECK_OK(r->dropDirty());
  CHECK(r->dirtyBlocks().empty());
  CHECK(r->base()[2 * 7 * B + 7] == 0);
}

static uint64_t readMaxMapCount() {
  uint64_t maxMaps = 0;
  if (FILE* f = fopen("/proc/sys/vm/max_map_count", "r")) {
    if (fscanf(f, "%lu", &maxMaps) != 1) maxMaps = 0;
    fclose(f);
  }
  return maxMaps;
}

// Another region holds every VMA the kernel allows (several handles reach the limit while
// each stays under its own budget): a fault of a region with nothing of its own to unmap
// makes the others unmap theirs, and is served.
static void testLimitReachedByOtherRegions(FaultMode m) {
  const uint64_t maxMaps = readMaxMapCount();
  if (maxMaps == 0 || maxMaps > 200000) return skip("vm.max_map_count unknown or too large to reach");
  const uint64_t B = kPage, blocks = maxMaps + 10;
  FileSource srcA(B, blocks), srcB(B, 16);  // nothing stored: blocks map as zeros (clean)
  // One block per fault: every other block is a VMA of its own.
  std::unique_ptr<Region> a = openOver(srcA, blocks * B, B, m, B);
  std::unique_ptr<Region> b = openOver(srcB, 16 * B, B, m, B);
  CHECK(a != nullptr && b != nullptr);
  if (!a || !b) return;
  // A reads every other block until at most one more VMA is allowed (each read adds two).
  uint64_t next = 0;
  unsigned sum = 0;
  for (;;) {
    size_t all = 0;
    countVmas(nullptr, nullptr, &all);
    if (all + 1 >= maxMaps || 2 * next >= blocks) break;
    const uint64_t room = (maxMaps - all) / 2;
    for (uint64_t i = 0; i < std::max<uint64_t>(room / 2, 1) && 2 * next < blocks; i++, next++)
      sum += a->base()[2 * next * B];
  }
  CHECK(sum == 0);
  CHECK(a->stats().evictions == 0);  // A never had to make room itself
  // the last few VMAs go to mappings of the test's own (alternating protections never
  // merge), until the kernel refuses one
  std::vector<void*> own;
  for (int k = 0; k < 64; k++) {
    void* p = mmap(nullptr, kPage, k % 2 ? PROT_READ : PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) break;
    own.push_back(p);
  }
  CHECK(own.size() < 64);  // the limit was reached
  const uint64_t aMapped = a->stats().mappedNow;
  // B's first touch needs more VMAs than the kernel allows
  b->base()[3 * B + 5] = 42;
  CHECK(b->base()[3 * B + 5] == 42);
  Error err;
  CHECK(!b->takeError(&err));
  CHECK(a->stats().mappedNow < aMapped);  // A gave back its clean blocks
  CHECK(a->stats().evictions > 0);
  CHECK(b->isDirty(3));
  for (void* p : own) munmap(p, kPage);
  b.reset();
  a.reset();
}

// Faults that keep landing far apart map their block alone; a fault near the last one
// brings whole windows back.
static void testScatteredFaultsMapOneBlock(FaultMode m) {
  const uint64_t B = kPage, n = 8192, window = kDefaultFaultBytes / B;
  FileSource src(B, n);
  std::unique_ptr<Region> r = openOver(src, n * B, B, m);
  CHECK(r != nullptr);
  if (!r) return;
  const uint64_t stride = 3 * window;
  for (uint64_t i = 0; i < 20; i++) r->base()[i * stride * B] = 1;
  RegionStats st = r->stats();
  CHECK(st.faults == 20);
  // the first far fault still maps a window; from the second on, one block each
  CHECK(st.blocksMapped <= 2 * window + 18);
  CHECK(st.blocksMapped >= 20);
  // a walk from the last block on: windows again after one near fault
  const uint64_t from = 19 * stride + 1;
  for (uint64_t b = from; b < from + 4 * window && b < n; b++) r->base()[b * B] = 2;
  RegionStats walk = r->stats();
  CHECK(walk.faults - st.faults <= 6);
  CHECK(r->dirtyBlocks().size() >= 20 + 4 * window);
  r.reset();
}

// A far fault maps the blocks holding faultBytes from the faulting address once the reader
// went on into the blocks of its last far fault: runs read from their starts (random
// windows copied out) take one fault each, however far apart they lie; a scattered writer
// after such a reader still maps one block per fault from its second fault on.
static void testFarFaultMapsRunFromAddress(FaultMode m) {
  const uint64_t B = 4 * kPage, n = 4096, window = kDefaultFaultBytes / B;
  FileSource src(B, n);
  for (uint64_t b = 0; b < n; b += 3) src.put(b, B, 0);
  std::unique_ptr<Region> r = openOver(src, n * B, B, m);
  CHECK(r != nullptr);
  if (!r) return;
  const uint64_t runs = 20, stride = 5 * window;
  bool same = true;
  RegionStats first;
  for (uint64_t i = 0; i < runs; i++) {
    if (i == 1) first = r->stats();  // the first run maps aligned windows (no evidence yet)
    const uint64_t start = (i * stride + 1) * B + B / 2;  // mid-block, never window-aligned
    for (uint64_t at = start; at < start + kDefaultFaultBytes; at += kPage) {
      const uint64_t b = at / B;
      same = same && r->base()[at] == (b % 3 == 0 ? pat(b, at % B, 0) : 0);
    }
  }
  CHECK(same);
  RegionStats st = r->stats();
  CHECK(first.faults == 2);  // the aligned window, then the one after it (near)
  CHECK(st.faults - first.faults == runs - 1);  // then one fault per run
  CHECK(st.blocksMapped - first.blocksMapped == (runs - 1) * (window + 1));  // the run's blocks, none before it
  // scattered one-byte stores after the reader: a window for the first, then one block each
  for (uint64_t i = 0; i < 10; i++) r->base()[((runs * stride + 7 + i * 2 * window) % n) * B] = 1;
  RegionStats w = r->stats();
  CHECK(w.faults - st.faults == 10);
  CHECK(w.blocksMapped - st.blocksMapped <= (window + 1) + 9);
  r.reset();
}

// Scattered dirty blocks under a small budget keep the region's VMAs bounded.
static void testSpillBoundsVmas(FaultMode m) {
  const uint64_t B = kPage, n = 4000, limit = 32;
  FileSource src(B, n);
  for (uint64_t b = 0; b < n; b += 2) src.put(b, B, 0);  // file blocks: a VMA each
  Budget budget(limit);
  std::unique_ptr<Region> r = openOver(src, n * B, B, m, B, &budget);
  CHECK(r != nullptr);
  if (!r) return;
  size_t maxVmas = 0;
  for (uint64_t i = 0; i < n / 2; i++) {
    const uint64_t b = (i * 7919) % n;  // scattered, every block once
    r->base()[b * B + 1] = static_cast<uint8_t>(b | 1);
    if (i % 50 == 0) maxVmas = std::max(maxVmas, countVmas(r->base(), r->base() + n * B));
  }
  CHECK(maxVmas <= 2 * (limit + 1) + 1);
  CHECK(r->dirtyBlocks().size() == n / 2);
  bool kept = true;
  for (uint64_t i = 0; i < n / 2; i++) {
    const uint64_t b = (i * 7919) % n;
    kept = kept && r->base()[b * B + 1] == static_cast<uint8_t>(b | 1);
  }
  CHECK(kept);
  r.reset();
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
  const uint64_t B = Fixture::B, PER = kScanWindowBytes / B;
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
  base[(PER + 8) * B + 1] ^= 1;                            // the second window
  CHECK((f.r->dirtyBlocks() == std::vector<uint64_t>{3, 5, PER + 8}));
  CHECK(f.r->stats().scanWindowsOpened == 2);
  CHECK_OK(f.r->dropDirty());
  CHECK(f.sameAsSource(3) && f.sameAsSource(5) && f.sameAsSource(PER + 8) && f.sameAsSource(9));
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
  if (m == FaultMode::Sigsegv || !systemInfo().kernelFaults) CHECK_OK(f.r->populate(20 * B, B));
  CHECK(pread(fd, base + 20 * B, B, 0) == static_cast<ssize_t>(B));
  CHECK(memcmp(base + 20 * B, base + 10 * B, B) == 0);
  close(fd);
  std::vector<uint64_t> d = f.r->dirtyBlocks();
  CHECK(std::find(d.begin(), d.end(), 20) != d.end());
  // a window with a mapped block is left to the fault path
  CHECK_OK(f.r->dropDirty());
  CHECK_OK(f.r->invalidateAll());
  (void)*(volatile uint8_t*)(base + (PER + 1) * B);
  const uint64_t before = f.r->stats().scanWindows;
  CHECK_OK(f.r->loadSequential(PER * B, PER * B));
  CHECK(f.r->stats().scanWindows == before);
  CHECK(f.sameAsSource(PER + 18));
}

// A scan of more windows than the pool holds reuses the huge pages of evicted windows: every
// block of every window still holds exactly its source bytes (holes and short blocks zero
// past their bytes, though the recycled page held other bytes), on a second pass too, after
// the source changed some blocks.
static void testScanWindowsRecycled(FaultMode m) {
  if (!scanWindowsOn()) return skip("transparent huge pages are off");
  constexpr uint64_t B = 64 << 10, W = kScanWindowBytes, PER = W / B, WINDOWS = 3 * kScanWindowsMax / 2, N = WINDOWS * PER;
  auto sizeOf = [](uint64_t b) -> uint64_t { return b % 11 == 4 ? 0 : b % 13 == 2 ? 3000 : B; };
  FileSource src(B, N);
  for (uint64_t b = 0; b < N; b++) src.put(b, sizeOf(b), 0);
  std::unique_ptr<Region> r = openOver(src, N * B, B, m);
  CHECK(r != nullptr);
  if (!r) return;
  auto sameAs = [&](uint64_t b, uint8_t gen, uint64_t size) {
    const uint8_t* p = r->blockPtr(b);
    for (uint64_t i = 0; i < B; i += 509)
      if (p[i] != (i < size ? pat(b, i, gen) : 0)) return false;
    return p[B - 1] == (B - 1 < size ? pat(b, B - 1, gen) : 0) && (size == 0 || p[size - 1] == pat(b, size - 1, gen)) &&
           (size >= B || p[size] == 0);
  };
  auto scan = [&](uint8_t genOf3) {
    bool all = true;
    for (uint64_t w = 0; w < WINDOWS; w += 4) {  // views() announces chunks of 4 windows
      CHECK_OK(r->loadSequential(w * W, 4 * W));
      for (uint64_t b = w * PER; b < (w + 4) * PER; b++) all = all && sameAs(b, b % 3 == 0 ? genOf3 : 0, sizeOf(b));
    }
    return all;
  };
  CHECK(scan(0));
  RegionStats st = r->stats();
  CHECK(st.scanWindows >= WINDOWS);
  CHECK(st.fileBlocks == 0);
  CHECK(st.scanWindowsRecycled >= WINDOWS - kScanWindowsMax - 1);
  CHECK(st.mappedNow <= kScanWindowsMax * PER);
  // another commit changes every third block (new file pages, same sizes): views refresh
  std::vector<uint64_t> changed;
  for (uint64_t b = 0; b < N; b += 3) {
    src.put(b, sizeOf(b), 1);
    changed.push_back(b);
  }
  CHECK_OK(r->invalidate(changed.data(), changed.size()));
  CHECK(scan(1));
  CHECK(r->stats().scanWindowsRecycled > st.scanWindowsRecycled);
  if (m == FaultMode::Uffd) {
    // The service loads the windows after a reader's while no fault waits: a reader that
    // pauses after going on to the range's second window finds the next ones loaded
    // (during the scans that depends on how the two threads are scheduled).
    const uint64_t before = r->stats().scanWindowsPrefetched;
    CHECK_OK(r->loadSequential(0, 4 * W));  // loads window 0
    CHECK(sameAs(PER, PER % 3 == 0 ? 1 : 0, sizeOf(PER)));  // a fault in window 1
    for (int i = 0; i < 300 && r->stats().scanWindowsPrefetched == before; i++) usleep(10000);
    CHECK(r->stats().scanWindowsPrefetched > before);
    for (uint64_t b = 0; b < 4 * PER; b++) CHECK(sameAs(b, b % 3 == 0 ? 1 : 0, sizeOf(b)));
  }
  CHECK(r->dirtyBlocks().empty());
  r.reset();
}

// ---- writes into shut scan windows the kernel refuses to open ----

// How a child run of this program ended: its exit status or signal, and its output.
struct ChildEnd {
  bool timedOut = false;
  int status = 0;
  std::string err;  // stdout and stderr
};

// Shows a child's output when a check of the running case failed since `failedBefore`.
static void showIfFailed(const ChildEnd& end, int failedBefore) {
  if (g_failed > failedBefore) fprintf(stderr, "--- the child's output:\n%s---\n", end.err.c_str());
}

// Runs this program again as a child that runs the case `name` in mode m alone (see main),
// killed after `seconds`. A fresh process: no region, no fault service, few mappings.
static ChildEnd runChild(const char* name, FaultMode m, int seconds) {
  ChildEnd end;
  int pipeFds[2];
  if (pipe2(pipeFds, O_CLOEXEC) != 0) {
    end.timedOut = true;
    return end;
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipeFds[1], 1);
    dup2(pipeFds[1], 2);
    setenv("VMEM_TEST_CHILD", name, 1);
    setenv("VMEM_TEST_CHILD_MODE", faultModeName(m), 1);
    execl("/proc/self/exe", "vmem_test", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(pipeFds[1]);
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  char buf[4096];
  for (;;) {
    pollfd p = {pipeFds[0], POLLIN, 200};
    if (poll(&p, 1, 200) > 0) {
      ssize_t n = read(pipeFds[0], buf, sizeof buf);
      if (n > 0) end.err.append(buf, size_t(n));
    }
    if (waitpid(pid, &end.status, WNOHANG) == pid) break;
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec > seconds) {
      end.timedOut = true;
      kill(pid, SIGKILL);
      waitpid(pid, &end.status, 0);
      break;
    }
  }
  for (ssize_t n; (n = read(pipeFds[0], buf, sizeof buf)) > 0;) end.err.append(buf, size_t(n));
  close(pipeFds[0]);
  return end;
}

// Inside a views() range, a fault far from where the reader was maps its blocks the ordinary
// way (random access never reads a 4 MiB window per touch); a reader going on from the
// window before, or from a fault in that window, loads the window.
static void testScanWindowsRandomFault(FaultMode m) {
  if (!scanWindowsOn()) return skip("transparent huge pages are off");
  constexpr uint64_t B = 64 << 10, W = kScanWindowBytes, PER = W / B, N = 6 * PER;
  FileSource src(B, N);
  for (uint64_t b = 0; b < N; b++) src.put(b, B, 0);
  std::unique_ptr<Region> r = openOver(src, N * B, B, m);
  CHECK(r != nullptr);
  if (!r) return;
  auto holds = [&](uint64_t b) {
    const uint8_t* p = r->blockPtr(b);
    return p[0] == pat(b, 0, 0) && p[B / 2 + 3] == pat(b, B / 2 + 3, 0) && p[B - 1] == pat(b, B - 1, 0);
  };
  CHECK_OK(r->loadSequential(0, N * B));
  CHECK(r->stats().scanWindows == 1);
  CHECK(holds(3 * PER + 5));  // far from window 0: the ordinary path
  RegionStats st = r->stats();
  CHECK(st.scanWindows == 1);
  CHECK(st.fileBlocks > 0);
  CHECK(holds(4 * PER + 2));  // on from a fault in window 3: window 4 is loaded
  CHECK(r->stats().scanWindows == 2);
  CHECK(holds(5 * PER + 9));  // on from window 4, in the pool
  CHECK(r->stats().scanWindows == 3);
  CHECK(holds(PER + 1));  // window 0 is loaded, window 1 follows it (uffd mode may read on)
  CHECK(r->stats().scanWindows >= 4);
  CHECK(r->stats().fileBlocks == st.fileBlocks);
}

// Three adjacent scan windows of 64 KiB blocks, every block stored whole, all loaded.
struct ScanFixture {
  static constexpr uint64_t B = 64 << 10, W = kScanWindowBytes, PER = W / B, N = 3 * PER;
  FileSource src{B, N};
  std::unique_ptr<Region> r;
  explicit ScanFixture(FaultMode m) {
    for (uint64_t b = 0; b < N; b++) src.put(b, B, 0);
    r = openOver(src, N * B, B, m);
    if (!r) return;
    (void)r->loadSequential(0, N * B);
    for (uint64_t b = 0; b < N; b++) (void)*(volatile uint8_t*)(r->blockPtr(b) + B - 1);
  }
  bool holds(uint64_t b, uint8_t gen = 0) const {
    const uint8_t* p = r->blockPtr(b);
    for (uint64_t i = 0; i < B; i += 251)
      if (p[i] != pat(b, i, gen)) return false;
    return p[B - 1] == pat(b, B - 1, gen);
  }
};

// A written byte is in the region, dirty and what copyBlock (the engine's commit) reads;
// after the "commit" the block maps its new bytes.
static void checkWriteCommitted(ScanFixture& f, uint64_t b, uint64_t at, uint8_t v) {
  CHECK(f.r->blockPtr(b)[at] == v);
  std::vector<uint8_t> buf(ScanFixture::B);
  CHECK(f.r->copyBlock(b, buf.data()) == Status::Ok && buf[at] == v);
  std::vector<uint64_t> d = f.r->dirtyBlocks();
  CHECK(std::find(d.begin(), d.end(), b) != d.end());
  f.src.put(b, ScanFixture::B, 1);
  CHECK_OK(f.r->markClean(&b, 1));
  CHECK(f.holds(b, 1));
}

// Takes every VMA the kernel still allows (alternating protections never merge); the
// caller unmaps them. `own` must have room for them (no allocation at the limit).
static void takeEveryVma(std::vector<void*>* own, uint64_t maxMaps) {
  for (uint64_t k = 0; k < maxMaps; k++) {
    void* p = mmap(nullptr, kPage, k % 2 ? PROT_READ : PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) break;
    own->push_back(p);
  }
}

// The child of testScanWriteAtVmaLimit: the process holds every VMA the kernel allows when
// stores reach two shut windows.
static void childScanWriteAtVmaLimit(FaultMode m) {
  const uint64_t maxMaps = readMaxMapCount();
  ScanFixture f(m);
  CHECK(f.r != nullptr);
  if (!f.r) return;
  const uint64_t B = ScanFixture::B, mid = ScanFixture::PER + 8, last = 2 * ScanFixture::PER + 3;
  CHECK(f.r->stats().scanWindows == 3 && f.r->stats().fileBlocks == 0);
  std::vector<void*> own;
  own.reserve(maxMaps);
  takeEveryVma(&own, maxMaps);
  CHECK(own.size() < maxMaps);  // the limit was reached
  const uint8_t v1 = static_cast<uint8_t>(~pat(mid, 100, 0)), v2 = static_cast<uint8_t>(~pat(last, 5, 0));
  f.r->blockPtr(mid)[100] = v1;
  f.r->blockPtr(last)[5] = v2;
  for (void* p : own) munmap(p, kPage);
  CHECK(f.r->stats().scanWindowsOpened == 2);
  Error err;
  CHECK(!f.r->takeError(&err));
  CHECK((f.r->dirtyBlocks() == std::vector<uint64_t>{mid, last}));
  checkWriteCommitted(f, mid, 100, v1);
  checkWriteCommitted(f, last, 5, v2);
  bool rest = true;
  for (uint64_t b = 0; b < ScanFixture::N; b++) rest = rest && (b == mid || b == last || f.holds(b));
  CHECK(rest);
  (void)B;
}

// The child of testScanPopulateAtVmaLimit: one block of a shut window was opened and shut
// again (Sigsegv mode: its VMA merged back with the window's), so opening it alone at the
// VMA limit needs a split the kernel refuses.
static void childScanPopulateAtVmaLimit(FaultMode m) {
  const uint64_t maxMaps = readMaxMapCount();
  ScanFixture f(m);
  CHECK(f.r != nullptr);
  if (!f.r) return;
  const uint64_t B = ScanFixture::B, pop = 12;
  CHECK_OK(f.r->populate(pop * B, B));
  std::vector<uint64_t> none;
  CHECK_OK(f.r->markClean(none.data(), 0));  // shuts it again
  const size_t windowVmas = countVmas(f.r->base(), f.r->base() + ScanFixture::W);
  CHECK(windowVmas == 1);
  char path[] = "/tmp/vmem-populate-XXXXXX";
  int fd = mkstemp(path);
  unlink(path);
  std::vector<uint8_t> bytes(B, 0x3c);
  CHECK(pwrite(fd, bytes.data(), B, 0) == static_cast<ssize_t>(B));
  std::vector<void*> own;
  own.reserve(maxMaps);
  takeEveryVma(&own, maxMaps);
  CHECK(own.size() < maxMaps);  // the limit was reached
  Error err;
  const Status populated = f.r->populate(pop * B, B, &err);
  // a system call writes into the populated block (no fault is served for it in Sigsegv mode)
  const ssize_t n = pread(fd, f.r->blockPtr(pop), B, 0);
  for (void* p : own) munmap(p, kPage);
  close(fd);
  CHECK(populated == Status::Ok);
  CHECK(n == static_cast<ssize_t>(B));
  if (m == FaultMode::Sigsegv) CHECK(f.r->stats().scanWindowOpenRefusals == 1);
  CHECK(!f.r->takeError(&err));
  CHECK((f.r->dirtyBlocks() == std::vector<uint64_t>{pop}));
  checkWriteCommitted(f, pop, 77, 0x3c);
  bool rest = true;
  for (uint64_t b = 0; b < ScanFixture::N; b++) rest = rest && (b == pop || f.holds(b));
  CHECK(rest);
}

// Writes into shut scan windows, and populate() of one shut block, with every VMA of the
// process taken: each write lands and is committed, and nothing faults forever (child
// processes, killed if they hang).
static void testScanWriteAtVmaLimit(FaultMode m) {
  if (!scanWindowsOn()) return skip("transparent huge pages are off");
  const uint64_t maxMaps = readMaxMapCount();
  if (maxMaps == 0 || maxMaps > 200000) return skip("vm.max_map_count unknown or too large to reach");
  for (const char* child : {"scan write at the VMA limit", "scan populate at the VMA limit"}) {
    const int failedBefore = g_failed;
    ChildEnd end = runChild(child, m, 120);
    CHECK(!end.timedOut);
    CHECK(WIFEXITED(end.status) && WEXITSTATUS(end.status) == 0);
    showIfFailed(end, failedBefore);
  }
}

// The kernel refuses to open a window once: its shut copies go back to placeholders and
// the write lands in the block mapped the ordinary way; the rest of the window reads as
// before.
static void testScanWriteRefusedOpen(FaultMode m) {
  if (!scanWindowsOn()) return skip("transparent huge pages are off");
  ScanFixture f(m);
  CHECK(f.r != nullptr);
  if (!f.r) return;
  const uint64_t b = ScanFixture::PER + 5;
  const uint8_t v = static_cast<uint8_t>(~pat(b, 9, 0));
  g_scanWriteFaults.open = 1;
  f.r->blockPtr(b)[9] = v;
  g_scanWriteFaults.open = 0;
  RegionStats st = f.r->stats();
  CHECK(st.scanWindowOpenRefusals == 1);
  CHECK(st.scanWindowsOpened == 0);
  CHECK(st.fileBlocks > 0);  // the retry mapped the block from the file
  Error err;
  CHECK(!f.r->takeError(&err));
  CHECK((f.r->dirtyBlocks() == std::vector<uint64_t>{b}));
  checkWriteCommitted(f, b, 9, v);
  bool rest = true;
  for (uint64_t x = 0; x < ScanFixture::N; x++) rest = rest && (x == b || f.holds(x));
  CHECK(rest);
  CHECK(f.r->dirtyBlocks().empty());
}

// The child of testScanWriteNothingWorks: every open and drop of a window is refused (and,
// with `lift`, lifting one block's protection too).
static void childScanWriteNothingWorks(FaultMode m, bool lift) {
  ScanFixture f(m);
  CHECK(f.r != nullptr);
  if (!f.r) return;
  g_scanWriteFaults.open = 1000;
  g_scanWriteFaults.drop = 1000;
  if (lift) g_scanWriteFaults.lift = 1000;
  const uint64_t b = 7;
  const uint8_t v = static_cast<uint8_t>(~pat(b, 3, 0));
  f.r->blockPtr(b)[3] = v;
  g_scanWriteFaults.open = g_scanWriteFaults.drop = g_scanWriteFaults.lift = 0;
  // Uffd mode gets here: the block was marked dirty, then its protection lifted
  CHECK(m == FaultMode::Uffd && !lift);
  Error err;
  CHECK(!f.r->takeError(&err));
  CHECK(f.r->stats().scanWindowOpenRefusals > 0);
  CHECK(f.r->isDirty(b));
  checkWriteCommitted(f, b, 3, v);
  const uint64_t next = b + 1;  // the rest of the window is still shut: its writes are found too
  f.r->blockPtr(next)[0] ^= 0xff;
  CHECK(f.r->isDirty(next));
}

// Nothing makes a shut block writable: Sigsegv mode ends the process with a message, as
// THE FAULT RULE says; Uffd mode marks the block dirty and lifts the protection of that
// block alone, and ends the process only if even that is refused. Never a writer that
// faults forever.
static void testScanWriteNothingWorks(FaultMode m) {
  if (!scanWindowsOn()) return skip("transparent huge pages are off");
  const int failedBefore = g_failed;
  ChildEnd end = runChild("scan write, nothing works", m, 60);
  CHECK(!end.timedOut);
  if (m == FaultMode::Uffd) {
    CHECK(WIFEXITED(end.status) && WEXITSTATUS(end.status) == 0);
    showIfFailed(end, failedBefore);
    end = runChild("scan write, nothing works, no lift", m, 60);
    CHECK(!end.timedOut);
    CHECK(WIFSIGNALED(end.status) && WTERMSIG(end.status) == SIGABRT);
  } else {
    CHECK(WIFSIGNALED(end.status) && WTERMSIG(end.status) == SIGSEGV);
  }
  CHECK(end.err.find("terminating") != std::string::npos);
  showIfFailed(end, failedBefore);
}

// A child run (runChild): one case in one mode, its checks' summary, status 0 if all passed.
static int childMain(const std::string& name, const char* modeName) {
  const FaultMode m = !strcmp(modeName, "uffd") ? FaultMode::Uffd : FaultMode::Sigsegv;
  g_ctx = std::string("child ") + modeName + " " + name;
  if (name == "scan write at the VMA limit") childScanWriteAtVmaLimit(m);
  else if (name == "scan populate at the VMA limit") childScanPopulateAtVmaLimit(m);
  else if (name == "scan write, nothing works") childScanWriteNothingWorks(m, false);
  else if (name == "scan write, nothing works, no lift") childScanWriteNothingWorks(m, true);
  else CHECK(!"a known child case");
  printSummary();
  return g_failed ? 1 : 0;
}

int main() {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  if (const char* child = getenv("VMEM_TEST_CHILD")) {
    const char* mode = getenv("VMEM_TEST_CHILD_MODE");
    return childMain(child, mode ? mode : "sigsegv");
  }
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
        {"budget counts the kernel's mappings", testBudgetCountsMappings},
        {"budget never counts fewer mappings than the kernel makes", testBudgetNeverCountsLow},
        {"a shared budget bounds the mappings of regions in several threads", testSharedBudgetAcrossThreads},
        {"copy path", testCopyPath},
        {"write and discard", testWriteAndDiscard},
        {"system calls", testSystemCalls},
        {"concurrent readers", testConcurrentReaders},
        {"source failure recorded", testSourceFailureRecorded},
        {"spill keeps writes under the budget", testSpillKeepsWritesUnderBudget},
        {"stores racing evictions are kept", testStoresRacingEvictions},
        {"spill: abort drops spilled blocks", testSpillAbortDrops},
        {"spill: parked blocks are dirty", testParkedBlocksAreDirty},
        {"spill: stores racing spills land", testStoresRacingSpills},
        {"spill bounds VMAs", testSpillBoundsVmas},
        {"spill past vm.max_map_count", testPastMaxMapCount},
        {"the VMA limit reached by another region", testLimitReachedByOtherRegions},
        {"scattered faults map one block", testScatteredFaultsMapOneBlock},
        {"a far fault maps the run from its address", testFarFaultMapsRunFromAddress},
        {"scan windows", [](FaultMode fm) { testScanWindows(fm, true); }},
        {"scan windows, copied blocks", [](FaultMode fm) { testScanWindows(fm, false); }},
        {"scan windows recycled", testScanWindowsRecycled},
        {"scan windows: a random fault in the range maps its blocks", testScanWindowsRandomFault},
        {"scan window write at the VMA limit", testScanWriteAtVmaLimit},
        {"scan window write: a refused open drops the window", testScanWriteRefusedOpen},
        {"scan window write: nothing works, never a fault forever", testScanWriteNothingWorks},
        {"a fault waits for a fetch", testFaultWaitsForFetch},
        {"a fault waiting across a move is asked again", testMoveWhileWaiting},
        {"a failed fetch serves zeros", testFailedFetchServesZeros},
        {"an unanswered fetch runs out", testUnansweredFetchExpires},
        {"a fault inside a system call waits for a fetch", testKernelFaultWaits},
        {"close() while a fault waits", testCloseWhileWaiting},
    };
    for (const Case& c : cases) {
      std::string name = mode + " " + c.name;
      if (const char* only = getenv("VMEM_TEST_ONLY"))  // runs the cases whose name holds it
        if (name.find(only) == std::string::npos) continue;
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
