#include "block_commit.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "keys.h"
#include "session_stats.h"

namespace txa {
namespace {

uint64_t nowMs() {
  using namespace std::chrono;
  return uint64_t(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

std::string u64le(uint64_t value) {
  std::string bytes(8, '\0');
  keys::putU64le(reinterpret_cast<uint8_t*>(&bytes[0]), value);
  return bytes;
}

uint64_t readU64Meta(BlockWrite& write, const char* key, uint64_t fallback) {
  std::string value;
  if (!write.get(Table::kMeta, key, &value)) return fallback;
  if (value.size() != 8) throw Error(ErrorCode::kFormat, std::string("meta '") + key + "' is damaged");
  return keys::getU64le(reinterpret_cast<const uint8_t*>(value.data()));
}

bool parseRecordHeader(const std::string& name, const std::string& value, keys::RecordHeader* out) {
  if (value.size() < keys::kRecordHeader) throw Error(ErrorCode::kFormat, "array record '" + name + "' is damaged");
  *out = keys::RecordHeader::read(reinterpret_cast<const uint8_t*>(value.data()));
  return true;
}

// Header of the record stored under `name`, as the write sees it; false if none.
bool currentRecord(BlockWrite& write, const std::string& name, keys::RecordHeader* out) {
  std::string value;
  return write.get(Table::kArrays, name, &value) && parseRecordHeader(name, value, out);
}

std::string idPrefix(uint64_t id) {
  std::string key(8, '\0');
  keys::putU64be(reinterpret_cast<uint8_t*>(&key[0]), id);
  return key;
}

std::string rangeValue(uint64_t start, uint64_t stop) { return u64le(start) + u64le(stop); }

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

// One attempt at a commit, inside one write of the store.
class Committer {
 public:
  Committer(const CommitRequest& request, BlockWrite& write, SessionStats* stats)
      : request_(request), write_(write), stats_(stats) {}

  // Plan: the arrays this transaction only appended to are left out of the conflict check
  // (nothing another commit did to them conflicts, short of deleting them); the rest must
  // not meet what the commits since the snapshot changed.
  void plan(const ChangeSet& mine, const std::set<uint64_t>& appendOnly, CommitResult* result) {
    const uint64_t before = request_.snapshot.serial();
    const uint64_t latest = write_.latestSerial();
    if (latest != before) {
      if (!write_.changesSince(before, &result->othersChanged)) {
        throw ConflictError("this snapshot is older than the commit log reaches (its logRetention); abort and retry",
                            ConflictFacts());
      }
      ChangeSet::Overlap overlap;
      if (result->othersChanged.conflictsWith(mine, &overlap)) {
        // The first commit to conflict is the winner; its own overlap is the one to report.
        uint64_t winner = write_.firstConflictingCommit(before, mine, &overlap);
        throw conflictError(overlap, winner);
      }
    }
    for (uint64_t id : appendOnly) {
      if (result->othersChanged.byArray().count(id)) rebase_.insert(id);
    }
    appendOnly_ = &appendOnly;
    result->serial = latest + 1;
  }

  // Store: records, meta, blocks, segments, the log entry.
  void store(CommitResult* result);

 private:
  uint64_t rebaseAppend(const RecordChange& change, uint64_t serial, uint64_t* shiftRows);
  void writeSegments(const SegmentChange& change, uint64_t id, uint64_t shiftRows);
  void describeUnchangedRecord(const ArrayChanges* array, uint64_t id, ArrayChange* entry);
  bool findArray(uint64_t id, std::string* name, uint64_t* rowBytes);
  ConflictError conflictError(const ChangeSet::Overlap& overlap, uint64_t serial);
  ConflictError recordConflict(const std::string& name, uint64_t id, const char* what, uint64_t serial);

  const CommitRequest& request_;
  BlockWrite& write_;
  SessionStats* stats_;
  std::set<uint64_t> rebase_;  // append-only arrays others changed meanwhile
  const std::set<uint64_t>* appendOnly_ = nullptr;
  ChangeSet log_;
};

bool Committer::findArray(uint64_t id, std::string* name, uint64_t* rowBytes) {
  for (const auto& change : request_.records) {
    if (change.array && change.array->id() == id) {
      *name = change.name;
      *rowBytes = change.rowBytes;
      return true;
    }
  }
  std::vector<std::string> names;
  request_.snapshot.listKeys(Table::kArrays, &names);
  for (const auto& candidate : names) {
    std::string value;
    keys::RecordHeader header;
    if (request_.snapshot.get(Table::kArrays, candidate, &value) && parseRecordHeader(candidate, value, &header) &&
        header.id == id) {
      *name = candidate;
      *rowBytes = header.rowBytes;
      return true;
    }
  }
  return false;
}

ConflictError Committer::conflictError(const ChangeSet::Overlap& overlap, uint64_t serial) {
  ConflictFacts facts;
  facts.serial = serial;
  facts.metadata = overlap.record;
  facts.blocks = overlap.blocks;
  uint64_t rowBytes = 0;
  if (!findArray(overlap.arrayId, &facts.array, &rowBytes)) facts.array.clear();
  std::shared_ptr<ArrayChanges> array;
  for (const auto& candidate : request_.arrays) {
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

ConflictError Committer::recordConflict(const std::string& name, uint64_t id, const char* what, uint64_t serial) {
  if (serial == 0 && id != 0) {  // find the commit that changed the record
    ChangeSet record;
    record.addRecord(id);
    ChangeSet::Overlap ignored;
    serial = write_.firstConflictingCommit(request_.snapshot.serial(), record, &ignored);
  }
  ConflictFacts facts;
  facts.array = name;
  facts.serial = serial;
  facts.metadata = true;
  return ConflictError("array '" + name + "' was " + what + " by " + commitText(serial) + "; abort and retry",
                       std::move(facts));
}

void Committer::store(CommitResult* result) {
  const auto& records = request_.records;
  const uint64_t serial = result->serial;
  std::set<const ArrayChanges*> removed;      // and rebased: their blocks are written already
  std::map<uint64_t, uint64_t> rebasedShift;  // rows a rebase moved each array's appends by
  uint64_t nextId = 0;
  result->assignedIds.assign(records.size(), 0);

  for (size_t i = 0; i < records.size(); ++i) {
    const RecordChange& change = records[i];
    if (change.array && change.array->id() && rebase_.count(change.array->id())) {
      result->assignedIds[i] = change.array->id();
      result->rebasedLengths[change.array->id()] = rebaseAppend(change, serial, &rebasedShift[change.array->id()]);
      removed.insert(change.array.get());
      continue;
    }
    keys::RecordHeader before;
    bool existed = currentRecord(write_, change.name, &before);
    uint64_t current = existed ? before.serial : 0;
    if (current != change.expectedSerial) {
      const uint64_t id = change.array ? change.array->id() : 0;
      throw recordConflict(change.name, id,
                           change.expectedSerial == 0 ? "created" : current == 0 ? "deleted" : "changed", current);
    }
    uint64_t id = change.array ? change.array->id() : 0;
    if (change.remove) {
      if (!write_.remove(Table::kArrays, change.name)) throw Error(ErrorCode::kStorage, "array record vanished");
      if (id) {
        write_.deleteBlocksFrom(id, 0);
        write_.removePrefix(Table::kSegments, idPrefix(id));
        log_.addRecord(id);
        log_.addBlocks(id, 0, keys::kToEnd);
        ArrayChange& entry = log_.at(id);
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
      if (nextId == 0) nextId = readU64Meta(write_, "nextId", 1);
      id = nextId++;
    }
    result->assignedIds[i] = id;
    std::string value(keys::kRecordHeader, '\0');
    keys::RecordHeader{id, serial, change.rows, change.rowBytes}.write(reinterpret_cast<uint8_t*>(&value[0]));
    value += change.body;
    write_.put(Table::kArrays, change.name, value);
    log_.addRecord(id);
    ArrayChange& entry = log_.at(id);
    entry.name = change.name;
    entry.rowsBefore = existed ? before.rows : 0;
    entry.rowsAfter = change.rows;
    entry.rowBytes = change.rowBytes;
    entry.blockBytes = change.array ? change.array->blockBytes() : 0;
    if (!existed) entry.flags |= keys::kLogCreated;
    if (change.attrsChanged) entry.flags |= keys::kLogAttrs;
    if (change.resized) entry.flags |= keys::kLogResized;
    if (change.appendOnly && existed && appendOnly_->count(id)) entry.flags |= keys::kLogAppendOnly;
  }
  if (nextId) write_.put(Table::kMeta, "nextId", u64le(nextId));

  for (const MetaPut& put : request_.meta) write_.put(Table::kMeta, put.key, put.value);

  // Blocks of every array this session changed. A new array's id comes from its record.
  auto idOf = [&](const std::shared_ptr<ArrayChanges>& array) {
    uint64_t id = array->id();
    for (size_t i = 0; id == 0 && i < records.size(); ++i) {
      if (records[i].array == array) id = result->assignedIds[i];
    }
    return id;
  };
  for (const auto& array : request_.arrays) {
    if (!array->hasChanges() || removed.count(array.get())) continue;
    const uint64_t id = idOf(array);
    if (id == 0) continue;  // created and dropped in this transaction: nothing to keep
    ChangeSet blocks;
    array->describeChanges(&blocks);
    for (const auto& [ignoredId, change] : blocks.byArray()) {
      for (const auto& [first, last] : change.blocks) log_.addBlocks(id, first, last);
    }
    describeUnchangedRecord(array.get(), id, &log_.at(id));
    array->store(write_, id, serial, stats_);
  }

  for (const SegmentChange& change : request_.segments) {
    const uint64_t id = idOf(change.array);
    if (id == 0) continue;  // created and dropped in this transaction
    auto shift = rebasedShift.find(id);
    writeSegments(change, id, shift == rebasedShift.end() ? 0 : shift->second);
    ArrayChange& entry = log_.at(id);
    entry.flags |= keys::kLogSegments;
    describeUnchangedRecord(change.array.get(), id, &entry);
  }

  write_.putLogEntry(serial, log_.encode(nowMs()));
  if (serial % kLogPruneEvery == 0) {
    write_.pruneLog(serial, std::max(kLogKeepMin, readU64Meta(write_, "logRetention", kLogKeepDefault)));
  }
}

void Committer::describeUnchangedRecord(const ArrayChanges* array, uint64_t id, ArrayChange* entry) {
  if (!entry->name.empty()) return;  // its record change described it
  entry->name = array->name();
  keys::RecordHeader header;
  if (!entry->name.empty() && currentRecord(write_, entry->name, &header) && header.id == id) {
    entry->rowsBefore = entry->rowsAfter = header.rows;
    entry->rowBytes = header.rowBytes;
  }
  entry->blockBytes = array->blockBytes();
}

void Committer::writeSegments(const SegmentChange& change, uint64_t id, uint64_t shiftRows) {
  for (const auto& del : change.deletes) {
    std::string value;
    if (!write_.get(Table::kSegments, keys::segmentNameKey(id, del.name), &value) ||
        value != rangeValue(del.start, del.stop)) {
      ConflictFacts facts;
      facts.array = change.array->name();
      throw ConflictError("segment '" + del.name + "' of array '" + facts.array +
                              "' was deleted or replaced by another commit; abort and retry",
                          std::move(facts));
    }
    write_.remove(Table::kSegments, keys::segmentNameKey(id, del.name));
    write_.remove(Table::kSegments, keys::segmentRowKey(id, del.start, del.name));
  }
  // Name keys in key order (a B-tree store touches each leaf page once), then row keys,
  // which are in order already (puts come in row order).
  std::vector<const SegmentChange::Put*> byName;
  for (const auto& put : change.puts) byName.push_back(&put);
  std::sort(byName.begin(), byName.end(), [](const auto* x, const auto* y) { return x->name < y->name; });
  for (const SegmentChange::Put* put : byName) {
    const uint64_t start = put->start + shiftRows;
    // Names are unique per array, decided here, in the write.
    if (!write_.insert(Table::kSegments, keys::segmentNameKey(id, put->name), rangeValue(start, start + put->rows))) {
      throw Error(ErrorCode::kExists, "segment '" + put->name + "' already exists");
    }
  }
  for (const auto& put : change.puts) {
    const uint64_t start = put.start + shiftRows;
    write_.put(Table::kSegments, keys::segmentRowKey(id, start, put.name), u64le(start + put.rows));
  }
}

uint64_t Committer::rebaseAppend(const RecordChange& change, uint64_t serial, uint64_t* shiftRows) {
  ArrayChanges& array = *change.array;
  const uint64_t id = array.id();
  std::string value;
  if (!write_.get(Table::kArrays, change.name, &value)) throw recordConflict(change.name, id, "deleted", 0);
  keys::RecordHeader latest;
  parseRecordHeader(change.name, value, &latest);
  if (latest.id != id || latest.rowBytes != change.rowBytes) {
    throw recordConflict(change.name, id, "replaced", latest.id != id ? latest.serial : 0);
  }
  // Keep the newest body (attributes another commit set survive); only the length moves.
  // Our rows [from, from + n) go to [start, start + n) of the newest array, block by
  // block; the first block keeps the newest committed bytes before `start`.
  const uint64_t from = array.committedLength();
  const uint64_t n = array.byteLength() - from;
  const uint64_t start = latest.rows * latest.rowBytes;
  const uint64_t blockBytes = array.blockBytes();
  std::vector<uint8_t> block;
  for (uint64_t at = start; at < start + n;) {
    uint64_t index = at / blockBytes, within = at % blockBytes;
    uint64_t take = std::min(blockBytes - within, start + n - at);
    block.clear();
    if (within) write_.readBlock(id, index, &block);
    block.resize(blockBytes, 0);
    std::fill(block.begin() + within, block.end(), 0);
    array.copyUncommitted(from + (at - start), take, block.data() + within);
    write_.putBlock(id, index, uint32_t(blockBytes), serial, block.data(), size_t(within + take), stats_);
    log_.addBlocks(id, index, index);
    at += take;
  }
  const uint64_t rowsAfter = latest.rows + n / latest.rowBytes;
  keys::RecordHeader{id, serial, rowsAfter, latest.rowBytes}.write(reinterpret_cast<uint8_t*>(&value[0]));
  write_.put(Table::kArrays, change.name, value);
  log_.addRecord(id);
  ArrayChange& entry = log_.at(id);
  entry.name = change.name;
  entry.rowsBefore = latest.rows;
  entry.rowsAfter = rowsAfter;
  entry.rowBytes = latest.rowBytes;
  entry.blockBytes = array.blockBytes();
  entry.flags |= keys::kLogAppendOnly;
  *shiftRows = latest.rows - from / latest.rowBytes;
  return start + n;
}

}  // namespace

CommitResult commitChanges(BlockStore& store, const CommitRequest& request, SessionStats* stats) {
  std::set<uint64_t> appendOnly;
  for (const auto& change : request.records) {
    if (change.appendOnly && !change.remove && change.array && change.array->id() && change.array->appendOnly()) {
      appendOnly.insert(change.array->id());
    }
  }
  ChangeSet mine;
  for (const auto& change : request.records) {
    if (change.array && change.array->id() && !appendOnly.count(change.array->id())) {
      mine.addRecord(change.array->id());
      if (change.remove) mine.addBlocks(change.array->id(), 0, keys::kToEnd);
    }
  }
  for (const auto& array : request.arrays) {
    if (array->id() && !appendOnly.count(array->id()) && array->hasChanges()) array->describeChanges(&mine);
  }
  for (;;) {
    SessionStats counted = *stats;  // restored if this attempt is retried or fails
    CommitResult result;
    try {
      std::unique_ptr<BlockWrite> write = store.beginWrite();  // abandoned by unwinding unless settled
      Committer committer(request, *write, stats);
      committer.plan(mine, appendOnly, &result);
      committer.store(&result);
      write->settle(request.sync);
      ++stats->commits;
      return result;
    } catch (const StoreFullError&) {
      *stats = counted;
      store.makeRoom();  // the write is gone: the store may be re-mapped now
    } catch (const Error& e) {
      *stats = counted;
      if (e.code() == ErrorCode::kConflict) ++stats->conflicts;
      throw;
    }
  }
}

}  // namespace txa
