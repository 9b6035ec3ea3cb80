// The engine's commit rules (block_commit.h) over the block store seam: the same cases run
// over the in-memory store (ram_block_store.h) and the LMDB store (lmdb_block_store.h),
// with arrays of this file (TestArray: bytes in a vector, dirty blocks in a set) in place
// of the view layer's. Called by engine_test's main.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "../engine/block_commit.h"
#include "../engine/env.h"
#include "../engine/error.h"
#include "../engine/keys.h"
#include "../engine/lmdb_block_store.h"
#include "../engine/ram_block_store.h"
#include "../engine/remote_apply.h"
#include "../engine/session_stats.h"
#include "harness.h"

using namespace txa;

namespace {

constexpr uint32_t kBlock = 64;   // bytes per block: small, so that rows cross blocks
constexpr uint64_t kRowBytes = 8;

// One array as one transaction sees it: the committed bytes of its snapshot, then the
// transaction's writes, appends and resizes.
class TestArray : public ArrayChanges {
 public:
  TestArray(std::string name, uint64_t id, std::vector<uint8_t> committed)
      : name_(std::move(name)), id_(id), committed_(committed), bytes_(std::move(committed)) {}

  uint64_t id() const override { return id_; }
  uint32_t blockBytes() const override { return kBlock; }
  uint64_t byteLength() const override { return bytes_.size(); }
  uint64_t committedLength() const override { return committed_.size(); }
  const std::string& name() const override { return name_; }
  bool hasChanges() override { return !dirty_.empty() || staleFrom_ != UINT64_MAX || bytes_.size() != committed_.size(); }
  bool appendOnly() override {
    return id_ && !belowWritten_ && staleFrom_ == UINT64_MAX && bytes_.size() > committed_.size();
  }
  void describeChanges(ChangeSet* out) override {
    for (uint64_t index : dirty_) out->addBlocks(id_, index, index);
    if (staleFrom_ != UINT64_MAX) out->addBlocks(id_, (staleFrom_ + kBlock - 1) / kBlock, keys::kToEnd);
  }
  void store(BlockWrite& write, uint64_t id, uint64_t serial, SessionStats* counters) override {
    if (staleFrom_ != UINT64_MAX) write.deleteBlocksFrom(id, (staleFrom_ + kBlock - 1) / kBlock);
    for (uint64_t index : dirty_) {
      const uint64_t start = index * kBlock;
      const size_t size = start >= bytes_.size() ? 0 : size_t(std::min<uint64_t>(kBlock, bytes_.size() - start));
      write.putBlock(id, index, kBlock, serial, bytes_.data() + start, size, counters);
    }
  }
  void copyUncommitted(uint64_t offset, uint64_t bytes, uint8_t* dst) override {
    memcpy(dst, bytes_.data() + offset, bytes);
  }

  void write(uint64_t offset, const std::vector<uint8_t>& data) {
    if (offset + data.size() > bytes_.size()) bytes_.resize(offset + data.size(), 0);
    std::copy(data.begin(), data.end(), bytes_.begin() + offset);
    if (offset < committed_.size()) belowWritten_ = true;
    for (uint64_t b = offset / kBlock; b <= (offset + data.size() - 1) / kBlock; ++b) dirty_.insert(b);
  }
  void append(const std::vector<uint8_t>& rows) { write(bytes_.size(), rows); }
  void resize(uint64_t length) {
    if (length < bytes_.size()) {
      staleFrom_ = std::min(staleFrom_, length);
      belowWritten_ = true;
      if (length % kBlock) dirty_.insert(length / kBlock);  // the cut block is stored again
      dirty_.erase(dirty_.lower_bound((length + kBlock - 1) / kBlock), dirty_.end());
    }
    bytes_.resize(length, 0);
  }

 private:
  std::string name_;
  uint64_t id_;
  std::vector<uint8_t> committed_, bytes_;
  std::set<uint64_t> dirty_;
  uint64_t staleFrom_ = UINT64_MAX;
  bool belowWritten_ = false;
};

// A transaction: a snapshot of the store, the arrays it changes and their record changes.
class Txn {
 public:
  explicit Txn(BlockStore& store) : store_(store), snapshot_(store.read()) {}

