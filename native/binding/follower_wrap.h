// NativeFollower: the JavaScript handle of one CommitFollower, made by session.follower().
// Its thread reports to the JavaScript thread through a thread-safe function, which keeps
// the event loop alive only while ref(true). Reports are coalesced: at most one is queued.
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>

#include "../engine/commit_follower.h"
#include "../engine/env.h"
#include "guarded.h"

namespace txa::binding {

class FollowerWrap : public GuardedWrap<FollowerWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit FollowerWrap(const Napi::CallbackInfo& info) : GuardedWrap<FollowerWrap>(info) {}
  ~FollowerWrap() override { shutdown(); }

  // Follows `store`, calling `callback` on this JavaScript thread.
  void init(Napi::Env env, std::shared_ptr<txa::Env> store, Napi::Function callback);

 private:
  struct Shared {
    std::atomic<bool> posted{false};
    std::atomic<bool> finalized{false};
  };

  static void onEnvCleanup(void* arg);
  void shutdown();
  bool usable() const { return follower_ && !released_ && !state_->finalized; }

  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  // ref(keepAlive): whether the follower keeps the event loop (the process) alive.
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  std::shared_ptr<Shared> state_;
  Napi::ThreadSafeFunction tsfn_;
  std::unique_ptr<CommitFollower> follower_;
  bool hooked_ = false;
  bool released_ = false;
};

}  // namespace txa::binding
