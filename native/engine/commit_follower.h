// A thread that follows the commits of every process on a store: it sleeps on the
// commit doorbell (Env::waitForCommitAfter) and reports each newer serial it sees. A
// burst of commits may be reported once, with its newest serial. It never spins: between
// commits it sleeps in the kernel, and stop() wakes it to end.
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
  // onCommit(latest, error) runs on the follower's thread: latest > 0 with an empty error
  // for a commit, 0 with a message when reading the store failed (it retries).
  using Callback = std::function<void(uint64_t latest, const std::string& error)>;
  CommitFollower(std::shared_ptr<Env> env, Callback onCommit);
  ~CommitFollower();
  CommitFollower(const CommitFollower&) = delete;
  CommitFollower& operator=(const CommitFollower&) = delete;

  // Starts following commits after `after` (no-op while running).
  void start(uint64_t after);
  // Ends the thread and waits for it. Idempotent.
  void stop();
  bool running() const { return thread_.joinable(); }

 private:
  void run(uint64_t after);

  std::shared_ptr<Env> env_;
  Callback onCommit_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace txa
