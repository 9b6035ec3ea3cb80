#include "commit_follower.h"

namespace txa {

CommitFollower::CommitFollower(std::shared_ptr<Env> env, Callback onCommit)
    : env_(std::move(env)), onCommit_(std::move(onCommit)) {}

CommitFollower::~CommitFollower() { stop(); }

void CommitFollower::start() {
  if (thread_.joinable()) return;
  stop_.store(false, std::memory_order_release);
  // Sampled here, on the caller's thread: a commit after start() returns is reported even
  // if the thread has not run yet.
  uint32_t seen = env_->sampleDoorbell();
  thread_ = std::thread([this, seen]() { run(seen); });  // throws std::system_error
}

void CommitFollower::stop() {
  if (!thread_.joinable()) return;
  stop_.store(true, std::memory_order_release);
  env_->wakeWaiters();
  thread_.join();
}

void CommitFollower::run(uint32_t seen) {
  constexpr int64_t kRecheckMs = 1000;
  while (!stop_.load(std::memory_order_acquire)) {
    env_->waitDoorbell(seen, kRecheckMs);
    if (stop_.load(std::memory_order_acquire)) break;
    seen = env_->sampleDoorbell();  // before reporting: a ring after this wakes us again
    onCommit_();
  }
}

}  // namespace txa
