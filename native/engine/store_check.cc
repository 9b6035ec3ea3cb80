#include "store_check.h"

#include <cstring>
#include <set>

#include "block_format.h"
#include "change_log.h"
#include "error.h"
#include "keys.h"

namespace txa {
namespace {

struct ArrayInfo {
  std::string name;
  uint64_t serial = 0;
  uint64_t byteLength = 0;
  uint32_t blockBytes = 0;  // 0: unknown
};

// A read-only cursor over one database, closed on scope exit.
class Cursor {
 public:
  Cursor(MDB_txn* txn, MDB_dbi db) {
    int rc = mdb_cursor_open(txn, db, &cursor_);
    if (rc) throwLmdb(rc, "mdb_cursor_open");
  }
  ~Cursor() { mdb_cursor_close(cursor_); }
  // Steps to the first (first=true) or next entry; false at the end.
  bool next(MDB_val* k, MDB_val* v, bool first) {
    int rc = mdb_cursor_get(cursor_, k, v, first ? MDB_FIRST : MDB_NEXT);
    if (rc == MDB_NOTFOUND) return false;
    if (rc) throwLmdb(rc, "mdb_cursor_get");
    return true;
  }

 private:
  MDB_cursor* cursor_ = nullptr;
};

class Checker {
 public:
  Checker(Snapshot& snap, MDB_txn* txn, const std::map<std::string, uint32_t>& blockBytes)
      : snap_(snap), env_(snap.env()), txn_(txn), blockBytesByName_(blockBytes) {}

  CheckReport run() {
    readNextId();
    readLog();
    readRecords();
    readBlocks();
    crossCheckRecordsWithLog();
    return std::move(report_);
  }

 private:
  void problem(const std::string& array, int64_t block, const char* kind, const std::string& message) {
    report_.problems.push_back(CheckProblem{array, block, kind, message});
  }
  std::string arrayName(uint64_t id) const {
    auto it = arrays_.find(id);
    return it != arrays_.end() ? it->second.name : "#" + std::to_string(id);
  }

  void readNextId() {
    MDB_val k{6, const_cast<char*>("nextId")}, v;
    int rc = mdb_get(txn_, env_.metaDb(), &k, &v);
    if (rc == MDB_NOTFOUND) return;
    if (rc) throwLmdb(rc, "mdb_get(meta)");
    if (v.mv_size != 8) {
      problem("", -1, "meta", "meta 'nextId' is not a u64");
      return;
    }
    nextId_ = keys::getU64le(static_cast<const uint8_t*>(v.mv_data));
  }

  void readLog() {
    if (!env_.hasSegments()) return;  // entries of an earlier encoding: nothing to check against
    Cursor cursor(txn_, env_.logDb());
    MDB_val k, v;
    uint64_t previous = 0;
    for (bool first = true; cursor.next(&k, &v, first); first = false) {
      if (k.mv_size != 8) {
        problem("", -1, "log", "a commit log key is not a serial");
        continue;
      }
      uint64_t serial = keys::getU64be(static_cast<const uint8_t*>(k.mv_data));
      if (previous && serial != previous + 1) {
        problem("", -1, "log", "commit log entries " + std::to_string(previous) + " and " + std::to_string(serial) +
                                   " are not consecutive");
      }
      previous = serial;
      if (isPrunedMark(static_cast<const uint8_t*>(v.mv_data), v.mv_size)) continue;
      if (!oldestLog_) oldestLog_ = serial;
      ChangeSet entry;
      if (!entry.decode(static_cast<const uint8_t*>(v.mv_data), v.mv_size)) {
        problem("", -1, "log", "commit log entry " + std::to_string(serial) + " cannot be decoded");
        continue;
      }
      for (const auto& [id, change] : entry.byArray()) {
        if (nextId_ && id >= nextId_) {
          problem("#" + std::to_string(id), -1, "log",
                  "commit log entry " + std::to_string(serial) + " names an array id never assigned");
        }
      }
      log_.emplace(serial, std::move(entry));
    }
  }

  void readRecords() {
    Cursor cursor(txn_, env_.arraysDb());
    MDB_val k, v;
    for (bool first = true; cursor.next(&k, &v, first); first = false) {
      std::string name(static_cast<const char*>(k.mv_data), k.mv_size);
      ++report_.arrays;
      if (v.mv_size < keys::kRecordHeader) {
        problem(name, -1, "record", "the array record is shorter than its header");
        continue;
      }
      keys::RecordHeader h = keys::RecordHeader::read(static_cast<const uint8_t*>(v.mv_data));
      if (h.id == 0 || (nextId_ && h.id >= nextId_)) {
        problem(name, -1, "record", "the array record has id " + std::to_string(h.id) + ", never assigned");
      }
      if (h.serial > snap_.serial()) {
        problem(name, -1, "record", "the array record claims a commit newer than the store's last");
      }
      if (h.rowBytes && h.rows > UINT64_MAX / h.rowBytes) {
        problem(name, -1, "record", "the array record's length overflows");
        continue;
      }
      if (arrays_.count(h.id)) {
        problem(name, -1, "record", "the array record shares id " + std::to_string(h.id) + " with '" +
                                        arrays_[h.id].name + "'");
        continue;
      }
      ArrayInfo info{name, h.serial, h.rows * h.rowBytes, 0};
      auto bb = blockBytesByName_.find(name);
      if (bb != blockBytesByName_.end()) info.blockBytes = bb->second;
      arrays_.emplace(h.id, info);
    }
  }

