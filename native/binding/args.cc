#include "args.h"

#include "../engine/error.h"

namespace txa::binding {

namespace {
constexpr double kMaxSafeInteger = 9007199254740991.0;
}

void badArgument(const std::string& what) { throw Error(ErrorCode::kArgument, what); }

Napi::Array toArray(const Napi::Value& value, const std::string& what) {
  if (!value.IsArray()) badArgument(what + " must be an array");
  return value.As<Napi::Array>();
}

Napi::Object toObject(const Napi::Value& value, const std::string& what) {
  if (!value.IsObject()) badArgument(what + " must be an object");
  return value.As<Napi::Object>();
}

uint64_t toU64(const Napi::Value& value, const char* what) {
  if (!value.IsNumber()) badArgument(std::string(what) + " must be a number");
  double d = value.As<Napi::Number>().DoubleValue();
  // Range first: casting a double outside uint64_t's range is undefined.
  if (!(d >= 0) || d > kMaxSafeInteger || d != double(uint64_t(d))) {
    badArgument(std::string(what) + " must be a non-negative integer");
  }
  return uint64_t(d);
}

int64_t toI64(const Napi::Value& value, const char* what) {
  if (!value.IsNumber()) badArgument(std::string(what) + " must be a number");
  double d = value.As<Napi::Number>().DoubleValue();
  if (!(d >= -kMaxSafeInteger && d <= kMaxSafeInteger) || d != double(int64_t(d))) {
    badArgument(std::string(what) + " must be an integer");
  }
  return int64_t(d);
}

std::string toString(const Napi::Value& value, const char* what) {
  if (!value.IsString()) badArgument(std::string(what) + " must be a string");
  return value.As<Napi::String>().Utf8Value();
}

std::string toBytes(const Napi::Value& value, const char* what) {
  if (!value.IsTypedArray()) badArgument(std::string(what) + " must be a Uint8Array");
  auto bytes = value.As<Napi::Uint8Array>();
  return std::string(reinterpret_cast<const char*>(bytes.Data()), bytes.ByteLength());
}

uint32_t toBlockBytes(const Napi::Value& value) {
  uint64_t bytes = toU64(value, "blockBytes");
  if (bytes == 0 || bytes > (uint64_t(1) << 30)) badArgument("blockBytes out of range");
  return uint32_t(bytes);
}

Strided toStrided(const Napi::CallbackInfo& info) {
  if (!info[1].IsArray() || !info[2].IsArray()) badArgument("counts and strides must be arrays");
  auto counts = info[1].As<Napi::Array>();
  auto strides = info[2].As<Napi::Array>();
  if (counts.Length() != strides.Length() || counts.Length() > 32) badArgument("bad selection rank");
  Strided sel;
  sel.base = toU64(info[0], "base");
  for (uint32_t i = 0; i < counts.Length(); ++i) {
    sel.counts.push_back(toU64(counts.Get(i), "count"));
    sel.strides.push_back(toI64(strides.Get(i), "stride"));
  }
  uint64_t item = toU64(info[3], "itemBytes");
  if (item == 0 || item > 8) badArgument("itemBytes must be 1..8");
  sel.itemBytes = uint32_t(item);
  return sel;
}

// napi_get_typedarray_info reads the memory of ArrayBuffers and SharedArrayBuffers alike
// (node-addon-api's TypedArray::ArrayBuffer() refuses a SharedArrayBuffer).
TypedMemory typedMemory(const Napi::Value& value, const char* what) {
  if (!value.IsTypedArray()) badArgument(std::string(what) + " must be a TypedArray");
  TypedMemory m;
  void* data = nullptr;
  napi_status status = napi_get_typedarray_info(value.Env(), value, &m.type, &m.length, &data, nullptr, nullptr);
  if (status != napi_ok) badArgument(std::string(what) + ": its memory cannot be read");
  static const size_t kElementBytes[] = {1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8};  // napi_typedarray_type order
  m.byteLength = size_t(m.type) < sizeof kElementBytes / sizeof *kElementBytes ? m.length * kElementBytes[m.type] : 0;
  m.data = static_cast<uint8_t*>(data);
  return m;
}

uint8_t* bufferArgument(const Napi::Value& value, uint64_t bytes) {
  TypedMemory m = typedMemory(value, "buffer");
  if (m.byteLength < bytes || (bytes > 0 && !m.data)) {
    throw Error(ErrorCode::kBounds, "buffer is smaller than the selection");
  }
  return m.data;
}

Napi::Buffer<uint8_t> toBuffer(Napi::Env env, const std::string& bytes) {
  return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

}  // namespace txa::binding
