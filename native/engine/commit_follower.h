// A thread that follows the commits of every process on a store: it sleeps on the
// commit doorbell and reports each ring (a burst of rings may be reported once). It reads
// nothing itself: the receiver confirms against the store what changed, and a report
// also comes once a second without a ring, in case a committer died between its commit
// and the ring. Between rings it sleeps in the kernel; stop() wakes it to end.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "env.h"

namespace txa {

class CommitFollower {
 public:
  // onCommit() runs on the follower's thread after each ring (and each quiet second).
  using Callback = std::function<void()>;
  CommitFollower(std::shared_ptr<Env> env, Callback onCommit);
  ~CommitFollower();
  CommitFollower(const CommitFollower&) = delete;
  CommitFollower& operator=(const CommitFollower&) = delete;

  // Starts following: commits after this call are reported (no-op while running).
  void start();
  // Ends the thread and waits for it. Idempotent.
  void stop();
  bool running() const { return thread_.joinable(); }

 private:
  void run(uint32_t seen);

  std::shared_ptr<Env> env_;
  Callback onCommit_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace txa
