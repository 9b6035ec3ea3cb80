// Tests of the engine's storage side without Node: CRC32C, the block value layout, the
// block locations read paths and the view layer rely on (Snapshot::tryBlockLocation), the
// opening of a store written before named segments, and the commit rules over the block
// store seam, in memory and over LMDB (commit_rules.cc).
//
//   engine_test          run every test
//
// Each test function is a case; ends with the checks and cases lines of harness.h. Exit
// status 0 only if nothing failed.
#include <fcntl.h>
#include <lmdb.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "../engine/block_format.h"
#include "../engine/lmdb_block_store.h"
#include "../engine/change_log.h"
#include "../engine/crc32c.h"
#include "../engine/env.h"
#include "../engine/error.h"
#include "../engine/fetch_channel.h"
#include "../engine/keys.h"
#include "../engine/pread_batch.h"
#include "../engine/remote_apply.h"
#include "../engine/remote_fill.h"
#include "../engine/session_stats.h"
#include "../engine/snapshot.h"
#include "harness.h"

using namespace txa;

void commitRuleCases();  // commit_rules.cc

static std::string tempStore() {
  char dir[] = "/tmp/txarray-engine-test-XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    exit(2);
  }
  return dir;
}

static void removeStore(const std::string& dir) {
  for (const char* f : {"data.mdb", "lock.mdb", "txarray.signal", "unflushed"}) unlink((dir + "/" + f).c_str());
  rmdir(dir.c_str());
}

// ---------------------------------------------------------------------------------------

// PreadBatch: pieces of a file read into scattered destinations land exactly, whatever the
// number of threads and however the pieces join into runs; I/O errors come back as coded
// errors on the calling thread.
static void testPreadBatch(unsigned threads) {
  const std::string dir = tempStore();
  const std::string file = dir + "/pieces";
  const size_t fileBytes = 24u << 20, page = 4096;
  std::vector<uint8_t> bytes(fileBytes);
  std::mt19937_64 rng(threads);
  for (auto& b : bytes) b = uint8_t(rng());
  int fd = open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0);
  CHECK(write(fd, bytes.data(), fileBytes) == ssize_t(fileBytes));
  // Pieces: runs of back-to-back pieces (gaps of 0 or one page), jumps between runs.
  std::vector<uint8_t> dst(fileBytes, 0);
  struct P { uint64_t at, n, to; };
  std::vector<P> pieces;
  uint64_t to = 0;
  for (uint64_t at = 0; to + 70000 < fileBytes;) {
    const uint64_t n = 1 + rng() % 65536;
    if (at + n > fileBytes) at = rng() % (fileBytes / 2);
    pieces.push_back({at, n, to});
    to += n;
    const int step = int(rng() % 3);
    at += n + (step == 0 ? 0 : step == 1 ? page : 3 * page);
  }
  {
    PreadBatch batch(fd, page, threads);
    for (const P& p : pieces) {
      batch.add(p.at, dst.data() + p.to, p.n, bytes.data() + p.at);
      if (rng() % 17 == 0) batch.flush();
    }
    batch.finish();
    CHECK(batch.empty());
  }
  bool same = true;
  for (const P& p : pieces) same = same && memcmp(dst.data() + p.to, bytes.data() + p.at, p.n) == 0;
  CHECK(same);
  // Queues 16 pieces a MiB apart, then `more`, and finishes: the code of the error thrown, if any
  // (with one thread, add() reads the runs it ends, so the adds are inside the try).
  auto failureOf = [&](PreadBatch& batch, const std::function<void()>& more) -> std::optional<ErrorCode> {
    try {
      for (int i = 0; i < 16; i++) batch.add(uint64_t(i) * (1u << 20), dst.data() + uint64_t(i) * 65536, 65536, bytes.data());
      more();
      batch.finish();
    } catch (const Error& e) {
      return e.code();
    }
    return std::nullopt;
  };
  // A piece past the end of the file: kCorrupt, from the calling thread.
  {
    PreadBatch batch(fd, page, threads);
    CHECK(failureOf(batch, [&] { batch.add(fileBytes - 100, dst.data(), 4096, bytes.data()); }) == ErrorCode::kCorrupt);
    CHECK(batch.empty());
  }
  // A descriptor that is not open: kStorage.
  close(fd);
  {
    PreadBatch batch(fd, page, threads);
    CHECK(failureOf(batch, [] {}) == ErrorCode::kStorage);
  }
  unlink(file.c_str());
  removeStore(dir);
}

