// Reads pieces of block data from the data file with as few system calls as possible.
//
// A copy (read(), take()) reads a run of blocks piece by piece. Blocks one commit wrote
// lie mostly back to back in data.mdb, only a value's header page between one block's
// data and the next (measured: 99 % of the S1 bench's blocks). So pieces whose file
// ranges follow each other, with gaps of at most one page, are read by one preadv; the
// gaps land in a scratch page. A destination the kernel cannot write (EFAULT: a view's
// page not loaded yet, in SIGSEGV mode) is copied from LMDB's map instead, which loads it.
//
// Threads: a batch made with threads > 1 keeps the runs flush() ends and reads them in
// finish() (or when kMaxPendingBytes are kept), up to that many threads reading disjoint
// runs at once, the calling thread one of them. Each destination byte belongs to one
// piece, so the order in which runs land does not matter. The threads only call preadv;
// a run the kernel cannot write (EFAULT) is finished on the calling thread after they
// have joined, from the map, so that no other thread ever faults in a view.
#pragma once
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace txa {

class PreadBatch {
 public:
  // `fd`: the data file; `pageSize`: the largest gap read into scratch; `threads`: how many
  // threads finish() may read with (1: every run is read when flush() ends it).
  PreadBatch(int fd, size_t pageSize, unsigned threads = 1);
  PreadBatch(const PreadBatch&) = delete;
  PreadBatch& operator=(const PreadBatch&) = delete;

  // Queues n bytes at file offset `at` for dst; `map` is the same bytes in LMDB's map (the
  // EFAULT fallback: valid until finish()). Ends the current run first when the piece
  // cannot join it.
  void add(uint64_t at, uint8_t* dst, uint64_t n, const uint8_t* map);
  // Ends the current run: reads it now (one thread) or keeps it for finish().
  void flush();
  // Reads everything queued and kept; after it, every piece added has landed. Throws
  // Error(kStorage) on an I/O error, Error(kCorrupt) if the file ends early; a throw may
  // leave any of the pieces read or not.
  void finish();
  bool empty() const { return pieces_.empty() && runs_.empty(); }

  // How many threads a large copy reads with: TXARRAY_COPY_THREADS (1-64) if set, else
  // the machine's cores, at most 4.
  static unsigned defaultThreads();
  // Copies smaller than this read on the calling thread alone (threads cost ~50 µs each).
  static constexpr uint64_t kThreadedMinBytes = 4u << 20;

 private:
  struct Piece {
    uint64_t at;
    uint8_t* dst;
    uint64_t n;
    const uint8_t* map;
  };
  // A run: iov_[iov0, iov1) read by preadv from file offset `start`, `total` bytes,
  // covering pieces_[piece0, piece1).
  struct Run {
    uint64_t start, total;
    size_t iov0, iov1, piece0, piece1;
  };
  static constexpr size_t kMaxIov = 512;  // per run: well under IOV_MAX (1024)
  static constexpr uint64_t kMaxPendingBytes = 64u << 20;

  // Reads `run` with preadv until done or EFAULT; returns the bytes read. Throws as finish().
  uint64_t readRun(const Run& run);
  // Finishes `run` from file offset start + done on, piece by piece, from the map where the
  // kernel cannot write. Calling thread only.
  void finishRun(const Run& run, uint64_t done);
  void readRuns();

  int fd_;
  unsigned threads_;
  std::vector<uint8_t> gap_;  // one page: header pages between pieces are read into it (never read back)
  std::vector<Piece> pieces_;
  std::vector<iovec> iov_;
  std::vector<Run> runs_;      // ended runs not read yet (threads > 1)
  uint64_t pendingBytes_ = 0;  // what runs_ covers
  size_t runIov0_ = 0, runPiece0_ = 0;  // where the current run starts in iov_ / pieces_
  uint64_t start_ = 0, end_ = 0;        // the file range the current run covers
};

// Reads up to n bytes at `offset` of `fd` into dst; returns how many it read, fewer only
// when the kernel cannot write dst (EFAULT). Throws as PreadBatch::finish does.
uint64_t preadUpTo(int fd, uint8_t* dst, uint64_t n, uint64_t offset);

}  // namespace txa
