// The addon's state for one JavaScript thread (the main thread or a worker): the error
// classes by code, the constructors of the classes it creates itself, and whether the
// thread's blocking waits are interrupted.
#pragma once
#include <napi.h>

#include <atomic>
#include <map>
#include <string>

namespace txa::binding {

struct AddonData {
  std::map<std::string, Napi::FunctionReference> errorClasses;  // code -> class (src/errors.ts)
  Napi::FunctionReference arrayConstructor;
  Napi::FunctionReference followerConstructor;
  Napi::FunctionReference waiterConstructor;
  // Set by interruptWaits(): every blocking wait of this JavaScript thread returns false.
  std::atomic<bool> waitsInterrupted{false};

  static AddonData& of(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }
  // The class registered for `code`, or null.
  Napi::FunctionReference* errorClass(const std::string& code) {
    auto it = errorClasses.find(code);
    return it == errorClasses.end() ? nullptr : &it->second;
  }
};

}  // namespace txa::binding