// ---------------------------------------------------------------------------------------

static void testCrc32c() {
  g_ctx = "crc32c";
  const char* check = "123456789";
  CHECK(crc32c(0, check, 9) == 0xe3069283u);
  CHECK(crc32cPortable(0, check, 9) == 0xe3069283u);
  CHECK(crc32c(crc32c(0, check, 4), check + 4, 5) == 0xe3069283u);  // extends
  std::mt19937_64 rng(7);
  std::vector<uint8_t> buf(250000);
  for (auto& b : buf) b = uint8_t(rng());
  int same = 0, cases = 0;
  // around the hardware path's stripes of 3 x 4096 and 3 x 256 bytes, and many stripes
  for (size_t len : {0, 1, 7, 8, 9, 31, 32, 33, 255, 767, 768, 769, 1543, 4096, 12287, 12288, 12289, 13056,
                     13063, 24583, 36872, 65536, 69632, 200003}) {
    for (size_t at : {0, 1, 3, 8}) {
      if (at + len > buf.size()) continue;
      ++cases;
      same += crc32c(0, buf.data() + at, len) == crc32cPortable(0, buf.data() + at, len);
    }
  }
  CHECK(same == cases);
  printf("crc32c: %s, %d lengths x alignments agree with the table\n", crc32cImplementation(), cases);
  // Extending over zeros without reading them equals reading them.
  std::vector<uint8_t> zeros(70000, 0);
  int zeroCases = 0, zeroSame = 0;
  for (uint32_t start : {0u, 1u, 0xe3069283u, 0xffffffffu, uint32_t(rng())}) {
    for (size_t n : {0, 1, 2, 7, 8, 255, 4095, 4096, 12289, 65536, 69999}) {
      ++zeroCases;
      zeroSame += crc32cZeros(start, n) == crc32c(start, zeros.data(), n);
    }
  }
  CHECK(zeroSame == zeroCases);
}

// ---------------------------------------------------------------------------------------

struct Written {
  uint64_t id, index;
  uint32_t blockBytes;
  std::vector<uint8_t> bytes;  // as given to putBlock (trailing zeros included)
};

static size_t trimmed(const std::vector<uint8_t>& b) {
  size_t n = b.size();
  while (n > 0 && b[n - 1] == 0) --n;
  return n;
}

// Writes `count` blocks with random contents and lengths (some with trailing zeros, some
// all zeros) in one write transaction; remembers what it wrote in `model`.
static void writeBlocks(Env& env, std::mt19937_64& rng, uint64_t id, uint32_t blockBytes, uint64_t count,
                        std::map<std::pair<uint64_t, uint64_t>, Written>* model) {
  SessionStats stats;
  MDB_txn* txn = env.begin(0);
  LmdbBlocks store{env.blocksDb(), env.pageSize()};
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t index = rng() % (count * 2);
    Written w{id, index, blockBytes, std::vector<uint8_t>(blockBytes, 0)};
    size_t len = rng() % 5 == 0 ? blockBytes : size_t(rng() % (blockBytes + 1));
    for (size_t k = 0; k < len; ++k) w.bytes[k] = uint8_t(rng());
    if (rng() % 7 == 0) std::fill(w.bytes.begin(), w.bytes.end(), 0);  // all zeros: deleted
    putBlock(txn, store, id, index, blockBytes, 1, w.bytes.data(), w.bytes.size(), &stats);
    (*model)[{id, index}] = std::move(w);
  }
  int rc = mdb_txn_commit(txn);
  if (rc) throwLmdb(rc, "commit");
}

// A new store gets a format record (the TypeScript layer passes its own).
static EnvOptions testOptions() {
  EnvOptions options;
  options.mapSize = uint64_t(1) << 30;
  options.maxReaders = 126;
  options.format = "engine-test";
  return options;
}

