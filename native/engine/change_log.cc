#include "change_log.h"

#include <algorithm>

#include "error.h"
#include "keys.h"

namespace txa {
namespace {

// True if some range of `a` meets some range of `b`; the finite intersections go to `out`
// (two "to the end" ranges meet without a finite intersection: both deleted the array).
bool rangesOverlap(const BlockRanges& a, const BlockRanges& b, BlockRanges* out) {
  bool overlap = false;
  for (const auto& x : a) {
    for (const auto& y : b) {
      if (x.first > y.second || y.first > x.second) continue;
      overlap = true;
      std::pair<uint64_t, uint64_t> both{std::max(x.first, y.first), std::min(x.second, y.second)};
      if (both.second != keys::kToEnd) out->push_back(both);
    }
  }
  return overlap;
}

void appendU32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(char(uint8_t(v >> (8 * i))));
}
void appendU64(std::string* s, uint64_t v) {
  uint8_t b[8];
  keys::putU64le(b, v);
  s->append(reinterpret_cast<char*>(b), 8);
}
uint32_t readU32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

}  // namespace

void ChangeSet::merge(const ChangeSet& other) {
  for (const auto& [id, change] : other.changes_) {
    auto& mine = changes_[id];
    mine.recordChanged = mine.recordChanged || change.recordChanged;
    mine.blocks.insert(mine.blocks.end(), change.blocks.begin(), change.blocks.end());
  }
}

bool ChangeSet::conflictsWith(const ChangeSet& mine, Overlap* out) const {
  for (const auto& [id, theirs] : changes_) {
    auto it = mine.changes_.find(id);
    if (it == mine.changes_.end()) continue;
    const ArrayChange& ours = it->second;
    Overlap overlap;
    overlap.arrayId = id;
    overlap.record = theirs.recordChanged && ours.recordChanged;
    bool blocks = rangesOverlap(theirs.blocks, ours.blocks, &overlap.blocks);
    if (overlap.record || blocks) {
      *out = std::move(overlap);
      return true;
    }
  }
  return false;
}

std::string ChangeSet::encode() const {
  std::string out;
  for (const auto& [id, change] : changes_) {
    appendU64(&out, id);
    appendU32(&out, change.recordChanged ? keys::kLogRecordChanged : 0);
    appendU32(&out, uint32_t(change.blocks.size()));
    for (const auto& [first, last] : change.blocks) {
      appendU64(&out, first);
      appendU64(&out, last);
    }
  }
  return out;
}

bool ChangeSet::decode(const uint8_t* p, size_t size) {
  size_t at = 0;
  while (at < size) {
    if (size - at < 16) return false;
    uint64_t id = keys::getU64le(p + at);
    uint32_t flags = readU32(p + at + 8);
    uint32_t count = readU32(p + at + 12);
    at += 16;
    if ((size - at) / 16 < count) return false;
    auto& change = changes_[id];
    if (flags & keys::kLogRecordChanged) change.recordChanged = true;
    for (uint32_t i = 0; i < count; ++i, at += 16) {
      change.blocks.emplace_back(keys::getU64le(p + at), keys::getU64le(p + at + 8));
    }
  }
  return true;
}

uint64_t latestSerial(MDB_txn* txn, MDB_dbi logDb) {
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn, logDb, &cursor);
  if (rc) throwLmdb(rc, "mdb_cursor_open(log)");
  MDB_val key, value;
  rc = mdb_cursor_get(cursor, &key, &value, MDB_LAST);
  uint64_t serial = 0;
  if (rc == 0 && key.mv_size == 8) serial = keys::getU64be(static_cast<uint8_t*>(key.mv_data));
  mdb_cursor_close(cursor);
  if (rc != 0 && rc != MDB_NOTFOUND) throwLmdb(rc, "mdb_cursor_get(log)");
  return serial;
}

bool readChangesSince(MDB_txn* txn, MDB_dbi logDb, uint64_t after, ChangeSet* out) {
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn, logDb, &cursor);
  if (rc) throwLmdb(rc, "mdb_cursor_open(log)");
  uint8_t start[8];
  keys::putU64be(start, after + 1);
  MDB_val key{8, start}, value;
  bool complete = true;
  uint64_t expected = after + 1;
  for (rc = mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE); rc == 0;
       rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)) {
    uint64_t serial = key.mv_size == 8 ? keys::getU64be(static_cast<uint8_t*>(key.mv_data)) : 0;
    if (serial != expected ||
        !out->decode(static_cast<uint8_t*>(value.mv_data), value.mv_size)) {
      complete = false;  // pruned entries or a damaged entry: assume everything changed
      break;
    }
    ++expected;
  }
  mdb_cursor_close(cursor);
  if (rc != 0 && rc != MDB_NOTFOUND) throwLmdb(rc, "mdb_cursor_get(log)");
  return complete;
}

uint64_t firstConflictingCommit(MDB_txn* txn, MDB_dbi logDb, uint64_t after, const ChangeSet& mine,
                                ChangeSet::Overlap* out) {
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn, logDb, &cursor);
  if (rc) throwLmdb(rc, "mdb_cursor_open(log)");
  uint8_t start[8];
  keys::putU64be(start, after + 1);
  MDB_val key{8, start}, value;
  uint64_t expected = after + 1, found = 0;
  for (rc = mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE); rc == 0;
       rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)) {
    uint64_t serial = key.mv_size == 8 ? keys::getU64be(static_cast<uint8_t*>(key.mv_data)) : 0;
    ChangeSet one;
    if (serial != expected || !one.decode(static_cast<uint8_t*>(value.mv_data), value.mv_size)) break;
    if (one.conflictsWith(mine, out)) {
      found = serial;
      break;
    }
    ++expected;
  }
  mdb_cursor_close(cursor);
  if (rc != 0 && rc != MDB_NOTFOUND) throwLmdb(rc, "mdb_cursor_get(log)");
  return found;
}

void pruneLog(MDB_txn* txn, MDB_dbi logDb, uint64_t newest) {
  // Prune every kLogPruneEvery commits, not every commit: deleting one old entry per
  // commit dirties the log's first leaf (and its branch) each time, pages a commit must
  // then write; in batches the cost is shared. Between prunes up to kLogKeep +
  // kLogPruneEvery entries are kept, never fewer than kLogKeep.
  if (newest <= kLogKeep || newest % kLogPruneEvery != 0) return;
  uint64_t keepFrom = newest - kLogKeep + 1;
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn, logDb, &cursor);
  if (rc) throwLmdb(rc, "mdb_cursor_open(log)");
  MDB_val key, value;
  while ((rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST)) == 0) {
    if (key.mv_size != 8 || keys::getU64be(static_cast<uint8_t*>(key.mv_data)) >= keepFrom) break;
    if ((rc = mdb_cursor_del(cursor, 0))) break;
  }
  mdb_cursor_close(cursor);
  if (rc != 0 && rc != MDB_NOTFOUND) throwLmdb(rc, "prune log");
}

}  // namespace txa
