// The native side of one Store handle: its current snapshot, the arrays it tracks, and
// the commit that turns their uncommitted changes into one write of the local store
// (block_commit.h runs the commit rules over the LMDB block store, lmdb_block_store.h).
//
// Transaction model: snapshot isolation. A session reads one snapshot plus its own
// writes. commit() writes everything in one write of the store after checking the commit
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

#include "block_commit.h"
#include "change_log.h"
#include "env.h"
#include "error.h"
#include "lmdb_block_store.h"
#include "session_stats.h"
#include "snapshot.h"
#include "snapshot_source.h"
#include "tracked_array.h"
#include "../vmem/vmem.h"

namespace txa {

struct Segment {
  std::string name;
  uint64_t start = 0, stop = 0;
};

struct Record {
  uint64_t id = 0;
  uint64_t serial = 0;
  uint64_t rows = 0;
  uint64_t rowBytes = 0;
  std::string body;
};

// The process's mapping budget (vmem::processBudget()), shared by every session opened
// with mappings 0. Throws Error(kArgument) where TXARRAY_MAPPINGS holds no valid limit.
std::shared_ptr<vmem::Budget> processMappingBudget();

class Session {
 public:
  // mappings: the most mappings (VMAs) the views of this session's arrays hold at once, in
  // a budget of the session's own; 0: the process's budget, shared with every session
  // that passes 0 (vmem::processBudget()). Throws Error(kArgument) for 0 where
  // TXARRAY_MAPPINGS holds no valid limit.
  Session(std::shared_ptr<Env> env, uint64_t mappings);
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

  // Faults of this session's views on blocks of a lazily cached remote store post their
  // fetch requests to `channel` (fault_fetch.h); the holder is what the fetcher answers to.
  void attachFetchChannel(std::shared_ptr<FetchChannel> channel) { holder_->setFetcher(std::move(channel)); }
  std::shared_ptr<SnapshotHolder> snapshotHolder() const { return holder_; }
  std::shared_ptr<Env> env() const { return env_; }

 private:
  void liveArrays(std::vector<std::shared_ptr<TrackedArray>>* out);
  // Moves to a new snapshot: the JS-thread pointer and the fault path's holder together.
  void adopt(std::shared_ptr<Snapshot> snapshot);

  std::shared_ptr<Env> env_;
  LmdbBlockStore store_;  // where commits go
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
