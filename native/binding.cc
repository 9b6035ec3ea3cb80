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
#include "engine/error.h"
#include "engine/session.h"

namespace {

using txa::ErrorCode;

struct AddonData {
  std::map<std::string, Napi::FunctionReference> errorClasses;  // code -> class
  Napi::FunctionReference arrayConstructor;
  Napi::FunctionReference followerConstructor;
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

// The raw bytes of a TypedArray argument, checked to hold `bytes`.
uint8_t* bufferArgument(const Napi::Value& value, uint64_t bytes) {
  if (!value.IsTypedArray()) badArgument(value.Env(), "buffer must be a TypedArray");
  auto array = value.As<Napi::TypedArray>();
  if (array.ByteLength() < bytes) throwCode(value.Env(), "TXA_BOUNDS", "buffer is smaller than the selection");
  return static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
}

class SessionWrap;

// JavaScript handle of one TrackedArray.
class ArrayWrap : public Napi::ObjectWrap<ArrayWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeArray", {
      InstanceMethod<&ArrayWrap::Gather>("gather"),
      InstanceMethod<&ArrayWrap::Scatter>("scatter"),
      InstanceMethod<&ArrayWrap::Resize>("resize"),
      InstanceMethod<&ArrayWrap::AdoptCommittedLength>("adoptCommittedLength"),
      InstanceMethod<&ArrayWrap::View>("view"),
      InstanceMethod<&ArrayWrap::Take>("take"),
      InstanceMethod<&ArrayWrap::MemoryStats>("memoryStats"),
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
        auto typed = starts.As<Napi::TypedArray>();
        const uint8_t* raw = static_cast<const uint8_t*>(typed.ArrayBuffer().Data()) + typed.ByteOffset();
        size_t n = typed.ElementLength();
        offsets.reserve(n);
        switch (typed.TypedArrayType()) {
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
    out.Set("scans", double(st.scans));
    out.Set("unmapCalls", double(st.unmapCalls));
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
      InstanceMethod<&SessionWrap::Refresh>("refresh"),
      InstanceMethod<&SessionWrap::Flush>("flush"),
      InstanceMethod<&SessionWrap::WaitForCommit>("waitForCommit"),
      InstanceMethod<&SessionWrap::NextCommit>("nextCommit"),
      InstanceMethod<&SessionWrap::LatestRecord>("latestRecord"),
      InstanceMethod<&SessionWrap::LatestSerial>("latestSerial"),
      InstanceMethod<&SessionWrap::ReadCommits>("readCommits"),
      InstanceMethod<&SessionWrap::GetSegment>("getSegment"),
      InstanceMethod<&SessionWrap::ListSegments>("listSegments"),
      InstanceMethod<&SessionWrap::Follower>("follower"),
      InstanceMethod<&SessionWrap::Stats>("stats"),
      InstanceMethod<&SessionWrap::Close>("close"),
      InstanceAccessor<&SessionWrap::Serial>("serial"),
    });
  }

  // new NativeSession(path, mapSize, maxReaders)
  explicit SessionWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SessionWrap>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) badArgument(env, "path must be a string");
    txa::EnvOptions options;
    if (!info[1].IsUndefined()) options.mapSize = toU64(info[1], "mapSize");
    if (!info[2].IsUndefined()) options.maxReaders = unsigned(toU64(info[2], "maxReaders"));
    if (!info[3].IsNumber()) badArgument(env, "mappedBlocks must be a number");
    uint64_t mappedBlocks = toU64(info[3], "mappedBlocks");
    std::string path = info[0].As<Napi::String>();
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

  // waitForCommit(timeoutMs): blocks this thread until a commit newer than the snapshot
  // exists (true) or the timeout passes (false). timeoutMs < 0 waits forever.
  Napi::Value WaitForCommit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return translated(env, [&]() -> Napi::Value {
      txa::Session& s = session(env);
      int64_t timeout = toI64(info[0], "timeoutMs");
      return Napi::Boolean::New(env, s.env()->waitForCommitAfter(s.snapshot().serial(), timeout));
    });
  }

  // nextCommit(timeoutMs) -> Promise<boolean>: the same wait on a libuv pool thread.
  Napi::Value NextCommit(const Napi::CallbackInfo& info);

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
    txa::vmem::BudgetStats budget = session(env).budget().stats();
    out.Set("mappedBlocksLimit", double(budget.limitBlocks));
    out.Set("mappedBlocks", double(budget.mappedBlocks));
    out.Set("evictedBlocks", double(budget.evictions));
    return out;
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
// Waits for a commit off the JavaScript thread. Holds the environment, not the session:
// the store may be closed while it waits.
class CommitWaiter : public Napi::AsyncWorker {
 public:
  CommitWaiter(Napi::Env env, std::shared_ptr<txa::Env> store, uint64_t serial, int64_t timeoutMs)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)),
        store_(std::move(store)), serial_(serial), timeoutMs_(timeoutMs) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      committed_ = store_->waitForCommitAfter(serial_, timeoutMs_);
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Napi::Boolean::New(Env(), committed_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<txa::Env> store_;
  uint64_t serial_;
  int64_t timeoutMs_;
  bool committed_ = false;
};

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

Napi::Value SessionWrap::NextCommit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return translated(env, [&]() -> Napi::Value {
    txa::Session& s = session(env);
    auto* worker = new CommitWaiter(env, s.env(), s.snapshot().serial(), toI64(info[0], "timeoutMs"));
    Napi::Promise promise = worker->promise();
    worker->Queue();  // deletes itself when done
    return promise;
  });
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
