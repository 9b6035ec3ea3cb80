#include "fetch_channel.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "error.h"

namespace txa {

FetchChannel::FetchChannel(uint64_t waitNs) : waitNs_(waitNs) {
  fd_ = eventfd(0, EFD_CLOEXEC);
  if (fd_ < 0) throw Error(ErrorCode::kStorage, std::string("eventfd: ") + strerror(errno));
}

FetchChannel::~FetchChannel() {
  if (fd_ >= 0) ::close(fd_);
}

void FetchChannel::signal() noexcept {
  const uint64_t one = 1;
  // Fails only if the counter would overflow (2^64 - 2 posts unread): it is readable then.
  while (::write(fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

bool FetchChannel::post(const Request& r, bool ahead) noexcept {
  if (closed()) return false;
  {
    std::lock_guard<std::mutex> g(mu_);
    Slot* free = nullptr;
    size_t used = 0;
    for (Slot& s : slots_) {
      if (s.state == kFree) {
        if (!free) free = &s;
        continue;
      }
      if (s.r.arrayId == r.arrayId && s.r.index == r.index && s.r.serial == r.serial) return true;
      used++;
    }
    if (!free || (ahead && used >= kMaxRequests - kKeptForFaults)) return false;
    free->r = r;
    free->state = kQueued;
  }
  signal();
  return true;
}

std::vector<FetchChannel::Request> FetchChannel::take() {
  std::vector<Request> out;
  out.reserve(16);
  std::lock_guard<std::mutex> g(mu_);
  for (Slot& s : slots_) {
    if (s.state != kQueued) continue;
    out.push_back(s.r);
    s.state = kInFlight;
  }
  return out;
}

void FetchChannel::answered(uint64_t arrayId, uint64_t index, uint64_t serial) noexcept {
  std::lock_guard<std::mutex> g(mu_);
  for (Slot& s : slots_)
    if (s.state != kFree && s.r.arrayId == arrayId && s.r.index == index && s.r.serial == serial) s.state = kFree;
}

size_t FetchChannel::outstanding() noexcept {
  std::lock_guard<std::mutex> g(mu_);
  size_t n = 0;
  for (const Slot& s : slots_) n += s.state != kFree;
  return n;
}

void FetchChannel::close() noexcept {
  closed_.store(true, std::memory_order_release);
  signal();
}

void FetchChannel::countFetched(uint64_t blocks, uint64_t bytes) noexcept {
  blocks_.fetch_add(blocks, std::memory_order_relaxed);
  bytes_.fetch_add(bytes, std::memory_order_relaxed);
}

}  // namespace txa
