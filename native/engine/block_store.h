// The block store seam: what the engine needs from the place its arrays live, in the
// engine's own terms (arrays, blocks, records, the commit log), so that the local LMDB
// store (lmdb_block_store.h), an in-memory store for tests (ram_block_store.h) and a
// remote store plug in under the same commit rules (block_commit.h) and the same view
// layer. docs/engine.md tells the story; this header is the contract.
//
// CAVEATS (read these first)
// - One writer at a time per store. beginWrite() blocks until no other write of the
//   store is open, in this process and in any other process sharing it. Never call
//   beginWrite() while holding a write of the same store (self-deadlock), and never touch
//   a view's memory inside a write (the fault path may need the store: vmem.h, THE RULE).
// - A write sees the newest state of the store, not the caller's snapshot: every
//   decision that depends on what others committed (conflicts, the record versions, the
//   rebase of appends) is made inside the write, after beginWrite() returned.
// - Nothing of a write is visible to anyone (readers, other processes, followers) before
//   settle() returns; then all of it is, at once, as commit latestSerial() + 1 (the serial
//   the caller logged with putLogEntry). A write destroyed without settle() is abandoned:
//   nothing of it remains.
// - Reads (BlockRead) are snapshots: one serial, unchanging, however long they are held.
//   Holding one may pin old versions in the store (LMDB cannot reuse their pages).
// - Keys and values of the tables are the engine's layout (keys.h); a store keeps them as
//   opaque bytes. Block data is given and returned without its header (block_format.h is
//   the LMDB store's business): a block is its first `size` bytes, zeros after them.
//
// THE STEPS OF A COMMIT (block_commit.h runs them)
//   plan    beginWrite(); latestSerial(), changesSince() / firstConflictingCommit() against
//           the transaction's snapshot; get() of the records it changes (their versions);
//           readBlock() of a block an append is rebased into. Throws ConflictError when
//           another commit got there first. Nothing is written yet.
//   store   put()/insert()/remove()/removePrefix()/clear(), putBlock()/deleteBlocksFrom()/
//           deleteAllBlocks(),
//           putLogEntry() of the commit's entry, pruneLog().
//   settle  settle(sync): publish, durably when `sync`; or abandon(): forget everything.
// A write is used by one thread; a store and its reads may be used by several.
//
// ERRORS (txa::Error, error.h) and what each step leaves
//   kConflict (ConflictError)  raised by the commit rules during plan or store (a record
//                               version, a segment that changed): the caller abandons;
//                               the store is unchanged.
//   StoreFullError (kStorage)  the store ran out of room during store or settle: the
//                               caller abandons, calls makeRoom(), and runs the whole
//                               commit again (plan included: others may have committed).
//   kDiskFull, kStorage        the medium failed during any step: abandon; the store is
//                               unchanged. A failure inside settle() also leaves the store
//                               unchanged: settle() either publishes everything or nothing.
//   kCorrupt, kFormat          a stored value is damaged (readBlock(), get() of a record):
//                               abandon; nothing was changed by this write.
//   kExists                    insert() found the key (the caller's rule decides; the
//                               commit rules turn a segment name taken into kExists).
// A store whose outcome is unknown after settle() (a remote one whose acknowledgement was
// lost) must not return normally or throw a plain failure: it resolves the outcome first
// (an idempotent commit id: docs/scale-out.md) and then does one or the other.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "change_log.h"

namespace txa {

struct SessionStats;

// The key-value tables of a store besides blocks and the log (keys.h has their layouts).
enum class Table { kMeta, kArrays, kSegments };

// The CRC32C of the first `length` bytes of a block's data: crc32c(0, bytes, length).
struct DataChecksum {
  uint64_t length = 0;
  uint32_t crc = 0;
};

// A snapshot: the store as of one commit.
class BlockRead {
 public:
  virtual ~BlockRead() = default;
  // The serial of the newest commit the snapshot holds (0 for an empty store).
  virtual uint64_t serial() const = 0;
  // Copies the value of `key` in `table`; false if absent.
  virtual bool get(Table table, const std::string& key, std::string* value) = 0;
  // Every key of `table`, in byte order.
  virtual void listKeys(Table table, std::vector<std::string>* out) = 0;
  // Replaces *out with the data bytes of block `index` of array `id` (no trailing zeros);
  // false, and *out empty, if it is not stored (it reads as zeros). Throws Error(kCorrupt)
  // for a stored value that is not a block.
  virtual bool loadBlock(uint64_t id, uint64_t index, std::vector<uint8_t>* out) = 0;
  // Merges what the commits after `after` changed; false when the log no longer reaches
  // back that far (the caller assumes everything changed).
  virtual bool changesSince(uint64_t after, ChangeSet* out) = 0;
};

// One open write: the plan, store and settle steps of one commit.
class BlockWrite {
 public:
  // Abandons the write unless it was settled.
  virtual ~BlockWrite() = default;