  // The array `name` as the snapshot has it (an empty new one if absent).
  std::shared_ptr<TestArray> open(const std::string& name) {
    std::string value;
    uint64_t id = 0, serial = 0, rows = 0;
    if (snapshot_->get(Table::kArrays, name, &value)) {
      auto header = keys::RecordHeader::read(reinterpret_cast<const uint8_t*>(value.data()));
      id = header.id, serial = header.serial, rows = header.rows;
    }
    std::vector<uint8_t> bytes(rows * kRowBytes, 0);
    std::vector<uint8_t> block;
    for (uint64_t index = 0; index * kBlock < bytes.size(); ++index) {
      if (!snapshot_->loadBlock(id, index, &block)) continue;
      std::copy(block.begin(), block.begin() + std::min<size_t>(block.size(), bytes.size() - index * kBlock),
                bytes.begin() + index * kBlock);
    }
    auto array = std::make_shared<TestArray>(name, id, bytes);
    arrays_.push_back(array);
    expected_.push_back(serial);
    return array;
  }
  // The record change of every array opened; `appendOnly` as TypeScript says it.
  CommitResult commit(bool appendOnly = false, std::vector<SegmentChange> segments = {}) {
    std::vector<RecordChange> records;
    for (size_t i = 0; i < arrays_.size(); ++i) {
      RecordChange change;
      change.name = arrays_[i]->name();
      change.expectedSerial = expected_[i];
      change.body = "body of " + change.name;
      change.rows = arrays_[i]->byteLength() / kRowBytes;
      change.rowBytes = kRowBytes;
      change.appendOnly = appendOnly;
      change.array = arrays_[i];
      records.push_back(std::move(change));
    }
    std::vector<MetaPut> meta;
    std::vector<std::shared_ptr<ArrayChanges>> arrays(arrays_.begin(), arrays_.end());
    return commitChanges(store_, CommitRequest{records, meta, segments, arrays, *snapshot_, true}, &stats);
  }
  SessionStats stats;

