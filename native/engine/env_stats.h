// Figures about a store's LMDB environment as a whole (for `txarray stat`), and a way to
// let go of the map pages a long sequential read has touched.
#pragma once
#include <cstdint>

#include "env.h"

namespace txa {

struct DbFigures {
  uint64_t entries = 0;
  uint64_t pages = 0;  // branch + leaf + overflow pages
};

struct EnvFigures {
  uint64_t mapBytes = 0;     // size of the memory map (address space, grows by doubling)
  uint64_t pageBytes = 0;
  uint64_t usedPages = 0;    // pages of the file in use: last page number + 1
  uint64_t freePages = 0;    // of those, free for reuse (listed in LMDB's free list)
  uint64_t fileBytes = 0;    // size of data.mdb
  unsigned readers = 0;      // reader slots held now, all processes
  unsigned maxReaders = 0;
  DbFigures meta, arrays, blocks, log;
};

// Reads the figures in a fresh read transaction of its own. Throws Error(kStorage).
EnvFigures readEnvFigures(Env& env);

// Drops this process's page-table entries of the whole map (madvise MADV_DONTNEED on a
// read-only shared file mapping: the data stays in the page cache and is faulted back
// on the next access). Resident memory then stops counting pages a scan touched once.
void releaseMappedPages(Env& env);

}  // namespace txa
