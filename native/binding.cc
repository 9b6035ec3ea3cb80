// The only file that knows JavaScript. It unpacks arguments, calls the native core and
// turns txa::Error into instances of the TypeScript error classes (src/errors.ts), which
// the library hands over once at load time with setErrorClasses().
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <memory>
#include <string>

#include "engine/commit_follower.h"
#include "engine/env_stats.h"
#include "engine/error.h"
#include "engine/keys.h"
#include "engine/remote_apply.h"
#include "engine/session.h"
#include "engine/store_check.h"

namespace {

using txa::ErrorCode;

struct AddonData {
  std::map<std::string, Napi::FunctionReference> errorClasses;  // code -> class
  Napi::FunctionReference arrayConstructor;
  Napi::FunctionReference followerConstructor;
  Napi::FunctionReference waiterConstructor;
  // Set by interruptWaits(): every blocking wait of this JavaScript thread returns false.
  std::atomic<bool> waitsInterrupted{false};
};

// Throws the error class of `code` (src/errors.ts), constructed as new Class(message,
// facts) when facts are given.
[[noreturn]] void throwCode(Napi::Env env, const char* code, const std::string& message,
                            Napi::Value facts = Napi::Value()) {
  auto* data = env.GetInstanceData<AddonData>();
  auto it = data ? data->errorClasses.find(code) : decltype(data->errorClasses)::iterator();
  if (data && it != data->errorClasses.end()) {
    Napi::Object error = facts.IsEmpty() ? it->second.New({Napi::String::New(env, message)})
                                         : it->second.New({Napi::String::New(env, message), facts});
    throw Napi::Error(env, error);
  }
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  throw error;
}

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
Napi::Object conflictFactsToJs(Napi::Env env, const txa::ConflictFacts& facts) {
  Napi::Object out = Napi::Object::New(env);
  if (!facts.array.empty()) out.Set("array", facts.array);
  if (facts.serial) out.Set("serial", double(facts.serial));
  out.Set("metadata", facts.metadata);
  out.Set("blocks", rangesToJs(env, facts.blocks));
  out.Set("rows", rangesToJs(env, facts.rows));
  return out;
}

// Runs `body`, translating native errors into JavaScript exceptions.
template <class Body>
auto translated(Napi::Env env, Body body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const txa::ConflictError& e) {
    throwCode(env, txa::errorCodeName(e.code()), e.what(), conflictFactsToJs(env, e.facts()));
  } catch (const txa::Error& e) {
    throwCode(env, txa::errorCodeName(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    throwCode(env, "TXA_STORAGE", "out of memory");
  } catch (const std::exception& e) {
    throwCode(env, "TXA_STORAGE", e.what());
  }
}

[[noreturn]] void badArgument(Napi::Env env, const std::string& what) {
  throwCode(env, "TXA_ARGUMENT", what);
}

uint64_t toU64(const Napi::Value& value, const char* what) {
  if (!value.IsNumber()) badArgument(value.Env(), std::string(what) + " must be a number");
  double d = value.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9007199254740991.0 || d != double(uint64_t(d))) {
    badArgument(value.Env(), std::string(what) + " must be a non-negative integer");
  }
  return uint64_t(d);
}

int64_t toI64(const Napi::Value& value, const char* what) {
  if (!value.IsNumber()) badArgument(value.Env(), std::string(what) + " must be a number");
  double d = value.As<Napi::Number>().DoubleValue();
  if (!(d >= -9007199254740991.0 && d <= 9007199254740991.0) || d != double(int64_t(d))) {
    badArgument(value.Env(), std::string(what) + " must be an integer");
  }
  return int64_t(d);
}

std::string toBytes(const Napi::Value& value, const char* what) {
  if (!value.IsTypedArray()) badArgument(value.Env(), std::string(what) + " must be a Uint8Array");
  auto bytes = value.As<Napi::Uint8Array>();
  return std::string(reinterpret_cast<const char*>(bytes.Data()), bytes.ByteLength());
}

Napi::Buffer<uint8_t> toBuffer(Napi::Env env, const std::string& bytes) {
  return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

// Reads (base, counts[], strides[], itemBytes) into a Strided.
txa::Strided toStrided(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[1].IsArray() || !info[2].IsArray()) badArgument(env, "counts and strides must be arrays");
  auto counts = info[1].As<Napi::Array>();
  auto strides = info[2].As<Napi::Array>();
  if (counts.Length() != strides.Length() || counts.Length() > 32) badArgument(env, "bad selection rank");
  txa::Strided sel;
  sel.base = toU64(info[0], "base");
  for (uint32_t i = 0; i < counts.Length(); ++i) {
    sel.counts.push_back(toU64(counts.Get(i), "count"));
    sel.strides.push_back(toI64(strides.Get(i), "stride"));
  }
  uint64_t item = toU64(info[3], "itemBytes");
  if (item == 0 || item > 8) badArgument(env, "itemBytes must be 1..8");
  sel.itemBytes = uint32_t(item);
  return sel;
}

// The memory of a TypedArray argument: its first byte, its element type and its length.
// napi_get_typedarray_info reads the memory of ArrayBuffers and SharedArrayBuffers alike
// (node-addon-api's TypedArray::ArrayBuffer() refuses a SharedArrayBuffer).
struct TypedMemory {
  uint8_t* data;
  napi_typedarray_type type;
  size_t length;  // elements
  size_t byteLength;
};

TypedMemory typedMemory(const Napi::Value& value, const char* what) {
  if (!value.IsTypedArray()) badArgument(value.Env(), std::string(what) + " must be a TypedArray");
  TypedMemory m{};
  void* data = nullptr;
  napi_status status = napi_get_typedarray_info(value.Env(), value, &m.type, &m.length, &data, nullptr, nullptr);
  if (status != napi_ok) badArgument(value.Env(), std::string(what) + ": its memory cannot be read");
  static const size_t kElementBytes[] = {1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8};  // napi_typedarray_type order
  m.byteLength = size_t(m.type) < sizeof kElementBytes / sizeof *kElementBytes ? m.length * kElementBytes[m.type] : 0;
  m.data = static_cast<uint8_t*>(data);
  return m;
}

// The raw bytes of a TypedArray argument, checked to hold `bytes`.
uint8_t* bufferArgument(const Napi::Value& value, uint64_t bytes) {
  TypedMemory m = typedMemory(value, "buffer");
  if (m.byteLength < bytes || (bytes > 0 && !m.data)) {
    throwCode(value.Env(), "TXA_BOUNDS", "buffer is smaller than the selection");
  }
  return m.data;
}

class SessionWrap;

// JavaScript handle of one TrackedArray.
class ArrayWrap : public Napi::ObjectWrap<ArrayWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeArray", {
      InstanceMethod<&ArrayWrap::Gather>("gather"),
      InstanceMethod<&ArrayWrap::ReleaseMappedPages>("releaseMappedPages"),
      InstanceMethod<&ArrayWrap::Scatter>("scatter"),
      InstanceMethod<&ArrayWrap::Resize>("resize"),
      InstanceMethod<&ArrayWrap::AdoptCommittedLength>("adoptCommittedLength"),
      InstanceMethod<&ArrayWrap::View>("view"),
      InstanceMethod<&ArrayWrap::Take>("take"),
      InstanceMethod<&ArrayWrap::MemoryStats>("memoryStats"),
      InstanceMethod<&ArrayWrap::Plan>("plan"),
      InstanceMethod<&ArrayWrap::AfterCommitElsewhere>("afterCommitElsewhere"),
      InstanceMethod<&ArrayWrap::Release>("release"),
      InstanceAccessor<&ArrayWrap::Id>("id"),
      InstanceAccessor<&ArrayWrap::ByteLength>("byteLength"),
      InstanceAccessor<&ArrayWrap::HasChanges>("hasChanges"),
    });
  }
  explicit ArrayWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ArrayWrap>(info) {}

  void attach(std::shared_ptr<txa::TrackedArray> array, Napi::Object session, txa::Session* native) {
    array_ = std::move(array);
    session_ = Napi::Persistent(session);
    native_ = native;
  }
  void detach() { array_.reset(); native_ = nullptr; session_.Reset(); }
  std::shared_ptr<txa::TrackedArray> shared() {
    if (!array_) throwCode(Env(), "TXA_CLOSED", "the store is closed");
    return array_;
  }

 private:
  txa::TrackedArray& array(Napi::Env env) {
    if (!array_ || !native_) throwCode(env, "TXA_CLOSED", "the store is closed");
    return *array_;
  }
  // gather(base, counts, strides, itemBytes, out, verify)
  Napi::Value Gather(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      txa::TrackedArray& a = array(env);
      txa::Strided sel = toStrided(info);
      uint8_t* out = bufferArgument(info[4], sel.elementCount() * sel.itemBytes);
      a.gather(native_->snapshot(), sel, out, info[5].ToBoolean());
      return env.Undefined();
    });
  }
  // releaseMappedPages(): after a long copy out of the store (an export), lets go of the
  // map pages it touched so they stop counting as this process's resident memory.
  Napi::Value ReleaseMappedPages(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      array(env);
      txa::releaseMappedPages(*native_->env());
      return env.Undefined();
    });
  }
  Napi::Value Scatter(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      txa::TrackedArray& a = array(env);
      txa::Strided sel = toStrided(info);
      const uint8_t* in = bufferArgument(info[4], sel.elementCount() * sel.itemBytes);
      a.scatter(sel, in);
      return env.Undefined();
    });
  }
  Napi::Value Resize(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      array(env).resize(toU64(info[0], "byteLength"));
      return env.Undefined();
    });
  }
  // take(startRows, windowRows, rowBytes, out, verify): windows of rows copied back to back.
  // startRows: an Array of numbers, or a Float64Array / Int32Array / Uint32Array.
  Napi::Value Take(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      txa::TrackedArray& a = array(env);
      uint64_t rows = toU64(info[1], "rows");
      uint64_t rowBytes = toU64(info[2], "rowBytes");
      if (rowBytes && rows > UINT64_MAX / rowBytes) throwCode(env, "TXA_BOUNDS", "windows larger than the array");
      uint64_t windowBytes = rows * rowBytes;
      std::vector<uint64_t> offsets;
      auto addStart = [&](double start) {
        // Range first: casting a double >= 2^64 is undefined, and a product past 2^64
        // would wrap into a valid-looking offset.
        if (!(start >= 0 && start <= 9007199254740991.0) || start != double(uint64_t(start))) {
          badArgument(env, "window starts must be non-negative safe integers");
        }
        uint64_t row = uint64_t(start);
        if (rowBytes && row > (UINT64_MAX - windowBytes) / rowBytes) {
          throwCode(env, "TXA_BOUNDS", "a window starts past the end of the array");
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
          default: badArgument(env, "starts must be an Array, Float64Array, Int32Array or Uint32Array");
        }
      } else if (starts.IsArray()) {
        auto list = starts.As<Napi::Array>();
        offsets.reserve(list.Length());
        for (uint32_t i = 0; i < list.Length(); ++i) {
          Napi::Value v = list.Get(i);
          if (!v.IsNumber()) badArgument(env, "window starts must be numbers");
          addStart(v.As<Napi::Number>().DoubleValue());
        }
      } else {
        badArgument(env, "starts must be an Array, Float64Array, Int32Array or Uint32Array");
      }
      uint8_t* out = bufferArgument(info[3], offsets.size() * windowBytes);
      a.take(native_->snapshot(), offsets.data(), offsets.size(), windowBytes, out, info[4].ToBoolean());
      return env.Undefined();
    });
  }
  // view(byteOffset, byteLength) -> ArrayBuffer over the array's region. The buffer keeps
  // the array (and so its mapping) alive; close() detaches it before unmapping.
  Napi::Value View(const Napi::CallbackInfo& info);
  // plan() -> { blocks: { index, data }[], shrinkFromBlock, appendOnly, appended | null }:
  // this transaction's changes as values (TrackedArray::plan).
  Napi::Value Plan(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      txa::TrackedArray::Planned planned;
      array(env).plan(&planned);
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
    });
  }
  Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value { return memoryStats(env); });
  }
  Napi::Value memoryStats(Napi::Env env) {
    txa::TrackedArray& a = array(env);
    if (a.closed()) throwCode(env, "TXA_CLOSED", "the array's memory is released");
    txa::vmem::RegionStats st = a.region()->stats();
    Napi::Object out = Napi::Object::New(env);
    out.Set("faults", double(st.faults));
    out.Set("blocksMapped", double(st.blocksMapped));
    out.Set("fileBlocks", double(st.fileBlocks));
    out.Set("copiedBlocks", double(st.copiedBlocks));
    out.Set("mappedBlocks", double(st.mappedNow));
    out.Set("dirtyBlocks", double(st.dirtyNow));
    out.Set("evictions", double(st.evictions));
    out.Set("spills", double(st.spills));
    out.Set("spilledBlocks", double(st.spilledNow));
    out.Set("scans", double(st.scans));
    out.Set("unmapCalls", double(st.unmapCalls));
    out.Set("scanWindows", double(st.scanWindows));
    out.Set("scanWindowsOpened", double(st.scanWindowsOpened));
    out.Set("reservedBytes", double(a.reservedBytes()));
    return out;
  }
  // release(): the array is gone for this handle (its delete was committed, by this handle
  // or another; or it was created and then aborted or deleted). Its views are detached, as
  // close() does, and its region is unmapped, so that no write through them can reach a
  // later commit under the dead array's id and no read shows an array that no longer
  // exists. Idempotent.
  Napi::Value Release(const Napi::CallbackInfo& info);
  // Every callback goes through translated(): a native exception escaping a callback
  // would terminate the process.
  Napi::Value AdoptCommittedLength(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      array(env).adoptCommittedLength(toU64(info[0], "byteLength"));
      return env.Undefined();
    });
  }
  Napi::Value AfterCommitElsewhere(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      array(env).afterCommitElsewhere(toU64(info[0], "assignedId"));
      return env.Undefined();
    });
  }
  Napi::Value Id(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value { return Napi::Number::New(env, double(array(env).id())); });
  }
  Napi::Value HasChanges(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value { return Napi::Boolean::New(env, array(env).hasChanges()); });
  }
  Napi::Value ByteLength(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value { return Napi::Number::New(env, double(array(env).byteLength())); });
  }

  std::shared_ptr<txa::TrackedArray> array_;
  Napi::ObjectReference session_;  // keeps the session alive while the array is
  txa::Session* native_ = nullptr;
  SessionWrap* sessionWrap_ = nullptr;
  friend class SessionWrap;
};