 private:
  BlockStore& store_;
  std::unique_ptr<BlockRead> snapshot_;
  std::vector<std::shared_ptr<TestArray>> arrays_;
  std::vector<uint64_t> expected_;
};

std::vector<uint8_t> rowsOf(uint8_t first, size_t rows) {
  std::vector<uint8_t> out(rows * kRowBytes);
  for (size_t i = 0; i < out.size(); ++i) out[i] = uint8_t(first + i / kRowBytes);
  return out;
}

// The committed bytes and rows of `name` in the newest snapshot.
std::vector<uint8_t> committed(BlockStore& store, const std::string& name) {
  Txn txn(store);
  auto array = txn.open(name);
  std::vector<uint8_t> out(array->byteLength());
  array->copyUncommitted(0, out.size(), out.data());
  return out;
}

uint64_t serialOf(BlockStore& store) { return store.read()->serial(); }

// ---------------------------------------------------------------------------------------

void testCreateAndRead(BlockStore& store) {
  Txn txn(store);
  auto a = txn.open("a");
  a->append(rowsOf(1, 20));  // 160 bytes: blocks 0-2
  CommitResult r = txn.commit();
  CHECK(r.serial == 1 && r.assignedIds.size() == 1 && r.assignedIds[0] == 1);
  CHECK(txn.stats.commits == 1 && txn.stats.blocksWritten == 3 && txn.stats.bytesWritten == 160);
  CHECK(committed(store, "a") == rowsOf(1, 20));
  auto read = store.read();
  std::string value;
  CHECK(read->get(Table::kArrays, "a", &value) && value.substr(keys::kRecordHeader) == "body of a");
  ChangeSet log;
  CHECK(read->changesSince(0, &log) && log.byArray().count(1) && log.byArray().at(1).recordChanged);
  CHECK(log.byArray().at(1).flags & keys::kLogCreated);
  // A second array takes the next id.
  Txn second(store);
  second.open("b")->append(rowsOf(9, 1));
  CHECK(second.commit().assignedIds[0] == 2);
}

void testBlockConflict(BlockStore& store) {
  Txn setup(store);
  setup.open("a")->append(rowsOf(1, 32));  // blocks 0-3
  setup.commit();
  Txn first(store), second(store);
  first.open("a")->write(70, {7});   // block 1
  second.open("a")->write(72, {8});  // block 1 too
  const uint64_t won = first.commit().serial;
  bool conflicted = false;
  try {
    second.commit();
  } catch (const ConflictError& e) {
    conflicted = e.facts().serial == won && e.facts().array == "a" && !e.facts().blocks.empty() &&
                 e.facts().blocks[0].first <= 1 && e.facts().blocks[0].second >= 1;
  }
  CHECK(conflicted);
  CHECK(second.stats.conflicts == 1 && second.stats.commits == 0 && second.stats.blocksWritten == 0);
  CHECK(serialOf(store) == won);  // nothing of the loser was published
  std::vector<uint8_t> want = rowsOf(1, 32);
  want[70] = 7;
  CHECK(committed(store, "a") == want);
}

void testRecordConflict(BlockStore& store) {
  Txn setup(store);
  setup.open("a")->append(rowsOf(1, 4));
  setup.commit();
  // Both change the record (resize is a record change): the second loses on metadata.
  Txn first(store), second(store);
  first.open("a")->resize(2 * kRowBytes);
  second.open("a")->resize(3 * kRowBytes);
  first.commit();
  bool metadata = false;
  try {
    second.commit();
  } catch (const ConflictError& e) {
    metadata = e.facts().metadata && e.facts().array == "a";
  }
  CHECK(metadata);
  CHECK(committed(store, "a") == rowsOf(1, 2));
}

void testDisjointBlocks(BlockStore& store) {
  Txn setup(store);
  setup.open("a")->append(rowsOf(1, 32));
  setup.open("b")->append(rowsOf(50, 4));
  setup.commit();
  // Different arrays, each unchanged in length: neither conflicts.
  Txn first(store), second(store);
  first.open("a")->write(0, {9});
  second.open("b")->write(0, {10});
  first.commit();
  second.commit();
  CHECK(committed(store, "a")[0] == 9 && committed(store, "b")[0] == 10);
}

void testAppendRebase(BlockStore& store) {
  Txn setup(store);
  setup.open("log")->append(rowsOf(1, 3));  // 24 bytes: the tail block is partly filled
  setup.commit();
  Txn first(store), second(store);
  first.open("log")->append(rowsOf(10, 5));
  second.open("log")->append(rowsOf(20, 6));
  first.commit(true);
  CommitResult r = second.commit(true);  // rebased at the newest end, not a conflict
  CHECK(second.stats.conflicts == 0);
  CHECK(r.rebasedLengths.size() == 1 && r.rebasedLengths.begin()->second == (3 + 5 + 6) * kRowBytes);
  std::vector<uint8_t> want = rowsOf(1, 3), b = rowsOf(10, 5), c = rowsOf(20, 6);
  want.insert(want.end(), b.begin(), b.end());
  want.insert(want.end(), c.begin(), c.end());
  CHECK(committed(store, "log") == want);
  auto read = store.read();
  ChangeSet last;
  CHECK(read->changesSince(read->serial() - 1, &last) && (last.byArray().begin()->second.flags & keys::kLogAppendOnly));
  // An append whose array another commit deleted meanwhile is a conflict, not a rebase.
  Txn appender(store), remover(store);
  appender.open("log")->append(rowsOf(30, 1));
  auto gone = remover.open("log");
  std::vector<RecordChange> records(1);
  records[0].name = "log";
  records[0].expectedSerial = read->serial();
  records[0].remove = true;
  records[0].array = gone;
  std::vector<MetaPut> meta;
  std::vector<SegmentChange> segments;
  std::vector<std::shared_ptr<ArrayChanges>> arrays{gone};
  auto snapshot = store.read();
  SessionStats stats;
  commitChanges(store, CommitRequest{records, meta, segments, arrays, *snapshot, true}, &stats);
  bool deleted = false;
  try {
    appender.commit(true);
  } catch (const ConflictError& e) {
    deleted = e.facts().metadata && std::string(e.what()).find("deleted") != std::string::npos;
  }
  CHECK(deleted);
  std::vector<uint8_t> block;
  CHECK(!store.read()->loadBlock(r.assignedIds[0], 0, &block));  // the blocks went with it
}

void testResizeDeletesAndConflicts(BlockStore& store) {
  Txn setup(store);
  setup.open("a")->append(rowsOf(1, 32));  // blocks 0-3
  CommitResult created = setup.commit();
  const uint64_t id = created.assignedIds[0];
  Txn shrink(store), writer(store);
  shrink.open("a")->resize(9 * kRowBytes);  // 72 bytes: block 1 cut, blocks 2-3 gone
  writer.open("a")->write(200, {5});         // block 3, past the cut
  writer.commit();
  bool conflicted = false;
  try {
    shrink.commit();  // the shrink deletes "block 2 to the end": it meets block 3
  } catch (const ConflictError& e) {
    conflicted = !e.facts().blocks.empty();
  }
  CHECK(conflicted);
  Txn again(store);
  again.open("a")->resize(9 * kRowBytes);
  again.commit();
  CHECK(committed(store, "a") == rowsOf(1, 9));
  std::vector<uint8_t> block;
  auto read = store.read();
  CHECK(read->loadBlock(id, 1, &block) && block.size() == 72 - kBlock);
  CHECK(!read->loadBlock(id, 2, &block) && !read->loadBlock(id, 3, &block));
}

void testSegments(BlockStore& store) {
  Txn txn(store);
  auto a = txn.open("a");
  a->append(rowsOf(1, 4));
  SegmentChange change;
  change.array = a;
  change.puts.push_back({"first", 0, 2});
  CommitResult r = txn.commit(false, {change});
  std::string range;
  CHECK(store.read()->get(Table::kSegments, keys::segmentNameKey(r.assignedIds[0], "first"), &range) && range.size() == 16);
  Txn again(store);
  auto b = again.open("a");
  b->append(rowsOf(5, 1));
  SegmentChange same;
  same.array = b;
  same.puts.push_back({"first", 4, 1});
  const uint64_t before = serialOf(store);
  bool exists = false;
  try {
    again.commit(false, {same});
  } catch (const Error& e) {
    exists = e.code() == ErrorCode::kExists;
  }
  CHECK(exists && serialOf(store) == before);
}

// ---- cases the RAM store's failure switches make possible ----

void testStoreFullRetries(RamBlockStore& store) {
  store.setRoom(2);
  Txn txn(store);
  txn.open("a")->append(rowsOf(1, 40));  // 320 bytes: 5 blocks, more than the room
  CommitResult r = txn.commit();
  CHECK(r.serial == 1 && store.roomMade() == 2 && store.settled() == 1 && store.abandoned() == 2);
  CHECK(txn.stats.blocksWritten == 5 && txn.stats.commits == 1);  // the failed attempts are not counted
  CHECK(committed(store, "a") == rowsOf(1, 40));
}

void testSettleFailureLeavesNothing(RamBlockStore& store) {
  Txn setup(store);
  setup.open("a")->append(rowsOf(1, 8));
  setup.commit();
  store.failNextSettle();
  Txn txn(store);
  txn.open("a")->write(0, {42});
  bool failed = false;
  try {
    txn.commit();
  } catch (const Error& e) {
    failed = e.code() == ErrorCode::kStorage;
  }
  CHECK(failed && txn.stats.commits == 0 && txn.stats.blocksWritten == 0);
  CHECK(serialOf(store) == 1 && committed(store, "a") == rowsOf(1, 8));
  Txn retry(store);  // the store takes the next write as if nothing happened
  retry.open("a")->write(0, {42});
  retry.commit();
  CHECK(committed(store, "a")[0] == 42);
}

void testAbandonedWrite(BlockStore& store) {
  {
    auto write = store.beginWrite();
    write->put(Table::kMeta, "k", "v");
    std::vector<uint8_t> data(10, 1);
    SessionStats stats;
    write->putBlock(7, 0, kBlock, 1, data.data(), data.size(), &stats);
    write->putLogEntry(1, ChangeSet().encode(0));
    std::string seen;
    CHECK(write->get(Table::kMeta, "k", &seen) && seen == "v");  // the write sees itself
    CHECK(store.read()->serial() == 0);                          // nobody else does
  }  // destroyed unsettled: abandoned
  auto read = store.read();
  std::string value;
  std::vector<uint8_t> block;
  CHECK(read->serial() == 0 && !read->get(Table::kMeta, "k", &value) && !read->loadBlock(7, 0, &block));
}


void testPrunedLogConflicts(RamBlockStore& store) {
  {
    auto write = store.beginWrite();  // a short log: 64 entries kept, pruned every 64 commits
    std::string keep(8, '\0');
    keys::putU64le(reinterpret_cast<uint8_t*>(&keep[0]), kLogKeepMin);
    write->put(Table::kMeta, "logRetention", keep);
    write->settle(true);
  }
  Txn setup(store);
  setup.open("a")->append(rowsOf(1, 4));
  setup.open("b")->append(rowsOf(1, 4));
  setup.commit();
  Txn old(store);
  old.open("a")->write(0, {3});
  for (int i = 0; i < 2 * int(kLogPruneEvery); ++i) {  // commits to another array
    Txn other(store);
    other.open("b")->write(0, {uint8_t(i)});
    other.commit();
  }
  ChangeSet since;
  CHECK(!store.read()->changesSince(1, &since));  // the log no longer reaches back
  bool refused = false;
  try {
    old.commit();  // it cannot know what happened since its snapshot: refused
  } catch (const ConflictError& e) {
    refused = std::string(e.what()).find("older than the commit log") != std::string::npos;
  }
  CHECK(refused);
  CHECK(committed(store, "a") == rowsOf(1, 4));
}

// --- a remote store's commits written into the store that caches it (remote_apply.h) ---

RemoteCommit remoteCommit(uint64_t serial, uint64_t id) {
  RemoteCommit c;
  c.serial = serial;
  c.timeMs = 1000 * serial;
  c.changes.addRecord(id);
  c.changes.at(id).name = "n";
  return c;
}

RemoteRecord remoteRecord(const std::string& name, uint64_t id, uint64_t serial, uint64_t rows, bool deleted = false) {
  RemoteRecord r;
  r.name = name;
  r.id = id;
  r.serial = serial;
  r.rows = rows;
  r.rowBytes = kRowBytes;
  r.body = "body of " + name;
  r.deleted = deleted;
  return r;
}

RemoteBlock remoteBlock(uint64_t id, uint64_t index, uint64_t serial, const std::string& data) {
  RemoteBlock b;
  b.arrayId = id;
  b.index = index;
  b.serial = serial;
  b.blockBytes = kBlock;
  b.data = data;
  return b;
}

RemoteSegment remoteSegment(uint64_t id, const std::string& name, uint64_t start, uint64_t stop, bool deleted = false) {
  return RemoteSegment{id, name, start, stop, deleted};
}

// The segments database as text: "id:n:name=start-stop" and "id:r:start:name=stop", in key order.
std::string segmentsOf(BlockStore& store) {
  auto read = store.read();
  std::vector<std::string> keys;
  read->listKeys(Table::kSegments, &keys);
  std::string out;
  for (const std::string& k : keys) {
    std::string value;
    read->get(Table::kSegments, k, &value);
    const auto* p = reinterpret_cast<const uint8_t*>(k.data());
    const auto* v = reinterpret_cast<const uint8_t*>(value.data());
    out += std::to_string(keys::getU64be(p)) + ":" + k[8] + ":";
    if (k[8] == keys::kSegmentByName) {
      out += k.substr(9) + "=" + std::to_string(keys::getU64le(v)) + "-" + std::to_string(keys::getU64le(v + 8)) + " ";
    } else {
      out += std::to_string(keys::getU64be(p + 9)) + ":" + k.substr(17) + "=" + std::to_string(keys::getU64le(v)) + " ";
    }
  }
  return out;
}

std::string blockOf(BlockStore& store, uint64_t id, uint64_t index) {
  std::vector<uint8_t> data;
  store.read()->loadBlock(id, index, &data);
  return std::string(data.begin(), data.end());
}

bool hasRecord(BlockStore& store, const std::string& name, uint64_t* rows = nullptr) {
  std::string value;
  if (!store.read()->get(Table::kArrays, name, &value)) return false;
  if (rows) *rows = keys::RecordHeader::read(reinterpret_cast<const uint8_t*>(value.data())).rows;
  return true;
}

void testRemoteBatches(BlockStore& store) {
  SessionStats counters;
  RemoteBatch first;
  first.head = 2;
  first.commits = {remoteCommit(1, 5), remoteCommit(2, 5)};
  first.records = {remoteRecord("a", 5, 2, 3)};
  first.blocks = {remoteBlock(5, 0, 2, "abc")};
  first.segments = {remoteSegment(5, "s", 0, 2)};
  first.remoteMeta = "stamp 2";
  CHECK(applyRemote(store, first, &counters) == 2);
  uint64_t rows = 0;
  CHECK(store.read()->serial() == 2);
  CHECK(hasRecord(store, "a", &rows) && rows == 3);
  CHECK(blockOf(store, 5, 0) == "abc");
  CHECK(segmentsOf(store) == "5:n:s=0-2 5:r:0:s=2 ");
  std::string meta;
  CHECK(store.read()->get(Table::kMeta, "remote", &meta) && meta == "stamp 2");
  ChangeSet since;
  CHECK(store.read()->changesSince(0, &since) && since.byArray().count(5) == 1);

  // A batch no newer than the store is skipped: another process caught it up first.
  RemoteBatch again = first;
  again.records = {remoteRecord("a", 5, 2, 99)};
  CHECK(applyRemote(store, again, &counters) == 2);
  CHECK(hasRecord(store, "a", &rows) && rows == 3);

  // A segment moved (deleted and taken again elsewhere), another added; then one deleted.
  RemoteBatch moved;
  moved.head = 3;
  moved.commits = {remoteCommit(3, 5)};
  moved.segments = {remoteSegment(5, "s", 4, 6), remoteSegment(5, "t", 6, 7)};
  CHECK(applyRemote(store, moved, &counters) == 3);
  CHECK(segmentsOf(store) == "5:n:s=4-6 5:n:t=6-7 5:r:4:s=6 5:r:6:t=7 ");
  RemoteBatch dropped;
  dropped.head = 4;
  dropped.commits = {remoteCommit(4, 5)};
  dropped.segments = {remoteSegment(5, "s", 4, 6, true)};
  CHECK(applyRemote(store, dropped, &counters) == 4);
  CHECK(segmentsOf(store) == "5:n:t=6-7 5:r:6:t=7 ");

  // A deleted array takes its blocks and segments along; commits the server no longer has
  // leave the pruned mark at the head, so that readers moving past it assume everything changed.
  RemoteBatch deleted;
  deleted.head = 6;
  deleted.records = {remoteRecord("a", 5, 6, 0, true), remoteRecord("c", 8, 6, 1)};
  deleted.blocks = {remoteBlock(8, 0, 6, "c0")};
  CHECK(applyRemote(store, deleted, &counters) == 6);
  CHECK(!hasRecord(store, "a"));
  CHECK(blockOf(store, 5, 0).empty());
  CHECK(segmentsOf(store).empty());
  CHECK(hasRecord(store, "c"));
  ChangeSet pruned;
  CHECK(!store.read()->changesSince(4, &pruned));

  // The whole remote state replaces everything the store held.
  RemoteBatch whole;
  whole.head = 9;
  whole.replaceAll = true;
  whole.commits = {remoteCommit(9, 7)};
  whole.records = {remoteRecord("b", 7, 9, 2)};
  whole.blocks = {remoteBlock(7, 1, 9, "b1")};
  whole.segments = {remoteSegment(7, "u", 0, 2)};
  CHECK(applyRemote(store, whole, &counters) == 9);
  CHECK(!hasRecord(store, "c"));
  CHECK(blockOf(store, 8, 0).empty());
  CHECK(hasRecord(store, "b") && blockOf(store, 7, 1) == "b1");
  CHECK(segmentsOf(store) == "7:n:u=0-2 7:r:0:u=2 ");
  CHECK(store.read()->serial() == 9);
}

// The durability the caller decides is asked inside the write, once per batch written.
void testRemoteBatchDurability(RamBlockStore& store) {
  SessionStats counters;
  int asked = 0;
  RemoteBatch batch;
  batch.head = 1;
  batch.commits = {remoteCommit(1, 5)};
  batch.records = {remoteRecord("a", 5, 1, 1)};
  CHECK(applyRemote(store, batch, &counters, [&] { ++asked; return false; }) == 1);
  CHECK(applyRemote(store, batch, &counters, [&] { ++asked; return false; }) == 1);
  CHECK(asked == 1);
  CHECK(store.settled() == 1);
}

// A store that runs out of room is made room in, and the batch written again whole.
void testRemoteBatchRoom(RamBlockStore& store) {
  store.setRoom(1);
  SessionStats counters;
  RemoteBatch batch;
  batch.head = 1;
  batch.commits = {remoteCommit(1, 5)};
  batch.records = {remoteRecord("a", 5, 1, 24)};
  batch.blocks = {remoteBlock(5, 0, 1, "x"), remoteBlock(5, 1, 1, "y"), remoteBlock(5, 2, 1, "z")};
  CHECK(applyRemote(store, batch, &counters) == 1);
  CHECK(store.roomMade() >= 1);
  CHECK(blockOf(store, 5, 0) == "x" && blockOf(store, 5, 2) == "z");
  CHECK(counters.blocksWritten == 3);
}

// ---------------------------------------------------------------------------------------

std::string tempDir() {
  char dir[] = "/tmp/txarray-commit-test-XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    exit(2);
  }
  return dir;
}