static void testLocations() {
  g_ctx = "locations";
  std::string dir = tempStore();
  {
    auto env = Env::acquire(dir, testOptions());
    CHECK(env->pageSize() >= 4096);
    CHECK(env->dataFd() >= 0);
    CHECK(env->mapBase() != nullptr);  // locations below come from value addresses, no page read
    std::mt19937_64 rng(42);
    std::map<std::pair<uint64_t, uint64_t>, Written> model;
    // Several commits over the same keys: values move to new pages, freed pages are reused.
    for (int round = 0; round < 4; ++round) {
      writeBlocks(*env, rng, 1, 65536, 300, &model);
      writeBlocks(*env, rng, 2, 4096, 500, &model);
      writeBlocks(*env, rng, 3, 1 << 20, 12, &model);
    }
    Snapshot snap(env);
    std::shared_lock<std::shared_mutex> mapGuard(env->mapLock);
    const size_t page = env->pageSize();
    uint64_t stored = 0, equal = 0, mappable = 0, aligned = 0, viewsEqual = 0, absentOk = 0, absent = 0;
    for (const auto& [key, w] : model) {
      BlockLocation loc;
      BlockView view;
      int rc = snap.tryBlockLocation(w.id, w.index, &loc);
      int rc2 = snap.tryBlock(w.id, w.index, &view);
      CHECK(rc == 0 && rc2 == 0);
      const size_t len = trimmed(w.bytes);
      if (len == 0) {
        ++absent;
        absentOk += loc.bytes == 0 && view.size == 0 && view.data == nullptr;
        continue;
      }
      ++stored;
      mappable += loc.mappable;
      aligned += loc.mappable && loc.fileOffset % page == 0 && loc.bytes % page == 0 &&
                 loc.bytes == blockfmt::storedBytes(len, page);
      std::vector<uint8_t> got(loc.bytes);
      ssize_t r = pread(loc.fd, got.data(), got.size(), off_t(loc.fileOffset));
      std::vector<uint8_t> want(loc.bytes, 0);
      memcpy(want.data(), w.bytes.data(), len);
      equal += r == ssize_t(loc.bytes) && got == want;
      viewsEqual += view.size == len && memcmp(view.data, w.bytes.data(), len) == 0;
    }
    printf("locations: %llu blocks stored, %llu mappable, %llu page-aligned, %llu read back equal by pread; "
           "%llu all-zero blocks absent\n",
           (unsigned long long)stored, (unsigned long long)mappable, (unsigned long long)aligned,
           (unsigned long long)equal, (unsigned long long)absent);
    CHECK(stored > 1000);
    CHECK(mappable == stored);  // never misaligned
    CHECK(aligned == stored);
    CHECK(equal == stored);
    CHECK(viewsEqual == stored);
    CHECK(absent > 0 && absentOk == absent);
    BlockLocation none;
    CHECK(snap.tryBlockLocation(99, 0, &none) == 0 && none.bytes == 0 && none.fd == env->dataFd());
  }
  removeStore(dir);
}

// A value that is not a block of this format: refused by every read path, not mappable.
static void testForeignValues() {
  g_ctx = "foreign values";
  std::string dir = tempStore();
  {
    auto env = Env::acquire(dir, testOptions());
    MDB_txn* txn = env->begin(0);
    keys::BlockKey raw(5, 0), small(5, 1);
    // index 0: format-2 style raw bytes; index 1: a valid header with its data right after
    // it (a small value inside a leaf page: a block, but not page-aligned)
    uint8_t rawBytes[100];
    memset(rawBytes, 0xab, sizeof rawBytes);
    MDB_val k0{16, raw.bytes}, v0{sizeof rawBytes, rawBytes};
    CHECK(mdb_put(txn, env->blocksDb(), &k0, &v0, 0) == 0);
    uint8_t value[blockfmt::kHeaderBytes + 8];
    const size_t page = env->pageSize();
    std::vector<uint8_t> full(blockfmt::valueBytes(8, page));
    uint8_t data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    blockfmt::encode(full.data(), page, 5, 1, 4096, 1, data, 8);
    memcpy(value, full.data(), blockfmt::kHeaderBytes);
    value[8] = uint8_t(blockfmt::kHeaderBytes);  // dataOffset = 52 (u32le)
    value[9] = value[10] = value[11] = 0;
    memcpy(value + blockfmt::kHeaderBytes, data, 8);
    MDB_val k1{16, small.bytes}, v1{sizeof value, value};
    CHECK(mdb_put(txn, env->blocksDb(), &k1, &v1, 0) == 0);
    CHECK(mdb_txn_commit(txn) == 0);

    Snapshot snap(env);
    std::shared_lock<std::shared_mutex> mapGuard(env->mapLock);
    BlockView view;
    BlockLocation loc;
    CHECK(snap.tryBlock(5, 0, &view) == MDB_CORRUPTED);
    CHECK(snap.tryBlockLocation(5, 0, &loc) == MDB_CORRUPTED);
    bool threw = false;
    try {
      StoredBlock s;
      snap.stored(5, 0, &s);
    } catch (const Error& e) {
      threw = e.code() == ErrorCode::kCorrupt && std::string(e.what()).find("block 0") != std::string::npos;
    }
    CHECK(threw);
    CHECK(snap.tryBlock(5, 1, &view) == 0 && view.size == 8 && memcmp(view.data, data, 8) == 0);
    CHECK(snap.tryBlockLocation(5, 1, &loc) == 0 && !loc.mappable && loc.bytes == 8);
  }
  removeStore(dir);
}

