// The layout of one stored block value (store format version 3).
//
//   value  = prefix | data
//   prefix = pageSize - 16 bytes: the block header, then zeros
//   data   = the block's bytes up to its last non-zero byte (dataLength bytes), zero-filled
//            to a whole number of pages (storedBytes)
//
// pageSize is the LMDB environment's page size. A value this large (the prefix alone is
// over LMDB's inline limit of about half a page) lives on overflow pages, and an overflow
// value starts 16 bytes (LMDB's page header) into its first page. So the data starts on a
// page boundary of data.mdb and its pages hold exactly the block's bytes and zeros: they
// can be mapped straight into a view, or read with pread, at a page-aligned file offset.
// A 64 KiB block takes 17 pages, as it would without the prefix.
//
// Header, little-endian, at the start of the prefix:
//    0  u32  magic "TXAB"
//    4  u16  header version (1)
//    6  u16  flags: 0, or kOnServer for a stub (below)
//    8  u32  dataOffset: bytes from the value's start to the data (pageSize - 16)
//   12  u32  blockBytes of the array
//   16  u64  dataLength: the block's bytes before zero-filling (trailing zeros trimmed)
//   24  u64  array id      (the key's, repeated: check() finds a value under a wrong key)
//   32  u64  block index   (likewise)
//   40  u64  serial of the commit that wrote it (check() finds it in the commit log)
//   48  u32  checksum: CRC32C of the storedBytes data bytes, continued over header bytes 0..48
//
// A stub (the cache of a remote store opened with blocks: 'lazy', docs/scale-out.md) is a
// value of kStubBytes holding only a header with flag kOnServer: the block's version
// (serial) and dataLength are known, its bytes are on the server. dataOffset is the value's
// size (no data follows) and the checksum covers the header alone. Readers that cannot
// fetch report it as readHeader's Problem::kOnServer.
#pragma once
#include <cstddef>
#include <cstdint>

namespace txa::blockfmt {

inline constexpr uint32_t kMagic = 0x42415854;  // "TXAB" read as u32le
inline constexpr uint16_t kHeaderVersion = 1;
inline constexpr size_t kHeaderBytes = 52;
inline constexpr size_t kChecksumAt = 48;     // the checksum covers the header before it
inline constexpr size_t kLmdbPageHeader = 16;  // LMDB's PAGEHDRSZ

inline constexpr uint16_t kOnServer = 1;     // flag: a stub, the bytes are on the server
inline constexpr size_t kStubBytes = 64;      // the whole value of a stub

inline size_t prefixBytes(size_t pageSize) { return pageSize - kLmdbPageHeader; }
inline uint64_t storedBytes(uint64_t dataLength, size_t pageSize) {
  return (dataLength + pageSize - 1) / pageSize * pageSize;
}
inline uint64_t valueBytes(uint64_t dataLength, size_t pageSize) {
  return prefixBytes(pageSize) + storedBytes(dataLength, pageSize);
}

struct Header {
  uint32_t dataOffset = 0;
  uint32_t blockBytes = 0;
  uint64_t dataLength = 0;
  uint64_t arrayId = 0;
  uint64_t blockIndex = 0;
  uint64_t serial = 0;
  uint32_t checksum = 0;
  bool onServer = false;  // a stub: dataLength bytes on the server, none here
  // Data bytes the value stores (dataLength zero-filled to whole pages), given its size.
  uint64_t storedIn(size_t valueSize) const { return valueSize - dataOffset; }
};

// Writes a whole value of valueBytes(dataLength, pageSize) bytes at `value`: header, zero
// pad, the data, zero fill, and the checksum over them (encodeUnsealed, then seal).
void encode(uint8_t* value, size_t pageSize, uint64_t arrayId, uint64_t blockIndex, uint32_t blockBytes,
            uint64_t serial, const uint8_t* data, size_t dataLength) noexcept;
// encode() without the checksum (left zero)...
void encodeUnsealed(uint8_t* value, size_t pageSize, uint64_t arrayId, uint64_t blockIndex, uint32_t blockBytes,
                    uint64_t serial, const uint8_t* data, size_t dataLength) noexcept;
// ... and the checksum of a value encodeUnsealed() wrote, written into its header, given
// dataCrc = crc32c(0, data, dataLength) of the data it was given: the zero fill and the
// header are added to it here, so the caller may have computed it piece by piece (the
// checksum of a block's committed bytes extended over bytes appended since).
void seal(uint8_t* value, size_t pageSize, size_t dataLength, uint32_t dataCrc) noexcept;

// Writes a stub of kStubBytes at `value`: the header of the version `serial` of a block of
// dataLength bytes whose bytes are on the server, sealed.
void encodeStub(uint8_t* value, uint64_t arrayId, uint64_t blockIndex, uint32_t blockBytes, uint64_t serial,
                uint64_t dataLength) noexcept;

enum class Problem {
  kNone,
  kShort,     // smaller than a header
  kMagic,     // not a block header (or an older format's value)
  kVersion,   // a header version this build does not read
  kLayout,    // dataOffset or dataLength do not fit the value
  kChecksum,  // the data or the header differ from what was written
  kOnServer,  // a stub: the header is read (onServer set), the bytes are on the server
};
const char* describe(Problem problem) noexcept;

// Reads and checks the header of a value of `size` bytes: touches its first page only.
// A well-formed stub fills `out` and answers kOnServer.
Problem readHeader(const uint8_t* value, size_t size, Header* out) noexcept;

// The checksum of a value whose header is `h` and whose stored data bytes are `data`
// (`stored` of them: they may be a copy, e.g. read with pread).
uint32_t checksumOf(const uint8_t* value, const uint8_t* data, uint64_t stored) noexcept;

// True if the value's stored data bytes and header match its checksum.
inline bool checksumMatches(const uint8_t* value, const Header& h, const uint8_t* data, uint64_t stored) noexcept {
  return checksumOf(value, data, stored) == h.checksum;
}

}  // namespace txa::blockfmt
