// The block store (block_store.h) of a local store: one LMDB environment (env.h). Blocks
// are values of the blocks database laid out as block_format.h says, written straight
// into LMDB's pages; the tables are the meta, arrays and segments databases; the log is
// the log database. A write is one LMDB write transaction under the Env's writeLock, with
// the map lock held shared to its end (env.h); settle() is mdb_txn_commit.
//
// The view layer does not read through this interface: it reads Snapshot (snapshot.h)
// directly, for zero-copy block views and file locations on the fault path.
#pragma once
#include <lmdb.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "block_store.h"
#include "env.h"
#include "snapshot.h"

namespace txa {

struct SessionStats;

// Where block values go: the blocks database and the environment's page size.
struct LmdbBlocks {
  MDB_dbi db = 0;
  size_t pageSize = 0;
};

// BlockWrite::putBlock inside the LMDB write transaction `txn`.
void putBlock(MDB_txn* txn, const LmdbBlocks& store, uint64_t id, uint64_t index, uint32_t blockBytes,
              uint64_t serial, const uint8_t* bytes, size_t size, SessionStats* counters,
              DataChecksum* known = nullptr);

// Stores a stub (block_format.h) for version `serial` of block `index` of array `id`,
// whose `length` bytes are on the remote server.
void putStub(MDB_txn* txn, MDB_dbi blocksDb, uint64_t id, uint64_t index, uint32_t blockBytes, uint64_t serial,
             uint64_t length);

// Deletes blocks `first`.. of array `id`.
void deleteBlocksFrom(MDB_txn* txn, MDB_dbi blocksDb, uint64_t id, uint64_t first);

// Appends the committed data bytes of block `index` of array `id`, as `txn` sees them
// (without trailing zeros; nothing if the block is not stored), to `out`. Throws
// Error(kCorrupt) for a value that is not a block of this format.
void readBlockInto(MDB_txn* txn, MDB_dbi blocksDb, uint64_t id, uint64_t index, std::vector<uint8_t>* out);

class LmdbBlockStore : public BlockStore {
 public:
  explicit LmdbBlockStore(std::shared_ptr<Env> env) : env_(std::move(env)) {}
  std::unique_ptr<BlockRead> read() override;
  // Takes the Env's writeLock (LMDB's own lock orders processes), frees the reader slots
  // of dead processes, begins the write transaction.
  std::unique_ptr<BlockWrite> beginWrite() override;
  void makeRoom() override;  // doubles the map (Env::growMap)
  // The BlockRead of a snapshot already open (a session's).
  static std::unique_ptr<BlockRead> readOf(std::shared_ptr<Snapshot> snapshot);

 private:
  std::shared_ptr<Env> env_;
};

}  // namespace txa
