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

std::string missingStore(const std::string& path, const EnvOptions& options) {
  return "no txarray store at '" + path + "'" +
         (options.readOnly ? " (readOnly never creates one)" : " (open it with create: true to create one)");
}

// The real path of the store directory, created (not its parents) if allowed.
std::string storeDirectory(const std::string& path, const EnvOptions& options) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) throwErrno(errno, "cannot reach store path '" + path + "'");
    if (!options.create || options.readOnly) throw Error(ErrorCode::kNotFound, missingStore(path, options));
    if (mkdir(path.c_str(), 0775) != 0 && errno != EEXIST) {
      if (errno == ENOENT) {
        throw Error(ErrorCode::kNotFound, "cannot create store directory '" + path + "': its parent directory does not exist");
      }
      throwErrno(errno, "cannot create store directory '" + path + "'");
    }
    if (stat(path.c_str(), &st) != 0) throwErrno(errno, "cannot reach store path '" + path + "'");
  }
  if (!S_ISDIR(st.st_mode)) throw Error(ErrorCode::kStorage, "store path '" + path + "' is not a directory");
  char resolved[PATH_MAX];
  if (!realpath(path.c_str(), resolved)) throwErrno(errno, "cannot resolve store path '" + path + "'");
  return resolved;
}

void closeEnv(MDB_env** env) {
  if (*env) mdb_env_close(*env);
  *env = nullptr;
}

// Begins a read transaction on an environment no other thread uses yet, adopting a map
// grown by another process meanwhile (MDB_MAP_RESIZED).
MDB_txn* beginReading(MDB_env* env) {
  for (int attempt = 0;; ++attempt) {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);
    if (rc == 0) return txn;
    if (rc != MDB_MAP_RESIZED || attempt == 8) throwLmdb(rc, "mdb_txn_begin");
    if ((rc = mdb_env_set_mapsize(env, 0))) throwLmdb(rc, "mdb_env_set_mapsize");
  }
}

// Identifies an existing data file that has no lock file yet, without creating one:
// LMDB opened read-only and unlocked (nobody else is using it: it has no lock file).
Identity probeWithoutLock(const std::string& path, const EnvOptions& options) {
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc) throwLmdb(rc, "mdb_env_create");
  try {
    if ((rc = mdb_env_set_maxdbs(env, 8)) || (rc = mdb_env_set_mapsize(env, options.mapSize)) ||
        (rc = mdb_env_open(env, path.c_str(), MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0664))) {
      throwLmdb(rc, "mdb_env_open");
    }
    files::checkDataFileLength(env, path);
    files::MapBounds bounds;
    bounds.locate(env);
    MDB_txn* txn = beginReading(env);
    StoreHandles ignored;
    Identity identity;
    try {
      identity = identifyStore(txn, path, bounds, &ignored);
    } catch (...) {
      mdb_txn_abort(txn);
      throw;
    }
    mdb_txn_abort(txn);
    closeEnv(&env);
    return identity;
  } catch (...) {
    closeEnv(&env);
    throw;
  }
}

}  // namespace

