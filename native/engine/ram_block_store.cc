#include "ram_block_store.h"

#include "crc32c.h"
#include "error.h"
#include "session_stats.h"

namespace txa {
namespace {

using State = RamBlockStore::State;

uint64_t latestOf(const State& s) { return s.log.empty() ? 0 : s.log.rbegin()->first; }

// Calls visit(serial, entry) for the entries after `after` while they are consecutive and
// visit() returns true; false if one is missing or visit() refused it.
template <class Visit>
bool walk(const State& s, uint64_t after, Visit visit) {
  uint64_t expected = after + 1;
  for (auto it = s.log.upper_bound(after); it != s.log.end(); ++it, ++expected) {
    if (it->first != expected) return false;
    if (!visit(it->first, it->second)) return false;
  }
  return true;
}

bool changesOf(const State& s, uint64_t after, ChangeSet* out) {
  return walk(s, after, [&](uint64_t, const std::string& entry) {
    const auto* p = reinterpret_cast<const uint8_t*>(entry.data());
    return !isPrunedMark(p, entry.size()) && out->decode(p, entry.size());
  });
}

bool loadOf(const State& s, uint64_t id, uint64_t index, std::vector<uint8_t>* out) {
  auto it = s.blocks.find({id, index});
  if (it == s.blocks.end()) return false;
  *out = it->second;
  return true;
}

class RamRead : public BlockRead {
 public:
  explicit RamRead(std::shared_ptr<const State> state) : state_(std::move(state)), serial_(latestOf(*state_)) {}
  uint64_t serial() const override { return serial_; }
  bool get(Table table, const std::string& key, std::string* value) override {
    const auto& t = state_->tables[int(table)];
    auto it = t.find(key);
    if (it == t.end()) return false;
    *value = it->second;
    return true;
  }
  void listKeys(Table table, std::vector<std::string>* out) override {
    for (const auto& [key, ignored] : state_->tables[int(table)]) out->push_back(key);
  }
  bool loadBlock(uint64_t id, uint64_t index, std::vector<uint8_t>* out) override {
    out->clear();
    return loadOf(*state_, id, index, out);
  }
  bool changesSince(uint64_t after, ChangeSet* out) override { return changesOf(*state_, after, out); }

 private:
  std::shared_ptr<const State> state_;
  uint64_t serial_;
};

}  // namespace

class RamWrite : public BlockWrite {
 public:
  explicit RamWrite(RamBlockStore& store)
      : store_(store), writeGuard_(store.writeLock_), state_(*store.current()) {
    std::lock_guard<std::mutex> guard(store_.lock_);
    room_ = store_.room_;
  }
  ~RamWrite() override { abandon(); }

