// An N-dimensional strided selection of a flat byte space, as produced by a numpy-style
// selection: element k = (k0, k1, ...) lives at  base + sum(k_i * strides[i]).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace txa {

struct Strided {
  uint64_t base = 0;               // byte offset of the first element
  std::vector<uint64_t> counts;    // elements per axis (outermost first)
  std::vector<int64_t> strides;    // bytes between neighbours per axis; may be negative
  uint32_t itemBytes = 1;

  uint64_t elementCount() const;

  // Smallest and one-past-largest byte offset touched; throws Error(kBounds) if the
  // selection leaves [0, limit). An empty selection touches nothing.
  void checkWithin(uint64_t limit) const;

  // The bytes [*lo, *hi) the selection touches (lo == hi when it is empty). Call after
  // checkWithin(), which guarantees they are in range.
  void span(uint64_t* lo, uint64_t* hi) const;

  // Calls visit(offset, bytes, dstIndex) for each maximal contiguous run, in C order of
  // the selection; dstIndex is the run's byte position in a dense output. Merges axes
  // whose layout is contiguous so that whole rows or whole windows become one run.
  void forEachRun(const std::function<void(uint64_t, uint64_t, uint64_t)>& visit) const;
};

}  // namespace txa
