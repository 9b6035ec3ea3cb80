// NativeWaiter: blocking waits on one store's commits, made by session.waiter(). It holds
// the environment, so it keeps working after the session is closed.
//   waitSync(afterSerial, timeoutMs) -> boolean: blocks this thread until a commit with a
//     serial above afterSerial exists (true) or timeoutMs passes (false; < 0: forever).
// It returns false at once after interruptWaits() on this thread. Callers that must stay
// interruptible (a worker that may be terminated) wait in slices of bounded timeoutMs.
// Waits that do not block the thread use a follower (FollowerWrap) instead.
#pragma once
#include <napi.h>

#include <memory>

#include "../engine/env.h"
#include "guarded.h"

namespace txa::binding {

class WaiterWrap : public GuardedWrap<WaiterWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit WaiterWrap(const Napi::CallbackInfo& info) : GuardedWrap<WaiterWrap>(info) {}
  void attach(std::shared_ptr<txa::Env> store) { store_ = std::move(store); }

 private:
  Napi::Value WaitSync(const Napi::CallbackInfo& info);

  std::shared_ptr<txa::Env> store_;
};

}  // namespace txa::binding
