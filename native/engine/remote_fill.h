// Filling the stubs of a lazily cached remote store (docs/scale-out.md, "Blocks fetched on
// demand"): the bytes of block versions fetched from the server are written over the
// cache's stubs of the same versions, so that later snapshots of every process read them
// locally. Versions are immutable, so the bytes of version S are right wherever the cache
// still holds the stub of S; where it holds another version (it caught up meanwhile) or
// the block in full, nothing is written.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "env.h"

namespace txa {

struct SessionStats;

struct FetchedBlock {
  uint64_t arrayId = 0, index = 0, serial = 0;
  std::string data;  // the version's bytes (trailing zeros may be trimmed)
};

// Writes the blocks over their stubs in one write transaction, not flushed (the cache's
// flush rule, cache_flush.h: the server holds them durably), and returns how many it wrote.
// No log entry: no snapshot's contents change.
uint64_t fillStubs(Env& env, const std::vector<FetchedBlock>& blocks, SessionStats* counters);

}  // namespace txa