  uint64_t latestSerial() override { return latestOf(live()); }
  bool changesSince(uint64_t after, ChangeSet* out) override { return changesOf(live(), after, out); }
  uint64_t firstConflictingCommit(uint64_t after, const ChangeSet& mine, ChangeSet::Overlap* out) override {
    uint64_t found = 0;
    walk(live(), after, [&](uint64_t serial, const std::string& entry) {
      ChangeSet one;
      if (!one.decode(reinterpret_cast<const uint8_t*>(entry.data()), entry.size())) return false;
      if (!one.conflictsWith(mine, out)) return true;
      found = serial;
      return false;
    });
    return found;
  }
  bool get(Table table, const std::string& key, std::string* value) override {
    const auto& t = live().tables[int(table)];
    auto it = t.find(key);
    if (it == t.end()) return false;
    *value = it->second;
    return true;
  }
  void readBlock(uint64_t id, uint64_t index, std::vector<uint8_t>* out) override {
    if (live().stubs.count({id, index})) {
      throw Error(ErrorCode::kRemoteUnavailable, "block " + std::to_string(index) + " of array #" + std::to_string(id) +
                                                     " is a stub: its bytes are on the remote server");
    }
    auto it = live().blocks.find({id, index});
    if (it != live().blocks.end()) out->insert(out->end(), it->second.begin(), it->second.end());
  }
  void put(Table table, const std::string& key, const std::string& value) override {
    live().tables[int(table)][key] = value;
  }
  bool insert(Table table, const std::string& key, const std::string& value) override {
    return live().tables[int(table)].emplace(key, value).second;
  }
  bool remove(Table table, const std::string& key) override { return live().tables[int(table)].erase(key) != 0; }
  void removePrefix(Table table, const std::string& prefix) override {
    auto& t = live().tables[int(table)];
    for (auto it = t.lower_bound(prefix); it != t.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
      it = t.erase(it);
    }
  }
  void clear(Table table) override { live().tables[int(table)].clear(); }
  void deleteAllBlocks() override {
    live().blocks.clear();
    live().stubs.clear();
  }
  void putStub(uint64_t id, uint64_t index, uint32_t blockBytes, uint64_t, uint64_t length) override {
    if (length == 0 || length > blockBytes) throw Error(ErrorCode::kArgument, "a stub's length must be 1..blockBytes");
    live().blocks.erase({id, index});
    live().stubs[{id, index}] = length;
  }
  void putBlock(uint64_t id, uint64_t index, uint32_t blockBytes, uint64_t, const uint8_t* bytes, size_t size,
                SessionStats* counters, DataChecksum* known) override {
    if (size > blockBytes) throw Error(ErrorCode::kArgument, "a block larger than its array's blocks");
    live().stubs.erase({id, index});
    while (size > 0 && bytes[size - 1] == 0) --size;
    DataChecksum unknown;
    if (!known) known = &unknown;
    if (size == 0) {
      live().blocks.erase({id, index});
      *known = DataChecksum{};
      return;
    }
    if (room_ && stored_ >= room_) throw StoreFullError();
    ++stored_;
    if (known->length > size) *known = DataChecksum{};
    const uint32_t crc = crc32c(known->crc, bytes + known->length, size - size_t(known->length));
    counters->checksumBytes += size - known->length;
    *known = DataChecksum{size, crc};
    live().blocks[{id, index}].assign(bytes, bytes + size);
    ++counters->blocksWritten;
    counters->bytesWritten += size;
    counters->valueBytesWritten += size;
  }
  void deleteBlocksFrom(uint64_t id, uint64_t first) override {
    auto& b = live().blocks;
    for (auto it = b.lower_bound({id, first}); it != b.end() && it->first.first == id;) it = b.erase(it);
    auto& stubs = live().stubs;
    for (auto it = stubs.lower_bound({id, first}); it != stubs.end() && it->first.first == id;) it = stubs.erase(it);
  }
  void putLogEntry(uint64_t serial, const std::string& entry) override { live().log[serial] = entry; }
  void pruneLog(uint64_t newest, uint64_t keep) override {
    if (newest <= keep || newest % kLogPruneEvery != 0) return;
    auto& log = live().log;
    log.erase(log.begin(), log.lower_bound(newest - keep + 1));
  }
  void settle(bool) override {
    State& state = live();
    open_ = false;
    std::lock_guard<std::mutex> guard(store_.lock_);
    if (store_.failSettle_) {
      store_.failSettle_ = false;
      ++store_.abandoned_;
      throw Error(ErrorCode::kStorage, "settle failed (as the test asked)");
    }
    store_.state_ = std::make_shared<const State>(std::move(state));
    ++store_.settled_;
  }
  void abandon() noexcept override {
    if (!open_) return;
    open_ = false;
    std::lock_guard<std::mutex> guard(store_.lock_);
    ++store_.abandoned_;
  }

 private:
  State& live() {
    if (!open_) throw Error(ErrorCode::kClosed, "the write is over");
    return state_;
  }

  RamBlockStore& store_;
  std::unique_lock<std::mutex> writeGuard_;
  State state_;  // a copy of the newest state, changed by this write
  bool open_ = true;
  uint64_t room_ = 0, stored_ = 0;
};

std::shared_ptr<const RamBlockStore::State> RamBlockStore::current() const {
  std::lock_guard<std::mutex> guard(lock_);
  return state_;
}

std::unique_ptr<BlockRead> RamBlockStore::read() { return std::make_unique<RamRead>(current()); }

std::unique_ptr<BlockWrite> RamBlockStore::beginWrite() { return std::make_unique<RamWrite>(*this); }

void RamBlockStore::makeRoom() {
  std::lock_guard<std::mutex> guard(lock_);
  room_ *= 2;
  ++roomMade_;
}

void RamBlockStore::setRoom(uint64_t blocks) {
  std::lock_guard<std::mutex> guard(lock_);
  room_ = blocks;
}

void RamBlockStore::failNextSettle() {
  std::lock_guard<std::mutex> guard(lock_);
  failSettle_ = true;
}

uint64_t RamBlockStore::settled() const {
  std::lock_guard<std::mutex> guard(lock_);
  return settled_;
}

uint64_t RamBlockStore::abandoned() const {
  std::lock_guard<std::mutex> guard(lock_);
  return abandoned_;
}

uint64_t RamBlockStore::roomMade() const {
  std::lock_guard<std::mutex> guard(lock_);
  return roomMade_;
}

}  // namespace txa