// JavaScript handle of one Session (one Store handle).
class SessionWrap : public Napi::ObjectWrap<SessionWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeSession", {
      InstanceMethod<&SessionWrap::GetRecord>("getRecord"),
      InstanceMethod<&SessionWrap::ListRecords>("listRecords"),
      InstanceMethod<&SessionWrap::GetMeta>("getMeta"),
      InstanceMethod<&SessionWrap::Track>("track"),
      InstanceMethod<&SessionWrap::Commit>("commit"),
      InstanceMethod<&SessionWrap::ApplyRemote>("applyRemote"),
      InstanceMethod<&SessionWrap::Refresh>("refresh"),
      InstanceMethod<&SessionWrap::Flush>("flush"),
      InstanceMethod<&SessionWrap::LatestRecord>("latestRecord"),
      InstanceMethod<&SessionWrap::LatestSerial>("latestSerial"),
      InstanceMethod<&SessionWrap::ReadCommits>("readCommits"),
      InstanceMethod<&SessionWrap::GetSegment>("getSegment"),
      InstanceMethod<&SessionWrap::ListSegments>("listSegments"),
      InstanceMethod<&SessionWrap::Follower>("follower"),
      InstanceMethod<&SessionWrap::Waiter>("waiter"),
      InstanceMethod<&SessionWrap::Stats>("stats"),
      InstanceMethod<&SessionWrap::Check>("check"),
      InstanceMethod<&SessionWrap::EnvFigures>("envFigures"),
      InstanceMethod<&SessionWrap::Close>("close"),
      InstanceAccessor<&SessionWrap::Serial>("serial"),
    });
  }

  // new NativeSession(path, mapSize, maxReaders, cacheBytes, { create, readOnly, format })
  explicit SessionWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SessionWrap>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) badArgument(env, "path must be a string");
    txa::EnvOptions options;
    if (!info[1].IsUndefined()) options.mapSize = toU64(info[1], "mapSize");
    if (!info[2].IsUndefined()) options.maxReaders = unsigned(toU64(info[2], "maxReaders"));
    if (!info[3].IsNumber()) badArgument(env, "mappedBlocks must be a number");
    uint64_t mappedBlocks = toU64(info[3], "mappedBlocks");
    if (!info[4].IsObject()) badArgument(env, "open mode must be an object");
    Napi::Object mode = info[4].As<Napi::Object>();
    options.create = mode.Get("create").ToBoolean();
    options.readOnly = mode.Get("readOnly").ToBoolean();
    options.format = toBytes(mode.Get("format"), "format");
    std::string path = info[0].As<Napi::String>();
    if (path.find('\0') != std::string::npos) badArgument(env, "path must not contain a NUL byte");
    translated(env, [&]() {
      session_ = std::make_unique<txa::Session>(txa::Env::acquire(path, options), mappedBlocks);
      return 0;
    });
  }

 private:
  txa::Session& session(Napi::Env env) {
    if (!session_) throwCode(env, "TXA_CLOSED", "the store is closed");
    return *session_;
  }

  Napi::Value GetRecord(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      if (!info[0].IsString()) badArgument(env, "name must be a string");
      txa::Record record;
      if (!session(env).getRecord(info[0].As<Napi::String>(), &record)) return env.Null();
      Napi::Object out = Napi::Object::New(env);
      out.Set("id", double(record.id));
      out.Set("serial", double(record.serial));
      out.Set("rows", double(record.rows));
      out.Set("rowBytes", double(record.rowBytes));
      out.Set("body", toBuffer(env, record.body));
      return out;
    });
  }

  Napi::Value ListRecords(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      auto names = session(env).listRecords();
      Napi::Array out = Napi::Array::New(env, names.size());
      for (uint32_t i = 0; i < names.size(); ++i) out.Set(i, toBuffer(env, names[i]));
      return out;
    });
  }

  Napi::Value GetMeta(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      if (!info[0].IsString()) badArgument(env, "key must be a string");
      std::string value;
      if (!session(env).getMeta(info[0].As<Napi::String>(), &value)) return env.Null();
      return toBuffer(env, value);
    });
  }

  // track(id, blockBytes, byteLength, name) -> NativeArray (name: for error messages)
  Napi::Value Track(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      uint64_t id = toU64(info[0], "id");
      uint64_t blockBytes = toU64(info[1], "blockBytes");
      if (blockBytes == 0 || blockBytes > (uint64_t(1) << 30)) badArgument(env, "blockBytes out of range");
      uint64_t byteLength = toU64(info[2], "byteLength");
      if (!info[3].IsString()) badArgument(env, "name must be a string");
      auto tracked = session(env).track(id, uint32_t(blockBytes), byteLength, info[3].As<Napi::String>());
      auto* data = env.GetInstanceData<AddonData>();
      Napi::Object object = data->arrayConstructor.New({});
      ArrayWrap* wrap = ArrayWrap::Unwrap(object);
      wrap->attach(tracked, Value(), session_.get());
      wrap->sessionWrap_ = this;
      txa::TrackedArray* raw = tracked.get();
      tracked->setBeforeRelocate([this, raw]() { detachViews(raw); });
      arrays_.push_back(Napi::Weak(object));
      return object;
    });
  }

  // commit(records: {name, expectedSerial, remove, body, array}[], meta: {key, value}[], sync)
  Napi::Value Commit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      txa::Session& s = session(env);
      if (!info[0].IsArray() || !info[1].IsArray()) badArgument(env, "commit takes arrays");
      auto recordList = info[0].As<Napi::Array>();
      std::vector<txa::RecordChange> records;
      for (uint32_t i = 0; i < recordList.Length(); ++i) {
        Napi::Object r = recordList.Get(i).As<Napi::Object>();
        txa::RecordChange change;
        change.name = r.Get("name").As<Napi::String>();
        change.expectedSerial = toU64(r.Get("expectedSerial"), "expectedSerial");
        change.remove = r.Get("remove").ToBoolean();
        if (!change.remove) {
          change.body = toBytes(r.Get("body"), "body");
          change.rows = toU64(r.Get("rows"), "rows");
          change.rowBytes = toU64(r.Get("rowBytes"), "rowBytes");
          change.appendOnly = r.Get("appendOnly").ToBoolean();
          change.attrsChanged = r.Get("attrsChanged").ToBoolean();
          change.resized = r.Get("resized").ToBoolean();
        }
        Napi::Value array = r.Get("array");
        if (array.IsObject()) change.array = trackedOf(env, array.As<Napi::Object>());
        records.push_back(std::move(change));
      }
      auto metaList = info[1].As<Napi::Array>();
      std::vector<txa::MetaPut> meta;
      for (uint32_t i = 0; i < metaList.Length(); ++i) {
        Napi::Object m = metaList.Get(i).As<Napi::Object>();
        meta.push_back({m.Get("key").As<Napi::String>(), toBytes(m.Get("value"), "value")});
      }
      if (!info[2].IsArray()) badArgument(env, "segments must be an array");
      auto segmentList = info[2].As<Napi::Array>();
      std::vector<txa::SegmentChange> segments;
      for (uint32_t i = 0; i < segmentList.Length(); ++i) {
        Napi::Object c = segmentList.Get(i).As<Napi::Object>();
        txa::SegmentChange change;
        change.array = trackedOf(env, c.Get("array").As<Napi::Object>());
        Napi::Array puts = c.Get("puts").As<Napi::Array>();
        for (uint32_t j = 0; j < puts.Length(); ++j) {
          Napi::Object p = puts.Get(j).As<Napi::Object>();
          change.puts.push_back({p.Get("name").As<Napi::String>(), toU64(p.Get("start"), "start"), toU64(p.Get("rows"), "rows")});
        }
        Napi::Array deletes = c.Get("deletes").As<Napi::Array>();
        for (uint32_t j = 0; j < deletes.Length(); ++j) {
          Napi::Object d = deletes.Get(j).As<Napi::Object>();
          change.deletes.push_back({d.Get("name").As<Napi::String>(), toU64(d.Get("start"), "start"), toU64(d.Get("stop"), "stop")});
        }
        segments.push_back(std::move(change));
      }
      return outcomeToJs(env, s.commit(records, meta, segments, info[3].ToBoolean()));
    });
  }

  // applyRemote({ head, replaceAll, commits: {serial, changes: {id, record, blocks: [first, last | -1][]}[]}[],
  //   records: {name, id, serial, rows, rowBytes, body, deleted}[],
  //   blocks: {arrayId, index, serial, blockBytes, data | null}[], remoteMeta }) -> local serial
  Napi::Value ApplyRemote(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      txa::Session& s = session(env);
      if (!info[0].IsObject()) badArgument(env, "applyRemote takes a batch");
      Napi::Object in = info[0].As<Napi::Object>();
      txa::RemoteBatch batch;
      batch.head = toU64(in.Get("head"), "head");
      batch.remoteMeta = toBytes(in.Get("remoteMeta"), "remoteMeta");
      batch.replaceAll = in.Get("replaceAll").ToBoolean();
      batch.sync = !in.Has("sync") || in.Get("sync").ToBoolean();
      auto list = [&](const char* key) {
        Napi::Value v = in.Get(key);
        if (!v.IsArray()) badArgument(env, std::string("applyRemote: ") + key + " must be an array");
        return v.As<Napi::Array>();
      };
      Napi::Array commits = list("commits");
      for (uint32_t i = 0; i < commits.Length(); ++i) {
        Napi::Object c = commits.Get(i).As<Napi::Object>();
        txa::RemoteCommit commit;
        commit.serial = toU64(c.Get("serial"), "serial");
        commit.timeMs = toU64(c.Get("timeMs"), "timeMs");
        Napi::Array changes = c.Get("changes").As<Napi::Array>();
        for (uint32_t j = 0; j < changes.Length(); ++j) {
          Napi::Object ch = changes.Get(j).As<Napi::Object>();
          uint64_t id = toU64(ch.Get("id"), "id");
          if (ch.Get("record").ToBoolean()) commit.changes.addRecord(id);
          txa::ArrayChange& told = commit.changes.at(id);
          told.name = ch.Get("name").As<Napi::String>();
          told.flags = uint32_t(toU64(ch.Get("flags"), "flags"));
          told.rowsBefore = toU64(ch.Get("rowsBefore"), "rowsBefore");
          told.rowsAfter = toU64(ch.Get("rowsAfter"), "rowsAfter");
          told.rowBytes = toU64(ch.Get("rowBytes"), "rowBytes");
          told.blockBytes = uint32_t(toU64(ch.Get("blockBytes"), "blockBytes"));
          Napi::Array ranges = ch.Get("blocks").As<Napi::Array>();
          for (uint32_t k = 0; k < ranges.Length(); ++k) {
            Napi::Array range = ranges.Get(k).As<Napi::Array>();
            Napi::Value last = range.Get(1u);
            commit.changes.addBlocks(id, toU64(range.Get(0u), "first"),
                                     last.IsNumber() && last.As<Napi::Number>().Int64Value() >= 0
                                         ? toU64(last, "last") : txa::keys::kToEnd);
          }
        }
        batch.commits.push_back(std::move(commit));
      }
      Napi::Array records = list("records");
      for (uint32_t i = 0; i < records.Length(); ++i) {
        Napi::Object r = records.Get(i).As<Napi::Object>();
        txa::RemoteRecord record;
        record.name = r.Get("name").As<Napi::String>();
        record.id = toU64(r.Get("id"), "id");
        record.serial = toU64(r.Get("serial"), "serial");
        record.rows = toU64(r.Get("rows"), "rows");
        record.rowBytes = toU64(r.Get("rowBytes"), "rowBytes");
        record.body = toBytes(r.Get("body"), "body");
        record.deleted = r.Get("deleted").ToBoolean();
        batch.records.push_back(std::move(record));
      }
      Napi::Array blocks = list("blocks");
      for (uint32_t i = 0; i < blocks.Length(); ++i) {
        Napi::Object b = blocks.Get(i).As<Napi::Object>();
        txa::RemoteBlock block;
        block.arrayId = toU64(b.Get("arrayId"), "arrayId");
        block.index = toU64(b.Get("index"), "index");
        block.serial = toU64(b.Get("serial"), "serial");
        uint64_t blockBytes = toU64(b.Get("blockBytes"), "blockBytes");
        if (blockBytes == 0 || blockBytes > (uint64_t(1) << 30)) badArgument(env, "blockBytes out of range");
        block.blockBytes = uint32_t(blockBytes);
        Napi::Value data = b.Get("data");
        if (!data.IsNull() && !data.IsUndefined()) block.data = toBytes(data, "data");
        batch.blocks.push_back(std::move(block));
      }
      txa::SessionStats counters;
      return Napi::Number::New(env, double(txa::applyRemote(*s.env(), batch, &counters)));
    });
  }

  Napi::Value Refresh(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value { return outcomeToJs(env, session(env).refresh()); });
  }

  Napi::Value Flush(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      session(env).flush();
      return env.Undefined();
    });
  }

  // waiter() -> NativeWaiter: waits on this store that outlive close() (see WaiterWrap).
  Napi::Value Waiter(const Napi::CallbackInfo& info);

  // latestRecord(name) -> {id, rows, rowBytes, serial} | null, in the newest commit.
  Napi::Value LatestRecord(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      if (!info[0].IsString()) badArgument(env, "name must be a string");
      txa::Record record;
      if (!session(env).latestRecord(info[0].As<Napi::String>(), &record)) return env.Null();
      Napi::Object out = Napi::Object::New(env);
      out.Set("id", double(record.id));
      out.Set("serial", double(record.serial));
      out.Set("rows", double(record.rows));
      out.Set("rowBytes", double(record.rowBytes));
      return out;
    });
  }

  // latestSerial() -> the newest commit's serial (a fresh read, not the snapshot's).
  Napi::Value LatestSerial(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value { return Napi::Number::New(env, double(session(env).env()->currentSerial())); });
  }

  // readCommits(after, limit) -> [{serial, time, arrays: [{id, name, flags, rowsBefore,
  // rowsAfter, rowBytes, blockBytes, blocks: [first, last, ...]}]}] | null when pruned.
  // A `last` of -1 means "to the end".
  Napi::Value ReadCommits(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      uint64_t after = toU64(info[0], "after");
      uint64_t limit = toU64(info[1], "limit");
      std::vector<txa::CommitEntry> commits;
      if (!session(env).readCommits(after, size_t(std::min<uint64_t>(limit, 1 << 20)), &commits)) return env.Null();
      Napi::Array out = Napi::Array::New(env, commits.size());
      for (uint32_t i = 0; i < commits.size(); ++i) {
        const txa::CommitEntry& c = commits[i];
        Napi::Object commit = Napi::Object::New(env);
        commit.Set("serial", double(c.serial));
        commit.Set("time", double(c.timeMs));
        Napi::Array arrays = Napi::Array::New(env);
        uint32_t n = 0;
        for (const auto& [id, change] : c.changes.byArray()) {
          Napi::Object a = Napi::Object::New(env);
          a.Set("id", double(id));
          a.Set("name", Napi::String::New(env, change.name));
          a.Set("flags", double(change.flags | (change.recordChanged ? 1u : 0u)));
          a.Set("rowsBefore", double(change.rowsBefore));
          a.Set("rowsAfter", double(change.rowsAfter));
          a.Set("rowBytes", double(change.rowBytes));
          a.Set("blockBytes", double(change.blockBytes));
          Napi::Array blocks = Napi::Array::New(env, change.blocks.size() * 2);
          for (uint32_t j = 0; j < change.blocks.size(); ++j) {
            blocks.Set(2 * j, double(change.blocks[j].first));
            uint64_t last = change.blocks[j].second;
            blocks.Set(2 * j + 1, last == UINT64_MAX ? -1.0 : double(last));
          }
          a.Set("blocks", blocks);
          arrays.Set(n++, a);
        }
        commit.Set("arrays", arrays);
        out.Set(i, commit);
      }
      return out;
    });
  }

  static Napi::Object segmentToJs(Napi::Env env, const txa::Segment& segment) {
    Napi::Object out = Napi::Object::New(env);
    out.Set("name", Napi::String::New(env, segment.name));
    out.Set("start", double(segment.start));
    out.Set("stop", double(segment.stop));
    return out;
  }

  // getSegment(arrayId, name) -> {name, start, stop} | null, in the snapshot.
  Napi::Value GetSegment(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      uint64_t id = toU64(info[0], "arrayId");
      if (!info[1].IsString()) badArgument(env, "name must be a string");
      txa::Segment segment;
      if (!session(env).getSegment(id, info[1].As<Napi::String>(), &segment)) return env.Null();
      return segmentToJs(env, segment);
    });
  }

  // listSegments(arrayId, after: {start, name} | null, limit) -> [{name, start, stop}]
  Napi::Value ListSegments(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      uint64_t id = toU64(info[0], "arrayId");
      bool first = !info[1].IsObject();
      uint64_t afterStart = 0;
      std::string afterName;
      if (!first) {
        Napi::Object after = info[1].As<Napi::Object>();
        afterStart = toU64(after.Get("start"), "start");
        afterName = after.Get("name").As<Napi::String>();
      }
      uint64_t limit = toU64(info[2], "limit");
      std::vector<txa::Segment> segments;
      session(env).listSegments(id, first, afterStart, afterName, size_t(std::min<uint64_t>(limit, 1 << 20)), &segments);
      Napi::Array out = Napi::Array::New(env, segments.size());
      for (uint32_t i = 0; i < segments.size(); ++i) out.Set(i, segmentToJs(env, segments[i]));
      return out;
    });
  }

  // follower(callback) -> NativeFollower calling callback() on the JavaScript thread after
  // commits of any process (and once a second while it runs).
  Napi::Value Follower(const Napi::CallbackInfo& info);

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const txa::SessionStats& st = session(env).stats();
    Napi::Object out = Napi::Object::New(env);
    out.Set("commits", double(st.commits));
    out.Set("conflicts", double(st.conflicts));
    out.Set("blocksWritten", double(st.blocksWritten));
    out.Set("bytesWritten", double(st.bytesWritten));
    out.Set("valueBytesWritten", double(st.valueBytesWritten));
    out.Set("blocksRead", double(st.blocksRead));
    out.Set("checksumSeconds", double(st.checksumNanos) / 1e9);
    out.Set("checksumBytes", double(st.checksumBytes));
    txa::vmem::BudgetStats budget = session(env).budget().stats();
    out.Set("mappedBlocksLimit", double(budget.limitBlocks));
    out.Set("mappedBlocks", double(budget.mappedBlocks));
    out.Set("evictedBlocks", double(budget.evictions));
    out.Set("spilledBlocks", double(budget.spills));
    return out;
  }

  // check(blockBytesByName: {[name]: number}) -> {problems: [{array, block, kind, message}],
  // arrays, blocks, bytes}: a walk of the session's snapshot (engine/store_check.h).
  Napi::Value Check(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      txa::Session& s = session(env);
      if (!info[0].IsObject()) badArgument(env, "check takes an object of block sizes");
      Napi::Object sizes = info[0].As<Napi::Object>();
      std::map<std::string, uint32_t> blockBytes;
      Napi::Array names = sizes.GetPropertyNames();
      for (uint32_t i = 0; i < names.Length(); ++i) {
        std::string name = names.Get(i).As<Napi::String>().Utf8Value();
        uint64_t bytes = toU64(sizes.Get(name), "blockBytes");
        if (bytes > UINT32_MAX) badArgument(env, "blockBytes out of range");
        blockBytes[name] = uint32_t(bytes);
      }
      txa::CheckReport report = txa::checkStore(s.snapshot(), blockBytes);
      Napi::Array problems = Napi::Array::New(env, report.problems.size());
      for (uint32_t i = 0; i < report.problems.size(); ++i) {
        const txa::CheckProblem& p = report.problems[i];
        Napi::Object o = Napi::Object::New(env);
        o.Set("array", p.array);
        o.Set("block", p.block < 0 ? env.Null() : Napi::Number::New(env, double(p.block)));
        o.Set("kind", p.kind);
        o.Set("message", p.message);
        problems.Set(i, o);
      }
      Napi::Object out = Napi::Object::New(env);
      out.Set("problems", problems);
      out.Set("arrays", double(report.arrays));
      out.Set("blocks", double(report.blocks));
      out.Set("bytes", double(report.bytes));
      return out;
    });
  }

  // envFigures(): the whole environment's map, pages, readers and sub-database sizes.
  Napi::Value EnvFigures(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      txa::EnvFigures f = txa::readEnvFigures(*session(env).env());
      Napi::Object out = Napi::Object::New(env);
      out.Set("mapBytes", double(f.mapBytes));
      out.Set("pageBytes", double(f.pageBytes));
      out.Set("usedPages", double(f.usedPages));
      out.Set("freePages", double(f.freePages));
      out.Set("fileBytes", double(f.fileBytes));
      out.Set("readers", double(f.readers));
      out.Set("maxReaders", double(f.maxReaders));
      const std::pair<const char*, const txa::DbFigures*> dbs[] = {
          {"meta", &f.meta}, {"arrays", &f.arrays}, {"blocks", &f.blocks}, {"log", &f.log}};
      for (const auto& [name, db] : dbs) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("entries", double(db->entries));
        o.Set("pages", double(db->pages));
        out.Set(name, o);
      }
      return out;
    });
  }

  Napi::Value Serial(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(session(info.Env()).snapshot().serial()));
  }

  // Idempotent: detaches every view and array handle, unmaps the arrays' regions, ends
  // the snapshot, releases the environment.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    detachViews(nullptr);
    if (session_) session_->closeArrays();
    for (auto& weak : arrays_) {
      if (weak.IsEmpty()) continue;
      Napi::Value value = weak.Value();
      if (value.IsObject()) ArrayWrap::Unwrap(value.As<Napi::Object>())->detach();
    }
    arrays_.clear();
    session_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<txa::TrackedArray> trackedOf(Napi::Env env, Napi::Object object);

 public:
  // Remembers a view so that close() (or a relocation of its array) can detach it.
  void addView(txa::TrackedArray* array, Napi::ArrayBuffer buffer) {
    if (++viewsSinceSweep_ >= 1024) {  // forget views the GC already collected
      viewsSinceSweep_ = 0;
      std::vector<ViewEntry> kept;
      for (auto& v : views_) if (!v.buffer.Value().IsEmpty()) kept.push_back(std::move(v));
      views_.swap(kept);
    }
    views_.push_back({array, Napi::Weak(buffer)});
  }
  // Detaches the views of `array` (all views when null): their byteLength becomes 0.
  void detachViews(txa::TrackedArray* array) {
    std::vector<ViewEntry> kept;
    for (auto& v : views_) {
      if (array && v.array != array) {
        kept.push_back(std::move(v));
        continue;
      }
      Napi::ArrayBuffer buffer = v.buffer.Value();
      if (!buffer.IsEmpty() && !buffer.IsDetached()) buffer.Detach();
    }
    views_.swap(kept);
  }

 private:
  struct ViewEntry {
    txa::TrackedArray* array;
    Napi::Reference<Napi::ArrayBuffer> buffer;
  };
  std::vector<ViewEntry> views_;
  size_t viewsSinceSweep_ = 0;

  static Napi::Value outcomeToJs(Napi::Env env, const txa::Session::Outcome& outcome) {
    Napi::Object out = Napi::Object::New(env);
    out.Set("serial", double(outcome.serial));
    Napi::Array ids = Napi::Array::New(env, outcome.assignedIds.size());
    for (uint32_t i = 0; i < outcome.assignedIds.size(); ++i) ids.Set(i, double(outcome.assignedIds[i]));
    out.Set("assignedIds", ids);
    Napi::Array changed = Napi::Array::New(env);
    uint32_t n = 0;
    for (const auto& [id, change] : outcome.othersChanged.byArray()) {
      if (change.recordChanged) changed.Set(n++, double(id));
    }
    out.Set("recordsChanged", changed);
    out.Set("unknown", outcome.othersUnknown);
    if (!outcome.stale.empty()) out.Set("stale", outcome.stale);
    return out;
  }

  std::unique_ptr<txa::Session> session_;
  std::vector<Napi::ObjectReference> arrays_;  // weak: detached on close
  friend class ArrayWrap;
};

}  // namespace

