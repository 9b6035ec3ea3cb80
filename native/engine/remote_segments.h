// Named segments of a remote store written into the local store that caches it
// (catch-up, docs/scale-out.md "Named segments"). The server keeps one row per segment
// name of an array with its newest state (its range, or deleted); catch-up brings the
// rows changed after the cache's serial, and each replaces what the cache holds for that
// name, in the two keys of keys.h's `segments` layout (by name, and by row).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "block_store.h"

namespace txa {

struct RemoteSegment {
  uint64_t arrayId = 0;
  std::string name;              // the name's UTF-8 bytes
  uint64_t start = 0, stop = 0;  // rows [start, stop) of axis 0
  bool deleted = false;          // the name was deleted: the cache forgets it
};

// Writes `segments` in the open write: each name's keys are replaced by its new range, or
// removed. Throws Error(kFormat) for a segment that ends before it starts or a stored
// range that is damaged.
void applyRemoteSegments(BlockWrite& write, const std::vector<RemoteSegment>& segments);

// Removes every segment of array `id` (the array was deleted).
void dropRemoteSegments(BlockWrite& write, uint64_t id);

}  // namespace txa
