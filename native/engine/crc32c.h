// CRC32C (Castagnoli polynomial, reflected, as in iSCSI and ext4): the checksum of every
// stored block. Hardware instructions (SSE4.2 `crc32`) when the CPU has them, chosen once
// at load time; a table-driven loop otherwise. Both give the same values.
#pragma once
#include <cstddef>
#include <cstdint>

namespace txa {

// Extends `crc` over `n` bytes at `data`: crc32c(0, p, n) is the checksum of p[0..n), and
// crc32c(crc32c(0, a, n), b, m) the checksum of a[0..n) followed by b[0..m).
// Allocates nothing, takes no lock: callable from a fault path.
uint32_t crc32c(uint32_t crc, const void* data, size_t n) noexcept;

// crc32c(crc, zeros, n) for n zero bytes, without reading them: a few dozen operations
// whatever n (a polynomial multiplication), so a block's zero fill costs nothing to extend
// a checksum over.
uint32_t crc32cZeros(uint32_t crc, uint64_t n) noexcept;

// The table-driven implementation, always (tests compare it with crc32c()).
uint32_t crc32cPortable(uint32_t crc, const void* data, size_t n) noexcept;

// Which implementation crc32c() uses: "sse4.2" or "table".
const char* crc32cImplementation() noexcept;

}  // namespace txa
