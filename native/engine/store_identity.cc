#include "store_identity.h"

#include <cstring>

#include "change_log.h"
#include "error.h"
#include "keys.h"

namespace txa {
namespace {

constexpr const char* kNames[] = {keys::kMetaDb, keys::kArraysDb, keys::kBlocksDb, keys::kLogDb, keys::kSegmentsDb};
constexpr int kCount = 5;
constexpr int kSegments = 4;  // the one sub-database a store may lack (addSegments)

MDB_dbi* handleAt(StoreHandles* handles, int i) {
  MDB_dbi* all[] = {&handles->meta, &handles->arrays, &handles->blocks, &handles->log, &handles->segments};
  return all[i];
}

[[noreturn]] void foreign(const std::string& path, const std::string& why) {
  throw Error(ErrorCode::kFormat, "'" + path + "' holds an LMDB environment that is not a txarray store (" + why + ")");
}

void checkPlain(MDB_txn* txn, MDB_dbi dbi, const std::string& path, const char* name) {
  unsigned flags = 0;
  int rc = mdb_dbi_flags(txn, dbi, &flags);
  if (rc) throwLmdb(rc, "mdb_dbi_flags");
  if (flags != 0) foreign(path, std::string("sub-database '") + name + "' has flags " + std::to_string(flags));
}

std::string printable(const MDB_val& key) {
  std::string out;
  const auto* bytes = static_cast<const unsigned char*>(key.mv_data);
  for (size_t i = 0; i < key.mv_size && out.size() < 64; ++i) {
    out += bytes[i] >= 0x20 && bytes[i] < 0x7f ? char(bytes[i]) : '?';
  }
  return out;
}

}  // namespace

Identity identifyStore(MDB_txn* txn, const std::string& path, const files::MapBounds& bounds, StoreHandles* handles) {
  MDB_dbi main = 0;
  int rc = mdb_dbi_open(txn, nullptr, 0, &main);
  if (rc) throwLmdb(rc, "opening the main database");
  unsigned flags = 0;
  if ((rc = mdb_dbi_flags(txn, main, &flags))) throwLmdb(rc, "mdb_dbi_flags");
  if (flags != 0) foreign(path, "its main database has flags " + std::to_string(flags));

  bool seen[kCount] = {};
  int found = 0;
  MDB_cursor* cursor = nullptr;
  if ((rc = mdb_cursor_open(txn, main, &cursor))) throwLmdb(rc, "mdb_cursor_open");
  MDB_val k, v;
  std::string stranger;
  for (rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == 0 && stranger.empty();
       rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
    if (!bounds.contains(k.mv_data, k.mv_size)) {
      mdb_cursor_close(cursor);
      throw Error(ErrorCode::kCorrupt, "'" + path + "': a key of the main database lies outside the file");
    }
    int which = -1;
    for (int i = 0; i < kCount; ++i) {
      if (k.mv_size == strlen(kNames[i]) && memcmp(k.mv_data, kNames[i], k.mv_size) == 0) which = i;
    }
    if (which < 0) stranger = printable(k);
    else if (!seen[which]) seen[which] = true, ++found;
  }
  mdb_cursor_close(cursor);
  if (!stranger.empty()) foreign(path, "key '" + stranger + "'");
  if (rc != MDB_NOTFOUND) throwLmdb(rc, "reading the main database");
  if (found == 0) return Identity::kEmpty;
  for (int i = 0; i < kCount; ++i) {
    if (!seen[i] && i != kSegments) foreign(path, std::string("no sub-database '") + kNames[i] + "'");
  }

  for (int i = 0; i < kCount; ++i) {
    if (!seen[i]) continue;
    rc = mdb_dbi_open(txn, kNames[i], 0, handleAt(handles, i));
    if (rc == MDB_INCOMPATIBLE) foreign(path, std::string("'") + kNames[i] + "' is not a sub-database");
    if (rc) throwLmdb(rc, "mdb_dbi_open");
    checkPlain(txn, *handleAt(handles, i), path, kNames[i]);
  }
  handles->hasSegments = seen[kSegments];
  MDB_val key{6, const_cast<char*>("format")}, value;
  rc = mdb_get(txn, handles->meta, &key, &value);
  if (rc == MDB_NOTFOUND) foreign(path, "no format record");
  if (rc) throwLmdb(rc, "reading the format record");
  if (!bounds.contains(value.mv_data, value.mv_size)) {
    throw Error(ErrorCode::kCorrupt, "'" + path + "': the format record lies outside the file");
  }
  if (value.mv_size == 0) foreign(path, "an empty format record");
  return Identity::kStore;
}

bool initialiseStore(MDB_txn* txn, const std::string& format, StoreHandles* handles) {
  MDB_dbi main = 0;
  int rc = mdb_dbi_open(txn, nullptr, 0, &main);
  if (rc) throwLmdb(rc, "opening the main database");
  MDB_stat stat;
  if ((rc = mdb_stat(txn, main, &stat))) throwLmdb(rc, "mdb_stat");
  if (stat.ms_entries != 0) return false;
  for (int i = 0; i < kCount; ++i) {
    if ((rc = mdb_dbi_open(txn, kNames[i], MDB_CREATE, handleAt(handles, i)))) throwLmdb(rc, "creating a sub-database");
  }
  handles->hasSegments = true;
  MDB_val key{6, const_cast<char*>("format")}, value{format.size(), const_cast<char*>(format.data())};
  if ((rc = mdb_put(txn, handles->meta, &key, &value, 0))) throwLmdb(rc, "writing the format record");
  return true;
}

void addSegments(MDB_txn* txn, StoreHandles* handles) {
  int rc = mdb_dbi_open(txn, keys::kSegmentsDb, 0, &handles->segments);
  if (rc == 0) {  // another process added it
    handles->hasSegments = true;
    return;
  }
  if (rc != MDB_NOTFOUND) throwLmdb(rc, "mdb_dbi_open(segments)");
  if ((rc = mdb_dbi_open(txn, keys::kSegmentsDb, MDB_CREATE, &handles->segments))) throwLmdb(rc, "creating 'segments'");
  MDB_cursor* cursor = nullptr;
  if ((rc = mdb_cursor_open(txn, handles->log, &cursor))) throwLmdb(rc, "mdb_cursor_open(log)");
  MDB_val key, value;
  rc = mdb_cursor_get(cursor, &key, &value, MDB_LAST);
  uint8_t newest[8] = {};
  bool any = rc == 0 && key.mv_size == 8;
  if (any) memcpy(newest, key.mv_data, 8);
  mdb_cursor_close(cursor);
  if (rc != 0 && rc != MDB_NOTFOUND) throwLmdb(rc, "mdb_cursor_get(log)");
  if ((rc = mdb_drop(txn, handles->log, 0))) throwLmdb(rc, "emptying the log");
  if (any) {
    uint8_t mark = kPrunedMark;
    MDB_val k{8, newest}, v{1, &mark};
    if ((rc = mdb_put(txn, handles->log, &k, &v, 0))) throwLmdb(rc, "rewriting the log");
  }
  handles->hasSegments = true;
}

}  // namespace txa