  // --- plan: the newest state, this write's changes included ---
  virtual uint64_t latestSerial() = 0;
  // As BlockRead::changesSince, for the commits after `after` up to the newest.
  virtual bool changesSince(uint64_t after, ChangeSet* out) = 0;
  // The first commit after `after` whose changes conflict with `mine`, and where (*out);
  // 0 when none does or the log no longer reaches back.
  virtual uint64_t firstConflictingCommit(uint64_t after, const ChangeSet& mine, ChangeSet::Overlap* out) = 0;
  virtual bool get(Table table, const std::string& key, std::string* value) = 0;
  // Appends the data bytes of block `index` of array `id` (nothing if not stored) to *out.
  // Throws Error(kCorrupt) as BlockRead::loadBlock does.
  virtual void readBlock(uint64_t id, uint64_t index, std::vector<uint8_t>* out) = 0;

  // --- store ---
  virtual void put(Table table, const std::string& key, const std::string& value) = 0;
  // Puts unless the key exists: false then, and nothing changed.
  virtual bool insert(Table table, const std::string& key, const std::string& value) = 0;
  // Deletes the key; false if it was absent.
  virtual bool remove(Table table, const std::string& key) = 0;
  // Deletes every key of `table` that starts with `prefix`.
  virtual void removePrefix(Table table, const std::string& prefix) = 0;
  // Deletes every key of `table`.
  virtual void clear(Table table) = 0;
  // Deletes every block of every array.
  virtual void deleteAllBlocks() = 0;
  // Stores block `index` of array `id` (of `blockBytes`-byte blocks) as the first `size`
  // bytes of `bytes` without trailing zeros, written by commit `serial`; an all-zero block
  // is deleted (it reads as zeros). Counts what it wrote in *counters.
  // With `known`, the checksum of bytes[0, known->length) as they are now: a store that
  // checksums its blocks reads only the bytes after it. A `known` longer than the data is
  // not used. On return *known is the checksum of the data stored (length 0: deleted).
  virtual void putBlock(uint64_t id, uint64_t index, uint32_t blockBytes, uint64_t serial, const uint8_t* bytes,
                        size_t size, SessionStats* counters, DataChecksum* known = nullptr) = 0;
  // Stores a stub of version `serial` of block `index` of array `id`: its `length` bytes
  // (1..blockBytes) stay on the remote server (block_format.h). Reading it back without
  // its bytes is refused with Error(kRemoteUnavailable).
  virtual void putStub(uint64_t id, uint64_t index, uint32_t blockBytes, uint64_t serial, uint64_t length) = 0;
  // Deletes blocks `first`.. of array `id`.
  virtual void deleteBlocksFrom(uint64_t id, uint64_t first) = 0;
  // Stores the commit's log entry (ChangeSet::encode) under `serial`.
  virtual void putLogEntry(uint64_t serial, const std::string& entry) = 0;
  // Deletes log entries older than the newest `keep` when `newest` is a multiple of
  // kLogPruneEvery (change_log.h).
  virtual void pruneLog(uint64_t newest, uint64_t keep) = 0;

  // --- settle ---
  // Publishes everything written, durably when `sync` (else by the next durable commit
  // or flush), and wakes whoever waits for commits. Called at most once; the write is
  // over afterwards, whatever the outcome. Throws as the header says.
  virtual void settle(bool sync) = 0;
  // Forgets everything written; the write is over. Never throws.
  virtual void abandon() noexcept = 0;
};

class BlockStore {
 public:
  virtual ~BlockStore() = default;
  // A snapshot of the newest commit. Throws Error(kStorage) when none can be opened (the
  // LMDB store's reader slots are full).
  virtual std::unique_ptr<BlockRead> read() = 0;
  // Opens the write of the next commit, waiting for the write of any other (caveats).
  virtual std::unique_ptr<BlockWrite> beginWrite() = 0;
  // After StoreFullError: makes more room. Caller holds no write of this store.
  virtual void makeRoom() = 0;
};

}  // namespace txa
