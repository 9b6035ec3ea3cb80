// A consistent read view of the store: one LMDB read transaction.
//
// Everything a Store handle reads between two commits/aborts comes from one Snapshot,
// plus the handle's own uncommitted writes. The snapshot is shared by the JavaScript
// thread and the fault-service thread, so every use of the MDB_txn goes through
// txnLock (LMDB lets a read transaction span threads only if the user serialises it).
// Pointers returned by block() point into LMDB's map: hold env().mapLock shared while
// using them (see env.h).
#pragma once
#include <lmdb.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "../block_source.h"
#include "block_format.h"
#include "change_log.h"
#include "env.h"

namespace txa {

// One stored block as a snapshot sees it.
struct StoredBlock {
  const uint8_t* value = nullptr;  // the whole value in LMDB's map, header first
  size_t valueSize = 0;
  blockfmt::Header header;         // checked: magic, version, layout (when headerRead)
  bool headerRead = false;
  BlockView data;                  // its data bytes (header.dataLength; zeros after them)
  BlockLocation location;          // where the data is in the data file
};

// The answer of tryBlock()/tryBlockLocation() for a stub this snapshot has not fetched
// (its bytes are on the remote server): not an LMDB code (those are -30800..-30780 and errno).
inline constexpr int kBlockOnServer = -31000;

class Snapshot {
 public:
  explicit Snapshot(std::shared_ptr<Env> env);  // begins a read txn at the newest commit
  ~Snapshot();
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  Env& env() const { return *env_; }
  uint64_t serial() const { return serial_; }

  // Block `index` of array `arrayId`; false if it is not stored (reads as zeros). Throws
  // Error(kCorrupt) for a value that is not a block of this format, naming the array by
  // `arrayName` when given. Caller holds env().mapLock shared while it uses out->value.
  bool stored(uint64_t arrayId, uint64_t index, StoredBlock* out, const std::string* arrayName = nullptr);

  // The data bytes of block `index` of array `arrayId`; false if it is not stored (reads as
  // zeros). Throws like stored(). Caller holds env().mapLock shared while it uses out->data.
  bool block(uint64_t arrayId, uint64_t index, BlockView* out);

  // Like block(), without throwing (for the fault path): 0, or an LMDB error code
  // (MDB_CORRUPTED for a value that is not a block of this format). A missing block is 0
  // with an empty view. Allocates nothing. Caller holds env().mapLock shared.
  int tryBlock(uint64_t arrayId, uint64_t index, BlockView* out) noexcept;

  // Like stored(), but a page-aligned value's header is not read (no page of the value is
  // touched): out->header stays empty (headerRead false) and out->data covers all the
  // stored bytes (the block's bytes, then zeros). Any other value is read as by stored().
  // For copies that need no checksum; check() and verifyChecksums read the header.
  bool storedData(uint64_t arrayId, uint64_t index, StoredBlock* out, const std::string* arrayName = nullptr);

  // Where block `index` of array `arrayId` is in the data file (see BlockLocation): 0, or
  // an LMDB error code (MDB_CORRUPTED as for tryBlock). A missing block is 0 with
  // out->bytes == 0. Reads LMDB's B-tree pages only: a value of format 3's page-aligned
  // layout is located from its address in the map (see locate()); only another value
  // (small, inside a leaf page) has its header read. Allocates nothing, throws nothing:
  // callable from a fault path. Caller holds env().mapLock shared; out->fd stays valid,
  // and the file range unchanged, while this snapshot is held.
  int tryBlockLocation(uint64_t arrayId, uint64_t index, BlockLocation* out) noexcept;

