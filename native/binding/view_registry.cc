#include "view_registry.h"

#include <utility>

namespace txa::binding {

namespace {
constexpr size_t kAddsPerSweep = 1024;
}

void ViewRegistry::add(TrackedArray* array, Napi::ArrayBuffer buffer) {
  if (++addedSinceSweep_ >= kAddsPerSweep) {
    addedSinceSweep_ = 0;
    forgetCollected();
  }
  views_.push_back({array, Napi::Weak(buffer)});
}

void ViewRegistry::forgetCollected() {
  std::vector<Entry> kept;
  for (auto& v : views_) {
    if (!v.buffer.Value().IsEmpty()) kept.push_back(std::move(v));
  }
  views_.swap(kept);
}

void ViewRegistry::detach(TrackedArray* array) {
  std::vector<Entry> kept;
  for (auto& v : views_) {
    if (array && v.array != array) {
      kept.push_back(std::move(v));
      continue;
    }
    Napi::ArrayBuffer buffer = v.buffer.Value();
    if (!buffer.IsEmpty() && !buffer.IsDetached()) buffer.Detach();
  }
  views_.swap(kept);
}

void ViewRegistry::rangesOf(TrackedArray* array, const uint8_t* base,
                            std::vector<std::pair<uint64_t, uint64_t>>* out) {
  for (auto& v : views_) {
    if (v.array != array) continue;
    Napi::ArrayBuffer buffer = v.buffer.Value();
    if (buffer.IsEmpty() || buffer.IsDetached() || buffer.ByteLength() == 0) continue;
    const uint8_t* at = static_cast<const uint8_t*>(buffer.Data());
    if (at < base) continue;
    out->emplace_back(uint64_t(at - base), uint64_t(buffer.ByteLength()));
  }
}

}  // namespace txa::binding
