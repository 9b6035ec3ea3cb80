#include "cache_flush.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <shared_mutex>

#include "env.h"
#include "error.h"
#include "txn_guard.h"

namespace txa {
namespace {

std::string markPath(const std::string& dir) { return dir + "/" + kUnflushedMark; }

// The kernel's id of this boot; empty when there is none to read.
std::string bootId() {
  int fd = ::open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buf[64];
  ssize_t n;
  do n = ::read(fd, buf, sizeof buf); while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n <= 0) return {};
  std::string id(buf, size_t(n));
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

void fsyncPath(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) throwErrno(errno, "open '" + path + "'");
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) throwErrno(err, "fsync '" + path + "'");
}

}  // namespace

bool markUnflushed(const std::string& dir) {
  const std::string path = markPath(dir);
  if (::access(path.c_str(), F_OK) == 0) return true;
  if (errno != ENOENT) throwErrno(errno, "access '" + path + "'");
  const std::string id = bootId();
  if (id.empty()) return false;
  // Written under a temporary name and renamed, so the mark never exists without its id.
  const std::string temp = path + ".tmp";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0664);
  if (fd < 0) throwErrno(errno, "open '" + temp + "'");
  const std::string text = id + "\n";
  ssize_t n;
  do n = ::write(fd, text.data(), text.size()); while (n < 0 && errno == EINTR);
  int err = n == ssize_t(text.size()) ? 0 : (n < 0 ? errno : EIO);
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  ::close(fd);
  if (err == 0 && ::rename(temp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlink(temp.c_str());
    throwErrno(err, "write '" + path + "'");
  }
  fsyncPath(dir, O_RDONLY | O_DIRECTORY);
  return true;
}

bool flushCache(Env& env) {
  const std::string path = markPath(env.path());
  std::lock_guard<std::mutex> writeGuard(env.writeLock);
  // A write transaction that changes nothing holds LMDB's writer lock: no process commits
  // between the fsync and the removal of the mark.
  TxnGuard txn(env.begin(0));
  if (::access(path.c_str(), F_OK) != 0) {
    if (errno != ENOENT) throwErrno(errno, "access '" + path + "'");
    return false;
  }
  int rc = mdb_env_sync(env.raw(), 1);
  if (rc) throwLmdb(rc, "mdb_env_sync");
  // The removal need not be durable: a mark that comes back after a crash only costs a
  // rebuild of a cache that was whole.
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) throwErrno(errno, "unlink '" + path + "'");
  return true;
}

}  // namespace txa
