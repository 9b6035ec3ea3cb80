#include "env.h"

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>

#include "error.h"
#include "change_log.h"
#include "keys.h"

namespace txa {
namespace {

std::mutex gRegistryLock;
std::condition_variable gRegistryChanged;  // an entry was closed and erased

// An entry stays in the registry until its environment is closed, so that a reopen of
// the same path waits for the close instead of opening LMDB twice in one process.
std::map<std::string, std::weak_ptr<Env>>& registry() {
  static auto* map = new std::map<std::string, std::weak_ptr<Env>>();  // never destroyed:
  return *map;  // worker threads may still release Envs during process exit
}

std::string realDirectory(const std::string& path) {
  if (mkdir(path.c_str(), 0775) != 0 && errno != EEXIST) {
    throw Error(ErrorCode::kStorage, "cannot create store directory '" + path + "': " + strerror(errno));
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw Error(ErrorCode::kStorage, "store path '" + path + "' is not a directory");
  }
  char resolved[PATH_MAX];
  if (!realpath(path.c_str(), resolved)) {
    throw Error(ErrorCode::kStorage, "cannot resolve store path '" + path + "': " + strerror(errno));
  }
  return resolved;
}

}  // namespace

std::shared_ptr<Env> Env::acquire(const std::string& path, const EnvOptions& options) {
  std::string key = realDirectory(path);
  std::unique_lock<std::mutex> guard(gRegistryLock);
  auto& reg = registry();
  for (;;) {
    auto it = reg.find(key);
    if (it == reg.end()) break;
    if (auto existing = it->second.lock()) return existing;
    gRegistryChanged.wait(guard);  // the last handle is closing it right now
  }
  std::unique_ptr<Env> fresh(new Env());
  fresh->open(key, options);
  std::shared_ptr<Env> env(fresh.release(), [key](Env* closing) {
    delete closing;  // mdb_env_close, outside the registry lock
    std::lock_guard<std::mutex> relock(gRegistryLock);
    registry().erase(key);
    gRegistryChanged.notify_all();
  });
  reg[key] = env;
  return env;
}

void Env::open(const std::string& path, const EnvOptions& options) {
  path_ = path;
  signal_ = std::make_unique<CommitSignal>(path);
  int rc = mdb_env_create(&env_);
  if (rc) throwLmdb(rc, "mdb_env_create");
  auto fail = [&](int code, const char* what) {
    mdb_env_close(env_);
    env_ = nullptr;
    throwLmdb(code, what);
  };
  if ((rc = mdb_env_set_maxdbs(env_, 8))) fail(rc, "mdb_env_set_maxdbs");
  if ((rc = mdb_env_set_maxreaders(env_, options.maxReaders))) fail(rc, "mdb_env_set_maxreaders");
  if ((rc = mdb_env_set_mapsize(env_, options.mapSize))) fail(rc, "mdb_env_set_mapsize");
  // MDB_NOTLS: snapshots are tied to Store handles, not threads, and the fault-service
  // thread reads through a snapshot begun on the JavaScript thread.
  if ((rc = mdb_env_open(env_, path.c_str(), MDB_NOTLS, 0664))) fail(rc, "mdb_env_open");
  MDB_stat stat;
  if ((rc = mdb_env_stat(env_, &stat))) fail(rc, "mdb_env_stat");
  pageSize_ = stat.ms_psize;
  if (pageSize_ < 1024 || (pageSize_ & (pageSize_ - 1)) != 0) fail(MDB_INVALID, "page size");
  mdb_filehandle_t fd;
  if ((rc = mdb_env_get_fd(env_, &fd))) fail(rc, "mdb_env_get_fd");
  dataFd_ = fd;
  clearStaleReaders();

  const char* names[] = {keys::kMetaDb, keys::kArraysDb, keys::kBlocksDb, keys::kLogDb, keys::kSegmentsDb};
  constexpr int kDbs = 5;
  refuseForeignData(names, kDbs);

  MDB_txn* txn = nullptr;
  if ((rc = mdb_txn_begin(env_, nullptr, 0, &txn))) fail(rc, "mdb_txn_begin");
  MDB_dbi* handles[] = {&meta_, &arrays_, &blocks_, &log_, &segments_};
  for (int i = 0; i < kDbs; ++i) {
    if ((rc = mdb_dbi_open(txn, names[i], MDB_CREATE, handles[i]))) {
      mdb_txn_abort(txn);
      fail(rc, "mdb_dbi_open");
    }
  }
  if ((rc = mdb_txn_commit(txn))) fail(rc, "mdb_txn_commit");
}

// A txarray store's main database holds exactly our sub-databases. Anything else means
// another program's LMDB environment: refuse it before writing a single page to it.
void Env::refuseForeignData(const char* const* names, int count) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc) {
    mdb_env_close(env_);
    env_ = nullptr;
    throwLmdb(rc, "mdb_txn_begin");
  }
  MDB_dbi main = 0;
  MDB_cursor* cursor = nullptr;
  std::string foreign;
  rc = mdb_dbi_open(txn, nullptr, 0, &main);
  if (rc == 0) rc = mdb_cursor_open(txn, main, &cursor);
  MDB_val k, v;
  if (rc == 0) {
    for (rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == 0 && foreign.empty();
         rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
      std::string key(static_cast<const char*>(k.mv_data), k.mv_size);
      bool ours = false;
      for (int i = 0; i < count; ++i) ours = ours || key == names[i];
      if (!ours) foreign = key;
    }
    mdb_cursor_close(cursor);
    if (rc == MDB_NOTFOUND) rc = 0;
  }
  mdb_txn_abort(txn);
  if (rc == 0 && foreign.empty()) return;
  mdb_env_close(env_);
  env_ = nullptr;
  if (rc) throwLmdb(rc, "reading the main database");
  throw Error(ErrorCode::kFormat, "'" + path_ + "' holds an LMDB environment that is not a txarray store (key '" +
                                      foreign.substr(0, 64) + "')");
}

