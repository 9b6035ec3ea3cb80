// The addon's entry point: it creates the per-thread state (addon_data.h) and exports
// the classes and functions the library's binding (src/binding.ts) uses. The only C++
// that knows JavaScript is in this folder; it reaches the view layer only through the
// engine (engine/view_figures.h).
#include <napi.h>

#include <string>

#include "../engine/view_figures.h"
#include "addon_data.h"
#include "args.h"
#include "array_wrap.h"
#include "fetch_channels.h"
#include "follower_wrap.h"
#include "guarded.h"
#include "session_wrap.h"
#include "waiter_wrap.h"

namespace txa::binding {
namespace {

// faultMode() -> { mode, userfaultfd, systemCalls, writeScan, pageBytes, error? }
Napi::Value FaultMode(const Napi::CallbackInfo& info) {
  FaultModeReport report = faultModeReport();
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("mode", report.mode);
  out.Set("userfaultfd", report.userfaultfd);
  out.Set("systemCalls", report.systemCalls);
  out.Set("writeScan", report.writeScan);
  out.Set("pageBytes", double(report.pageBytes));
  if (!report.error.empty()) out.Set("error", report.error);
  return out;
}

// processMappings() -> { limit, mappings, mappedBlocks, evictedBlocks, spilledBlocks }: the
// process's shared mapping budget.
Napi::Value ProcessMappings(const Napi::CallbackInfo& info) {
  MapBudgetFigures f = processBudgetFigures();
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("limit", double(f.limit));
  out.Set("mappings", double(f.mappings));
  out.Set("mappedBlocks", double(f.mappedBlocks));
  out.Set("evictedBlocks", double(f.evictions));
  out.Set("spilledBlocks", double(f.spills));
  return out;
}

// setProcessMappings(limit): the shared budget's new limit (validated by the engine).
Napi::Value SetProcessMappings(const Napi::CallbackInfo& info) {
  setProcessMappingsLimit(toU64(info[0], "limit"));
  return info.Env().Undefined();
}

// setErrorClasses({ [code]: class }): the classes native errors become, by code
// (src/errors.ts errorClassesByCode).
Napi::Value SetErrorClasses(const Napi::CallbackInfo& info) {
  AddonData& data = AddonData::of(info.Env());
  if (!info[0].IsObject()) throw Error(ErrorCode::kArgument, "setErrorClasses takes an object of classes");
  Napi::Object classes = info[0].As<Napi::Object>();
  Napi::Array codes = classes.GetPropertyNames();
  for (uint32_t i = 0; i < codes.Length(); ++i) {
    std::string code = codes.Get(i).As<Napi::String>();
    Napi::Value errorClass = classes.Get(code);
    if (!errorClass.IsFunction()) throw Error(ErrorCode::kArgument, "the error class of " + code + " is not a function");
    data.errorClasses[code] = Napi::Persistent(errorClass.As<Napi::Function>());
  }
  return info.Env().Undefined();
}

// interruptWaits(): ends every blocking wait of this JavaScript thread, future ones too
// (they return false). The library calls it when the thread exits (process 'exit'). The
// followers of asynchronous waits are ended by their environment cleanup hooks.
Napi::Value InterruptWaits(const Napi::CallbackInfo& info) {
  AddonData::of(info.Env()).waitsInterrupted.store(true, std::memory_order_release);
  return info.Env().Undefined();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  Napi::Function arrayClass = ArrayWrap::Define(env);
  data->arrayConstructor = Napi::Persistent(arrayClass);
  data->followerConstructor = Napi::Persistent(FollowerWrap::Define(env));
  data->waiterConstructor = Napi::Persistent(WaiterWrap::Define(env));
  exports.Set("NativeSession", SessionWrap::Define(env));
  exports.Set("NativeArray", arrayClass);
  exports.Set("faultMode", Napi::Function::New(env, guardedFunction<&FaultMode>));
  exports.Set("processMappings", Napi::Function::New(env, guardedFunction<&ProcessMappings>));
  exports.Set("setProcessMappings", Napi::Function::New(env, guardedFunction<&SetProcessMappings>));
  exports.Set("setErrorClasses", Napi::Function::New(env, guardedFunction<&SetErrorClasses>));
  exports.Set("interruptWaits", Napi::Function::New(env, guardedFunction<&InterruptWaits>));
  defineFetchChannels(env, exports);
  return exports;
}

}  // namespace txa::binding

namespace {
Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return txa::binding::Init(env, exports); }
}  // namespace

NODE_API_MODULE(txarray, InitAddon)