// Runs `test` over a fresh RAM store and a fresh LMDB store.
void overBoth(const char* name, const std::function<void(BlockStore&)>& test) {
  runCase(std::string("ram ") + name, [&] {
    g_ctx = std::string("ram ") + name;
    RamBlockStore ram;
    test(ram);
  });
  runCase(std::string("lmdb ") + name, [&] {
    g_ctx = std::string("lmdb ") + name;
    std::string dir = tempDir();
    {
      EnvOptions options;
      options.mapSize = uint64_t(1) << 26;
      options.maxReaders = 126;
      options.format = "engine-test";
      LmdbBlockStore lmdb(Env::acquire(dir, options));
      test(lmdb);
    }
    for (const char* f : {"data.mdb", "lock.mdb", "txarray.signal"}) unlink((dir + "/" + f).c_str());
    rmdir(dir.c_str());
  });
}

void overRam(const char* name, const std::function<void(RamBlockStore&)>& test) {
  runCase(std::string("ram ") + name, [&] {
    g_ctx = std::string("ram ") + name;
    RamBlockStore ram;
    test(ram);
  });
}

}  // namespace

void commitRuleCases() {
  overBoth("create and read", testCreateAndRead);
  overBoth("block conflict", testBlockConflict);
  overBoth("record conflict", testRecordConflict);
  overBoth("disjoint blocks", testDisjointBlocks);
  overBoth("append rebase", testAppendRebase);
  overBoth("resize deletes and conflicts", testResizeDeletesAndConflicts);
  overBoth("segments", testSegments);
  overBoth("abandoned write", testAbandonedWrite);
  overRam("store full retries", testStoreFullRetries);
  overRam("settle failure leaves nothing", testSettleFailureLeavesNothing);
  overRam("pruned log conflicts", testPrunedLogConflicts);
  overBoth("remote batches", testRemoteBatches);
  overRam("remote batch durability", testRemoteBatchDurability);
  overRam("remote batch room", testRemoteBatchRoom);
}
