#include "store_files.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "error.h"

namespace txa::files {
namespace {

// LMDB's reader table is one 64-byte slot per reader after a header smaller than 4 KiB.
// A lock file at least this long makes LMDB keep it as it is (and derive the number of
// slots from its length) instead of growing it with ftruncate, which leaves it sparse.
uint64_t lockFileBytes(unsigned maxReaders) {
  uint64_t bytes = uint64_t(maxReaders) * 64 + 8192;
  return (bytes + 4095) & ~uint64_t(4095);
}

bool isPermissionError(int err) { return err == EACCES || err == EPERM || err == EROFS; }

std::string lockPath(const std::string& dir) { return dir + "/lock.mdb"; }
std::string dataPath(const std::string& dir) { return dir + "/data.mdb"; }

// Fills the holes of an existing lock file without changing its length.
void fillLockFile(int fd, const std::string& path) {
  struct stat st;
  if (fstat(fd, &st) != 0) throwErrno(errno, "fstat '" + path + "'");
  if (st.st_size == 0) return;  // LMDB sizes an empty lock file itself
  int rc = posix_fallocate(fd, 0, st.st_size);
  if (rc && isDiskFull(rc)) throwErrno(rc, "reserving the blocks of '" + path + "'");
  // Other failures (a file system without block allocation) leave the file as LMDB made it.
}

enum class Created { kLinked, kNotWritable, kNoLinks };

// Creates a fully allocated lock file and links it into place (kLinked, also when
// another process linked its own first). Never replaces an existing lock file.
Created createLockFile(const std::string& dir, uint64_t bytes, bool tolerateReadOnly) {
  static std::atomic<unsigned> counter{0};
  std::string temp = dir + "/.lock.mdb." + std::to_string(getpid()) + "." + std::to_string(counter++) + ".tmp";
  int fd = open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0664);
  if (fd < 0) {
    int err = errno;
    if (tolerateReadOnly && isPermissionError(err)) return Created::kNotWritable;
    throwErrno(err, "creating a lock file in '" + dir + "'");
  }
  int rc = posix_fallocate(fd, 0, off_t(bytes));
  int linkErr = 0;
  if (rc == 0 && link(temp.c_str(), lockPath(dir).c_str()) != 0 && errno != EEXIST) linkErr = errno;
  int unlinkErr = unlink(temp.c_str()) == 0 ? 0 : errno;
  close(fd);
  if (rc && isDiskFull(rc)) throwErrno(rc, "reserving the blocks of '" + lockPath(dir) + "'");
  if (linkErr && isDiskFull(linkErr)) throwErrno(linkErr, "creating '" + lockPath(dir) + "'");
  if (unlinkErr && unlinkErr != ENOENT) throwErrno(unlinkErr, "removing '" + temp + "'");
  // No block allocation or no hard links on this file system: LMDB creates the file.
  return rc || linkErr ? Created::kNoLinks : Created::kLinked;
}

}  // namespace

DataFile statDataFile(const std::string& dir) {
  struct stat st;
  std::string path = dataPath(dir);
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return DataFile{};
    throwErrno(errno, "stat '" + path + "'");
  }
  return DataFile{true, uint64_t(st.st_size)};
}

bool lockFileExists(const std::string& dir) {
  struct stat st;
  if (stat(lockPath(dir).c_str(), &st) == 0) return true;
  if (errno == ENOENT) return false;
  throwErrno(errno, "stat '" + lockPath(dir) + "'");
}

