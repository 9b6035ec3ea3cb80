// Byte layout of keys and records in the LMDB store. Big-endian integers in keys so
// that LMDB's default memcmp ordering keeps one array's blocks, and the commit log,
// in numeric order; little-endian inside values.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace txa::keys {

// Names of the LMDB sub-databases.
inline constexpr const char* kMetaDb = "meta";      // "format" -> msgpack, "nextId" -> u64le
inline constexpr const char* kArraysDb = "arrays";  // name -> ArrayRecord
inline constexpr const char* kBlocksDb = "blocks";  // BlockKey -> block bytes (trimmed)
inline constexpr const char* kLogDb = "log";        // u64be serial -> log entry
inline constexpr const char* kSegmentsDb = "segments";  // SegmentKey -> range (see below)

inline void putU64be(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) { p[i] = uint8_t(v); v >>= 8; }
}
inline uint64_t getU64be(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}
inline void putU64le(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) { p[i] = uint8_t(v); v >>= 8; }
}
inline uint64_t getU64le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// blocks: array id (u64be) + block index (u64be).
struct BlockKey {
  uint8_t bytes[16];
  BlockKey(uint64_t arrayId, uint64_t index) {
    putU64be(bytes, arrayId);
    putU64be(bytes + 8, index);
  }
};

// arrays value: a 32-byte header, then the msgpack body written by the TypeScript layer
// (dtype, shape, blockBytes, attrs...). Header, all u64le:
//   id        addresses the array's blocks
//   serial    the commit that last changed the record: concurrent changes are detected
//   rows      length of axis 0; overrides shape[0] of the body
//   rowBytes  bytes per row (the product of the other axes times the item size)
// The engine reads only the header: it checks versions, and rebases an append onto the
// newest length without decoding msgpack (the body of the newest record is kept as is).
inline constexpr size_t kRecordHeader = 32;

struct RecordHeader {
  uint64_t id = 0, serial = 0, rows = 0, rowBytes = 0;
  void write(uint8_t* p) const {
    putU64le(p, id);
    putU64le(p + 8, serial);
    putU64le(p + 16, rows);
    putU64le(p + 24, rowBytes);
  }
  static RecordHeader read(const uint8_t* p) {
    return RecordHeader{getU64le(p), getU64le(p + 8), getU64le(p + 16), getU64le(p + 24)};
  }
};

// log: u64be serial -> one commit, all integers unsigned LEB128 varints:
//   timeMs (wall clock of the commit, ms since the Unix epoch), then per array touched:
//   id, flags (kLog*), rowsBefore, rowsAfter, rowBytes, blockBytes, nameLength, name
//   bytes, rangeCount, rangeCount x (first, last - first)
// Ranges are inclusive block indexes; last == kToEnd means "and every block after first".
// rowsBefore/rowsAfter are the array's length before and after the commit (0 when it did
// not exist / no longer exists).
inline constexpr uint32_t kLogRecordChanged = 1;  // shape, attrs, creation or deletion
inline constexpr uint32_t kLogCreated = 2;
inline constexpr uint32_t kLogDeleted = 4;
inline constexpr uint32_t kLogAppendOnly = 8;     // rows appended, nothing below rowsBefore written
inline constexpr uint32_t kLogResized = 16;       // the length set by resize()
inline constexpr uint32_t kLogAttrs = 32;         // the attributes replaced
inline constexpr uint32_t kLogSegments = 64;      // named segments added or deleted
inline constexpr uint64_t kToEnd = UINT64_MAX;

// segments: two keys per named segment of an array, both starting with the array id:
//   u64be id, 'n', name bytes                 -> u64le start, u64le stop   (lookup by name)
//   u64be id, 'r', u64be start, name bytes    -> u64le stop                (row order)
inline constexpr char kSegmentByName = 'n';
inline constexpr char kSegmentByRow = 'r';

inline std::string segmentNameKey(uint64_t id, const std::string& name) {
  std::string key(9, '\0');
  putU64be(reinterpret_cast<uint8_t*>(&key[0]), id);
  key[8] = kSegmentByName;
  return key + name;
}
inline std::string segmentRowKey(uint64_t id, uint64_t start, const std::string& name) {
  std::string key(17, '\0');
  putU64be(reinterpret_cast<uint8_t*>(&key[0]), id);
  key[8] = kSegmentByRow;
  putU64be(reinterpret_cast<uint8_t*>(&key[9]), start);
  return key + name;
}

}  // namespace txa::keys
