#include "strided.h"

#include "error.h"

namespace txa {

uint64_t Strided::elementCount() const {
  uint64_t n = 1;
  for (uint64_t c : counts) n *= c;
  return n;
}

void Strided::checkWithin(uint64_t limit) const {
  if (elementCount() == 0) return;
  // Track extremes in signed 128-bit-safe steps: offsets fit in int64 for any array
  // that fits in a 64-bit address space.
  int64_t lo = int64_t(base), hi = int64_t(base);
  for (size_t i = 0; i < counts.size(); ++i) {
    int64_t span = int64_t(counts[i] - 1) * strides[i];
    if (span < 0) lo += span; else hi += span;
  }
  if (lo < 0 || uint64_t(hi) + itemBytes > limit) {
    throw Error(ErrorCode::kBounds, "selection reaches outside the array");
  }
}

void Strided::span(uint64_t* lo, uint64_t* hi) const {
  *lo = *hi = base;
  if (elementCount() == 0) return;
  int64_t low = int64_t(base), high = int64_t(base);
  for (size_t i = 0; i < counts.size(); ++i) {
    int64_t extent = int64_t(counts[i] - 1) * strides[i];
    if (extent < 0) low += extent; else high += extent;
  }
  *lo = uint64_t(low);
  *hi = uint64_t(high) + itemBytes;
}

void Strided::forEachRun(const std::function<void(uint64_t, uint64_t, uint64_t)>& visit) const {
  if (elementCount() == 0) return;
  // Collapse axes, innermost first: axis i folds into i+1 when stepping i equals
  // stepping past all of i+1. Axes of length 1 carry no layout and drop out.
  std::vector<uint64_t> n;
  std::vector<int64_t> s;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 1) continue;
    n.push_back(counts[i]);
    s.push_back(strides[i]);
  }
  std::vector<uint64_t> cn;
  std::vector<int64_t> cs;
  for (size_t i = n.size(); i-- > 0;) {
    if (!cn.empty() && s[i] == cs.front() * int64_t(cn.front())) {
      cn.front() *= n[i];
    } else {
      cn.insert(cn.begin(), n[i]);
      cs.insert(cs.begin(), s[i]);
    }
  }
  uint64_t runElems = 1;
  if (!cn.empty() && cs.back() == int64_t(itemBytes)) {  // innermost axis is contiguous
    runElems = cn.back();
    cn.pop_back();
    cs.pop_back();
  }
  const uint64_t runBytes = runElems * itemBytes;
  std::vector<uint64_t> index(cn.size(), 0);
  uint64_t dst = 0;
  int64_t offset = int64_t(base);
  for (;;) {
    visit(uint64_t(offset), runBytes, dst);
    dst += runBytes;
    size_t axis = cn.size();
    while (axis > 0) {
      --axis;
      if (++index[axis] < cn[axis]) {
        offset += cs[axis];
        break;
      }
      offset -= cs[axis] * int64_t(cn[axis] - 1);
      index[axis] = 0;
      if (axis == 0) return;
    }
    if (cn.empty()) return;
  }
}

}  // namespace txa
