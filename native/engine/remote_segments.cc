#include "remote_segments.h"

#include "error.h"
#include "keys.h"

namespace txa {
namespace {

std::string u64le(uint64_t v) {
  std::string out(8, '\0');
  keys::putU64le(reinterpret_cast<uint8_t*>(&out[0]), v);
  return out;
}

// Removes both keys of the segment the cache holds under `name`, if any.
void forget(BlockWrite& write, uint64_t id, const std::string& name) {
  const std::string nameKey = keys::segmentNameKey(id, name);
  std::string value;
  if (!write.get(Table::kSegments, nameKey, &value)) return;
  if (value.size() != 16) throw Error(ErrorCode::kFormat, "segment '" + name + "' is damaged");
  const uint64_t start = keys::getU64le(reinterpret_cast<const uint8_t*>(value.data()));
  write.remove(Table::kSegments, keys::segmentRowKey(id, start, name));
  write.remove(Table::kSegments, nameKey);
}

}  // namespace

void applyRemoteSegments(BlockWrite& write, const std::vector<RemoteSegment>& segments) {
  for (const RemoteSegment& s : segments) {
    forget(write, s.arrayId, s.name);
    if (s.deleted) continue;
    if (s.stop < s.start) throw Error(ErrorCode::kFormat, "remote segment '" + s.name + "' ends before it starts");
    write.put(Table::kSegments, keys::segmentNameKey(s.arrayId, s.name), u64le(s.start) + u64le(s.stop));
    write.put(Table::kSegments, keys::segmentRowKey(s.arrayId, s.start, s.name), u64le(s.stop));
  }
}

void dropRemoteSegments(BlockWrite& write, uint64_t id) {
  std::string prefix(8, '\0');
  keys::putU64be(reinterpret_cast<uint8_t*>(&prefix[0]), id);
  write.removePrefix(Table::kSegments, prefix);
}

}  // namespace txa
