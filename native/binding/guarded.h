// The one gate between JavaScript and the native core: every method, accessor, function
// and constructor of the addon runs its body through guarded(), which turns native
// errors into coded JavaScript errors (js_errors.h). A C++ exception escaping a callback
// would terminate the process; no callback catches on its own.
#pragma once
#include <napi.h>

#include <exception>
#include <new>

#include "../engine/error.h"
#include "js_errors.h"

namespace txa::binding {

template <class Body>
auto guarded(Napi::Env env, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;  // already a JavaScript exception
  } catch (const ConflictError& e) {
    throwAsJs(env, e);
  } catch (const Error& e) {
    throwAsJs(env, e);
  } catch (const std::bad_alloc&) {
    throwAsJs(env, Error(ErrorCode::kStorage, "out of memory"));
  } catch (const std::exception& e) {
    throwAsJs(env, Error(ErrorCode::kStorage, e.what()));
  }
}

// A module function whose body runs guarded.
template <Napi::Value (*Function)(const Napi::CallbackInfo&)>
Napi::Value guardedFunction(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&] { return Function(info); });
}

// Base of the wrapped classes: method<&T::M>("name") and accessor<&T::M>("name") declare
// members whose bodies run guarded.
template <class T>
class GuardedWrap : public Napi::ObjectWrap<T> {
 public:
  explicit GuardedWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<T>(info) {}

 protected:
  using Callback = Napi::Value (T::*)(const Napi::CallbackInfo&);

  // The trampoline call<M> is a member of this base: it goes to node-addon-api as a
  // run-time member pointer of T (a template argument cannot convert base to derived).
  template <Callback M>
  static Napi::ClassPropertyDescriptor<T> method(const char* name) {
    return Napi::ObjectWrap<T>::InstanceMethod(name, static_cast<Callback>(&GuardedWrap::template call<M>));
  }
  template <Callback M>
  static Napi::ClassPropertyDescriptor<T> accessor(const char* name) {
    return Napi::ObjectWrap<T>::InstanceAccessor(name, static_cast<Callback>(&GuardedWrap::template call<M>), nullptr);
  }

 private:
  template <Callback M>
  Napi::Value call(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&] { return (static_cast<T*>(this)->*M)(info); });
  }
};

}  // namespace txa::binding
