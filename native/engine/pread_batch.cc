#include "pread_batch.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "../iovec_advance.h"
#include "error.h"

namespace txa {

uint64_t preadUpTo(int fd, uint8_t* dst, uint64_t n, uint64_t offset) {
  uint64_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, dst + done, size_t(n - done), off_t(offset + done));
    if (r > 0) {
      done += uint64_t(r);
    } else if (r == 0) {
      throw Error(ErrorCode::kCorrupt, "the data file ends inside a block (truncated?)");
    } else if (errno == EFAULT) {
      return done;
    } else if (errno != EINTR) {
      throw Error(ErrorCode::kStorage, std::string("pread of the data file: ") + strerror(errno));
    }
  }
  return done;
}

PreadBatch::PreadBatch(int fd, size_t pageSize) : fd_(fd), gap_(pageSize) {
  pieces_.reserve(kMaxIov / 2);
  iov_.reserve(kMaxIov);
}

void PreadBatch::add(uint64_t at, uint8_t* dst, uint64_t n, const uint8_t* map) {
  if (!pieces_.empty()) {
    const bool joins = at >= end_ && at - end_ <= gap_.size() && iov_.size() + 2 <= kMaxIov;
    if (!joins) flush();
  }
  if (pieces_.empty()) {
    start_ = end_ = at;
  } else if (at > end_) {
    iov_.push_back(iovec{gap_.data(), size_t(at - end_)});
  }
  iov_.push_back(iovec{dst, size_t(n)});
  pieces_.push_back(Piece{at, dst, n, map});
  end_ = at + n;
}

void PreadBatch::flush() {
  if (pieces_.empty()) return;
  const uint64_t total = end_ - start_;
  uint64_t done = 0;
  size_t first = 0;  // iov_[first] is the first not fully read; iov_ is consumed as we go
  while (done < total) {
    ssize_t r = preadv(fd_, iov_.data() + first, int(iov_.size() - first), off_t(start_ + done));
    if (r == 0) throw Error(ErrorCode::kCorrupt, "the data file ends inside a block (truncated?)");
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EFAULT) break;
      throw Error(ErrorCode::kStorage, std::string("preadv of the data file: ") + strerror(errno));
    }
    done += uint64_t(r);
    advanceIovecs(iov_.data(), iov_.size(), &first, uint64_t(r));
  }
  if (done < total) {
    // EFAULT: the pieces from file offset start_ + done on, one at a time, falling back
    // to the map for what the kernel cannot write.
    const uint64_t reached = start_ + done;
    for (const Piece& p : pieces_) {
      if (p.at + p.n <= reached) continue;
      uint64_t skip = reached > p.at ? reached - p.at : 0;
      uint64_t got = preadUpTo(fd_, p.dst + skip, p.n - skip, p.at + skip);
      if (skip + got < p.n) memcpy(p.dst + skip + got, p.map + skip + got, size_t(p.n - skip - got));
    }
  }
  pieces_.clear();
  iov_.clear();
}

}  // namespace txa
