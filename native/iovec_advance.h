// Consuming an iovec array after a partial preadv/pwritev, shared by the engine's block
// copies and the view layer's scan windows.
#pragma once
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

namespace txa {

// A vectored read or write moved `bytes`: the iovecs from *first on that it filled are
// skipped (*first moves past them) and the one it filled in part is trimmed to its rest,
// so that iov + *first, count - *first continues the transfer. Async-signal-safe.
inline void advanceIovecs(iovec* iov, size_t count, size_t* first, uint64_t bytes) {
  while (bytes > 0 && *first < count) {
    iovec& v = iov[*first];
    if (bytes >= v.iov_len) {
      bytes -= v.iov_len;
      ++*first;
    } else {
      v.iov_base = static_cast<uint8_t*>(v.iov_base) + bytes;
      v.iov_len -= size_t(bytes);
      bytes = 0;
    }
  }
}

}  // namespace txa
