#include "waiter_wrap.h"

#include <atomic>
#include <utility>

#include "../engine/error.h"
#include "addon_data.h"
#include "args.h"
#include "session_wrap.h"

namespace txa::binding {

Napi::Function WaiterWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeWaiter", {
    method<&WaiterWrap::WaitSync>("waitSync"),
  });
}

Napi::Value WaiterWrap::WaitSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!store_) throw Error(ErrorCode::kClosed, "the waiter has no store");
  uint64_t serial = toU64(info[0], "afterSerial");
  int64_t timeout = toI64(info[1], "timeoutMs");
  const std::atomic<bool>* interrupted = &AddonData::of(env).waitsInterrupted;
  return Napi::Boolean::New(env, store_->waitForCommitAfter(serial, timeout, interrupted));
}

Napi::Value SessionWrap::Waiter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<txa::Env> store = session().env();
  Napi::Object object = AddonData::of(env).waiterConstructor.New({});
  WaiterWrap::Unwrap(object)->attach(std::move(store));
  return object;
}

}  // namespace txa::binding
