// Native errors as JavaScript exceptions: each txa::Error becomes an instance of the
// TypeScript error class of its code (src/errors.ts), which the library hands over once
// at load time (setErrorClasses, addon.cc).
#pragma once
#include <napi.h>

#include "../engine/error.h"

namespace txa::binding {

// Throws `error` as an instance of the class of its code (without a registered class: an
// Error with that `code`).
[[noreturn]] void throwAsJs(Napi::Env env, const Error& error);
// ... and a conflict's facts go to the constructor as its second argument.
[[noreturn]] void throwAsJs(Napi::Env env, const ConflictError& error);

}  // namespace txa::binding
