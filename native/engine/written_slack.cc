#include "written_slack.h"

#include <fcntl.h>
#include <lmdb.h>
#include <sys/uio.h>

#include <algorithm>
#include <mutex>
#include <shared_mutex>

#include "env.h"
#include "txn_guard.h"

namespace txa {
namespace {

// Linux 6.17's fallocate mode that allocates blocks as written zeros, using the device's
// write-zeroes command (no data transfer); older headers lack the name.
#ifndef FALLOC_FL_WRITE_ZEROES
#define FALLOC_FL_WRITE_ZEROES 0x80
#endif

// Bytes past LMDB's last page as of the newest commit.
bool lastPageEnd(MDB_env* env, uint64_t* out) noexcept {
  MDB_envinfo info;
  MDB_stat stat;
  if (mdb_env_info(env, &info) || mdb_env_stat(env, &stat)) return false;
  *out = (uint64_t(info.me_last_pgno) + 1) * stat.ms_psize;
  return true;
}

// Writes zeros over [from, to) of fd; false on any failure.
bool writeZeros(int fd, uint64_t from, uint64_t to) noexcept {
  if (fallocate(fd, FALLOC_FL_WRITE_ZEROES, off_t(from), off_t(to - from)) == 0) return true;
  static const char zeros[64 * 1024] = {};
  constexpr int kIov = 16;
  iovec iov[kIov];
  for (auto& v : iov) v = iovec{const_cast<char*>(zeros), sizeof zeros};
  while (from < to) {
    const uint64_t want = std::min<uint64_t>(to - from, uint64_t(kIov) * sizeof zeros);
    const int count = int((want + sizeof zeros - 1) / sizeof zeros);
    iov[count - 1].iov_len = size_t(want - uint64_t(count - 1) * sizeof zeros);
    const ssize_t n = pwritev(fd, iov, count, off_t(from));
    iov[count - 1].iov_len = sizeof zeros;
    if (n <= 0) return false;
    from += uint64_t(n);
  }
  return true;
}

}  // namespace

void WrittenSlack::afterDurableCommit(Env& env) noexcept {
  uint64_t end = 0;
  // Cheap test first (no lock): our own commit just moved the last page.
  if (!lastPageEnd(env.raw(), &end) || writtenEnd_ >= end + kLowBytes) return;
  try {
    // A write transaction that writes nothing: LMDB's writer lock, so the last page stays
    // where it is while the zeros go in past it.
    std::shared_lock<std::shared_mutex> mapGuard(env.mapLock, std::defer_lock);
    TxnGuard txn(env.begin(0, &mapGuard));
    if (!lastPageEnd(env.raw(), &end)) return;
    const uint64_t from = std::max(end, writtenEnd_);
    const uint64_t to = end + kHighBytes;
    if (from < to && writeZeros(env.dataFd(), from, to)) writtenEnd_ = to;
  } catch (...) {
    // best effort (header): no transaction, no zeros
  }
}

}  // namespace txa
