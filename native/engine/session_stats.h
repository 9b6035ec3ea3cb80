// Counters a Store handle exposes through store.stats(): tests use them to check write
// amplification, benchmarks to report bytes per append.
#pragma once
#include <cstdint>

namespace txa {

struct SessionStats {
  uint64_t commits = 0;
  uint64_t conflicts = 0;
  uint64_t blocksWritten = 0;   // block values put by commits
  uint64_t bytesWritten = 0;    // block data bytes they hold (trailing zeros trimmed)
  uint64_t valueBytesWritten = 0;  // bytes of the values: header page and page rounding included
  uint64_t blocksRead = 0;      // block values fetched from a snapshot
  uint64_t checksumNanos = 0;   // time commits spent computing block checksums
  uint64_t checksumBytes = 0;   // data bytes they read for it (a block's unchanged prefix is not re-read)
};

}  // namespace txa