bool lockFileInUse(const std::string& dir) {
  int fd = open(lockPath(dir).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct flock probe {};
  probe.l_type = F_WRLCK;  // LMDB's lock: byte 0, shared by users, exclusive while creating
  probe.l_whence = SEEK_SET;
  probe.l_start = 0;
  probe.l_len = 1;
  int rc = fcntl(fd, F_GETLK, &probe);
  close(fd);
  return rc != 0 || probe.l_type != F_UNLCK;  // in doubt, in use
}

bool reserveLockFile(const std::string& dir, unsigned maxReaders, bool tolerateReadOnly) {
  std::string path = lockPath(dir);
  for (int attempt = 0; attempt < 3; ++attempt) {
    int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
      try {
        fillLockFile(fd, path);
      } catch (...) {
        close(fd);
        throw;
      }
      close(fd);
      return true;
    }
    int err = errno;
    if (err == ENOENT) {
      Created created = createLockFile(dir, lockFileBytes(maxReaders), tolerateReadOnly);
      if (created == Created::kNotWritable) return false;
      if (created == Created::kNoLinks) return true;
      continue;  // open what is there now: ours, or another process's
    }
    if (tolerateReadOnly && isPermissionError(err)) return false;
    if (isPermissionError(err)) {
      throw Error(ErrorCode::kStorage, "cannot open '" + path + "' for writing (" + strerror(err) +
                                           "): open the store with readOnly: true to read it");
    }
    throwErrno(err, "opening '" + path + "'");
  }
  throw Error(ErrorCode::kStorage, "'" + path + "' keeps disappearing");
}