Env::~Env() {
  if (env_) mdb_env_close(env_);
}

MDB_txn* Env::begin(unsigned flags, std::shared_lock<std::shared_mutex>* keepMapLock) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    MDB_txn* txn = nullptr;
    // mdb_txn_begin reads the meta pages in the map: no re-map may run meanwhile.
    std::shared_lock<std::shared_mutex> guard(mapLock);
    int rc = mdb_txn_begin(env_, nullptr, flags, &txn);
    if (rc == 0) {
      if (keepMapLock) *keepMapLock = std::move(guard);
      return txn;
    }
    guard.unlock();
    if (rc == MDB_READERS_FULL && attempt == 0) {  // maybe slots of dead processes
      clearStaleReaders();
      continue;
    }
    if (rc != MDB_MAP_RESIZED) throwLmdb(rc, "mdb_txn_begin");
    adoptMapSize();
  }
  throw Error(ErrorCode::kStorage, "mdb_txn_begin: map kept being resized by other processes");
}

void Env::adoptMapSize() {
  std::unique_lock<std::shared_mutex> exclusive(mapLock);
  int rc = mdb_env_set_mapsize(env_, 0);  // 0: adopt the size recorded by the other process
  if (rc) throwLmdb(rc, "mdb_env_set_mapsize");
}

void Env::growMap() {
  std::unique_lock<std::shared_mutex> exclusive(mapLock);
  MDB_envinfo info;
  int rc = mdb_env_info(env_, &info);
  if (rc) throwLmdb(rc, "mdb_env_info");
  rc = mdb_env_set_mapsize(env_, info.me_mapsize * 2);
  if (rc) throwLmdb(rc, "mdb_env_set_mapsize");
}

void Env::clearStaleReaders() {
  // Best effort: on failure the slots stay, which is what happened before.
  int dead = 0;
  mdb_reader_check(env_, &dead);
}

uint64_t Env::currentSerial() {
  std::shared_lock<std::shared_mutex> mapGuard(mapLock, std::defer_lock);
  MDB_txn* txn = begin(MDB_RDONLY, &mapGuard);
  uint64_t serial = 0;
  try {
    serial = latestSerial(txn, log_);
  } catch (...) {
    mdb_txn_abort(txn);
    throw;
  }
  mdb_txn_abort(txn);
  return serial;
}

bool Env::waitForCommitAfter(uint64_t serial, int64_t timeoutMs, const std::atomic<bool>* cancel) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = timeoutMs < 0 ? Clock::time_point::max() : Clock::now() + std::chrono::milliseconds(timeoutMs);
  for (;;) {
    uint32_t seen = signal_->sample();  // sample first: a commit after this wakes us
    if (cancel && cancel->load(std::memory_order_acquire)) return false;
    if (currentSerial() > serial) return true;
    auto now = Clock::now();
    if (now >= deadline) return false;
    // Re-check LMDB at least every second, in case a committer died before ringing.
    int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    signal_->wait(seen, std::max<int64_t>(1, std::min<int64_t>(ms, 1000)));
  }
}

void Env::flush() {
  int rc = mdb_env_sync(env_, 1);
  if (rc) throwLmdb(rc, "mdb_env_sync");
}

}  // namespace txa
