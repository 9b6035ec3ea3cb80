// The native side of one Store handle: its current snapshot, the arrays it tracks, and
// the commit that turns their uncommitted changes into one LMDB write transaction.
//
// Transaction model: snapshot isolation. A session reads one snapshot plus its own
// writes. commit() writes everything in one LMDB transaction after checking the commit
// log: if a commit since the snapshot changed a record this one changes, or wrote a
// block this one writes or deletes, it throws Error(kConflict) and changes nothing.
// After commit() or abort() the session moves to the newest snapshot.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "change_log.h"
#include "env.h"
#include "error.h"
#include "session_stats.h"
#include "snapshot.h"
#include "snapshot_source.h"
#include "tracked_array.h"
#include "../vmem/vmem.h"

namespace txa {

// A change to one array record (the arrays DB), prepared by the TypeScript layer.
struct RecordChange {
  std::string name;
  uint64_t expectedSerial = 0;          // the record's serial in our snapshot; 0 = absent
  bool remove = false;                  // delete the record (and the array's blocks)
  std::string body;                     // msgpack body for a put
  uint64_t rows = 0;                    // length of axis 0 after this transaction
  uint64_t rowBytes = 0;                // bytes per row
  // The transaction's only change to this array is appending rows (TypeScript's view;
  // the engine checks the data side). Then another commit's change to the same array
  // does not conflict: the rows are re-laid at the newest end ("rebased").
  bool appendOnly = false;
  bool attrsChanged = false;            // for the log: setAttrs() in this transaction
  bool resized = false;                 // for the log: resize() in this transaction
  std::shared_ptr<TrackedArray> array;  // the array the record describes (id 0 = new)
};

// Named segments of one array added or deleted by a transaction (keys.h, segments).
struct SegmentChange {
  std::shared_ptr<TrackedArray> array;
  struct Put {
    std::string name;
    uint64_t start = 0;  // first row, as this transaction sees the array
    uint64_t rows = 0;
  };
  struct Delete {
    std::string name;
    uint64_t start = 0, stop = 0;  // the range the transaction saw: it must still be so
  };
  std::vector<Delete> deletes;  // applied before the puts
  std::vector<Put> puts;
};

struct Segment {
  std::string name;
  uint64_t start = 0, stop = 0;
};

struct MetaPut {
  std::string key;
  std::string value;
};

struct Record {
  uint64_t id = 0;
  uint64_t serial = 0;
  uint64_t rows = 0;
  uint64_t rowBytes = 0;
  std::string body;
};

class Session {
 public:
  // mappedBlocks: how many blocks the views of all this session's arrays map at once.
  Session(std::shared_ptr<Env> env, uint64_t mappedBlocks);
  // Leaves arrays alive: a view (holding its array) may outlive the session object.
  ~Session() = default;

  Snapshot& snapshot() { return *snapshot_; }
  std::shared_ptr<Snapshot> sharedSnapshot() { return snapshot_; }
  const SessionStats& stats() const { return *stats_; }

  bool getRecord(const std::string& name, Record* out);
  std::vector<std::string> listRecords();
  bool getMeta(const std::string& key, std::string* out);

  // Starts tracking array `name` for this session (its changes are committed by commit()).
  std::shared_ptr<TrackedArray> track(uint64_t id, uint32_t blockBytes, uint64_t byteLength, const std::string& name);

  // --- reads of the newest commit (not this session's snapshot), for followers ---
  bool latestRecord(const std::string& name, Record* out);
  // Commits after `after`, at most `limit`; false when the log no longer reaches back.
  bool readCommits(uint64_t after, size_t limit, std::vector<CommitEntry>* out);

  // --- named segments in this session's snapshot ---
  bool getSegment(uint64_t arrayId, const std::string& name, Segment* out);
  // Up to `limit` segments in row order after (afterStart, afterName); from the first
  // when `first`.
  void listSegments(uint64_t arrayId, bool first, uint64_t afterStart, const std::string& afterName, size_t limit,
                    std::vector<Segment>* out);

  const vmem::Budget& budget() const { return *budget_; }

  // Unmaps every array's region (the binding detached the views). Idempotent.
  void closeArrays();

