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

// log: u64be serial -> sequence of entries
//   u64le arrayId, u32le flags, u32le rangeCount, rangeCount x (u64le first, u64le last)
// `last` is inclusive; kToEnd means "and every block after first".
inline constexpr uint32_t kLogRecordChanged = 1;  // shape, attrs, creation or deletion
inline constexpr uint64_t kToEnd = UINT64_MAX;

}  // namespace txa::keys
