// The commit log: serial -> which arrays, records and blocks a commit changed, and what
// followers of the store are told about it (names, lengths before and after, time).
//
// It drives four things: conflict detection at commit (did anyone touch what I write
// since my snapshot?), invalidation when a handle moves to a newer snapshot (which loaded
// pages are stale?), the current serial (the last log key), and the commit events of
// Store.watch(). It is pruned to the most recent `keep` entries (the store's log
// retention); a snapshot older than the oldest kept entry is treated as conflicting with
// everything (safe: the caller retries or reloads everything), and a follower that far
// behind is told the log no longer reaches back.
#pragma once
#include <lmdb.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace txa {

inline constexpr uint64_t kLogKeepDefault = 4096;
inline constexpr uint64_t kLogKeepMin = 64;
inline constexpr uint64_t kLogPruneEvery = 64;

// Inclusive block index ranges; `last` == keys::kToEnd means "to the end".
using BlockRanges = std::vector<std::pair<uint64_t, uint64_t>>;

struct ArrayChange {
  bool recordChanged = false;  // shape, attrs, creation or deletion
  BlockRanges blocks;          // blocks written or deleted
  // What followers are told (the log's other fields; see keys.h).
  uint32_t flags = 0;          // keys::kLog* bits besides kLogRecordChanged
  uint64_t rowsBefore = 0, rowsAfter = 0, rowBytes = 0;
  uint32_t blockBytes = 0;
  std::string name;
};

// Changes of one or many commits, per array id.
class ChangeSet {
 public:
  void addRecord(uint64_t arrayId) { changes_[arrayId].recordChanged = true; }
  void addBlocks(uint64_t arrayId, uint64_t first, uint64_t last) {
    changes_[arrayId].blocks.emplace_back(first, last);
  }
  // The entry of one array, for filling in what followers are told.
  ArrayChange& at(uint64_t arrayId) { return changes_[arrayId]; }
  void merge(const ChangeSet& other);
  bool empty() const { return changes_.empty(); }
  const std::map<uint64_t, ArrayChange>& byArray() const { return changes_; }

  // Where this set and `mine` meet in one array (the array of lowest id where they do).
  struct Overlap {
    uint64_t arrayId = 0;
    bool record = false;  // both changed the record
    BlockRanges blocks;   // finite block ranges both wrote or deleted
  };
  // True if `mine` and this set conflict: both changed one record, or their block
  // ranges for one array overlap. Fills `out` with where.
  bool conflictsWith(const ChangeSet& mine, Overlap* out) const;

  // One commit's log entry (keys.h), stamped with its wall-clock time.
  std::string encode(uint64_t timeMs) const;
  // Merges an entry into this set; false if it is damaged. `timeMs` may be null.
  bool decode(const uint8_t* data, size_t size, uint64_t* timeMs = nullptr);

 private:
  void mergeOne(uint64_t id, ArrayChange&& change);
  std::map<uint64_t, ArrayChange> changes_;
};

// One commit of the log, decoded.
struct CommitEntry {
  uint64_t serial = 0;
  uint64_t timeMs = 0;
  ChangeSet changes;
};

// A log entry of time 0 and no arrays stands for commits whose entries are gone (written
// when a store gains its segments database: store_identity.h). It keeps its serial the
// current one; readers treat it, and everything before it, as pruned.
inline constexpr uint8_t kPrunedMark = 0;
inline bool isPrunedMark(const uint8_t* data, size_t size) { return size == 1 && data[0] == kPrunedMark; }

// The serial of the newest commit visible to `txn` (0 for a new store).
uint64_t latestSerial(MDB_txn* txn, MDB_dbi logDb);

// Merges the log entries with serial in (after, latest] into `out`. Returns false when
// some of them were pruned (the caller must assume everything changed).
bool readChangesSince(MDB_txn* txn, MDB_dbi logDb, uint64_t after, ChangeSet* out);

// The first commit after `after` whose changes conflict with `mine`, and where; 0 when
// none does or the entries are no longer all there.
uint64_t firstConflictingCommit(MDB_txn* txn, MDB_dbi logDb, uint64_t after, const ChangeSet& mine,
                                ChangeSet::Overlap* out);

// Appends the commits with serial in (after, latest], at most `limit` of them, to `out`.
// Returns false when the log no longer holds the commit after `after` (pruned).
bool readCommits(MDB_txn* txn, MDB_dbi logDb, uint64_t after, size_t limit, std::vector<CommitEntry>* out);

// Deletes entries older than the newest `keep` (every kLogPruneEvery commits). Throws on
// LMDB failure.
void pruneLog(MDB_txn* txn, MDB_dbi logDb, uint64_t newest, uint64_t keep);

}  // namespace txa
