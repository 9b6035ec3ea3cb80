// The files of a store directory as the operating system sees them, before LMDB does.
//
// LMDB maps lock.mdb and data.mdb into memory. Touching a page of a mapping that the
// file does not back kills the process with SIGBUS: a page of a sparse lock file that a
// full disk cannot allocate, or a page past the end of a data file cut shorter than its
// meta page claims. So the lock file's blocks are reserved before LMDB maps it, the data
// file's length is checked against the meta page before anything is read through the
// map, and values are checked to lie inside the file before they are copied.
#pragma once
#include <lmdb.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace txa::files {

struct DataFile {
  bool exists = false;
  uint64_t bytes = 0;
};

// data.mdb of the store directory `dir`.
DataFile statDataFile(const std::string& dir);

bool lockFileExists(const std::string& dir);

// True while a process holds LMDB's lock on lock.mdb (it has the environment open, or
// is creating it). Call only for a directory this process has no environment open on:
// closing a descriptor of the lock file drops this process's locks on it.
bool lockFileInUse(const std::string& dir);

// Makes sure lock.mdb exists with all its blocks allocated, so that LMDB's writes
// through its mapping cannot fault. A new lock file is prepared under a temporary name
// and linked into place, so no other process ever maps it half-sized; an existing one
// keeps its size (other processes sized their mappings by it) and gets its holes filled.
// Returns false when the directory or file is not writable (EACCES, EPERM, EROFS) and
// `tolerateReadOnly`; throws TXA_DISK_FULL when the disk is full, TXA_STORAGE otherwise.
bool reserveLockFile(const std::string& dir, unsigned maxReaders, bool tolerateReadOnly);

// After a failed creation: removes a still empty data.mdb, holding LMDB's exclusive
// lock so that no other process is creating it meanwhile. Best effort.
void removeEmptyDataFile(const std::string& dir);

// Throws TXA_CORRUPT unless data.mdb, open in `env`, holds every page its newest meta
// page claims.
void checkDataFileLength(MDB_env* env, const std::string& dir);

// True if the file system holding `dir` has (next to) no space left for us. LMDB reports
// a write cut short by a full disk as EIO; this tells that case apart.
bool noSpaceLeft(const std::string& dir);

// Keeps zeros allocated for at least 256 KiB past the last page of data.mdb (fallocate,
// which never shrinks a file other processes are writing): when fewer remain, extends the
// file to 1 MiB past it, so a stream of commits calls fallocate once per ~768 KiB. LMDB follows the offsets and sizes
// inside a page (up to 64 KiB each) without checking them: in a damaged page near the
// end of the file they would reach past it (SIGBUS), with the slack they reach zeros,
// which LMDB reports as corrupt or txarray's bounds checks refuse. Best effort: a file
// system without fallocate, or a full disk, leaves the file as it is.
void keepSlack(MDB_env* env);

// Where `env` maps data.mdb, to check that pointers LMDB returns lie inside the file.
class MapBounds {
 public:
  // Finds the mapping (call again after every re-map, under the exclusive map lock).
  // Without one, contains() is true.
  void locate(MDB_env* env);
  // True if [p, p + n) lies within the pages the newest meta page claims.
  bool contains(const void* p, size_t n) const;
  // The address of the map's first byte (file offset 0), or null when it is unknown. The
  // mapping found is checked once per locate(): its first two pages must be LMDB's meta
  // pages (page numbers 0 and 1, the meta flag, LMDB's magic). Then a value's file offset
  // is its address minus this, without touching the value's pages.
  const uint8_t* verifiedBase() const { return verified_.load(std::memory_order_acquire); }

 private:
  // Atomic: a reader that does not hold the map lock may check a pointer meanwhile.
  std::atomic<MDB_env*> env_{nullptr};
  std::atomic<const uint8_t*> base_{nullptr};
  std::atomic<const uint8_t*> verified_{nullptr};
  std::atomic<uint64_t> pageBytes_{0};
};

}  // namespace txa::files