  void readBlocks() {
    const size_t pageSize = env_.pageSize();
    Cursor cursor(txn_, env_.blocksDb());
    MDB_val k, v;
    std::vector<uint8_t> scratch;
    for (bool first = true; cursor.next(&k, &v, first); first = false) {
      ++report_.blocks;
      if (k.mv_size != 16) {
        problem("", -1, "block-header", "a block key is not an array id and index");
        continue;
      }
      const uint64_t id = keys::getU64be(static_cast<const uint8_t*>(k.mv_data));
      const uint64_t index = keys::getU64be(static_cast<const uint8_t*>(k.mv_data) + 8);
      const std::string name = arrayName(id);
      const int64_t block = int64_t(index);
      const uint8_t* value = static_cast<const uint8_t*>(v.mv_data);
      blockfmt::Header h;
      blockfmt::Problem headerProblem = blockfmt::readHeader(value, v.mv_size, &h);
      const bool stub = headerProblem == blockfmt::Problem::kOnServer;
      if (headerProblem != blockfmt::Problem::kNone && !stub) {
        problem(name, block, "block-header", blockfmt::describe(headerProblem));
        continue;
      }
      if (stub) ++report_.onServer;
      else report_.bytes += h.dataLength;
      auto array = arrays_.find(id);
      if (array == arrays_.end()) {
        problem(name, block, "orphan", "a block of an array no record describes (deleted or unknown)");
      }
      if (h.arrayId != id || h.blockIndex != index) {
        problem(name, block, "misplaced", "the block header says array #" + std::to_string(h.arrayId) + " block " +
                                              std::to_string(h.blockIndex));
      }
      const uint64_t stored = h.storedIn(v.mv_size);
      BlockLocation location;
      if (!stub && (h.dataOffset != blockfmt::prefixBytes(pageSize) || stored % pageSize != 0 ||
                    !snap_.locate(v, &location) || !location.mappable)) {
        problem(name, block, "layout", "the block's data is not page-aligned in the data file");
      }
      if (array != arrays_.end()) {
        const ArrayInfo& info = array->second;
        if (info.blockBytes && h.blockBytes != info.blockBytes) {
          problem(name, block, "layout", "the block header says blocks of " + std::to_string(h.blockBytes) +
                                             " bytes, the record " + std::to_string(info.blockBytes));
        }
        if (info.blockBytes && index >= (info.byteLength + info.blockBytes - 1) / info.blockBytes) {
          problem(name, block, "beyond-end", "the block lies past the array's end");
        }
      }
      // A stub's checksum covers its header alone (stored is 0).
      if (!blockfmt::checksumMatches(value, h, value + h.dataOffset, stored)) {
        problem(name, block, "checksum", blockfmt::describe(blockfmt::Problem::kChecksum));
      }
      if (h.serial > snap_.serial()) {
        problem(name, block, "log", "the block claims a commit newer than the store's last");
      } else if (oldestLog_ && h.serial >= oldestLog_) {
        if (!logHasBlock(h.serial, id, index)) {
          problem(name, block, "log", "the commit that wrote the block (" + std::to_string(h.serial) +
                                          ") does not list it in the commit log");
        }
      }
    }
  }

  bool logHasBlock(uint64_t serial, uint64_t id, uint64_t index) const {
    auto entry = log_.find(serial);
    if (entry == log_.end()) return false;
    auto change = entry->second.byArray().find(id);
    if (change == entry->second.byArray().end()) return false;
    for (const auto& [first, last] : change->second.blocks) {
      if (index >= first && index <= last) return true;
    }
    return false;
  }

  void crossCheckRecordsWithLog() {
    for (const auto& [id, info] : arrays_) {
      if (!oldestLog_ || info.serial < oldestLog_) continue;  // pruned from the log
      auto entry = log_.find(info.serial);
      bool listed = false;
      if (entry != log_.end()) {
        auto change = entry->second.byArray().find(id);
        listed = change != entry->second.byArray().end() && change->second.recordChanged;
      }
      if (!listed) {
        problem(info.name, -1, "log", "the commit that last changed the record (" + std::to_string(info.serial) +
                                          ") does not list it in the commit log");
      }
    }
  }

  Snapshot& snap_;
  Env& env_;
  MDB_txn* txn_;
  const std::map<std::string, uint32_t>& blockBytesByName_;
  CheckReport report_;
  uint64_t nextId_ = 0;     // 0: no meta record (no array was ever created)
  uint64_t oldestLog_ = 0;  // 0: empty log
  std::map<uint64_t, ChangeSet> log_;
  std::map<uint64_t, ArrayInfo> arrays_;
};

}  // namespace

CheckReport checkStore(Snapshot& snapshot, const std::map<std::string, uint32_t>& blockBytesByName) {
  return snapshot.withTxn([&](MDB_txn* txn) { return Checker(snapshot, txn, blockBytesByName).run(); });
}

}  // namespace txa