  // Commits records, metadata and every tracked array's changes. `newLengths` receives,
  // for each RecordChange, the id assigned (new arrays). Returns the ids of arrays whose
  // records other commits changed since the old snapshot (or all=true if unknown).
  struct Outcome {
    uint64_t serial = 0;
    std::vector<uint64_t> assignedIds;
    ChangeSet othersChanged;  // changes by other commits the session just moved past
    bool othersUnknown = false;
    // Set when the commit succeeded but the session could not move to the new snapshot:
    // why. The caller tells the user to refresh().
    std::string stale;
  };
  Outcome commit(const std::vector<RecordChange>& records, const std::vector<MetaPut>& meta,
                 const std::vector<SegmentChange>& segments, bool sync);

  // Drops uncommitted changes (arrays are reset by the caller, which knows the committed
  // lengths) and moves to the newest snapshot; reports what others changed meanwhile.
  Outcome refresh();

  void flush() { env_->flush(); }
  std::shared_ptr<Env> env() const { return env_; }

 private:
  // Writes everything; arrays whose ids are in `rebase` get their appended rows re-laid
  // at the newest end (rebaseAppend), their new lengths in `rebasedLengths`.
  // What one commit writes, besides the transaction's data.
  struct Plan {
    const std::vector<RecordChange>& records;
    const std::vector<MetaPut>& meta;
    const std::vector<SegmentChange>& segments;
    const std::vector<std::shared_ptr<TrackedArray>>& live;
    const std::set<uint64_t>& appendOnly;  // arrays the transaction only appended to
  };
  // Writes everything; arrays whose ids are in `rebase` get their appended rows re-laid
  // at the newest end (rebaseAppend), their new lengths in `rebasedLengths` and how many
  // rows their appends moved in `rebasedShift`.
  void writeAll(MDB_txn* txn, const Plan& plan, uint64_t serial, const std::set<uint64_t>& rebase,
                std::map<uint64_t, uint64_t>* rebasedLengths, Outcome* outcome);
  uint64_t rebaseAppend(MDB_txn* txn, const RecordChange& change, uint64_t serial, ChangeSet* log,
                        uint64_t* shiftRows);
  void writeSegments(MDB_txn* txn, const SegmentChange& change, uint64_t id, uint64_t shiftRows);
  // Fills the log entry of an array whose record this commit does not write (name,
  // length and sizes from its current record).
  void describeUnchangedRecord(MDB_txn* txn, const TrackedArray* array, uint64_t id, ArrayChange* entry);
  const std::string& nameOf(const TrackedArray* array) const;
  // The name and bytes per row of array `id`, from this commit's records or the snapshot.
  bool findArray(uint64_t id, const std::vector<RecordChange>& records, std::string* name, uint64_t* rowBytes);
  // The error for a conflict with commit `serial` (0: unknown) at `overlap`: names the
  // array, its blocks and their rows.
  ConflictError conflictError(const ChangeSet::Overlap& overlap, uint64_t serial,
                              const std::vector<RecordChange>& records,
                              const std::vector<std::shared_ptr<TrackedArray>>& live);
  // The error for a record that another commit `what` ("deleted"...), by commit `serial`
  // (0: looked up in the log by the array's `id`).
  ConflictError recordConflict(MDB_txn* txn, const std::string& name, uint64_t id, const char* what,
                               uint64_t serial);
  void liveArrays(std::vector<std::shared_ptr<TrackedArray>>* out);
  // Moves to a new snapshot: the JS-thread pointer and the fault path's holder together.
  void adopt(std::shared_ptr<Snapshot> snapshot);

  std::shared_ptr<Env> env_;
  std::shared_ptr<Snapshot> snapshot_;
  std::shared_ptr<SnapshotHolder> holder_;
  std::shared_ptr<vmem::Budget> budget_;  // shared with the arrays: views may outlive us
  struct Tracked {
    std::weak_ptr<TrackedArray> array;
    std::string name;
  };
  std::vector<Tracked> arrays_;
  std::shared_ptr<SessionStats> stats_ = std::make_shared<SessionStats>();  // shared with arrays
};

}  // namespace txa
