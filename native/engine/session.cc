#include "session.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "error.h"
#include "keys.h"

namespace txa {
namespace {

uint64_t readU64Meta(MDB_txn* txn, MDB_dbi db, const char* key, uint64_t fallback) {
  MDB_val k{strlen(key), const_cast<char*>(key)}, v;
  int rc = mdb_get(txn, db, &k, &v);
  if (rc == MDB_NOTFOUND) return fallback;
  if (rc) throwLmdb(rc, "mdb_get(meta)");
  if (v.mv_size != 8) throw Error(ErrorCode::kFormat, std::string("meta '") + key + "' is damaged");
  return keys::getU64le(static_cast<uint8_t*>(v.mv_data));
}

void writeU64Meta(MDB_txn* txn, MDB_dbi db, const char* key, uint64_t value) {
  uint8_t bytes[8];
  keys::putU64le(bytes, value);
  MDB_val k{strlen(key), const_cast<char*>(key)}, v{8, bytes};
  int rc = mdb_put(txn, db, &k, &v, 0);
  if (rc) throwLmdb(rc, "mdb_put(meta)");
}

// Serial of the record stored under `name` in the write transaction, 0 if none.
uint64_t currentRecordSerial(MDB_txn* txn, MDB_dbi db, const std::string& name) {
  MDB_val k{name.size(), const_cast<char*>(name.data())}, v;
  int rc = mdb_get(txn, db, &k, &v);
  if (rc == MDB_NOTFOUND) return 0;
  if (rc) throwLmdb(rc, "mdb_get(arrays)");
  if (v.mv_size < keys::kRecordHeader) throw Error(ErrorCode::kFormat, "array record '" + name + "' is damaged");
  return keys::getU64le(static_cast<uint8_t*>(v.mv_data) + 8);
}

std::string rangesText(const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
  std::string out;
  for (const auto& [first, last] : ranges) {
    if (!out.empty()) out += ", ";
    out += std::to_string(first);
    if (last != first) out += "-" + std::to_string(last);
  }
  return out;
}

std::string commitText(uint64_t serial) {
  return serial ? "commit " + std::to_string(serial) : std::string("another commit");
}

class TxnGuard {
 public:
  explicit TxnGuard(MDB_txn* txn) : txn_(txn) {}
  ~TxnGuard() { if (txn_) mdb_txn_abort(txn_); }
  MDB_txn* get() const { return txn_; }
  int commit() {
    MDB_txn* txn = txn_;
    txn_ = nullptr;
    return mdb_txn_commit(txn);  // frees txn whatever the outcome
  }

