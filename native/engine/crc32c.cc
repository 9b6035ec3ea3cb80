#include "crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace txa {
namespace {

constexpr uint32_t kPolynomial = 0x82f63b78;  // Castagnoli, bit-reversed

// tables[k][b]: the CRC of byte b followed by k zero bytes (slicing-by-8).
constexpr std::array<std::array<uint32_t, 256>, 8> makeTables() {
  std::array<std::array<uint32_t, 256>, 8> t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int i = 0; i < 8; ++i) c = (c & 1) ? (c >> 1) ^ kPolynomial : c >> 1;
    t[0][b] = c;
  }
  for (int k = 1; k < 8; ++k) {
    for (uint32_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
  }
  return t;
}
constexpr auto kTables = makeTables();

uint32_t crcTable(uint32_t c, const uint8_t* p, size_t n) noexcept {
  while (n && (reinterpret_cast<uintptr_t>(p) & 7)) {
    c = (c >> 8) ^ kTables[0][(c ^ *p++) & 0xff];
    --n;
  }
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t word;
    memcpy(&word, p, 8);  // little-endian hosts only (the store's integers are little-endian)
    word ^= c;
    c = kTables[7][word & 0xff] ^ kTables[6][(word >> 8) & 0xff] ^ kTables[5][(word >> 16) & 0xff] ^
        kTables[4][(word >> 24) & 0xff] ^ kTables[3][(word >> 32) & 0xff] ^ kTables[2][(word >> 40) & 0xff] ^
        kTables[1][(word >> 48) & 0xff] ^ kTables[0][word >> 56];
  }
  while (n--) c = (c >> 8) ^ kTables[0][(c ^ *p++) & 0xff];
  return c;
}

#if defined(__x86_64__)
// One `crc32` instruction has a latency of 3 cycles and a throughput of 1 per cycle, so a
// single dependency chain runs at a third of the speed the CPU offers. Buffers go in
// stripes of three lanes, one chain per lane, joined with shiftLane (below): stripes of
// three kLongLane-byte lanes, then of three kShortLane-byte lanes, so that fewer than
// 3 * kShortLane bytes run in a single chain.
constexpr size_t kLongLane = 4096;
constexpr size_t kShortLane = 256;

__attribute__((target("sse4.2"))) uint32_t crcSse42Serial(uint32_t c, const uint8_t* p, size_t n) noexcept {
  uint64_t c64 = c;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c64 = _mm_crc32_u64(c64, w);
  }
  c = uint32_t(c64);
  while (n--) c = _mm_crc32_u8(c, *p++);
  return c;
}

// The CRC register is linear over GF(2) in its starting value: the register after bytes B
// from start r is (the register after B from 0) xor (the register after |B| zero bytes
// from r). A LaneShift is the second term for one lane's length of zero bytes: a 32x32
// bit matrix, applied a byte at a time through four tables built from its columns.
struct LaneShift {
  uint32_t table[4][256];
};

__attribute__((target("sse4.2"))) LaneShift makeLaneShift(size_t lane) noexcept {
  static const uint8_t zeros[kLongLane] = {};
  uint32_t column[32];
  for (int bit = 0; bit < 32; ++bit) column[bit] = crcSse42Serial(uint32_t(1) << bit, zeros, lane);
  LaneShift s{};
  for (int k = 0; k < 4; ++k) {
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t v = 0;
      for (int j = 0; j < 8; ++j) {
        if (b >> j & 1) v ^= column[8 * k + j];
      }
      s.table[k][b] = v;
    }
  }
  return s;
}

LaneShift gLongShift, gShortShift;  // filled before main() when the CPU has SSE4.2 (see gHardware)

inline uint32_t shiftLane(const LaneShift& s, uint32_t r) noexcept {
  const auto& t = s.table;
  return t[0][r & 0xff] ^ t[1][(r >> 8) & 0xff] ^ t[2][(r >> 16) & 0xff] ^ t[3][r >> 24];
}