// The checksum covers the data and the header: flipping any of them is found.
static void testChecksum() {
  g_ctx = "checksum";
  const size_t page = 4096;
  std::vector<uint8_t> data(5000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 31 + 1);
  std::vector<uint8_t> value(blockfmt::valueBytes(data.size(), page));
  blockfmt::encode(value.data(), page, 9, 3, 8192, 77, data.data(), data.size());
  blockfmt::Header h;
  CHECK(blockfmt::readHeader(value.data(), value.size(), &h) == blockfmt::Problem::kNone);
  CHECK(h.dataOffset == page - 16 && h.dataLength == 5000 && h.arrayId == 9 && h.blockIndex == 3 && h.blockBytes == 8192 &&
        h.serial == 77);
  CHECK(value.size() == page - 16 + 2 * page);
  const uint8_t* stored = value.data() + h.dataOffset;
  CHECK(blockfmt::checksumMatches(value.data(), h, stored, h.storedIn(value.size())));
  int found = 0, flips = 0;
  for (size_t at : {size_t(0), size_t(4999), size_t(5000), size_t(2 * page - 1)}) {  // data, and zero fill
    value[h.dataOffset + at] ^= 0x10;
    ++flips;
    found += !blockfmt::checksumMatches(value.data(), h, stored, h.storedIn(value.size()));
    value[h.dataOffset + at] ^= 0x10;
  }
  value[16] ^= 1;  // dataLength
  blockfmt::Header h2;
  blockfmt::readHeader(value.data(), value.size(), &h2);
  ++flips;
  found += !blockfmt::checksumMatches(value.data(), h2, stored, h2.storedIn(value.size()));
  value[16] ^= 1;
  CHECK(found == flips);
  value[0] ^= 1;
  CHECK(blockfmt::readHeader(value.data(), value.size(), &h) == blockfmt::Problem::kMagic);
}

