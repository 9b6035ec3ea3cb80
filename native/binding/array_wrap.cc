#include "array_wrap.h"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../engine/env_stats.h"
#include "../engine/error.h"
#include "../engine/view_figures.h"
#include "args.h"

namespace txa::binding {

Napi::Function ArrayWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeArray", {
    method<&ArrayWrap::Gather>("gather"),
    method<&ArrayWrap::ReleaseMappedPages>("releaseMappedPages"),
    method<&ArrayWrap::Scatter>("scatter"),
    method<&ArrayWrap::Resize>("resize"),
    method<&ArrayWrap::AdoptCommittedLength>("adoptCommittedLength"),
    method<&ArrayWrap::View>("view"),
    method<&ArrayWrap::Take>("take"),
    method<&ArrayWrap::StubsIn>("stubsIn"),
    method<&ArrayWrap::StubsInWindows>("stubsInWindows"),
    method<&ArrayWrap::StubsInViews>("stubsInViews"),
    method<&ArrayWrap::MemoryStats>("memoryStats"),
    method<&ArrayWrap::Plan>("plan"),
    method<&ArrayWrap::AfterCommitElsewhere>("afterCommitElsewhere"),
    method<&ArrayWrap::Release>("release"),
    accessor<&ArrayWrap::Id>("id"),
    accessor<&ArrayWrap::ByteLength>("byteLength"),
    accessor<&ArrayWrap::HasChanges>("hasChanges"),
  });
}

void ArrayWrap::attach(std::shared_ptr<TrackedArray> array, Napi::Object session, Session* native,
                       ViewRegistry* views) {
  array_ = std::move(array);
  session_ = Napi::Persistent(session);
  native_ = native;
  views_ = views;
}

void ArrayWrap::detach() {
  array_.reset();
  native_ = nullptr;
  views_ = nullptr;
  session_.Reset();
}

std::shared_ptr<TrackedArray> ArrayWrap::shared() {
  if (!array_) throw Error(ErrorCode::kClosed, "the store is closed");
  return array_;
}

TrackedArray& ArrayWrap::array() {
  if (!array_ || !native_) throw Error(ErrorCode::kClosed, "the store is closed");
  return *array_;
}

Napi::Value ArrayWrap::Gather(const Napi::CallbackInfo& info) {
  TrackedArray& a = array();
  Strided sel = toStrided(info);
  uint8_t* out = bufferArgument(info[4], sel.elementCount() * sel.itemBytes);
  a.gather(native_->snapshot(), sel, out, info[5].ToBoolean());
  return info.Env().Undefined();
}

Napi::Value ArrayWrap::Scatter(const Napi::CallbackInfo& info) {
  TrackedArray& a = array();
  Strided sel = toStrided(info);
  const uint8_t* in = bufferArgument(info[4], sel.elementCount() * sel.itemBytes);
  a.scatter(sel, in);
  return info.Env().Undefined();
}

std::vector<uint64_t> windowOffsets(const Napi::CallbackInfo& info, uint64_t* windowBytesOut) {
  uint64_t rows = toU64(info[1], "rows");
  uint64_t rowBytes = toU64(info[2], "rowBytes");
  if (rowBytes && rows > UINT64_MAX / rowBytes) throw Error(ErrorCode::kBounds, "windows larger than the array");
  uint64_t windowBytes = rows * rowBytes;
  *windowBytesOut = windowBytes;
  std::vector<uint64_t> offsets;
  auto addStart = [&](double start) {
    // Range first: casting a double >= 2^64 is undefined, and a product past 2^64
    // would wrap into a valid-looking offset.
    if (!(start >= 0 && start <= 9007199254740991.0) || start != double(uint64_t(start))) {
      badArgument("window starts must be non-negative safe integers");
    }
    uint64_t row = uint64_t(start);
    if (rowBytes && row > (UINT64_MAX - windowBytes) / rowBytes) {
      throw Error(ErrorCode::kBounds, "a window starts past the end of the array");
    }
    offsets.push_back(row * rowBytes);
  };
  Napi::Value starts = info[0];
  if (starts.IsTypedArray()) {
    TypedMemory typed = typedMemory(starts, "starts");
    const uint8_t* raw = typed.data;
    size_t n = raw ? typed.length : 0;
    offsets.reserve(n);
    switch (typed.type) {
      case napi_float64_array: for (size_t i = 0; i < n; ++i) addStart(reinterpret_cast<const double*>(raw)[i]); break;
      case napi_int32_array: for (size_t i = 0; i < n; ++i) addStart(reinterpret_cast<const int32_t*>(raw)[i]); break;
      case napi_uint32_array: for (size_t i = 0; i < n; ++i) addStart(reinterpret_cast<const uint32_t*>(raw)[i]); break;
      default: badArgument("starts must be an Array, Float64Array, Int32Array or Uint32Array");
    }
  } else if (starts.IsArray()) {
    auto list = starts.As<Napi::Array>();
    offsets.reserve(list.Length());
    for (uint32_t i = 0; i < list.Length(); ++i) {
      Napi::Value v = list.Get(i);
      if (!v.IsNumber()) badArgument("window starts must be numbers");
      addStart(v.As<Napi::Number>().DoubleValue());
    }
  } else {
    badArgument("starts must be an Array, Float64Array, Int32Array or Uint32Array");
  }
  return offsets;
}

