// Writing and deleting block values inside a write transaction (the "store a block" half
// of the block interface; Snapshot is the "load" half). Values are laid out as in
// block_format.h.
#pragma once
#include <lmdb.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace txa {

struct SessionStats;

// Where block values go: the blocks database and the environment's page size.
struct BlockStore {
  MDB_dbi db = 0;
  size_t pageSize = 0;
};

// The CRC32C of the first `length` bytes of a block's data: crc32c(0, bytes, length).
struct DataChecksum {
  uint64_t length = 0;
  uint32_t crc = 0;
};

// Stores block `index` of array `id` (an array of `blockBytes`-byte blocks) as its first
// `size` bytes without trailing zeros, written straight into LMDB's page (MDB_RESERVE), by
// the commit `serial`. An all-zero block is deleted: it reads as zeros anyway. Counts
// what it wrote.
// With `known`, the checksum of bytes[0, known->length) as they are now (a prefix the
// caller has not changed since it was computed): only the bytes after it are read for the
// checksum (a stream's append to a partly filled block reads just the appended bytes).
// A `known` longer than the data is not used. On return, *known is the checksum of the data
// stored (length 0 for a deleted block), for the next commit to extend.
void putBlock(MDB_txn* txn, const BlockStore& store, uint64_t id, uint64_t index, uint32_t blockBytes,
              uint64_t serial, const uint8_t* bytes, size_t size, SessionStats* counters,
              DataChecksum* known = nullptr);

// Deletes blocks `first`.. of array `id`.
void deleteBlocksFrom(MDB_txn* txn, MDB_dbi blocksDb, uint64_t id, uint64_t first);

// Appends the committed data bytes of block `index` of array `id`, as `txn` sees them
// (without trailing zeros; nothing if the block is not stored), to `out`. Throws
// Error(kCorrupt) for a value that is not a block of this format.
void readBlockInto(MDB_txn* txn, MDB_dbi blocksDb, uint64_t id, uint64_t index, std::vector<uint8_t>* out);

}  // namespace txa
