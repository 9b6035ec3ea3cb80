// The engine's commit rules over any block store (block_store.h): snapshot isolation,
// block-level conflicts, record versions, conflict-free appends (rebased at the newest
// end), id assignment, named segments and the commit log, run as plan -> store -> settle.
//
// A session (session.h) gathers what its transaction changed and calls commitChanges();
// tests call it over an in-memory store (ram_block_store.h) with arrays of their own.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "block_store.h"
#include "change_log.h"
#include "error.h"

namespace txa {

struct SessionStats;

// One array's uncommitted changes, as a commit needs them (TrackedArray is one).
class ArrayChanges {
 public:
  virtual ~ArrayChanges() = default;
  virtual uint64_t id() const = 0;  // 0: created in this transaction
  virtual uint32_t blockBytes() const = 0;
  virtual uint64_t byteLength() const = 0;       // as the transaction leaves it
  virtual uint64_t committedLength() const = 0;  // in the transaction's snapshot
  virtual const std::string& name() const = 0;   // for error messages and the log
  virtual bool hasChanges() = 0;
  // True if the transaction only appended (nothing below committedLength() changed).
  virtual bool appendOnly() = 0;
  // The blocks the transaction writes or deletes. Throws when its data cannot be trusted.
  virtual void describeChanges(ChangeSet* out) = 0;
  // Writes the changed blocks (and deletes those a shrink cut off) under id `id`.
  virtual void store(BlockWrite& write, uint64_t id, uint64_t serial, SessionStats* counters) = 0;
  // Copies uncommitted bytes [offset, offset + bytes) to dst (zeros where never written).
  virtual void copyUncommitted(uint64_t offset, uint64_t bytes, uint8_t* dst) = 0;
};

// A change to one array record (the arrays table), prepared by the TypeScript layer.
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
  std::shared_ptr<ArrayChanges> array;  // the array the record describes (id 0 = new)
};

// Named segments of one array added or deleted by a transaction (keys.h, segments).
struct SegmentChange {
  std::shared_ptr<ArrayChanges> array;
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

struct MetaPut {
  std::string key;
  std::string value;
};

struct CommitRequest {
  const std::vector<RecordChange>& records;
  const std::vector<MetaPut>& meta;
  const std::vector<SegmentChange>& segments;
  // Every array the transaction may have changed (those without changes are skipped).
  const std::vector<std::shared_ptr<ArrayChanges>>& arrays;
  // The snapshot the transaction read: its serial is where conflicts are checked from,
  // and its records name the arrays of a conflict.
  BlockRead& snapshot;
  bool sync = true;  // durable at settle (else by the next durable commit or flush)
};

struct CommitResult {
  uint64_t serial = 0;
  std::vector<uint64_t> assignedIds;  // per RecordChange: the array's id (new arrays get one)
  ChangeSet othersChanged;            // what the commits since the snapshot changed
  // Append-only arrays whose rows were re-laid at the newest end: id -> new byte length.
  std::map<uint64_t, uint64_t> rebasedLengths;
};

// Commits the transaction to `store`: plan (conflicts against the commits since
// request.snapshot, record versions), store (records, meta, blocks, segments, the log
// entry), settle. Retries the whole commit after StoreFullError (makeRoom). Throws
// ConflictError (counted in stats->conflicts), Error(kExists) for a segment name taken,
// and the store's errors; the store is then unchanged and *stats as before the call.
// On success counts the commit and what it wrote in *stats.
CommitResult commitChanges(BlockStore& store, const CommitRequest& request, SessionStats* stats);

}  // namespace txa