std::shared_ptr<Env> Env::acquire(const std::string& path, const EnvOptions& options) {
  std::string key = storeDirectory(path, options);
  std::unique_lock<std::mutex> guard(gRegistryLock);
  auto& reg = registry();
  for (;;) {
    auto it = reg.find(key);
    if (it == reg.end()) break;
    if (auto existing = it->second.lock()) {
      if (existing->readOnly() && !options.readOnly) {
        throw Error(ErrorCode::kReadOnly, "'" + path + "' is open read-only in this process: close those handles before opening it for writing");
      }
      return existing;
    }
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

// Decides what the directory holds before creating or writing anything:
//   no data.mdb        a new store, if allowed (else kNotFound)
//   an empty data.mdb  damage, unless another process is creating the store right now
//   no lock.mdb        inspected read-only and unlocked first: a foreign or damaged
//                      environment is refused without a lock file left behind
// then reserves the lock file, opens LMDB, checks the data file against its meta page,
// and identifies (or initialises) the store. The commit-signal file comes last.
void Env::open(const std::string& path, const EnvOptions& options) {
  path_ = path;
  readOnly_ = options.readOnly;
  const bool mayCreate = options.create && !options.readOnly;
  files::DataFile data = files::statDataFile(path);
  if (!data.exists && !mayCreate) throw Error(ErrorCode::kNotFound, missingStore(path, options));
  if (data.exists && data.bytes == 0 && !files::lockFileInUse(path)) {
    throw Error(ErrorCode::kCorrupt, "'" + path + "/data.mdb' is empty (0 bytes): the store's data file was cut short");
  }
  if (data.exists && data.bytes > 0 && !files::lockFileExists(path) &&
      probeWithoutLock(path, options) == Identity::kEmpty && !mayCreate) {
    throw Error(ErrorCode::kNotFound, missingStore(path, options));
  }

  locked_ = files::reserveLockFile(path, options.maxReaders, options.readOnly);
  unsigned flags = MDB_NOTLS | (options.readOnly ? MDB_RDONLY : 0);
  int rc = openEnvironment(options, flags | (locked_ ? 0 : MDB_NOLOCK));
  if (rc && options.readOnly && locked_ && (rc == EACCES || rc == EPERM || rc == EROFS)) {
    locked_ = false;  // a lock file we may not write: read without one
    rc = openEnvironment(options, flags | MDB_NOLOCK);
  }
  if (rc) {
    if (!data.exists) files::removeEmptyDataFile(path);  // a failed creation leaves no empty file
    if (rc == EACCES || rc == EPERM) {
      throw Error(ErrorCode::kStorage, "cannot open the store at '" + path + "' (" + mdb_strerror(rc) + ")" +
                                           (options.readOnly ? "" : ": open it with readOnly: true to read it"));
    }
    throwLmdb(rc, "mdb_env_open");
  }
  try {
    files::checkDataFileLength(env_, path);
    MDB_stat stat;
    if ((rc = mdb_env_stat(env_, &stat))) throwLmdb(rc, "mdb_env_stat");
    pageSize_ = stat.ms_psize;
    if (pageSize_ < 1024 || (pageSize_ & (pageSize_ - 1)) != 0) throwLmdb(MDB_INVALID, "page size");
    mdb_filehandle_t fd;
    if ((rc = mdb_env_get_fd(env_, &fd))) throwLmdb(rc, "mdb_env_get_fd");
    dataFd_ = fd;
    bounds_.locate(env_);
    if (locked_) clearStaleReaders();
    adoptStore(options);
    if (!options.readOnly) files::keepSlack(env_);
  } catch (...) {
    closeEnv(&env_);
    throw;
  }
  signal_ = std::make_unique<CommitSignal>(path, options.readOnly);
}

int Env::openEnvironment(const EnvOptions& options, unsigned flags) {
  int rc = mdb_env_create(&env_);
  if (rc) return rc;
  if ((rc = mdb_env_set_maxdbs(env_, 8)) || (rc = mdb_env_set_maxreaders(env_, options.maxReaders)) ||
      (rc = mdb_env_set_mapsize(env_, options.mapSize)) ||
      // MDB_NOTLS: snapshots are tied to Store handles, not threads, and the fault-service
      // thread reads through a snapshot begun on the JavaScript thread.
      (rc = mdb_env_open(env_, path_.c_str(), flags, 0664))) {
    closeEnv(&env_);
  }
  return rc;
}

void Env::adoptStore(const EnvOptions& options) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    MDB_txn* txn = begin(MDB_RDONLY);
    Identity identity;
    try {
      identity = identifyStore(txn, path_, bounds_, &dbs_);
    } catch (...) {
      mdb_txn_abort(txn);
      throw;
    }
    if (identity == Identity::kStore) {
      int rc = mdb_txn_commit(txn);  // a read transaction's commit keeps its database handles
      if (rc) throwLmdb(rc, "mdb_txn_commit");
      if (!dbs_.hasSegments && !options.readOnly) {
        txn = begin(0);
        try {
          addSegments(txn, &dbs_);
        } catch (...) {
          mdb_txn_abort(txn);
          throw;
        }
        if ((rc = mdb_txn_commit(txn))) throwLmdb(rc, "adding the segments database");
      }
      return;
    }
    mdb_txn_abort(txn);
    if (!options.create || options.readOnly) throw Error(ErrorCode::kNotFound, missingStore(path_, options));
    txn = begin(0);
    try {
      if (initialiseStore(txn, options.format, &dbs_)) {
        MDB_txn* committing = txn;
        txn = nullptr;
        int rc = mdb_txn_commit(committing);
        if (rc) throwLmdb(rc, "creating the store");
      } else {
        mdb_txn_abort(txn);  // another process created it: identify that
      }
    } catch (...) {
      if (txn) mdb_txn_abort(txn);
      throw;
    }
  }
  throw Error(ErrorCode::kStorage, "'" + path_ + "': the store could not be identified after it was created");
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
  bounds_.locate(env_);
}

void Env::growMap() {
  std::unique_lock<std::shared_mutex> exclusive(mapLock);
  MDB_envinfo info;
  int rc = mdb_env_info(env_, &info);
  if (rc) throwLmdb(rc, "mdb_env_info");
  rc = mdb_env_set_mapsize(env_, info.me_mapsize * 2);
  if (rc) throwLmdb(rc, "mdb_env_set_mapsize");
  bounds_.locate(env_);
}

void Env::clearStaleReaders() {
  if (!locked_) return;  // no reader table
  // Best effort: on failure the slots stay, which is what happened before.
  int dead = 0;
  mdb_reader_check(env_, &dead);
}

uint64_t Env::currentSerial() {
  std::shared_lock<std::shared_mutex> mapGuard(mapLock, std::defer_lock);
  MDB_txn* txn = begin(MDB_RDONLY, &mapGuard);
  uint64_t serial = 0;
  try {
    serial = latestSerial(txn, dbs_.log);
  } catch (...) {
    mdb_txn_abort(txn);
    throw;
  }
  mdb_txn_abort(txn);
  return serial;
}

bool Env::waitForCommitAfter(uint64_t serial, int64_t timeoutMs, const std::atomic<bool>* interrupted) {
  using Clock = std::chrono::steady_clock;
  // A century at most: now + timeoutMs must not overflow the clock (about 292 years of
  // nanoseconds), which turned waits of 9.2e12 ms and more into no wait at all.
  constexpr int64_t kForeverMs = int64_t(100) * 365 * 24 * 3600 * 1000;
  const auto deadline = timeoutMs < 0 || timeoutMs > kForeverMs ? Clock::time_point::max()
                                                                 : Clock::now() + std::chrono::milliseconds(timeoutMs);
  for (;;) {
    uint32_t seen = signal_->sample();  // sample first: a commit after this wakes us
    if (currentSerial() > serial) return true;
    if (interrupted && interrupted->load(std::memory_order_acquire)) return false;
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