  // --- stubs (block_format.h): blocks of a lazily cached remote store ---
  // True if block `index` of array `arrayId` is a stub in this snapshot that has not been
  // fetched into it: then *serial and *length are its version and its byte length.
  bool onServer(uint64_t arrayId, uint64_t index, uint64_t* serial, uint64_t* length);
  // True if the store holds block `index` of array `arrayId` in full (not a stub).
  bool holdsInFull(uint64_t arrayId, uint64_t index);
  // True for a stub not fetched, without throwing or allocating (for the fault path).
  // Caller holds env().mapLock shared.
  bool isStub(uint64_t arrayId, uint64_t index) noexcept;
  // Gives this snapshot the fetched bytes of a stub: version `serial` of block `index` of
  // array `arrayId` (trailing zeros may be trimmed). From then on every read of the block
  // through this snapshot (copies, views, checksums) reads them, from memory, for as long
  // as the snapshot lives; the cache's own copy (written by the fetcher) serves later
  // snapshots. False, keeping nothing, unless the snapshot holds that very stub (the bytes
  // of another version, or of a block stored in full, are not wanted).
  bool addFetched(uint64_t arrayId, uint64_t index, uint64_t serial, const uint8_t* data, size_t size);
  // Bytes this snapshot holds fetched in memory.
  uint64_t fetchedBytes();
  // onServer() for the fault path: no throw, no allocation; caller holds env().mapLock shared.
  bool stubVersion(uint64_t arrayId, uint64_t index, uint64_t* serial, uint64_t* length) noexcept;
  // A fetch of version `serial` of the block failed: faults on it are served as unreadable
  // (fetchFailed) for as long as this snapshot lives; a later snapshot fetches again.
  void markFetchFailed(uint64_t arrayId, uint64_t index, uint64_t serial);
  bool fetchFailed(uint64_t arrayId, uint64_t index, uint64_t serial) noexcept;

  // Copies the value stored under `key` in `db`; false if absent.
  bool get(MDB_dbi db, const std::string& key, std::string* value);

  // Names (keys) of the arrays DB, in order.
  void listKeys(MDB_dbi db, std::vector<std::string>* out);

  // Up to `limit` (key, value) pairs of `db` from key `from` on, while keys start with
  // `prefix`.
  void scan(MDB_dbi db, const std::string& from, const std::string& prefix, size_t limit,
            std::vector<std::pair<std::string, std::string>>* out);

  // The commits after `after` in this snapshot, at most `limit`; false if the log no
  // longer reaches back that far.
  bool commits(uint64_t after, size_t limit, std::vector<CommitEntry>* out);

  // Merges what commits after `serial` (up to this snapshot) changed; false if the log
  // no longer reaches back that far.
  bool changesSince(uint64_t serial, ChangeSet* out);

  // Where the block stored as `value` (an MDB_val of this snapshot's blocks DB) lives in
  // the data file, as tryBlockLocation() says; false if it is not a block of this format.
  // A value on overflow pages (it starts 16 bytes into a page of the map) of prefix +
  // whole pages is located by arithmetic on its address and size: its data starts at
  // file offset (address - map base) + prefix. Only when the map base is unknown, or the
  // value has another shape, is its first page read (LMDB's page header, the block header).
  bool locate(const MDB_val& value, BlockLocation* out) const noexcept;

  // Runs fn(txn) under txnLock and the map lock (shared), for a walk of the whole store.
  // fn must not call back into this snapshot (txnLock is not recursive).
  template <class Fn>
  auto withTxn(Fn fn) -> decltype(fn(static_cast<MDB_txn*>(nullptr))) {
    std::shared_lock<std::shared_mutex> mapGuard(env_->mapLock);
    std::lock_guard<std::mutex> guard(txnLock_);
    return fn(txn_);
  }

 private:
  // The value of block `index` of array `arrayId`: 0 (a value of the map, or fetched bytes
  // in memory: *inMemory), MDB_NOTFOUND, kBlockOnServer for a stub not fetched, or an LMDB
  // error code. Allocates nothing.
  int lookup(uint64_t arrayId, uint64_t index, MDB_val* value, bool* inMemory) noexcept;
  // locate() for a looked-up value: fetched bytes in memory are never mappable.
  bool locateValue(const MDB_val& value, bool inMemory, BlockLocation* out) const noexcept;

  std::shared_ptr<Env> env_;
  MDB_txn* txn_ = nullptr;
  uint64_t serial_ = 0;
  std::mutex txnLock_;
  // Fetched stubs: whole values (block_format.h, as LMDB would hold them) by (array, block),
  // guarded by txnLock_; never erased while the snapshot lives, so pointers stay valid.
  std::map<std::pair<uint64_t, uint64_t>, std::vector<uint8_t>> fetched_;
  uint64_t fetchedBytes_ = 0;
  // Versions whose fetch failed for a fault (markFetchFailed), guarded by txnLock_.
  std::set<std::tuple<uint64_t, uint64_t, uint64_t>> fetchFailed_;
  bool mayHoldStubs_ = false;  // the store is the cache of a remote store
};

}  // namespace txa