Napi::Value ArrayWrap::Take(const Napi::CallbackInfo& info) {
  TrackedArray& a = array();
  uint64_t windowBytes = 0;
  std::vector<uint64_t> offsets = windowOffsets(info, &windowBytes);
  uint8_t* out = bufferArgument(info[3], offsets.size() * windowBytes);
  a.take(native_->snapshot(), offsets.data(), offsets.size(), windowBytes, out, info[4].ToBoolean());
  return info.Env().Undefined();
}

Napi::Value ArrayWrap::ReleaseMappedPages(const Napi::CallbackInfo& info) {
  array();
  releaseMappedPages(*native_->env());
  return info.Env().Undefined();
}

Napi::Value ArrayWrap::Resize(const Napi::CallbackInfo& info) {
  array().resize(toU64(info[0], "byteLength"));
  return info.Env().Undefined();
}

Napi::Value ArrayWrap::AdoptCommittedLength(const Napi::CallbackInfo& info) {
  array().adoptCommittedLength(toU64(info[0], "byteLength"));
  return info.Env().Undefined();
}

Napi::Value ArrayWrap::View(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TrackedArray& a = array();
  uint64_t offset = toU64(info[0], "byteOffset");
  uint64_t length = toU64(info[1], "byteLength");
  if (offset > a.reservedBytes() || length > a.reservedBytes() - offset) {
    throw Error(ErrorCode::kBounds, "view outside the array's reservation");
  }
  // The largest buffer every supported Node.js makes (MAX_VIEW_BYTES in src/array.ts): past
  // it the platform refuses the buffer after taking its finalizer.
  constexpr uint64_t kMaxViewBytes = uint64_t(1) << 32;
  if (length > kMaxViewBytes) {
    throw Error(ErrorCode::kTooLarge, "a view of " + std::to_string(length) + " bytes is larger than " + std::to_string(kMaxViewBytes));
  }
  if (info.Length() > 2 && info[2].ToBoolean().Value()) a.populate(offset, length);
  if (info.Length() > 3 && info[3].ToBoolean().Value()) a.loadSequential(offset, length);
  // The buffer's finalizer deletes the hint, which holds the array alive.
  struct Hint {
    std::shared_ptr<TrackedArray> array;
    int64_t bytes;
  };
  auto keepAlive = std::make_unique<Hint>(Hint{array_, int64_t(length)});
  // V8 counts an ArrayBuffer's bytes as external memory of the heap, and a major GC is
  // started whenever that grows by 64 MiB: a views() scan of 64 MiB chunks took a major GC
  // per chunk. A view holds no memory (its pages belong to the region, and collecting it
  // frees none), so the count is taken back before V8 adds it and given back when the
  // buffer is finalized (on the JS thread), after V8 has subtracted it.
  int64_t ignoredTotal = 0;
  napi_adjust_external_memory(env, -int64_t(length), &ignoredTotal);
  napi_value buffer = nullptr;
  napi_status status = napi_create_external_arraybuffer(
      env, a.base() + offset, size_t(length),
      [](napi_env finalizeEnv, void*, void* hint) {
        Hint* h = static_cast<Hint*>(hint);
        int64_t total = 0;
        napi_adjust_external_memory(finalizeEnv, h->bytes, &total);
        delete h;
      },
      keepAlive.get(), &buffer);
  if (status != napi_ok) {
    // Refused before the platform took the finalizer (an exception pending, external
    // buffers not allowed): the hint and the count are still ours. Refused after: the
    // finalizer runs (it deletes the hint and gives the count back).
    if (status == napi_pending_exception || status == napi_status(22) /* napi_no_external_buffers_allowed */) {
      napi_adjust_external_memory(env, int64_t(length), &ignoredTotal);
    } else {
      keepAlive.release();
    }
    bool pending = false;
    napi_value ignored;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &ignored);
    throw Error(ErrorCode::kTooLarge, "the platform refused a view of " + std::to_string(length) + " bytes");
  }
  keepAlive.release();  // owned by the buffer now
  Napi::ArrayBuffer view(env, buffer);
  views_->add(array_.get(), view);
  return view;
}