// ArrayWrap keeps its TrackedArray; the session wrapper needs it back for commit().
namespace {
// JavaScript handle of one CommitFollower. Its thread reports to the JavaScript thread
// through a thread-safe function, which keeps the event loop alive only while ref(true).
// Reports are coalesced: at most one is queued.
class FollowerWrap : public Napi::ObjectWrap<FollowerWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeFollower", {
      InstanceMethod<&FollowerWrap::Start>("start"),
      InstanceMethod<&FollowerWrap::Stop>("stop"),
      InstanceMethod<&FollowerWrap::Ref>("ref"),
      InstanceMethod<&FollowerWrap::Close>("close"),
    });
  }
  explicit FollowerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FollowerWrap>(info) {}
  ~FollowerWrap() override { shutdown(); }

  void init(Napi::Env env, std::shared_ptr<txa::Env> store, Napi::Function callback) {
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
    follower_ = std::make_unique<txa::CommitFollower>(std::move(store), [state, tsfn]() mutable {
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

 private:
  struct Shared {
    std::atomic<bool> posted{false};
    std::atomic<bool> finalized{false};
  };

  static void onEnvCleanup(void* arg) {
    auto* self = static_cast<FollowerWrap*>(arg);
    self->hooked_ = false;
    if (self->follower_) self->follower_->stop();
  }

  void shutdown() {
    if (hooked_) {
      napi_remove_env_cleanup_hook(Env(), &FollowerWrap::onEnvCleanup, this);
      hooked_ = false;
    }
    if (follower_) follower_->stop();
    if (state_ && !released_ && !state_->finalized) tsfn_.Release();
    released_ = true;
  }

  bool usable() const { return follower_ && !released_ && !state_->finalized; }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      if (!usable()) throwCode(env, "TXA_CLOSED", "the follower is closed");
      follower_->start();
      return env.Undefined();
    });
  }
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (follower_) follower_->stop();
    return info.Env().Undefined();
  }
  // ref(keepAlive): whether the follower keeps the event loop (the process) alive.
  Napi::Value Ref(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (usable()) {
      if (info[0].ToBoolean()) tsfn_.Ref(env);
      else tsfn_.Unref(env);
    }
    return env.Undefined();
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    shutdown();
    return info.Env().Undefined();
  }

  std::shared_ptr<Shared> state_;
  Napi::ThreadSafeFunction tsfn_;
  std::unique_ptr<txa::CommitFollower> follower_;
  bool hooked_ = false;
  bool released_ = false;
};

