#include "session.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>

#include "error.h"
#include "txn_guard.h"
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

// Header of the record stored under `name` in the write transaction; false if none.
bool currentRecord(MDB_txn* txn, MDB_dbi db, const std::string& name, keys::RecordHeader* out) {
  MDB_val k{name.size(), const_cast<char*>(name.data())}, v;
  int rc = mdb_get(txn, db, &k, &v);
  if (rc == MDB_NOTFOUND) return false;
  if (rc) throwLmdb(rc, "mdb_get(arrays)");
  if (v.mv_size < keys::kRecordHeader) throw Error(ErrorCode::kFormat, "array record '" + name + "' is damaged");
  *out = keys::RecordHeader::read(static_cast<uint8_t*>(v.mv_data));
  return true;
}

uint64_t nowMs() {
  using namespace std::chrono;
  return uint64_t(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

void putValue(MDB_txn* txn, MDB_dbi db, const std::string& key, const std::string& value, const char* what) {
  MDB_val k{key.size(), const_cast<char*>(key.data())}, v{value.size(), const_cast<char*>(value.data())};
  int rc = mdb_put(txn, db, &k, &v, 0);
  if (rc) throwLmdb(rc, what);
}

// Deletes every key of `db` that starts with `prefix`.
void deletePrefix(MDB_txn* txn, MDB_dbi db, const std::string& prefix) {
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn, db, &cursor);
  if (rc) throwLmdb(rc, "mdb_cursor_open");
  MDB_val k{prefix.size(), const_cast<char*>(prefix.data())}, v;
  for (rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE); rc == 0;
       rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
    if (k.mv_size < prefix.size() || memcmp(k.mv_data, prefix.data(), prefix.size()) != 0) break;
    if ((rc = mdb_cursor_del(cursor, 0))) break;
  }
  mdb_cursor_close(cursor);
  if (rc != 0 && rc != MDB_NOTFOUND) throwLmdb(rc, "delete keys");
}

std::string idPrefix(uint64_t id) {
  std::string key(8, '\0');
  keys::putU64be(reinterpret_cast<uint8_t*>(&key[0]), id);
  return key;
}

std::string rangeValue(uint64_t start, uint64_t stop) {
  std::string value(16, '\0');
  keys::putU64le(reinterpret_cast<uint8_t*>(&value[0]), start);
  keys::putU64le(reinterpret_cast<uint8_t*>(&value[8]), stop);
  return value;
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


// Fills out's header fields from the stored record `raw` of array `name` (not its body).
// Throws Error(kFormat) for a record too short to hold a header.
void readRecordHeader(const std::string& name, const std::string& raw, Record* out) {
  if (raw.size() < keys::kRecordHeader) throw Error(ErrorCode::kFormat, "array record '" + name + "' is damaged");
  auto header = keys::RecordHeader::read(reinterpret_cast<const uint8_t*>(raw.data()));
  out->id = header.id;
  out->serial = header.serial;
  out->rows = header.rows;
  out->rowBytes = header.rowBytes;
}

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
  readRecordHeader(name, raw, out);
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
  std::vector<Tracked> kept;
  for (auto& tracked : arrays_) if (!tracked.array.expired()) kept.push_back(std::move(tracked));
  kept.push_back({array, name});
  arrays_.swap(kept);
  return array;
}

