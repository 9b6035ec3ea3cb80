#include "block_store.h"

#include <time.h>

#include "block_format.h"
#include "crc32c.h"
#include "error.h"
#include "keys.h"
#include "session_stats.h"

namespace txa {
namespace {

uint64_t monotonicNanos() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // cannot fail for this clock
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

}  // namespace

void putBlock(MDB_txn* txn, const BlockStore& store, uint64_t id, uint64_t index, uint32_t blockBytes,
              uint64_t serial, const uint8_t* bytes, size_t size, SessionStats* counters, DataChecksum* known) {
  while (size > 0 && bytes[size - 1] == 0) --size;
  DataChecksum unknown;
  if (!known) known = &unknown;
  if (known->length > size) *known = DataChecksum{};
  keys::BlockKey key(id, index);
  MDB_val k{sizeof key.bytes, key.bytes};
  int rc;
  if (size == 0) {
    rc = mdb_del(txn, store.db, &k, nullptr);
    if (rc == MDB_NOTFOUND) rc = 0;
    if (rc) throwLmdb(rc, "delete block");
    *known = DataChecksum{};
    return;
  }
  MDB_val v{size_t(blockfmt::valueBytes(size, store.pageSize)), nullptr};
  rc = mdb_put(txn, store.db, &k, &v, MDB_RESERVE);
  if (rc) throwLmdb(rc, "store block");
  uint8_t* value = static_cast<uint8_t*>(v.mv_data);
  blockfmt::encodeUnsealed(value, store.pageSize, id, index, blockBytes, serial, bytes, size);
  const uint64_t start = monotonicNanos();  // the checksum's share of a commit, for store.stats()
  const uint32_t dataCrc = crc32c(known->crc, bytes + known->length, size - size_t(known->length));
  blockfmt::seal(value, store.pageSize, size, dataCrc);
  counters->checksumNanos += monotonicNanos() - start;
  counters->checksumBytes += size - known->length;
  *known = DataChecksum{size, dataCrc};
  ++counters->blocksWritten;
  counters->bytesWritten += size;
  counters->valueBytesWritten += v.mv_size;
}

void deleteBlocksFrom(MDB_txn* txn, MDB_dbi db, uint64_t id, uint64_t first) {
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn, db, &cursor);
  if (rc) throwLmdb(rc, "mdb_cursor_open(blocks)");
  keys::BlockKey start(id, first);
  MDB_val k{sizeof start.bytes, start.bytes}, v;
  for (rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE); rc == 0;
       rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
    if (k.mv_size != 16 || keys::getU64be(static_cast<uint8_t*>(k.mv_data)) != id) break;
    if ((rc = mdb_cursor_del(cursor, 0))) break;
  }
  mdb_cursor_close(cursor);
  if (rc != 0 && rc != MDB_NOTFOUND) throwLmdb(rc, "delete blocks");
}

void readBlockInto(MDB_txn* txn, MDB_dbi db, uint64_t id, uint64_t index, std::vector<uint8_t>* out) {
  keys::BlockKey key(id, index);
  MDB_val k{sizeof key.bytes, key.bytes}, v;
  int rc = mdb_get(txn, db, &k, &v);
  if (rc == MDB_NOTFOUND) return;
  if (rc) throwLmdb(rc, "mdb_get(block)");
  const uint8_t* value = static_cast<const uint8_t*>(v.mv_data);
  blockfmt::Header h;
  blockfmt::Problem problem = blockfmt::readHeader(value, v.mv_size, &h);
  if (problem != blockfmt::Problem::kNone) {
    throw Error(ErrorCode::kCorrupt, "array #" + std::to_string(id) + " block " + std::to_string(index) + ": " +
                                         blockfmt::describe(problem));
  }
  out->insert(out->end(), value + h.dataOffset, value + h.dataOffset + h.dataLength);
}

}  // namespace txa
