#include "follower_wrap.h"

#include <utility>

#include "../engine/error.h"
#include "addon_data.h"
#include "args.h"
#include "session_wrap.h"

namespace txa::binding {

Napi::Function FollowerWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeFollower", {
    method<&FollowerWrap::Start>("start"),
    method<&FollowerWrap::Stop>("stop"),
    method<&FollowerWrap::Ref>("ref"),
    method<&FollowerWrap::Close>("close"),
  });
}

void FollowerWrap::init(Napi::Env env, std::shared_ptr<txa::Env> store, Napi::Function callback) {
  state_ = std::make_shared<Shared>();
  auto* finalizeData = new std::shared_ptr<Shared>(state_);
  tsfn_ = Napi::ThreadSafeFunction::New(env, callback, "txarray commit follower", 0, 1,
                                        [](Napi::Env, std::shared_ptr<Shared>* data) {
                                          (*data)->finalized = true;
                                          delete data;
                                        },
                                        finalizeData);
  tsfn_.Unref(env);
  std::shared_ptr<Shared> state = state_;
  Napi::ThreadSafeFunction tsfn = tsfn_;
  follower_ = std::make_unique<CommitFollower>(std::move(store), [state, tsfn]() mutable {
    if (state->posted.exchange(true)) return;  // one report queued at a time
    tsfn.NonBlockingCall([state](Napi::Env env, Napi::Function report) {
      state->posted.store(false);
      report.Call({});
    });
  });
  // Registered after the thread-safe function's own hook, so it runs first (hooks run
  // newest first): the thread is joined before the function is torn down.
  if (napi_add_env_cleanup_hook(env, &FollowerWrap::onEnvCleanup, this) == napi_ok) hooked_ = true;
}

void FollowerWrap::onEnvCleanup(void* arg) {
  auto* self = static_cast<FollowerWrap*>(arg);
  self->hooked_ = false;
  if (self->follower_) self->follower_->stop();
}

void FollowerWrap::shutdown() {
  if (hooked_) {
    napi_remove_env_cleanup_hook(Env(), &FollowerWrap::onEnvCleanup, this);
    hooked_ = false;
  }
  if (follower_) follower_->stop();
  if (state_ && !released_ && !state_->finalized) tsfn_.Release();
  released_ = true;
}

Napi::Value FollowerWrap::Start(const Napi::CallbackInfo& info) {
  if (!usable()) throw Error(ErrorCode::kClosed, "the follower is closed");
  follower_->start();
  return info.Env().Undefined();
}

Napi::Value FollowerWrap::Stop(const Napi::CallbackInfo& info) {
  if (follower_) follower_->stop();
  return info.Env().Undefined();
}

Napi::Value FollowerWrap::Ref(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (usable()) {
    if (info[0].ToBoolean()) tsfn_.Ref(env);
    else tsfn_.Unref(env);
  }
  return env.Undefined();
}

Napi::Value FollowerWrap::Close(const Napi::CallbackInfo& info) {
  shutdown();
  return info.Env().Undefined();
}

Napi::Value SessionWrap::Follower(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Session& s = session();
  if (!info[0].IsFunction()) badArgument("callback must be a function");
  Napi::Object object = AddonData::of(env).followerConstructor.New({});
  FollowerWrap::Unwrap(object)->init(env, s.env(), info[0].As<Napi::Function>());
  return object;
}

}  // namespace txa::binding