// Runs the stripes of three `Lane`-byte lanes that fit in n bytes; returns the register.
template <size_t Lane>
__attribute__((target("sse4.2"))) inline uint32_t crcStripes(uint32_t c, const uint8_t*& p, size_t& n,
                                                            const LaneShift& shift) noexcept {
  for (; n >= 3 * Lane; n -= 3 * Lane, p += 3 * Lane) {
    uint64_t c0 = c, c1 = 0, c2 = 0;
    for (size_t i = 0; i < Lane; i += 8) {
      uint64_t w0, w1, w2;
      memcpy(&w0, p + i, 8);
      memcpy(&w1, p + Lane + i, 8);
      memcpy(&w2, p + 2 * Lane + i, 8);
      c0 = _mm_crc32_u64(c0, w0);
      c1 = _mm_crc32_u64(c1, w1);
      c2 = _mm_crc32_u64(c2, w2);
    }
    c = shiftLane(shift, shiftLane(shift, uint32_t(c0)) ^ uint32_t(c1)) ^ uint32_t(c2);
  }
  return c;
}

__attribute__((target("sse4.2"))) uint32_t crcSse42(uint32_t c, const uint8_t* p, size_t n) noexcept {
  while (n && (reinterpret_cast<uintptr_t>(p) & 7)) {
    c = _mm_crc32_u8(c, *p++);
    --n;
  }
  c = crcStripes<kLongLane>(c, p, n, gLongShift);
  c = crcStripes<kShortLane>(c, p, n, gShortShift);
  return crcSse42Serial(c, p, n);
}
#endif

// Polynomials over GF(2) modulo the Castagnoli polynomial, in the CRC register's reflected
// bit order: bit 31 holds the coefficient of x^0, bit 0 that of x^31. Multiplying by x is
// one step of the register over a zero bit, so n zero bytes multiply it by x^(8n).
uint32_t timesX(uint32_t a) noexcept { return (a >> 1) ^ ((a & 1) ? kPolynomial : 0); }

uint32_t multiplyModP(uint32_t a, uint32_t b) noexcept {
  uint32_t product = 0;
  for (uint32_t term = uint32_t(1) << 31; term != 0; term >>= 1) {  // a's x^0, x^1, ... x^31
    if (a & term) product ^= b;
    b = timesX(b);
  }
  return product;
}

// kXPow2[k] = x^(2^k) mod P.
struct PowersOfX {
  uint32_t pow2[64];
};
constexpr PowersOfX makePowersOfX() {
  PowersOfX t{};
  t.pow2[0] = uint32_t(1) << 30;  // x^1
  for (int k = 1; k < 64; ++k) {
    // squaring, written out for a constexpr context
    uint32_t a = t.pow2[k - 1], b = a, product = 0;
    for (uint32_t term = uint32_t(1) << 31; term != 0; term >>= 1) {
      if (a & term) product ^= b;
      b = (b >> 1) ^ ((b & 1) ? kPolynomial : 0);
    }
    t.pow2[k] = product;
  }
  return t;
}
constexpr PowersOfX kPowersOfX = makePowersOfX();

// x^(8n) mod P.
uint32_t xToThe8n(uint64_t n) noexcept {
  uint32_t result = uint32_t(1) << 31;  // x^0
  for (int k = 3; n != 0 && k < 64; ++k, n >>= 1) {
    if (n & 1) result = multiplyModP(result, kPowersOfX.pow2[k]);
  }
  return result;
}

bool hasSse42() noexcept {
#if defined(__x86_64__)
  __builtin_cpu_init();  // needed before __builtin_cpu_supports in a static initialiser
  return __builtin_cpu_supports("sse4.2");
#else
  return false;
#endif
}

// Chosen before main() (a static initialiser), so the fault path never initialises it.
const bool gHardware = [] {
  if (!hasSse42()) return false;
#if defined(__x86_64__)
  gLongShift = makeLaneShift(kLongLane);
  gShortShift = makeLaneShift(kShortLane);
#endif
  return true;
}();

}  // namespace

uint32_t crc32c(uint32_t crc, const void* data, size_t n) noexcept {
  const uint8_t* p = static_cast<const uint8_t*>(data);
#if defined(__x86_64__)
  if (gHardware) return ~crcSse42(~crc, p, n);
#endif
  return ~crcTable(~crc, p, n);
}

uint32_t crc32cZeros(uint32_t crc, uint64_t n) noexcept { return ~multiplyModP(~crc, xToThe8n(n)); }

uint32_t crc32cPortable(uint32_t crc, const void* data, size_t n) noexcept {
  return ~crcTable(~crc, static_cast<const uint8_t*>(data), n);
}

const char* crc32cImplementation() noexcept { return gHardware ? "sse4.2" : "table"; }

}  // namespace txa
