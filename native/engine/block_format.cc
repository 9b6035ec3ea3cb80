#include "block_format.h"

#include <cstring>

#include "crc32c.h"
#include "keys.h"

namespace txa::blockfmt {
namespace {

uint32_t getU32le(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }
void putU32le(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) { p[i] = uint8_t(v); v >>= 8; }
}

// Zeroes the `prefix` bytes of a value's header and writes its fields (the checksum stays 0).
void putHeader(uint8_t* value, size_t prefix, uint16_t flags, uint64_t arrayId, uint64_t blockIndex,
               uint32_t blockBytes, uint64_t serial, uint64_t dataLength) noexcept {
  memset(value, 0, prefix);
  putU32le(value, kMagic);
  value[4] = uint8_t(kHeaderVersion);
  value[5] = uint8_t(kHeaderVersion >> 8);
  value[6] = uint8_t(flags);
  value[7] = uint8_t(flags >> 8);
  putU32le(value + 8, uint32_t(prefix));
  putU32le(value + 12, blockBytes);
  keys::putU64le(value + 16, dataLength);
  keys::putU64le(value + 24, arrayId);
  keys::putU64le(value + 32, blockIndex);
  keys::putU64le(value + 40, serial);
}

}  // namespace

uint32_t checksumOf(const uint8_t* value, const uint8_t* data, uint64_t stored) noexcept {
  return crc32c(crc32c(0, data, size_t(stored)), value, kChecksumAt);
}

void encode(uint8_t* value, size_t pageSize, uint64_t arrayId, uint64_t blockIndex, uint32_t blockBytes,
            uint64_t serial, const uint8_t* data, size_t dataLength) noexcept {
  encodeUnsealed(value, pageSize, arrayId, blockIndex, blockBytes, serial, data, dataLength);
  seal(value, pageSize, dataLength, crc32c(0, data, dataLength));
}

void seal(uint8_t* value, size_t pageSize, size_t dataLength, uint32_t dataCrc) noexcept {
  // checksumOf() over the stored bytes: the data, then zeros up to storedBytes.
  const uint32_t stored = crc32cZeros(dataCrc, storedBytes(dataLength, pageSize) - dataLength);
  putU32le(value + kChecksumAt, crc32c(stored, value, kChecksumAt));
}

void encodeUnsealed(uint8_t* value, size_t pageSize, uint64_t arrayId, uint64_t blockIndex, uint32_t blockBytes,
                    uint64_t serial, const uint8_t* data, size_t dataLength) noexcept {
  const size_t prefix = prefixBytes(pageSize);
  const uint64_t stored = storedBytes(dataLength, pageSize);
  putHeader(value, prefix, 0, arrayId, blockIndex, blockBytes, serial, dataLength);
  uint8_t* out = value + prefix;
  memcpy(out, data, dataLength);
  memset(out + dataLength, 0, size_t(stored - dataLength));
}

void encodeStub(uint8_t* value, uint64_t arrayId, uint64_t blockIndex, uint32_t blockBytes, uint64_t serial,
                uint64_t dataLength) noexcept {
  putHeader(value, kStubBytes, kOnServer, arrayId, blockIndex, blockBytes, serial, dataLength);
  putU32le(value + kChecksumAt, checksumOf(value, value, 0));
}

Problem readHeader(const uint8_t* value, size_t size, Header* out) noexcept {
  *out = Header{};
  if (size < kHeaderBytes) return Problem::kShort;
  if (getU32le(value) != kMagic) return Problem::kMagic;
  if ((value[4] | value[5] << 8) != kHeaderVersion) return Problem::kVersion;
  out->dataOffset = getU32le(value + 8);
  out->blockBytes = getU32le(value + 12);
  out->dataLength = keys::getU64le(value + 16);
  out->arrayId = keys::getU64le(value + 24);
  out->blockIndex = keys::getU64le(value + 32);
  out->serial = keys::getU64le(value + 40);
  out->checksum = getU32le(value + kChecksumAt);
  const uint16_t flags = uint16_t(value[6] | value[7] << 8);
  if (flags & ~kOnServer) return Problem::kVersion;
  if (flags & kOnServer) {
    out->onServer = true;
    if (out->dataOffset != size || out->dataLength > out->blockBytes) return Problem::kLayout;
    return Problem::kOnServer;
  }
  if (out->dataOffset < kHeaderBytes || out->dataOffset > size) return Problem::kLayout;
  if (out->dataLength > size - out->dataOffset || out->dataLength > out->blockBytes) return Problem::kLayout;
  return Problem::kNone;
}

const char* describe(Problem problem) noexcept {
  switch (problem) {
    case Problem::kNone: return "no problem";
    case Problem::kShort: return "the value is shorter than a block header";
    case Problem::kMagic: return "the value does not start with a block header";
    case Problem::kVersion: return "the block header has an unknown version";
    case Problem::kLayout: return "the block header's offset or length does not fit the value";
    case Problem::kChecksum: return "the block's checksum does not match its bytes";
    case Problem::kOnServer: return "the block's bytes are on the remote server and were not fetched";
  }
  return "unknown problem";
}

}  // namespace txa::blockfmt