// afterCommitElsewhere(assignedId): the planned changes are durable elsewhere (a remote
// commit); they leave the array's region.
Napi::Value ArrayWrap::AfterCommitElsewhere(const Napi::CallbackInfo& info) {
  array().afterCommitElsewhere(toU64(info[0], "assignedId"));
  return info.Env().Undefined();
}

Napi::Value ArrayWrap::Plan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TrackedArray::Planned planned;
  array().plan(&planned);
  auto bytes = [&](const std::vector<uint8_t>& v) { return Napi::Buffer<uint8_t>::Copy(env, v.data(), v.size()); };
  Napi::Array blocks = Napi::Array::New(env, planned.blocks.size());
  for (uint32_t i = 0; i < planned.blocks.size(); ++i) {
    Napi::Object b = Napi::Object::New(env);
    b.Set("index", double(planned.blocks[i].index));
    b.Set("data", bytes(planned.blocks[i].data));
    blocks.Set(i, b);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("blocks", blocks);
  out.Set("shrinkFromBlock", double(planned.shrinkFromBlock));
  out.Set("appendOnly", planned.appendOnly);
  out.Set("appended", planned.appendOnly ? Napi::Value(bytes(planned.appended)) : env.Null());
  return out;
}

Napi::Value ArrayWrap::MemoryStats(const Napi::CallbackInfo& info) {
  ArrayMemoryFigures f = arrayMemoryFigures(array());
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("faults", double(f.faults));
  out.Set("blocksMapped", double(f.blocksMapped));
  out.Set("fileBlocks", double(f.fileBlocks));
  out.Set("copiedBlocks", double(f.copiedBlocks));
  out.Set("mappedBlocks", double(f.mappedBlocks));
  out.Set("dirtyBlocks", double(f.dirtyBlocks));
  out.Set("evictions", double(f.evictions));
  out.Set("spills", double(f.spills));
  out.Set("spilledBlocks", double(f.spilledBlocks));
  out.Set("scans", double(f.scans));
  out.Set("unmapCalls", double(f.unmapCalls));
  out.Set("scanWindows", double(f.scanWindows));
  out.Set("scanWindowsOpened", double(f.scanWindowsOpened));
  out.Set("scanWindowsRecycled", double(f.scanWindowsRecycled));
  out.Set("scanWindowsPrefetched", double(f.scanWindowsPrefetched));
  out.Set("reservedBytes", double(f.reservedBytes));
  return out;
}

Napi::Value ArrayWrap::Release(const Napi::CallbackInfo& info) {
  if (array_) {
    if (views_) views_->detach(array_.get());
    array_->close();
  }
  detach();
  return info.Env().Undefined();
}

Napi::Value ArrayWrap::Id(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(array().id()));
}

Napi::Value ArrayWrap::ByteLength(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(array().byteLength()));
}

Napi::Value ArrayWrap::HasChanges(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), array().hasChanges());
}

}  // namespace txa::binding