// Stubs of a lazily cached remote store: written by catch-up, refused by reads until the
// snapshot is given the fetched version, filled in the store by version only.
static void testStubs() {
  g_ctx = "stubs";
  uint8_t stub[blockfmt::kStubBytes];
  blockfmt::encodeStub(stub, 7, 2, 65536, 5, 1000);
  blockfmt::Header h;
  CHECK(blockfmt::readHeader(stub, sizeof stub, &h) == blockfmt::Problem::kOnServer);
  CHECK(h.onServer && h.arrayId == 7 && h.blockIndex == 2 && h.serial == 5 && h.dataLength == 1000 &&
        h.blockBytes == 65536 && h.storedIn(sizeof stub) == 0);
  CHECK(blockfmt::checksumMatches(stub, h, stub, 0));
  stub[40] ^= 1;  // the serial
  blockfmt::Header h2;
  blockfmt::readHeader(stub, sizeof stub, &h2);
  CHECK(!blockfmt::checksumMatches(stub, h2, stub, 0));
  stub[40] ^= 1;
  stub[6] |= 2;  // a flag this build does not know
  CHECK(blockfmt::readHeader(stub, sizeof stub, &h) == blockfmt::Problem::kVersion);

  std::string dir = tempStore();
  {
    auto env = Env::acquire(dir, testOptions());
    RemoteBatch batch;
    batch.head = 1;
    batch.remoteMeta = "stamp";
    RemoteCommit commit;
    commit.serial = 1;
    commit.changes.addBlocks(7, 0, 1);
    batch.commits.push_back(commit);
    RemoteBlock onServer;
    onServer.arrayId = 7, onServer.index = 0, onServer.serial = 1, onServer.blockBytes = 65536;
    onServer.onServer = true, onServer.length = 5000;
    RemoteBlock held = onServer;
    held.index = 1, held.onServer = false, held.data = std::string(3000, 'h');
    batch.blocks = {onServer, held};
    SessionStats stats;
    CHECK(applyRemote(env, batch, &stats) == 1);
    std::vector<uint8_t> bytes(5000);
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i * 7 + 1);
    auto snap = std::make_shared<Snapshot>(env);
    uint64_t serial = 0, length = 0;
    CHECK(snap->onServer(7, 0, &serial, &length) && serial == 1 && length == 5000);
    CHECK(!snap->onServer(7, 1, &serial, &length) && !snap->onServer(7, 9, &serial, &length));
    CHECK(!snap->holdsInFull(7, 0) && snap->holdsInFull(7, 1));
    bool threw = false;
    try {
      StoredBlock s;
      snap->stored(7, 0, &s);
    } catch (const Error& e) {
      threw = e.code() == ErrorCode::kRemoteUnavailable;
    }
    CHECK(threw);
    {
      std::shared_lock<std::shared_mutex> mapGuard(env->mapLock);
      BlockView view;
      BlockLocation loc;
      CHECK(snap->isStub(7, 0) && !snap->isStub(7, 1));
      CHECK(snap->tryBlock(7, 0, &view) == kBlockOnServer);
      CHECK(snap->tryBlockLocation(7, 0, &loc) == kBlockOnServer);
    }
    CHECK(!snap->addFetched(7, 0, 2, bytes.data(), bytes.size()));  // another version
    CHECK(!snap->addFetched(7, 1, 1, bytes.data(), bytes.size()));  // held in full already
    threw = false;
    try {
      std::vector<uint8_t> longer(6000, 1);
      snap->addFetched(7, 0, 1, longer.data(), longer.size());
    } catch (const Error& e) {
      threw = e.code() == ErrorCode::kFormat;
    }
    CHECK(threw);
    {
      std::shared_lock<std::shared_mutex> mapGuard(env->mapLock);
      CHECK(snap->stubVersion(7, 0, &serial, &length) && serial == 1 && length == 5000);
      CHECK(!snap->stubVersion(7, 1, &serial, &length));
    }
    CHECK(!snap->fetchFailed(7, 0, 1));
    snap->markFetchFailed(7, 0, 1);
    CHECK(snap->fetchFailed(7, 0, 1) && !snap->fetchFailed(7, 0, 2));
    CHECK(!Snapshot(env).fetchFailed(7, 0, 1));  // another snapshot fetches again
    CHECK(snap->addFetched(7, 0, 1, bytes.data(), bytes.size()));
    CHECK(snap->fetchedBytes() == 5000);
    {
      std::shared_lock<std::shared_mutex> mapGuard(env->mapLock);
      CHECK(!snap->stubVersion(7, 0, &serial, &length));  // fetched: no longer a stub here
    }
    {
      std::shared_lock<std::shared_mutex> mapGuard(env->mapLock);
      BlockView view;
      BlockLocation loc;
      CHECK(!snap->isStub(7, 0));
      CHECK(snap->tryBlock(7, 0, &view) == 0 && view.size == 5000 && memcmp(view.data, bytes.data(), 5000) == 0);
      CHECK(snap->tryBlockLocation(7, 0, &loc) == 0 && !loc.mappable && loc.bytes == blockfmt::storedBytes(5000, env->pageSize()));
      StoredBlock s;
      CHECK(snap->stored(7, 0, &s) && s.data.size == 5000);
      CHECK(blockfmt::checksumMatches(s.value, s.header, s.value + s.header.dataOffset, s.header.storedIn(s.valueSize)));
    }
    // The store: only the stub of the same version is filled.
    std::vector<FetchedBlock> fetched(1);
    fetched[0].arrayId = 7, fetched[0].index = 0, fetched[0].serial = 2;
    fetched[0].data.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    CHECK(fillStubs(*env, fetched, &stats) == 0);
    fetched[0].serial = 1;
    CHECK(fillStubs(*env, fetched, &stats) == 1);
    CHECK(fillStubs(*env, fetched, &stats) == 0);  // filled already
    Snapshot later(env);
    std::shared_lock<std::shared_mutex> mapGuard(env->mapLock);
    BlockLocation loc;
    CHECK(later.tryBlockLocation(7, 0, &loc) == 0 && loc.mappable);
    std::vector<uint8_t> got(5000);
    CHECK(pread(loc.fd, got.data(), got.size(), off_t(loc.fileOffset)) == 5000 && got == bytes);
  }
  removeStore(dir);
}

