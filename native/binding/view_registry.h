// The views (ArrayBuffers over array regions) one store handle has handed out, so that
// close(), a release of their array or a relocation of its region can detach them before
// the memory under them is unmapped: a detached view has byteLength 0 and cannot reach
// the old addresses.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace txa {
class TrackedArray;
}

namespace txa::binding {

class ViewRegistry {
 public:
  // Remembers `buffer` as a view of `array` (weakly: the GC may still collect it).
  void add(TrackedArray* array, Napi::ArrayBuffer buffer);
  // Detaches the views of `array`; of every array when null.
  void detach(TrackedArray* array);
  // The byte ranges of `array` (offset, bytes from its region's base) its live views cover.
  void rangesOf(TrackedArray* array, const uint8_t* base, std::vector<std::pair<uint64_t, uint64_t>>* out);

 private:
  struct Entry {
    TrackedArray* array;
    Napi::Reference<Napi::ArrayBuffer> buffer;
  };
  void forgetCollected();

  std::vector<Entry> views_;
  size_t addedSinceSweep_ = 0;
};

}  // namespace txa::binding
