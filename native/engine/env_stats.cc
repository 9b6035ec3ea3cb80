#include "env_stats.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "error.h"

namespace txa {
namespace {

DbFigures figuresOf(MDB_txn* txn, MDB_dbi dbi) {
  MDB_stat st;
  int rc = mdb_stat(txn, dbi, &st);
  if (rc) throwLmdb(rc, "mdb_stat");
  return {st.ms_entries, st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages};
}

// Free pages listed in LMDB's free list (sub-database 0): each value is a page-number
// list whose first word is its length.
uint64_t countFreePages(MDB_txn* txn) {
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn, 0, &cursor);
  if (rc) throwLmdb(rc, "mdb_cursor_open");
  uint64_t pages = 0;
  MDB_val key, data;
  while ((rc = mdb_cursor_get(cursor, &key, &data, MDB_NEXT)) == 0) {
    if (data.mv_size >= sizeof(size_t)) {
      size_t count;
      std::memcpy(&count, data.mv_data, sizeof count);
      pages += count;
    }
  }
  mdb_cursor_close(cursor);
  if (rc != MDB_NOTFOUND) throwLmdb(rc, "mdb_cursor_get");
  return pages;
}

int countReaderLine(const char* msg, void* ctx) {
  // one header line, then one line per slot in use: "<pid> <thread> <txnid>"
  const char* p = msg;
  while (*p == ' ') ++p;
  if (*p >= '0' && *p <= '9') ++*static_cast<unsigned*>(ctx);
  return 0;
}

}  // namespace

EnvFigures readEnvFigures(Env& env) {
  EnvFigures out;
  MDB_envinfo info;
  int rc = mdb_env_info(env.raw(), &info);
  if (rc) throwLmdb(rc, "mdb_env_info");
  MDB_stat envStat;
  rc = mdb_env_stat(env.raw(), &envStat);
  if (rc) throwLmdb(rc, "mdb_env_stat");
  out.mapBytes = info.me_mapsize;
  out.pageBytes = envStat.ms_psize;
  out.maxReaders = info.me_maxreaders;
  if (mdb_reader_list(env.raw(), countReaderLine, &out.readers) < 0) throw Error(ErrorCode::kStorage, "mdb_reader_list failed");
  struct stat st;
  std::string file = env.path() + "/data.mdb";
  if (stat(file.c_str(), &st) != 0) throw Error(ErrorCode::kStorage, "stat " + file + ": " + strerror(errno));
  out.fileBytes = uint64_t(st.st_size);

  std::shared_lock<std::shared_mutex> mapGuard(env.mapLock, std::defer_lock);
  MDB_txn* txn = env.begin(MDB_RDONLY, &mapGuard);
  try {
    MDB_envinfo now;
    rc = mdb_env_info(env.raw(), &now);
    if (rc) throwLmdb(rc, "mdb_env_info");
    out.usedPages = now.me_last_pgno + 1;
    out.freePages = countFreePages(txn);
    out.meta = figuresOf(txn, env.metaDb());
    out.arrays = figuresOf(txn, env.arraysDb());
    out.blocks = figuresOf(txn, env.blocksDb());
    out.log = figuresOf(txn, env.logDb());
  } catch (...) {
    mdb_txn_abort(txn);
    throw;
  }
  mdb_txn_abort(txn);
  return out;
}

void releaseMappedPages(Env& env) {
  // LMDB does not tell where its map is (me_mapaddr is only set with MDB_FIXEDMAP): find
  // the mappings of data.mdb in /proc/self/maps.
  std::shared_lock<std::shared_mutex> mapGuard(env.mapLock);
  const std::string file = env.path() + "/data.mdb";
  FILE* maps = std::fopen("/proc/self/maps", "r");
  if (!maps) throw Error(ErrorCode::kStorage, std::string("open /proc/self/maps: ") + strerror(errno));
  char line[4096 + 256];
  std::string failure;
  while (std::fgets(line, sizeof line, maps)) {
    std::string text(line);
    if (!text.empty() && text.back() == '\n') text.pop_back();
    if (text.size() < file.size() || text.compare(text.size() - file.size(), file.size(), file) != 0) continue;
    unsigned long long start = 0, end = 0;
    if (std::sscanf(line, "%llx-%llx", &start, &end) != 2 || end <= start) continue;
    if (madvise(reinterpret_cast<void*>(uintptr_t(start)), size_t(end - start), MADV_DONTNEED) != 0) {
      failure = std::string("madvise(MADV_DONTNEED) of the map: ") + strerror(errno);
      break;
    }
  }
  std::fclose(maps);
  if (!failure.empty()) throw Error(ErrorCode::kStorage, failure);
}

}  // namespace txa