// The queue between faults waiting for blocks and the fetcher (fetch_channel.h).
static void testFetchChannel() {
  g_ctx = "fetch channel";
  FetchChannel ch(123);
  CHECK(ch.waitNs() == 123);
  pollfd p{ch.fd(), POLLIN, 0};
  CHECK(poll(&p, 1, 0) == 0);  // nothing posted: not readable
  FetchChannel::Request r;
  r.arrayId = 7, r.index = 3, r.serial = 2, r.length = 100;
  CHECK(ch.post(r));
  CHECK(ch.post(r));  // the same version again: queued once
  FetchChannel::Request other = r;
  other.serial = 3;  // another version of the block: a request of its own
  CHECK(ch.post(other));
  CHECK(poll(&p, 1, 0) == 1);
  uint64_t count = 0;
  CHECK(read(ch.fd(), &count, sizeof count) == sizeof count && count == 2);
  std::vector<FetchChannel::Request> taken = ch.take();
  CHECK(taken.size() == 2 && taken[0].index == 3 && taken[0].length == 100);
  CHECK(ch.take().empty());
  CHECK(ch.post(r) && ch.take().empty());  // in flight: not queued again
  ch.answered(7, 3, 2);
  CHECK(ch.outstanding() == 1);
  CHECK(ch.post(r) && ch.take().size() == 1);  // answered: may be asked again
  ch.answered(7, 3, 2);
  ch.answered(7, 3, 3);
  CHECK(ch.outstanding() == 0);
  // Full: at most kMaxRequests outstanding.
  size_t posted = 0;
  for (uint64_t i = 0; i < FetchChannel::kMaxRequests + 5; ++i) {
    FetchChannel::Request q = r;
    q.index = 1000 + i;
    posted += ch.post(q);
  }
  CHECK(posted == FetchChannel::kMaxRequests && ch.outstanding() == FetchChannel::kMaxRequests);
  for (uint64_t i = 0; i < FetchChannel::kMaxRequests + 5; ++i) ch.answered(7, 1000 + i, 2);
  CHECK(ch.outstanding() == 0);
  // Blocks read ahead of faults fill the channel only up to the room kept for the blocks
  // faults wait for, which still find slots.
  size_t ahead = 0;
  for (uint64_t i = 0; i < FetchChannel::kMaxRequests; ++i) {
    FetchChannel::Request q = r;
    q.index = 5000 + i;
    ahead += ch.post(q, true);
  }
  CHECK(ahead == FetchChannel::kMaxRequests - FetchChannel::kKeptForFaults);
  FetchChannel::Request again = r;
  again.index = 5000;
  CHECK(ch.post(again, true));  // one already queued: still answered as queued
  size_t needed = 0;
  for (uint64_t i = 0; i < FetchChannel::kKeptForFaults + 1; ++i) {
    FetchChannel::Request q = r;
    q.index = 9000 + i;
    needed += ch.post(q);
  }
  CHECK(needed == FetchChannel::kKeptForFaults && ch.outstanding() == FetchChannel::kMaxRequests);
  CHECK(read(ch.fd(), &count, sizeof count) == sizeof count);
  ch.countFetched(2, 300);
  CHECK(ch.blocksFetched() == 2 && ch.bytesFetched() == 300);
  ch.close();
  CHECK(ch.closed() && !ch.post(r));
  CHECK(poll(&p, 1, 0) == 1);  // a listener wakes to see the channel closed
}