Napi::Value SessionWrap::Follower(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return translated(env, [&]() -> Napi::Value {
    txa::Session& s = session(env);
    if (!info[0].IsFunction()) badArgument(env, "callback must be a function");
    auto* data = env.GetInstanceData<AddonData>();
    Napi::Object object = data->followerConstructor.New({});
    FollowerWrap::Unwrap(object)->init(env, s.env(), info[0].As<Napi::Function>());
    return object;
  });
}

// JavaScript handle for blocking waits on one store's commits, made by session.waiter().
// It holds the environment, so it keeps working after the session is closed.
//   waitSync(afterSerial, timeoutMs) -> boolean: blocks this thread until a commit with a
//     serial above afterSerial exists (true) or timeoutMs passes (false; < 0: forever).
// It returns false at once after interruptWaits() on this thread. Callers that must stay
// interruptible (a worker that may be terminated) wait in slices of bounded timeoutMs.
// Waits that do not block the thread use a follower (FollowerWrap) instead.
class WaiterWrap : public Napi::ObjectWrap<WaiterWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeWaiter", {
      InstanceMethod<&WaiterWrap::WaitSync>("waitSync"),
    });
  }
  explicit WaiterWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<WaiterWrap>(info) {}
  void attach(std::shared_ptr<txa::Env> store) { store_ = std::move(store); }

 private:
  Napi::Value WaitSync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      uint64_t serial = toU64(info[0], "afterSerial");
      int64_t timeout = toI64(info[1], "timeoutMs");
      const std::atomic<bool>* interrupted = &env.GetInstanceData<AddonData>()->waitsInterrupted;
      return Napi::Boolean::New(env, store_->waitForCommitAfter(serial, timeout, interrupted));
    });
  }

  std::shared_ptr<txa::Env> store_;
};