void removeEmptyDataFile(const std::string& dir) {
  int fd = open(lockPath(dir).c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return;
  struct flock exclusive {};
  exclusive.l_type = F_WRLCK;
  exclusive.l_whence = SEEK_SET;
  exclusive.l_start = 0;
  exclusive.l_len = 1;
  if (fcntl(fd, F_SETLK, &exclusive) == 0) {
    struct stat st;
    std::string path = dataPath(dir);
    if (stat(path.c_str(), &st) == 0 && st.st_size == 0) unlink(path.c_str());  // best effort
  }
  close(fd);  // releases the lock
}

void checkDataFileLength(MDB_env* env, const std::string& dir) {
  int fd = -1;
  int rc = mdb_env_get_fd(env, &fd);
  if (rc) throwLmdb(rc, "mdb_env_get_fd");
  // The meta page first: a writer in another process writes its pages before its meta
  // page, so the file read afterwards holds at least what the meta page read claims.
  MDB_envinfo info;
  MDB_stat stat;
  if ((rc = mdb_env_info(env, &info))) throwLmdb(rc, "mdb_env_info");
  if ((rc = mdb_env_stat(env, &stat))) throwLmdb(rc, "mdb_env_stat");
  struct stat st;
  if (fstat(fd, &st) != 0) throwErrno(errno, "fstat '" + dataPath(dir) + "'");
  uint64_t fileBytes = uint64_t(st.st_size);
  // (last + 1) * pageBytes <= fileBytes, written so that a damaged last page cannot overflow
  if (stat.ms_psize == 0 || uint64_t(info.me_last_pgno) >= fileBytes / stat.ms_psize) {
    throw Error(ErrorCode::kCorrupt, "'" + dataPath(dir) + "' is " + std::to_string(fileBytes) +
                                         " bytes long but its meta page claims page " +
                                         std::to_string(info.me_last_pgno) + " of " +
                                         std::to_string(stat.ms_psize) +
                                         " bytes: the file was cut short (or its meta page is damaged)");
  }
}

bool noSpaceLeft(const std::string& dir) {
  struct statvfs fs;
  if (statvfs(dir.c_str(), &fs) != 0) return false;
  // LMDB writes 64 pages (or one overflow run) at a time: when a write came back short
  // and less than 4 MiB is left, the disk filled up (a write of a larger overflow run that
  // failed with more left stays an EIO).
  return uint64_t(fs.f_bavail) * fs.f_frsize < (uint64_t(4) << 20);
}

void keepSlack(MDB_env* env) {
  constexpr uint64_t kSlackBytes = 256 * 1024;
  constexpr uint64_t kExtendBytes = 1024 * 1024;
  int fd = -1;
  MDB_envinfo info;
  MDB_stat stat;
  struct stat st;
  if (mdb_env_get_fd(env, &fd) || mdb_env_info(env, &info) || mdb_env_stat(env, &stat) || fstat(fd, &st) != 0) return;
  const uint64_t used = (uint64_t(info.me_last_pgno) + 1) * stat.ms_psize;
  if (uint64_t(st.st_size) >= used + kSlackBytes) return;
  // Mode 0 extends the file to offset + len if it is shorter, and never shrinks it.
  (void)fallocate(fd, 0, st.st_size, off_t(used + kExtendBytes - uint64_t(st.st_size)));  // best effort, see the header
}

namespace {

// True if `base` maps LMDB 0.9's two meta pages at page size `pageBytes`: each page
// header (pgno u64, pad u16, flags u16) names page 0 and 1 with the meta flag, and the
// meta that follows it starts with LMDB's magic. (mdb_env_info's me_mapaddr cannot say
// where the map is: it is the address a MDB_FIXEDMAP environment asks for.)
bool mapsMetaPages(const uint8_t* base, uint64_t pageBytes) {
  static_assert(MDB_VERSION_MAJOR == 0 && MDB_VERSION_MINOR == 9, "the page header layout is LMDB 0.9's");
  constexpr uint16_t kMetaPage = 0x08;        // P_META
  constexpr uint32_t kMagic = 0xBEEFC0DE;     // MDB_MAGIC
  constexpr size_t kPageHeader = 16;          // PAGEHDRSZ
  for (uint64_t pgno = 0; pgno < 2; pgno++) {
    const uint8_t* page = base + pgno * pageBytes;
    uint64_t number;
    uint16_t flags;
    uint32_t magic;
    memcpy(&number, page, 8);
    memcpy(&flags, page + 10, 2);
    memcpy(&magic, page + kPageHeader, 4);
    if (number != pgno || !(flags & kMetaPage) || magic != kMagic) return false;
  }
  return true;
}

}  // namespace

void MapBounds::locate(MDB_env* env) {
  env_.store(env, std::memory_order_relaxed);
  base_.store(nullptr, std::memory_order_relaxed);
  verified_.store(nullptr, std::memory_order_relaxed);
  MDB_stat stat;
  MDB_envinfo info;
  int fd = -1;
  struct stat st;
  if (mdb_env_stat(env, &stat) || mdb_env_info(env, &info) || mdb_env_get_fd(env, &fd) || fstat(fd, &st) != 0) return;
  pageBytes_.store(stat.ms_psize, std::memory_order_relaxed);
  FILE* maps = fopen("/proc/self/maps", "re");
  if (!maps) return;  // no /proc: pointers go unchecked
  char line[512];
  while (fgets(line, sizeof line, maps)) {
    unsigned long start = 0, end = 0, offset = 0, inode = 0;
    unsigned major = 0, minor = 0;
    char perms[5];
    if (sscanf(line, "%lx-%lx %4s %lx %x:%x %lu", &start, &end, perms, &offset, &major, &minor, &inode) != 7) continue;
    // The device number shown may differ from st_dev (overlay file systems): the inode,
    // offset and length identify LMDB's mapping.
    if (inode == st.st_ino && offset == 0 && end - start == info.me_mapsize) {
      base_.store(reinterpret_cast<const uint8_t*>(start), std::memory_order_release);
      break;
    }
  }
  fclose(maps);
  const uint8_t* base = base_.load(std::memory_order_relaxed);
  // The two meta pages exist in every environment LMDB has opened (it writes them first).
  if (base && uint64_t(st.st_size) >= 2 * uint64_t(stat.ms_psize) && mapsMetaPages(base, stat.ms_psize)) {
    verified_.store(base, std::memory_order_release);
  }
}

bool MapBounds::contains(const void* p, size_t n) const {
  const uint8_t* base = base_.load(std::memory_order_acquire);
  MDB_env* env = env_.load(std::memory_order_relaxed);
  if (!base || !env) return true;
  MDB_envinfo info;
  if (mdb_env_info(env, &info)) return true;
  uint64_t end = (uint64_t(info.me_last_pgno) + 1) * pageBytes_.load(std::memory_order_relaxed);
  auto* at = static_cast<const uint8_t*>(p);
  if (at < base) return false;
  uint64_t offset = uint64_t(at - base);
  return offset <= end && uint64_t(n) <= end - offset;
}

}  // namespace txa::files
