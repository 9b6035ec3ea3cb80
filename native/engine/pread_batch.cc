#include "pread_batch.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

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

unsigned PreadBatch::defaultThreads() {
  static const unsigned n = [] {
    if (const char* v = getenv("TXARRAY_COPY_THREADS")) {
      const long k = strtol(v, nullptr, 10);
      if (k >= 1 && k <= 64) return unsigned(k);
    }
    return std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  }();
  return n;
}

PreadBatch::PreadBatch(int fd, size_t pageSize, unsigned threads)
    : fd_(fd), threads_(std::max(threads, 1u)), gap_(pageSize) {
  pieces_.reserve(kMaxIov / 2);
  iov_.reserve(kMaxIov);
}

void PreadBatch::add(uint64_t at, uint8_t* dst, uint64_t n, const uint8_t* map) {
  if (pieces_.size() > runPiece0_) {
    const bool joins = at >= end_ && at - end_ <= gap_.size() && iov_.size() - runIov0_ + 2 <= kMaxIov;
    if (!joins) flush();
  }
  if (pieces_.size() == runPiece0_) {
    start_ = end_ = at;
  } else if (at > end_) {
    iov_.push_back(iovec{gap_.data(), size_t(at - end_)});
  }
  iov_.push_back(iovec{dst, size_t(n)});
  pieces_.push_back(Piece{at, dst, n, map});
  end_ = at + n;
}

void PreadBatch::flush() {
  if (pieces_.size() == runPiece0_) return;
  runs_.push_back(Run{start_, end_ - start_, runIov0_, iov_.size(), runPiece0_, pieces_.size()});
  pendingBytes_ += end_ - start_;
  runIov0_ = iov_.size();
  runPiece0_ = pieces_.size();
  if (threads_ == 1 || pendingBytes_ >= kMaxPendingBytes) readRuns();
}

void PreadBatch::finish() {
  flush();
  readRuns();
}

uint64_t PreadBatch::readRun(const Run& run) {
  // Each call reads into its own copy of the run's iovecs: advancing consumes them.
  iovec local[kMaxIov];
  const size_t count = run.iov1 - run.iov0;
  std::copy(iov_.begin() + long(run.iov0), iov_.begin() + long(run.iov1), local);
  uint64_t done = 0;
  size_t first = 0;  // local[first] is the first not fully read
  while (done < run.total) {
    ssize_t r = preadv(fd_, local + first, int(count - first), off_t(run.start + done));
    if (r == 0) throw Error(ErrorCode::kCorrupt, "the data file ends inside a block (truncated?)");
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EFAULT) break;
      throw Error(ErrorCode::kStorage, std::string("preadv of the data file: ") + strerror(errno));
    }
    done += uint64_t(r);
    advanceIovecs(local, count, &first, uint64_t(r));
  }
  return done;
}

void PreadBatch::finishRun(const Run& run, uint64_t done) {
  const uint64_t reached = run.start + done;
  for (size_t i = run.piece0; i < run.piece1; i++) {
    const Piece& p = pieces_[i];
    if (p.at + p.n <= reached) continue;
    const uint64_t skip = reached > p.at ? reached - p.at : 0;
    const uint64_t got = preadUpTo(fd_, p.dst + skip, p.n - skip, p.at + skip);
    if (skip + got < p.n) memcpy(p.dst + skip + got, p.map + skip + got, size_t(p.n - skip - got));
  }
}

void PreadBatch::readRuns() {
  // Whatever happens, the batch is empty afterwards.
  struct Reset {
    PreadBatch* b;
    ~Reset() {
      b->runs_.clear();
      b->pieces_.clear();
      b->iov_.clear();
      b->runIov0_ = b->runPiece0_ = 0;
      b->pendingBytes_ = 0;
    }
  } reset{this};
  const size_t n = runs_.size();
  const unsigned helpers = n ? unsigned(std::min<size_t>(threads_, n)) - 1 : 0;
  if (helpers == 0) {  // one thread: each run read and finished in turn, nothing allocated
    for (const Run& run : runs_) {
      const uint64_t done = readRun(run);
      if (done < run.total) finishRun(run, done);
    }
    return;
  }
  std::vector<uint64_t> done(n, 0);
  {
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex errorMu;
    std::exception_ptr error;
    auto work = [&] {
      try {
        for (size_t i; !failed.load(std::memory_order_relaxed) && (i = next.fetch_add(1)) < n;) {
          done[i] = readRun(runs_[i]);
        }
      } catch (...) {
        std::lock_guard<std::mutex> g(errorMu);
        if (!error) error = std::current_exception();
        failed.store(true);
      }
    };
    std::vector<std::thread> started;
    started.reserve(helpers);
    for (unsigned t = 0; t < helpers; t++) {
      try {
        started.emplace_back(work);
      } catch (const std::system_error&) {
        break;  // no more threads to be had: the ones started and this one read it all
      }
    }
    work();
    for (std::thread& t : started) t.join();
    if (error) std::rethrow_exception(error);
  }
  for (size_t i = 0; i < n; i++) {
    if (done[i] < runs_[i].total) finishRun(runs_[i], done[i]);
  }
}

}  // namespace txa