Napi::Value SessionWrap::Waiter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return translated(env, [&]() -> Napi::Value {
    std::shared_ptr<txa::Env> store = session(env).env();
    Napi::Object object = env.GetInstanceData<AddonData>()->waiterConstructor.New({});
    WaiterWrap::Unwrap(object)->attach(std::move(store));
    return object;
  });
}

// interruptWaits(): ends every blocking wait of this JavaScript thread, future ones too
// (they return false). The library calls it when the thread exits (process 'exit'). The
// followers of asynchronous waits are ended by their environment cleanup hooks.
Napi::Value InterruptWaits(const Napi::CallbackInfo& info) {
  info.Env().GetInstanceData<AddonData>()->waitsInterrupted.store(true, std::memory_order_release);
  return info.Env().Undefined();
}

Napi::Value ArrayWrap::View(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return translated(env, [&]() -> Napi::Value {
    txa::TrackedArray& a = array(env);
    uint64_t offset = toU64(info[0], "byteOffset");
    uint64_t length = toU64(info[1], "byteLength");
    if (offset > a.reservedBytes() || length > a.reservedBytes() - offset) {
      throwCode(env, "TXA_BOUNDS", "view outside the array's reservation");
    }
    if (info.Length() > 2 && info[2].ToBoolean().Value()) a.populate(offset, length);
    if (info.Length() > 3 && info[3].ToBoolean().Value()) a.loadSequential(offset, length);
    auto* keepAlive = new std::shared_ptr<txa::TrackedArray>(array_);
    Napi::ArrayBuffer buffer;
    try {
      buffer = Napi::ArrayBuffer::New(
          env, a.base() + offset, size_t(length),
          [](Napi::Env, void*, std::shared_ptr<txa::TrackedArray>* hint) { delete hint; }, keepAlive);
    } catch (...) {
      // node-addon-api frees nothing on failure; the hint is ours to delete.
      delete keepAlive;
      throwCode(env, "TXA_TOO_LARGE", "the platform refused a view of " + std::to_string(length) + " bytes");
    }
    sessionWrap_->addView(array_.get(), buffer);
    return buffer;
  });
}

