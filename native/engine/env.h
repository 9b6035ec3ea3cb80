// One LMDB environment, shared by every open() of the same path in this process.
//
// LMDB forbids opening one environment twice in a process (its locks are per process),
// so Env::acquire() keeps a process-wide registry keyed by the directory's real path:
// two Store handles, on the main thread or in worker threads, share one Env.
//
// Locking rules
//   mapLock   shared by anyone holding a pointer into LMDB's map (an MDB_val from a read
//             transaction, e.g. a BlockView being copied); exclusive only while the map
//             is re-mapped (growMap/adoptMapSize), which invalidates such pointers.
//             The lock is reader-preferring (glibc's default rwlock), which the fault
//             service relies on: a thread holding it shared may fault on a region, and
//             the fault thread then takes it shared too. A thread holding it shared never
//             touches a view of another array, though: in Uffd mode a fault there may wait
//             for a fetch, and the fetcher's thread may need it exclusively meanwhile (its
//             cache write grows the map).
//   writeLock serialises write transactions inside this process (LMDB serialises
//             processes with its own lock) and guards the NOSYNC flag toggle of commit.
//   Order: writeLock before mapLock. Never touch region memory while holding mapLock
//   exclusively.
#pragma once
#include <lmdb.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "commit_signal.h"
#include "store_files.h"
#include "store_identity.h"
#include "written_slack.h"

namespace txa {

struct EnvOptions {
  uint64_t mapSize = uint64_t(64) << 30;  // initial map size; grows by doubling when full
  unsigned maxReaders = 1022;             // snapshots open at once, all processes
  bool create = true;                     // create the directory and the store if missing
  bool readOnly = false;                  // open without write access (MDB_RDONLY)
  std::string format;                     // the format record a new store gets
};

class Env {
 public:
  // Opens (creating the directory and the store if allowed) or joins the shared
  // environment for `path`. Nothing is created or written until the directory is known
  // to hold a txarray store or none. Throws Error(kNotFound) for a missing store that
  // may not be created, kFormat for another program's environment, kCorrupt for a
  // damaged one, kDiskFull, kReadOnly (a writable open of a path this process has open
  // read-only), kStorage.
  static std::shared_ptr<Env> acquire(const std::string& path, const EnvOptions& options);
  ~Env();
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  MDB_env* raw() const { return env_; }
  MDB_dbi metaDb() const { return dbs_.meta; }
  MDB_dbi arraysDb() const { return dbs_.arrays; }
  MDB_dbi blocksDb() const { return dbs_.blocks; }
  MDB_dbi logDb() const { return dbs_.log; }
  MDB_dbi segmentsDb() const { return dbs_.segments; }
  // False for a read-only handle on a store whose last write-open predates named segments
  // (store_identity.h): it has no segments and its log is unreadable (treated as pruned).
  bool hasSegments() const { return dbs_.hasSegments; }
  const std::string& path() const { return path_; }
  // The environment's page size (mdb_env_stat's ms_psize): block data is aligned to it.
  size_t pageSize() const { return pageSize_; }
  // The descriptor of data.mdb (mdb_env_get_fd), open as long as this Env: block data is
  // read from it with pread at the offsets Snapshot::tryBlockLocation gives.
  int dataFd() const { return dataFd_; }
  bool readOnly() const { return readOnly_; }

  // True if [p, p + n), returned by a read transaction, lies inside data.mdb: a damaged
  // page can point past its end, where reading would kill the process. Hold mapLock shared.
  bool inFile(const void* p, size_t n) const { return bounds_.contains(p, n); }
  // The address of byte 0 of data.mdb in LMDB's map, checked (see MapBounds), or null when
  // unknown. Hold mapLock shared: a re-map moves it.
  const uint8_t* mapBase() const { return bounds_.verifiedBase(); }

  // Begins a transaction, adopting a map size grown by another process if needed. With
  // keepMapLock (a deferred lock on mapLock), returns with mapLock held shared in it: for
  // a caller that goes on reading through the transaction (a write transaction keeps it
  // to its end: a re-map must never run under an LMDB transaction that is using the map).
  MDB_txn* begin(unsigned flags, std::shared_lock<std::shared_mutex>* keepMapLock = nullptr);

  // Doubles the map size after MDB_MAP_FULL. Caller holds writeLock and no write txn.
  void growMap();

  // Durably flushes commits made with sync=false.
  void flush();

  // The newest commit serial, from a fresh read transaction.
  uint64_t currentSerial();
  // After a commit of this process: wakes waiters in every process.
  void signalCommit() { signal_->ring(); }
  // Blocks until a commit newer than `serial` exists (true) or `timeoutMs` passes
  // (false; negative, or more than a century, waits forever). Callable from any thread.
  // When `interrupted` is given and becomes true, returns false at the next wake-up:
  // whoever sets it calls wakeWaiters() so that the wake-up comes at once.
  bool waitForCommitAfter(uint64_t serial, int64_t timeoutMs, const std::atomic<bool>* interrupted = nullptr);
  // The commit doorbell (commit_signal.h), for a waiter that confirms commits itself:
  // sample it, then sleep until it differs from the sample or `timeoutMs` passes.
  uint32_t sampleDoorbell() const { return signal_->sample(); }
  void waitDoorbell(uint32_t seen, int64_t timeoutMs) const { signal_->wait(seen, timeoutMs); }
  // Wakes every waiter so that interrupted ones return. It rings the doorbell (the word
  // changes, so a waiter about to sleep does not miss it); waiters in other processes look
  // at the serial once and sleep again.
  void wakeWaiters() { signal_->ring(); }

  // Frees the reader-table slots of processes that died with a snapshot open (kill -9,
  // crash). LMDB only clears them when asked: a dead reader otherwise pins its old
  // snapshot forever, so freed pages are never reused (the file grows on every commit)
  // and, after enough crashes, mdb_txn_begin fails with MDB_READERS_FULL.
  void clearStaleReaders();

  std::shared_mutex mapLock;
  std::mutex writeLock;
  // Written room past data.mdb's last page for durable commits (written_slack.h). Guarded
  // by writeLock.
  WrittenSlack writtenSlack;

 private:
  Env() = default;
  void open(const std::string& path, const EnvOptions& options);
  // Creates env_ and opens it with `flags`; on failure closes it and returns LMDB's code.
  int openEnvironment(const EnvOptions& options, unsigned flags);
  // Identifies (and if allowed initialises) the store in the open environment.
  void adoptStore(const EnvOptions& options);
  void adoptMapSize();

  std::unique_ptr<CommitSignal> signal_;
  MDB_env* env_ = nullptr;
  StoreHandles dbs_;
  files::MapBounds bounds_;
  std::string path_;
  size_t pageSize_ = 0;
  int dataFd_ = -1;
  bool readOnly_ = false;
  bool locked_ = true;  // false: no lock file could be written (read-only directory)
};

}  // namespace txa
