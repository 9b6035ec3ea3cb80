#include "remote_segments.h"

#include <cstring>

#include "error.h"
#include "keys.h"

namespace txa {
namespace {

MDB_val valOf(const std::string& s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }

void removeKey(MDB_txn* txn, MDB_dbi db, const std::string& key) {
  MDB_val k = valOf(key);
  int rc = mdb_del(txn, db, &k, nullptr);
  if (rc && rc != MDB_NOTFOUND) throwLmdb(rc, "mdb_del(segments)");
}

void putKey(MDB_txn* txn, MDB_dbi db, const std::string& key, const std::string& value) {
  MDB_val k = valOf(key), v = valOf(value);
  int rc = mdb_put(txn, db, &k, &v, 0);
  if (rc) throwLmdb(rc, "mdb_put(segments)");
}

std::string u64le(uint64_t v) {
  std::string out(8, '\0');
  keys::putU64le(reinterpret_cast<uint8_t*>(&out[0]), v);
  return out;
}

// Removes both keys of the segment the cache holds under `name`, if any.
void forget(MDB_txn* txn, MDB_dbi db, uint64_t id, const std::string& name) {
  const std::string nameKey = keys::segmentNameKey(id, name);
  MDB_val k = valOf(nameKey), v;
  int rc = mdb_get(txn, db, &k, &v);
  if (rc == MDB_NOTFOUND) return;
  if (rc) throwLmdb(rc, "mdb_get(segments)");
  if (v.mv_size != 16) throw Error(ErrorCode::kFormat, "segment '" + name + "' is damaged");
  const uint64_t start = keys::getU64le(static_cast<const uint8_t*>(v.mv_data));
  removeKey(txn, db, keys::segmentRowKey(id, start, name));
  removeKey(txn, db, nameKey);
}

}  // namespace

void applyRemoteSegments(MDB_txn* txn, MDB_dbi db, const std::vector<RemoteSegment>& segments) {
  for (const RemoteSegment& s : segments) {
    forget(txn, db, s.arrayId, s.name);
    if (s.deleted) continue;
    if (s.stop < s.start) throw Error(ErrorCode::kFormat, "remote segment '" + s.name + "' ends before it starts");
    putKey(txn, db, keys::segmentNameKey(s.arrayId, s.name), u64le(s.start) + u64le(s.stop));
    putKey(txn, db, keys::segmentRowKey(s.arrayId, s.start, s.name), u64le(s.stop));
  }
}

void dropRemoteSegments(MDB_txn* txn, MDB_dbi db, uint64_t id) {
  std::string prefix(8, '\0');
  keys::putU64be(reinterpret_cast<uint8_t*>(&prefix[0]), id);
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn, db, &cursor);
  if (rc) throwLmdb(rc, "mdb_cursor_open(segments)");
  MDB_val k = valOf(prefix), v;
  for (rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
    if (k.mv_size < prefix.size() || memcmp(k.mv_data, prefix.data(), prefix.size()) != 0) break;
    if ((rc = mdb_cursor_del(cursor, 0))) break;
  }
  mdb_cursor_close(cursor);
  if (rc != 0 && rc != MDB_NOTFOUND) throwLmdb(rc, "deleting an array's segments");
}

}  // namespace txa