Napi::Value ArrayWrap::Release(const Napi::CallbackInfo& info) {
  if (array_) {
    if (sessionWrap_) sessionWrap_->detachViews(array_.get());
    array_->close();
  }
  detach();
  return info.Env().Undefined();
}

std::shared_ptr<txa::TrackedArray> SessionWrap::trackedOf(Napi::Env env, Napi::Object object) {
  auto* data = env.GetInstanceData<AddonData>();
  if (!object.InstanceOf(data->arrayConstructor.Value())) badArgument(env, "array must be a NativeArray");
  return ArrayWrap::Unwrap(object)->shared();
}
}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  Napi::Function arrayClass = ArrayWrap::Define(env);
  data->arrayConstructor = Napi::Persistent(arrayClass);
  data->waiterConstructor = Napi::Persistent(WaiterWrap::Define(env));
  exports.Set("interruptWaits", Napi::Function::New(env, InterruptWaits));
  exports.Set("NativeSession", SessionWrap::Define(env));
  exports.Set("NativeArray", arrayClass);
  data->followerConstructor = Napi::Persistent(FollowerWrap::Define(env));
  exports.Set("faultMode", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    const txa::vmem::SystemInfo& sys = txa::vmem::systemInfo();
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("mode", txa::vmem::faultModeName(sys.defaultMode));
    out.Set("userfaultfd", sys.uffd);
    out.Set("systemCalls", sys.defaultMode == txa::vmem::FaultMode::Uffd && sys.kernelFaults);
    out.Set("writeScan", sys.pagemapScan ? "PAGEMAP_SCAN" : "pagemap");
    out.Set("pageBytes", double(sys.pageBytes));
    if (sys.envError.status != txa::vmem::Status::Ok) out.Set("error", txa::vmem::describe(sys.envError));
    return out;
  }));
  exports.Set("setErrorClasses", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    auto* d = info.Env().GetInstanceData<AddonData>();
    Napi::Object classes = info[0].As<Napi::Object>();
    Napi::Array codes = classes.GetPropertyNames();
    for (uint32_t i = 0; i < codes.Length(); ++i) {
      std::string code = codes.Get(i).As<Napi::String>();
      d->errorClasses[code] = Napi::Persistent(classes.Get(code).As<Napi::Function>());
    }
  }));
  return exports;
}

NODE_API_MODULE(txarray, Init)