 private:
  MDB_txn* txn_;
};

}  // namespace

Session::Session(std::shared_ptr<Env> env, uint64_t mappedBlocks)
    : env_(std::move(env)), budget_(std::make_shared<vmem::Budget>(mappedBlocks)) {
  snapshot_ = std::make_shared<Snapshot>(env_);
  holder_ = std::make_shared<SnapshotHolder>(snapshot_);
}

void Session::closeArrays() {
  std::vector<std::shared_ptr<TrackedArray>> live;
  liveArrays(&live);
  for (const auto& array : live) array->close();
  arrays_.clear();
}

void Session::adopt(std::shared_ptr<Snapshot> snapshot) {
  snapshot_ = snapshot;
  holder_->set(std::move(snapshot));
}

bool Session::getRecord(const std::string& name, Record* out) {
  std::string raw;
  if (!snapshot_->get(env_->arraysDb(), name, &raw)) return false;
  if (raw.size() < keys::kRecordHeader) throw Error(ErrorCode::kFormat, "array record '" + name + "' is damaged");
  auto header = keys::RecordHeader::read(reinterpret_cast<const uint8_t*>(raw.data()));
  out->id = header.id;
  out->serial = header.serial;
  out->rows = header.rows;
  out->rowBytes = header.rowBytes;
  out->body = raw.substr(keys::kRecordHeader);
  return true;
}

std::vector<std::string> Session::listRecords() {
  std::vector<std::string> names;
  snapshot_->listKeys(env_->arraysDb(), &names);
  return names;
}

bool Session::getMeta(const std::string& key, std::string* out) {
  return snapshot_->get(env_->metaDb(), key, out);
}

std::shared_ptr<TrackedArray> Session::track(uint64_t id, uint32_t blockBytes, uint64_t byteLength,
                                             const std::string& name) {
  auto array = std::make_shared<TrackedArray>(holder_, id, blockBytes, byteLength, budget_, stats_, name);
  // Forget arrays the JavaScript side has released, so the list stays short.
  std::vector<std::weak_ptr<TrackedArray>> kept;
  for (auto& weak : arrays_) if (!weak.expired()) kept.push_back(weak);
  kept.push_back(array);
  arrays_.swap(kept);
  return array;
}

void Session::liveArrays(std::vector<std::shared_ptr<TrackedArray>>* out) {
  for (auto& weak : arrays_) if (auto array = weak.lock()) out->push_back(array);
}

bool Session::findArray(uint64_t id, const std::vector<RecordChange>& records, std::string* name,
                        uint64_t* rowBytes) {
  for (const auto& change : records) {
    if (change.array && change.array->id() == id) {
      *name = change.name;
      *rowBytes = change.rowBytes;
      return true;
    }
  }
  std::vector<std::string> names;
  snapshot_->listKeys(env_->arraysDb(), &names);
  for (const auto& candidate : names) {
    Record record;
    if (getRecord(candidate, &record) && record.id == id) {
      *name = candidate;
      *rowBytes = record.rowBytes;
      return true;
    }
  }
  return false;
}

ConflictError Session::conflictError(const ChangeSet::Overlap& overlap, uint64_t serial,
                                     const std::vector<RecordChange>& records,
                                     const std::vector<std::shared_ptr<TrackedArray>>& live) {
  ConflictFacts facts;
  facts.serial = serial;
  facts.metadata = overlap.record;
  facts.blocks = overlap.blocks;
  uint64_t rowBytes = 0;
  if (!findArray(overlap.arrayId, records, &facts.array, &rowBytes)) facts.array.clear();
  std::shared_ptr<TrackedArray> array;
  for (const auto& candidate : live) {
    if (candidate->id() == overlap.arrayId) array = candidate;
  }
  if (array && rowBytes) {
    // Rows of axis 0 that meet the blocks, within the longer of the two lengths we know.
    const uint64_t blockBytes = array->blockBytes();
    const uint64_t length = std::max(array->byteLength(), array->committedLength());
    const uint64_t rows = (length + rowBytes - 1) / rowBytes;
    for (const auto& [first, last] : overlap.blocks) {
      uint64_t firstRow = first * blockBytes / rowBytes;
      uint64_t lastRow = std::min(((last + 1) * blockBytes - 1) / rowBytes, rows ? rows - 1 : 0);
      if (rows && firstRow <= lastRow) facts.rows.emplace_back(firstRow, lastRow);
    }
  }
  std::string what = facts.array.empty() ? std::string("an array") : "array '" + facts.array + "'";
  std::string message = what + ": " + commitText(serial);
  if (overlap.record) {
    message += " changed its shape, attributes or existence, as this transaction does";
  } else if (!facts.rows.empty()) {
    message += " changed rows " + rangesText(facts.rows) + " (blocks " + rangesText(facts.blocks) +
               "), which this transaction writes too";
  } else {
    message += " changed blocks " + rangesText(facts.blocks) + ", which this transaction writes too";
  }
  return ConflictError(message + "; abort and retry", std::move(facts));
}

ConflictError Session::recordConflict(MDB_txn* txn, const std::string& name, uint64_t id,
                                      const char* what, uint64_t serial) {
  if (serial == 0 && id != 0) {  // find the commit that changed the record
    ChangeSet record;
    record.addRecord(id);
    ChangeSet::Overlap ignored;
    serial = firstConflictingCommit(txn, env_->logDb(), snapshot_->serial(), record, &ignored);
  }
  ConflictFacts facts;
  facts.array = name;
  facts.serial = serial;
  facts.metadata = true;
  return ConflictError("array '" + name + "' was " + what + " by " + commitText(serial) +
                       "; abort and retry", std::move(facts));
}

void Session::writeAll(MDB_txn* txn, const std::vector<RecordChange>& records,
                       const std::vector<MetaPut>& meta, const std::vector<std::shared_ptr<TrackedArray>>& live,
                       uint64_t serial, const std::set<uint64_t>& rebase, std::map<uint64_t, uint64_t>* rebasedLengths,
                       Outcome* outcome) {
  ChangeSet logEntry;
  std::set<const TrackedArray*> removed;  // and rebased: their blocks are written already
  uint64_t nextId = 0;
  outcome->assignedIds.assign(records.size(), 0);

  for (size_t i = 0; i < records.size(); ++i) {
    const RecordChange& change = records[i];
    if (change.array && change.array->id() && rebase.count(change.array->id())) {
      outcome->assignedIds[i] = change.array->id();
      (*rebasedLengths)[change.array->id()] = rebaseAppend(txn, change, serial, &logEntry);
      removed.insert(change.array.get());
      continue;
    }
    uint64_t current = currentRecordSerial(txn, env_->arraysDb(), change.name);
    if (current != change.expectedSerial) {
      const uint64_t id = change.array ? change.array->id() : 0;
      throw recordConflict(txn, change.name, id,
                           change.expectedSerial == 0 ? "created" : current == 0 ? "deleted" : "changed",
                           current);
    }
    MDB_val k{change.name.size(), const_cast<char*>(change.name.data())};
    uint64_t id = change.array ? change.array->id() : 0;
    if (change.remove) {
      int rc = mdb_del(txn, env_->arraysDb(), &k, nullptr);
      if (rc) throwLmdb(rc, "mdb_del(arrays)");
      if (id) {
        deleteBlocksFrom(txn, env_->blocksDb(), id, 0);
        logEntry.addRecord(id);
        logEntry.addBlocks(id, 0, keys::kToEnd);
      }
      if (change.array) removed.insert(change.array.get());
      continue;
    }
    if (id == 0) {  // a new array: take the next id
      if (nextId == 0) nextId = readU64Meta(txn, env_->metaDb(), "nextId", 1);
      id = nextId++;
    }
    outcome->assignedIds[i] = id;
    std::string value(keys::kRecordHeader, '\0');
    keys::RecordHeader{id, serial, change.rows, change.rowBytes}.write(reinterpret_cast<uint8_t*>(&value[0]));
    value += change.body;
    MDB_val v{value.size(), &value[0]};
    int rc = mdb_put(txn, env_->arraysDb(), &k, &v, 0);
    if (rc) throwLmdb(rc, "mdb_put(arrays)");
    logEntry.addRecord(id);
  }
  if (nextId) writeU64Meta(txn, env_->metaDb(), "nextId", nextId);

  for (const MetaPut& put : meta) {
    MDB_val k{put.key.size(), const_cast<char*>(put.key.data())};
    MDB_val v{put.value.size(), const_cast<char*>(put.value.data())};
    int rc = mdb_put(txn, env_->metaDb(), &k, &v, 0);
    if (rc) throwLmdb(rc, "mdb_put(meta)");
  }

  // Blocks of every array this session changed. A new array's id comes from its record.
  for (const auto& array : live) {
    if (!array->hasChanges() || removed.count(array.get())) continue;
    uint64_t id = array->id();
    for (size_t i = 0; id == 0 && i < records.size(); ++i) {
      if (records[i].array == array) id = outcome->assignedIds[i];
    }
    if (id == 0) continue;  // created and dropped in this transaction: nothing to keep
    ChangeSet blocks;
    array->describeChanges(&blocks);
    for (const auto& [ignoredId, change] : blocks.byArray()) {
      for (const auto& [first, last] : change.blocks) logEntry.addBlocks(id, first, last);
    }
    array->store(txn, BlockStore{env_->blocksDb(), env_->pageSize()}, id, serial, stats_.get());
  }

  std::string entry = logEntry.encode();
  uint8_t key[8];
  keys::putU64be(key, serial);
  MDB_val k{8, key}, v{entry.size(), &entry[0]};
  int rc = mdb_put(txn, env_->logDb(), &k, &v, 0);
  if (rc) throwLmdb(rc, "mdb_put(log)");
  pruneLog(txn, env_->logDb(), serial);
}

uint64_t Session::rebaseAppend(MDB_txn* txn, const RecordChange& change, uint64_t serial, ChangeSet* log) {
  TrackedArray& array = *change.array;
  const uint64_t id = array.id();
  MDB_val k{change.name.size(), const_cast<char*>(change.name.data())}, v;
  int rc = mdb_get(txn, env_->arraysDb(), &k, &v);
  if (rc == MDB_NOTFOUND) throw recordConflict(txn, change.name, id, "deleted", 0);
  if (rc) throwLmdb(rc, "mdb_get(arrays)");
  if (v.mv_size < keys::kRecordHeader) throw Error(ErrorCode::kFormat, "array record '" + change.name + "' is damaged");
  keys::RecordHeader latest = keys::RecordHeader::read(static_cast<uint8_t*>(v.mv_data));
  if (latest.id != id || latest.rowBytes != change.rowBytes) {
    throw recordConflict(txn, change.name, id, "replaced", latest.id != id ? latest.serial : 0);
  }
  // Keep the newest body (attributes another commit set survive); only the length moves.
  std::string value(static_cast<const char*>(v.mv_data), v.mv_size);

  // Our rows [from, from + n) of the region go to [start, start + n) of the newest array,
  // block by block; the first block keeps the newest committed bytes before `start`.
  const uint64_t from = array.committedLength();
  const uint64_t n = array.byteLength() - from;
  const uint64_t start = latest.rows * latest.rowBytes;
  const uint64_t blockBytes = array.blockBytes();
  const BlockStore blocks{env_->blocksDb(), env_->pageSize()};
  std::vector<uint8_t> block;
  for (uint64_t at = start; at < start + n;) {
    uint64_t index = at / blockBytes, within = at % blockBytes;
    uint64_t take = std::min(blockBytes - within, start + n - at);
    block.clear();
    if (within) readBlockInto(txn, blocks.db, id, index, &block);
    block.resize(blockBytes, 0);
    std::fill(block.begin() + within, block.end(), 0);
    array.copyUncommitted(from + (at - start), take, block.data() + within);
    putBlock(txn, blocks, id, index, uint32_t(blockBytes), serial, block.data(), size_t(within + take), stats_.get());
    log->addBlocks(id, index, index);
    at += take;
  }
  keys::RecordHeader{id, serial, latest.rows + n / latest.rowBytes, latest.rowBytes}
      .write(reinterpret_cast<uint8_t*>(&value[0]));
  MDB_val rv{value.size(), &value[0]};
  rc = mdb_put(txn, env_->arraysDb(), &k, &rv, 0);
  if (rc) throwLmdb(rc, "mdb_put(arrays)");
  log->addRecord(id);
  return start + n;
}

Session::Outcome Session::commit(const std::vector<RecordChange>& records,
                                 const std::vector<MetaPut>& meta, bool sync) {
  std::vector<std::shared_ptr<TrackedArray>> live;
  liveArrays(&live);
  // Arrays this transaction only appended to: nothing another commit did to them
  // conflicts (short of deleting them); they are left out of the conflict check.
  std::set<uint64_t> appendOnly;
  for (const auto& change : records) {
    if (change.appendOnly && !change.remove && change.array && change.array->id() &&
        change.array->appendOnly()) {
      appendOnly.insert(change.array->id());
    }
  }
  ChangeSet mine;
  for (const auto& change : records) {
    if (change.array && change.array->id() && !appendOnly.count(change.array->id())) {
      mine.addRecord(change.array->id());
      if (change.remove) mine.addBlocks(change.array->id(), 0, keys::kToEnd);
    }
  }
  for (const auto& array : live) {
    if (array->id() && !appendOnly.count(array->id()) && array->hasChanges()) array->describeChanges(&mine);
  }
  std::set<uint64_t> rebase;                    // append-only arrays others changed meanwhile
  std::map<uint64_t, uint64_t> rebasedLengths;  // their new byte lengths

  Outcome outcome;
  const uint64_t before = snapshot_->serial();
  std::lock_guard<std::mutex> writeGuard(env_->writeLock);
  // Commits are where pinned snapshots cost (pages they pin cannot be reused), so free
  // the slots of crashed readers here: a few fcntl() calls, one per other process.
  env_->clearStaleReaders();
  for (;;) {
    SessionStats counted = *stats_;  // restored if this attempt is retried or fails
    try {
      // Held through the write transaction: LMDB must not be re-mapped under it (by a
      // growMap or adoptMapSize of another thread). Released before growMap below.
      std::shared_lock<std::shared_mutex> mapGuard(env_->mapLock, std::defer_lock);
      TxnGuard txn(env_->begin(0, &mapGuard));  // aborted by unwinding unless committed
      uint64_t latest = latestSerial(txn.get(), env_->logDb());
      if (latest != before) {
        if (!readChangesSince(txn.get(), env_->logDb(), before, &outcome.othersChanged)) {
          throw ConflictError("this snapshot is older than the commit log reaches (more than " +
                              std::to_string(kLogKeep) + " commits since); abort and retry", ConflictFacts());
        }
        ChangeSet::Overlap overlap;
        if (outcome.othersChanged.conflictsWith(mine, &overlap)) {
          // The first commit to conflict is the winner; its own overlap is the one to report.
          uint64_t winner = firstConflictingCommit(txn.get(), env_->logDb(), before, mine, &overlap);
          throw conflictError(overlap, winner, records, live);
        }
      }
      rebase.clear();
      rebasedLengths.clear();
      for (uint64_t id : appendOnly) {
        if (outcome.othersChanged.byArray().count(id)) rebase.insert(id);
      }
      outcome.serial = latest + 1;
      writeAll(txn.get(), records, meta, live, outcome.serial, rebase, &rebasedLengths, &outcome);
      // LMDB 0.9 has no per-transaction NOSYNC; toggling the environment flag is safe
      // because every commit of this process holds writeLock.
      int rc = mdb_env_set_flags(env_->raw(), MDB_NOSYNC, sync ? 0 : 1);
      if (rc) throwLmdb(rc, "mdb_env_set_flags");
      rc = txn.commit();
      // A write cut short by a full disk comes back as EIO.
      if (rc == EIO && files::noSpaceLeft(env_->path())) rc = ENOSPC;
      if (rc) throwLmdb(rc, "mdb_txn_commit");
      files::keepSlack(env_->raw());
      env_->signalCommit();
      break;
    } catch (const MapFullError&) {
      *stats_ = counted;
      outcome = Outcome();
      env_->growMap();  // the write transaction is gone: the map may be re-mapped now
    } catch (const Error& e) {
      *stats_ = counted;
      if (e.code() == ErrorCode::kConflict) ++stats_->conflicts;
      throw;
    }
  }
  ++stats_->commits;

  // Move to the newest snapshot; what others committed after us is stale here too. The
  // commit is durable by now, so nothing below may throw: a failure to begin the new
  // snapshot (reader slots full...) leaves the handle on its old one, flagged stale.
  bool moved = true;
  try {
    adopt(std::make_shared<Snapshot>(env_));
    if (snapshot_->serial() > outcome.serial &&
        !snapshot_->changesSince(outcome.serial, &outcome.othersChanged)) {
      outcome.othersUnknown = true;
    }
  } catch (const std::exception& e) {
    moved = false;
    outcome.stale = e.what();
  }
  for (const auto& array : live) {
    uint64_t assigned = 0;
    for (size_t i = 0; i < records.size(); ++i) {
      if (records[i].array == array) assigned = outcome.assignedIds[i];
    }
    if (array->id() == 0 && assigned == 0) continue;  // created and dropped: nothing kept
    auto rebased = rebasedLengths.find(array->id());
    if (array->id() && rebased != rebasedLengths.end()) {
      // Our appended rows now live elsewhere: reload everything of this array.
      array->afterRebase(rebased->second);
      outcome.othersChanged.addRecord(array->id());  // the caller reloads the record
    } else if (!moved) {
      array->afterCommitUnmoved(array->id() ? 0 : assigned);
    } else {
      array->afterCommit(array->id() ? 0 : assigned, outcome.othersChanged, outcome.othersUnknown);
    }
  }
  return outcome;
}

Session::Outcome Session::refresh() {
  Outcome outcome;
  const uint64_t before = snapshot_->serial();
  std::vector<std::shared_ptr<TrackedArray>> live;
  liveArrays(&live);
  for (const auto& array : live) array->discardChanges();  // under the old snapshot
  adopt(std::make_shared<Snapshot>(env_));
  outcome.serial = snapshot_->serial();
  if (outcome.serial != before && !snapshot_->changesSince(before, &outcome.othersChanged)) {
    outcome.othersUnknown = true;
  }
  for (const auto& array : live) array->afterRefresh(outcome.othersChanged, outcome.othersUnknown);
  return outcome;
}

}  // namespace txa