void Session::liveArrays(std::vector<std::shared_ptr<TrackedArray>>* out) {
  for (auto& tracked : arrays_) if (auto array = tracked.array.lock()) out->push_back(array);
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

const std::string& Session::nameOf(const TrackedArray* array) const {
  static const std::string unknown;
  for (const auto& tracked : arrays_) {
    if (tracked.array.lock().get() == array) return tracked.name;
  }
  return unknown;
}

bool Session::latestRecord(const std::string& name, Record* out) {
  Snapshot newest(env_);
  std::string raw;
  if (!newest.get(env_->arraysDb(), name, &raw)) return false;
  readRecordHeader(name, raw, out);
  return true;
}

bool Session::readCommits(uint64_t after, size_t limit, std::vector<CommitEntry>* out) {
  Snapshot newest(env_);
  return newest.commits(after, limit, out);
}

bool Session::getSegment(uint64_t arrayId, const std::string& name, Segment* out) {
  std::string value;
  if (!env_->hasSegments()) return false;
  if (!snapshot_->get(env_->segmentsDb(), keys::segmentNameKey(arrayId, name), &value)) return false;
  if (value.size() != 16) throw Error(ErrorCode::kFormat, "segment '" + name + "' is damaged");
  const uint8_t* p = reinterpret_cast<const uint8_t*>(value.data());
  *out = Segment{name, keys::getU64le(p), keys::getU64le(p + 8)};
  return true;
}

void Session::listSegments(uint64_t arrayId, bool first, uint64_t afterStart, const std::string& afterName,
                           size_t limit, std::vector<Segment>* out) {
  if (!env_->hasSegments()) return;
  std::string prefix = idPrefix(arrayId) + keys::kSegmentByRow;
  std::string from = first ? prefix : keys::segmentRowKey(arrayId, afterStart, afterName);
  std::vector<std::pair<std::string, std::string>> found;
  // One more than asked when resuming: the first key found is the one we stopped at.
  snapshot_->scan(env_->segmentsDb(), from, prefix, first ? limit : limit + 1, &found);
  for (const auto& [key, value] : found) {
    if (!first && key == from) continue;
    if (key.size() < prefix.size() + 8 || value.size() != 8) throw Error(ErrorCode::kFormat, "a segment is damaged");
    const uint8_t* k = reinterpret_cast<const uint8_t*>(key.data()) + prefix.size();
    out->push_back(Segment{key.substr(prefix.size() + 8), keys::getU64be(k),
                           keys::getU64le(reinterpret_cast<const uint8_t*>(value.data()))});
    if (out->size() == limit) break;
  }
}

void Session::writeAll(MDB_txn* txn, const Plan& plan, uint64_t serial, const std::set<uint64_t>& rebase,
                       std::map<uint64_t, uint64_t>* rebasedLengths, Outcome* outcome) {
  const auto& records = plan.records;
  ChangeSet logEntry;
  std::set<const TrackedArray*> removed;  // and rebased: their blocks are written already
  std::map<uint64_t, uint64_t> rebasedShift;  // rows a rebase moved each array's appends by
  uint64_t nextId = 0;
  outcome->assignedIds.assign(records.size(), 0);

  for (size_t i = 0; i < records.size(); ++i) {
    const RecordChange& change = records[i];
    if (change.array && change.array->id() && rebase.count(change.array->id())) {
      outcome->assignedIds[i] = change.array->id();
      (*rebasedLengths)[change.array->id()] =
          rebaseAppend(txn, change, serial, &logEntry, &rebasedShift[change.array->id()]);
      removed.insert(change.array.get());
      continue;
    }
    keys::RecordHeader before;
    bool existed = currentRecord(txn, env_->arraysDb(), change.name, &before);
    uint64_t current = existed ? before.serial : 0;
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
        deletePrefix(txn, env_->segmentsDb(), idPrefix(id));
        logEntry.addRecord(id);
        logEntry.addBlocks(id, 0, keys::kToEnd);
        ArrayChange& entry = logEntry.at(id);
        entry.flags |= keys::kLogDeleted;
        entry.name = change.name;
        entry.rowsBefore = before.rows;
        entry.rowBytes = before.rowBytes;
        entry.blockBytes = change.array->blockBytes();
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
    ArrayChange& entry = logEntry.at(id);
    entry.name = change.name;
    entry.rowsBefore = existed ? before.rows : 0;
    entry.rowsAfter = change.rows;
    entry.rowBytes = change.rowBytes;
    entry.blockBytes = change.array ? change.array->blockBytes() : 0;
    if (!existed) entry.flags |= keys::kLogCreated;
    if (change.attrsChanged) entry.flags |= keys::kLogAttrs;
    if (change.resized) entry.flags |= keys::kLogResized;
    if (change.appendOnly && existed && plan.appendOnly.count(id)) entry.flags |= keys::kLogAppendOnly;
  }
  if (nextId) writeU64Meta(txn, env_->metaDb(), "nextId", nextId);

  for (const MetaPut& put : plan.meta) {
    MDB_val k{put.key.size(), const_cast<char*>(put.key.data())};
    MDB_val v{put.value.size(), const_cast<char*>(put.value.data())};
    int rc = mdb_put(txn, env_->metaDb(), &k, &v, 0);
    if (rc) throwLmdb(rc, "mdb_put(meta)");
  }

  // Blocks of every array this session changed. A new array's id comes from its record.
  for (const auto& array : plan.live) {
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
    describeUnchangedRecord(txn, array.get(), id, &logEntry.at(id));
    array->store(txn, BlockStore{env_->blocksDb(), env_->pageSize()}, id, serial, stats_.get());
  }

  for (const SegmentChange& change : plan.segments) {
    uint64_t id = change.array->id();
    for (size_t i = 0; id == 0 && i < records.size(); ++i) {
      if (records[i].array == change.array) id = outcome->assignedIds[i];
    }
    if (id == 0) continue;  // created and dropped in this transaction
    auto shift = rebasedShift.find(id);
    writeSegments(txn, change, id, shift == rebasedShift.end() ? 0 : shift->second);
    ArrayChange& entry = logEntry.at(id);
    entry.flags |= keys::kLogSegments;
    describeUnchangedRecord(txn, change.array.get(), id, &entry);
  }

  std::string entry = logEntry.encode(nowMs());
  uint8_t key[8];
  keys::putU64be(key, serial);
  MDB_val k{8, key}, v{entry.size(), &entry[0]};
  int rc = mdb_put(txn, env_->logDb(), &k, &v, 0);
  if (rc) throwLmdb(rc, "mdb_put(log)");
  if (serial % kLogPruneEvery == 0) {
    uint64_t keep = std::max(kLogKeepMin, readU64Meta(txn, env_->metaDb(), "logRetention", kLogKeepDefault));
    pruneLog(txn, env_->logDb(), serial, keep);
  }
}

void Session::describeUnchangedRecord(MDB_txn* txn, const TrackedArray* array, uint64_t id, ArrayChange* entry) {
  if (!entry->name.empty()) return;  // its record change described it
  entry->name = nameOf(array);
  keys::RecordHeader header;
  if (!entry->name.empty() && currentRecord(txn, env_->arraysDb(), entry->name, &header) && header.id == id) {
    entry->rowsBefore = entry->rowsAfter = header.rows;
    entry->rowBytes = header.rowBytes;
  }
  entry->blockBytes = array->blockBytes();
}

void Session::writeSegments(MDB_txn* txn, const SegmentChange& change, uint64_t id, uint64_t shiftRows) {
  MDB_dbi db = env_->segmentsDb();
  for (const auto& del : change.deletes) {
    std::string nameKey = keys::segmentNameKey(id, del.name);
    MDB_val k{nameKey.size(), &nameKey[0]}, v;
    int rc = mdb_get(txn, db, &k, &v);
    if (rc && rc != MDB_NOTFOUND) throwLmdb(rc, "mdb_get(segments)");
    if (rc == MDB_NOTFOUND || v.mv_size != 16 ||
        memcmp(v.mv_data, rangeValue(del.start, del.stop).data(), 16) != 0) {
      ConflictFacts facts;
      facts.array = nameOf(change.array.get());
      throw ConflictError("segment '" + del.name + "' of array '" + facts.array +
                          "' was deleted or replaced by another commit; abort and retry", std::move(facts));
    }
    if ((rc = mdb_del(txn, db, &k, nullptr))) throwLmdb(rc, "mdb_del(segments)");
    std::string rowKey = keys::segmentRowKey(id, del.start, del.name);
    MDB_val rk{rowKey.size(), &rowKey[0]};
    if ((rc = mdb_del(txn, db, &rk, nullptr)) && rc != MDB_NOTFOUND) throwLmdb(rc, "mdb_del(segments)");
  }
  // Name keys in key order (LMDB inserts in order touch each leaf page once), then row
  // keys, which are in order already (puts come in row order).
  std::vector<const SegmentChange::Put*> byName;
  for (const auto& put : change.puts) byName.push_back(&put);
  std::sort(byName.begin(), byName.end(), [](const auto* x, const auto* y) { return x->name < y->name; });
  for (const SegmentChange::Put* put : byName) {
    uint64_t start = put->start + shiftRows;
    std::string nameKey = keys::segmentNameKey(id, put->name);
    std::string range = rangeValue(start, start + put->rows);
    MDB_val k{nameKey.size(), &nameKey[0]}, v{range.size(), &range[0]};
    // Names are unique per array, decided here, in the write transaction.
    int rc = mdb_put(txn, db, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) throw Error(ErrorCode::kExists, "segment '" + put->name + "' already exists");
    if (rc) throwLmdb(rc, "mdb_put(segments)");
  }
  for (const auto& put : change.puts) {
    uint64_t start = put.start + shiftRows;
    std::string stop(8, '\0');
    keys::putU64le(reinterpret_cast<uint8_t*>(&stop[0]), start + put.rows);
    putValue(txn, db, keys::segmentRowKey(id, start, put.name), stop, "mdb_put(segments)");
  }
}

uint64_t Session::rebaseAppend(MDB_txn* txn, const RecordChange& change, uint64_t serial, ChangeSet* log,
                               uint64_t* shiftRows) {
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
  ArrayChange& entry = log->at(id);
  entry.name = change.name;
  entry.rowsBefore = latest.rows;
  entry.rowsAfter = latest.rows + n / latest.rowBytes;
  entry.rowBytes = latest.rowBytes;
  entry.blockBytes = array.blockBytes();
  entry.flags |= keys::kLogAppendOnly;
  *shiftRows = latest.rows - from / latest.rowBytes;
  return start + n;
}

Session::Outcome Session::commit(const std::vector<RecordChange>& records, const std::vector<MetaPut>& meta,
                                 const std::vector<SegmentChange>& segments, bool sync) {
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
          throw ConflictError("this snapshot is older than the commit log reaches (its logRetention); abort and retry",
                              ConflictFacts());
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
      writeAll(txn.get(), Plan{records, meta, segments, live, appendOnly}, outcome.serial, rebase, &rebasedLengths,
               &outcome);
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
  if (sync) env_->writtenSlack.afterDurableCommit(*env_);  // holding writeLock, no transaction

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
