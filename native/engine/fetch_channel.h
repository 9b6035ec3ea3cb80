// Requests for block versions that page faults wait for (vmem.h, FAULTS THAT WAIT FOR A
// FETCH), from the fault path to the thread that fetches them from the remote server (the
// remote link's thread), one channel per Store handle.
//
// The fault path posts a request (post(): no allocation, no blocking, a short mutex that is
// never held while touching region memory) and the channel's eventfd becomes readable; the
// fetcher takes the queued requests (take(): they are in flight from then on), fetches
// them, and answers each (answered()). A request equal to one queued or in flight is not
// queued again, so several faults on one block cost one fetch. After close() nothing is
// posted (post() false: the faults are served as unreadable blocks).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace txa {

class FetchChannel {
 public:
  struct Request {
    uint64_t arrayId = 0, index = 0, serial = 0;
    uint64_t length = 0;  // the version's bytes on the server
  };
  static constexpr size_t kMaxRequests = 1024;  // queued and in flight together
  // Requests for blocks read ahead of a fault (ahead) stop at kMaxRequests - kKeptForFaults
  // outstanding, so the block a fault itself waits for always finds a slot while fewer
  // than kKeptForFaults faults wait at once.
  static constexpr size_t kKeptForFaults = 256;

  // waitNs: how long a fault may wait for an answer (vmem's bound). Throws Error(kStorage)
  // if the eventfd cannot be made.
  explicit FetchChannel(uint64_t waitNs);
  ~FetchChannel();
  FetchChannel(const FetchChannel&) = delete;
  FetchChannel& operator=(const FetchChannel&) = delete;

  uint64_t waitNs() const { return waitNs_; }
  // Blocking eventfd: a read returns once requests were posted since the last read, or the
  // channel closed.
  int fd() const { return fd_; }

  // The fault path: queues the request unless an equal one is queued or in flight. false:
  // closed, or kMaxRequests outstanding (ahead: kMaxRequests - kKeptForFaults).
  bool post(const Request& r, bool ahead = false) noexcept;
  // The fetcher: every queued request, now in flight.
  std::vector<Request> take();
  // The fetcher answered the request (delivered or failed): an equal one may be posted again.
  void answered(uint64_t arrayId, uint64_t index, uint64_t serial) noexcept;
  // Requests queued or in flight.
  size_t outstanding() noexcept;

  void close() noexcept;
  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }

  // What the fetcher fetched for faults (stats).
  void countFetched(uint64_t blocks, uint64_t bytes) noexcept;
  uint64_t blocksFetched() const noexcept { return blocks_.load(std::memory_order_relaxed); }
  uint64_t bytesFetched() const noexcept { return bytes_.load(std::memory_order_relaxed); }

 private:
  void signal() noexcept;
  enum : uint8_t { kFree = 0, kQueued = 1, kInFlight = 2 };
  struct Slot {
    Request r;
    uint8_t state = kFree;
  };
  const uint64_t waitNs_;
  int fd_ = -1;
  std::mutex mu_;  // guards slots_; never held while touching region memory
  Slot slots_[kMaxRequests];
  std::atomic<bool> closed_{false};
  std::atomic<uint64_t> blocks_{0}, bytes_{0};
};

}  // namespace txa
