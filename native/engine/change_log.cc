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

void appendVarint(std::string* s, uint64_t v) {
  while (v >= 0x80) {
    s->push_back(char(uint8_t(v) | 0x80));
    v >>= 7;
  }
  s->push_back(char(uint8_t(v)));
}

// Reads varints from a bounded buffer; any overrun or over-long number marks it bad.
class VarintReader {
 public:
  VarintReader(const uint8_t* p, size_t size) : p_(p), end_(p + size) {}
  bool atEnd() const { return p_ == end_; }
  bool ok() const { return ok_; }
  uint64_t next() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return fail();
      uint8_t byte = *p_++;
      if (shift == 63 && byte > 1) return fail();
      v |= uint64_t(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return v;
    }
    return fail();
  }
  bool bytes(size_t n, std::string* out) {
    if (size_t(end_ - p_) < n) {
      fail();
      return false;
    }
    out->assign(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return true;
  }

 private:
  uint64_t fail() {
    ok_ = false;
    p_ = end_;
    return 0;
  }
  const uint8_t* p_;
  const uint8_t* end_;
  bool ok_ = true;
};

}  // namespace

void ChangeSet::mergeOne(uint64_t id, ArrayChange&& change) {
  auto it = changes_.find(id);
  if (it == changes_.end()) {
    changes_.emplace(id, std::move(change));
    return;
  }
  ArrayChange& mine = it->second;  // earlier changes first: keep rowsBefore, take rowsAfter
  mine.recordChanged = mine.recordChanged || change.recordChanged;
  mine.blocks.insert(mine.blocks.end(), change.blocks.begin(), change.blocks.end());
  mine.flags |= change.flags;
  mine.rowsAfter = change.rowsAfter;
  if (mine.name.empty()) mine.name = std::move(change.name);
}

void ChangeSet::merge(const ChangeSet& other) {
  for (const auto& [id, change] : other.changes_) mergeOne(id, ArrayChange(change));
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

std::string ChangeSet::encode(uint64_t timeMs) const {
  std::string out;
  appendVarint(&out, timeMs);
  for (const auto& [id, change] : changes_) {
    appendVarint(&out, id);
    appendVarint(&out, change.flags | (change.recordChanged ? keys::kLogRecordChanged : 0));
    appendVarint(&out, change.rowsBefore);
    appendVarint(&out, change.rowsAfter);
    appendVarint(&out, change.rowBytes);
    appendVarint(&out, change.blockBytes);
    appendVarint(&out, change.name.size());
    out += change.name;
    appendVarint(&out, change.blocks.size());
    for (const auto& [first, last] : change.blocks) {
      appendVarint(&out, first);
      appendVarint(&out, last - first);
    }
  }
  return out;
}

bool ChangeSet::decode(const uint8_t* p, size_t size, uint64_t* timeMs) {
  VarintReader in(p, size);
  uint64_t time = in.next();
  if (timeMs) *timeMs = time;
  while (in.ok() && !in.atEnd()) {
    uint64_t id = in.next();
    uint64_t flags = in.next();
    ArrayChange change;
    change.recordChanged = flags & keys::kLogRecordChanged;
    change.flags = uint32_t(flags & ~uint64_t(keys::kLogRecordChanged));
    change.rowsBefore = in.next();
    change.rowsAfter = in.next();
    change.rowBytes = in.next();
    change.blockBytes = uint32_t(in.next());
    uint64_t nameLength = in.next();
    if (!in.ok() || nameLength > 4096 || !in.bytes(size_t(nameLength), &change.name)) return false;
    uint64_t count = in.next();
    if (count > size) return false;  // each range takes at least two bytes
    for (uint64_t i = 0; i < count && in.ok(); ++i) {
      uint64_t first = in.next();
      uint64_t span = in.next();
      if (span > keys::kToEnd - first) return false;
      change.blocks.emplace_back(first, first + span);
    }
    if (!in.ok()) return false;
    mergeOne(id, std::move(change));
  }
  return in.ok();
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

namespace {

// Calls visit(serial, value) for the entries after `after` in order while it returns true
// and the serials are consecutive. Returns false if a serial is missing (pruned) or
// visit() says the entry is damaged.
template <class Visit>
bool walkLog(MDB_txn* txn, MDB_dbi logDb, uint64_t after, Visit visit) {
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
    if (serial != expected) {
      complete = false;
      break;
    }
    int verdict = visit(serial, static_cast<const uint8_t*>(value.mv_data), value.mv_size);
    if (verdict < 0) complete = false;
    if (verdict <= 0) break;
    ++expected;
  }
  mdb_cursor_close(cursor);
  if (rc != 0 && rc != MDB_NOTFOUND) throwLmdb(rc, "mdb_cursor_get(log)");
  return complete;
}

}  // namespace

bool readChangesSince(MDB_txn* txn, MDB_dbi logDb, uint64_t after, ChangeSet* out) {
  // Pruned entries or a damaged entry: the caller assumes everything changed.
  return walkLog(txn, logDb, after, [&](uint64_t, const uint8_t* data, size_t size) {
    return !isPrunedMark(data, size) && out->decode(data, size) ? 1 : -1;
  });
}

bool readCommits(MDB_txn* txn, MDB_dbi logDb, uint64_t after, size_t limit, std::vector<CommitEntry>* out) {
  if (limit == 0) return true;
  size_t taken = 0;
  bool complete = walkLog(txn, logDb, after, [&](uint64_t serial, const uint8_t* data, size_t size) {
    if (isPrunedMark(data, size)) return -1;
    CommitEntry entry;
    entry.serial = serial;
    if (!entry.changes.decode(data, size, &entry.timeMs)) {
      throw Error(ErrorCode::kFormat, "commit log entry " + std::to_string(serial) + " is damaged");
    }
    out->push_back(std::move(entry));
    return ++taken < limit ? 1 : 0;
  });
  // An incomplete walk that found nothing means the entry after `after` is gone; one that
  // stopped later only met the end of the log.
  return complete || taken > 0;
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

void pruneLog(MDB_txn* txn, MDB_dbi logDb, uint64_t newest, uint64_t keep) {
  // Prune every kLogPruneEvery commits, not every commit: deleting one old entry per
  // commit dirties the log's first leaf (and its branch) each time, pages a commit must
  // then write; in batches the cost is shared. Between prunes up to keep +
  // kLogPruneEvery entries are kept, never fewer than keep.
  if (newest <= keep || newest % kLogPruneEvery != 0) return;
  uint64_t keepFrom = newest - keep + 1;
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