// engine_test --bench: CRC32C throughput over 64 KiB blocks (the checksum's cost on the
// commit path is bytes stored / this rate).
static void benchCrc() {
  std::vector<uint8_t> block(65536 + 4096);
  for (size_t i = 0; i < block.size(); ++i) block[i] = uint8_t(i * 131 + 7);
  for (int impl = 0; impl < 2; ++impl) {
    const int rounds = impl == 0 ? 20000 : 2000;
    uint32_t sink = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < rounds; ++r) {
      sink ^= impl == 0 ? crc32c(uint32_t(r), block.data(), block.size()) : crc32cPortable(uint32_t(r), block.data(), block.size());
    }
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    printf("crc32c %s: %.2f GB/s, %.1f us per 68 KiB block (sink %u)\n", impl == 0 ? crc32cImplementation() : "table",
           double(rounds) * block.size() / sec / 1e9, sec / rounds * 1e6, sink);
  }
}

// A format-3 store written before named segments (four sub-databases, log entries of an
// earlier encoding): a read-only open sees no segments and a pruned log; the first
// writable open adds `segments`, keeps the serial and marks the older log as pruned.
static void testStoreWithoutSegments() {
  g_ctx = "without segments";
  std::string dir = tempStore();
  {
    auto env = Env::acquire(dir, testOptions());
    CHECK(env->hasSegments());
    MDB_txn* txn = nullptr;
    CHECK(mdb_txn_begin(env->raw(), nullptr, 0, &txn) == 0);
    CHECK(mdb_drop(txn, env->segmentsDb(), 1) == 0);
    for (uint64_t serial = 1; serial <= 3; ++serial) {
      uint8_t key[8];
      keys::putU64be(key, serial);
      // the earlier encoding: u64le array id 1, u32le flags 1, u32le 0 block ranges
      uint8_t old[16] = {1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
      MDB_val k{8, key}, v{sizeof old, old};
      CHECK(mdb_put(txn, env->logDb(), &k, &v, 0) == 0);
    }
    CHECK(mdb_txn_commit(txn) == 0);
  }
  {
    EnvOptions readOnly = testOptions();
    readOnly.readOnly = true;
    auto env = Env::acquire(dir, readOnly);
    CHECK(!env->hasSegments());
    CHECK(env->currentSerial() == 3);
    Snapshot snap(env);
    std::vector<CommitEntry> commits;
    CHECK(!snap.commits(0, 10, &commits));  // entries it cannot read: pruned
    CHECK(snap.commits(3, 10, &commits) && commits.empty());
    ChangeSet changes;
    CHECK(!snap.changesSince(1, &changes));  // everything may have changed
  }
  {
    auto env = Env::acquire(dir, testOptions());
    CHECK(env->hasSegments());
    CHECK(env->currentSerial() == 3);
    Snapshot snap(env);
    std::vector<CommitEntry> commits;
    CHECK(!snap.commits(0, 10, &commits));
    CHECK(!snap.commits(2, 10, &commits));  // the mark stands for commit 3
    CHECK(snap.commits(3, 10, &commits) && commits.empty());
    MDB_txn* txn = nullptr;
    CHECK(mdb_txn_begin(env->raw(), nullptr, MDB_RDONLY, &txn) == 0);
    MDB_stat stat;
    CHECK(mdb_stat(txn, env->logDb(), &stat) == 0 && stat.ms_entries == 1);
    CHECK(mdb_stat(txn, env->segmentsDb(), &stat) == 0 && stat.ms_entries == 0);
    mdb_txn_abort(txn);
  }
  {
    auto env = Env::acquire(dir, testOptions());  // a second writable open changes nothing
    CHECK(env->hasSegments() && env->currentSerial() == 3);
  }
  removeStore(dir);
}

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc > 1 && std::string(argv[1]) == "--bench") {
    benchCrc();
    return 0;
  }
  CASE("", testCrc32c());
  CASE("", testChecksum());
  CASE("", testLocations());
  CASE("", testForeignValues());
  CASE("", testStoreWithoutSegments());
  CASE("", testPreadBatch(1));
  CASE("", testPreadBatch(4));
  CASE("", testStubs());
  CASE("", testFetchChannel());
  commitRuleCases();
  printSummary();
  return g_failed ? 1 : 0;
}
