#include "commit_follower.h"

#include <chrono>

namespace txa {

CommitFollower::CommitFollower(std::shared_ptr<Env> env, Callback onCommit)
    : env_(std::move(env)), onCommit_(std::move(onCommit)) {}

CommitFollower::~CommitFollower() { stop(); }

void CommitFollower::start(uint64_t after) {
  if (thread_.joinable()) return;
  stop_.store(false, std::memory_order_release);
  thread_ = std::thread([this, after]() { run(after); });  // throws std::system_error
}

void CommitFollower::stop() {
  if (!thread_.joinable()) return;
  stop_.store(true, std::memory_order_release);
  env_->wakeWaiters();
  thread_.join();
}

void CommitFollower::run(uint64_t after) {
  constexpr int64_t kRetryMs = 100;  // after a failed read of the store
  uint64_t seen = after;
  while (!stop_.load(std::memory_order_acquire)) {
    try {
      if (!env_->waitForCommitAfter(seen, -1, &stop_)) continue;  // stopped
      uint64_t latest = env_->currentSerial();
      if (latest > seen) {
        seen = latest;
        onCommit_(latest, std::string());
      }
    } catch (const std::exception& e) {
      onCommit_(0, e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(kRetryMs));
    }
  }
}

}  // namespace txa
