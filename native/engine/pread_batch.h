// Reads pieces of block data from the data file with as few system calls as possible.
//
// A copy (read(), take()) reads a run of blocks piece by piece. Blocks one commit wrote
// lie mostly back to back in data.mdb, only a value's header page between one block's
// data and the next (measured: 99 % of the S1 bench's blocks). So pieces whose file
// ranges follow each other, with gaps of at most one page, are read by one preadv; the
// gaps land in a scratch page. A destination the kernel cannot write (EFAULT: a view's
// page not loaded yet, in SIGSEGV mode) is copied from LMDB's map instead, which loads it.
#pragma once
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace txa {

class PreadBatch {
 public:
  // `fd`: the data file; `pageSize`: the largest gap read into scratch.
  PreadBatch(int fd, size_t pageSize);
  PreadBatch(const PreadBatch&) = delete;
  PreadBatch& operator=(const PreadBatch&) = delete;

  // Queues n bytes at file offset `at` for dst; `map` is the same bytes in LMDB's map (the
  // EFAULT fallback: valid until flush()). Flushes first when the piece cannot join.
  void add(uint64_t at, uint8_t* dst, uint64_t n, const uint8_t* map);
  // Reads everything queued. Throws Error(kStorage) on an I/O error, Error(kCorrupt) if
  // the file ends early.
  void flush();
  bool empty() const { return pieces_.empty(); }

 private:
  struct Piece {
    uint64_t at;
    uint8_t* dst;
    uint64_t n;
    const uint8_t* map;
  };
  static constexpr size_t kMaxIov = 512;  // well under IOV_MAX (1024)

  int fd_;
  std::vector<uint8_t> gap_;  // one page: header pages between pieces are read into it
  std::vector<Piece> pieces_;
  std::vector<iovec> iov_;
  uint64_t start_ = 0, end_ = 0;  // the file range the queued pieces and gaps cover
};

// Reads up to n bytes at `offset` of `fd` into dst; returns how many it read, fewer only
// when the kernel cannot write dst (EFAULT). Throws as PreadBatch::flush does.
uint64_t preadUpTo(int fd, uint8_t* dst, uint64_t n, uint64_t offset);

}  // namespace txa
