// Argument conversion: JavaScript values to the native core's types. A value of the wrong
// kind raises Error(kArgument) naming the argument (TXA_ARGUMENT: the TypeScript layer
// validates first, so these guard against misuse of the addon itself).
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

#include "../engine/strided.h"

namespace txa::binding {

[[noreturn]] void badArgument(const std::string& what);

// A JavaScript safe integer: >= 0 (toU64) or signed (toI64).
uint64_t toU64(const Napi::Value& value, const char* what);
int64_t toI64(const Napi::Value& value, const char* what);
// A string argument (UTF-8).
std::string toString(const Napi::Value& value, const char* what);
// An array or an object argument.
Napi::Array toArray(const Napi::Value& value, const std::string& what);
Napi::Object toObject(const Napi::Value& value, const std::string& what);
// The bytes of a Uint8Array, copied.
std::string toBytes(const Napi::Value& value, const char* what);
// A block size: 1 byte to 1 GiB.
uint32_t toBlockBytes(const Napi::Value& value);

// Reads the selection arguments (base, counts[], strides[], itemBytes) at info[0..3].
Strided toStrided(const Napi::CallbackInfo& info);

// The memory of a TypedArray argument, ArrayBuffer or SharedArrayBuffer alike.
struct TypedMemory {
  uint8_t* data = nullptr;
  napi_typedarray_type type = napi_uint8_array;
  size_t length = 0;  // elements
  size_t byteLength = 0;
};
TypedMemory typedMemory(const Napi::Value& value, const char* what);

// The raw bytes of a TypedArray argument, checked to hold `bytes` (else Error(kBounds)).
uint8_t* bufferArgument(const Napi::Value& value, uint64_t bytes);

// Result conversion: bytes as a Node Buffer (copied).
Napi::Buffer<uint8_t> toBuffer(Napi::Env env, const std::string& bytes);

}  // namespace txa::binding
