#include "js_errors.h"

#include <string>
#include <utility>
#include <vector>

#include "addon_data.h"

namespace txa::binding {
namespace {

Napi::Array rangesToJs(Napi::Env env, const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
  Napi::Array out = Napi::Array::New(env, ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    Napi::Array range = Napi::Array::New(env, 2);
    range.Set(uint32_t(0), double(ranges[i].first));
    range.Set(uint32_t(1), double(ranges[i].second));
    out.Set(uint32_t(i), range);
  }
  return out;
}

// The facts of a conflict as ConflictError's constructor takes them (src/errors.ts).
Napi::Object conflictFactsToJs(Napi::Env env, const ConflictFacts& facts) {
  Napi::Object out = Napi::Object::New(env);
  if (!facts.array.empty()) out.Set("array", facts.array);
  if (facts.serial) out.Set("serial", double(facts.serial));
  out.Set("metadata", facts.metadata);
  out.Set("blocks", rangesToJs(env, facts.blocks));
  out.Set("rows", rangesToJs(env, facts.rows));
  return out;
}

}  // namespace

namespace {

// Throws `instance` built by `construct` from the class of `code`, or a plain Error with
// that code when no class is registered.
template <class Construct>
[[noreturn]] void throwCoded(Napi::Env env, const Error& error, Construct construct) {
  const char* code = errorCodeName(error.code());
  Napi::FunctionReference* errorClass = AddonData::of(env).errorClass(code);
  if (!errorClass) {
    Napi::Error plain = Napi::Error::New(env, error.what());
    plain.Set("code", Napi::String::New(env, code));
    throw plain;
  }
  throw Napi::Error(env, construct(*errorClass, Napi::String::New(env, error.what())));
}

}  // namespace

void throwAsJs(Napi::Env env, const Error& error) {
  throwCoded(env, error, [](Napi::FunctionReference& errorClass, Napi::String message) {
    return errorClass.New({message});
  });
}

void throwAsJs(Napi::Env env, const ConflictError& error) {
  throwCoded(env, error, [&](Napi::FunctionReference& errorClass, Napi::String message) {
    return errorClass.New({message, conflictFactsToJs(env, error.facts())});
  });
}

}  // namespace txa::binding
