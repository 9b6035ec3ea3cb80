#include "session_wrap.h"

#include <string>

#include "../engine/env.h"
#include "../engine/error.h"
#include "addon_data.h"
#include "args.h"
#include "array_wrap.h"

namespace txa::binding {

Napi::Function SessionWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeSession", {
    method<&SessionWrap::GetRecord>("getRecord"),
    method<&SessionWrap::ListRecords>("listRecords"),
    method<&SessionWrap::GetMeta>("getMeta"),
    method<&SessionWrap::Track>("track"),
    method<&SessionWrap::Commit>("commit"),
    method<&SessionWrap::ApplyRemote>("applyRemote"),
    method<&SessionWrap::FlushRemoteCache>("flushRemoteCache"),
    method<&SessionWrap::BlocksOnServer>("blocksOnServer"),
    method<&SessionWrap::AddFetched>("addFetched"),
    method<&SessionWrap::AttachFetchChannel>("attachFetchChannel"),
    method<&SessionWrap::HeldInFull>("heldInFull"),
    method<&SessionWrap::FillStubs>("fillStubs"),
    method<&SessionWrap::Refresh>("refresh"),
    method<&SessionWrap::Flush>("flush"),
    method<&SessionWrap::LatestRecord>("latestRecord"),
    method<&SessionWrap::LatestSerial>("latestSerial"),
    method<&SessionWrap::ReadCommits>("readCommits"),
    method<&SessionWrap::GetSegment>("getSegment"),
    method<&SessionWrap::ListSegments>("listSegments"),
    method<&SessionWrap::Follower>("follower"),
    method<&SessionWrap::Waiter>("waiter"),
    method<&SessionWrap::Stats>("stats"),
    method<&SessionWrap::Check>("check"),
    method<&SessionWrap::EnvFigures>("envFigures"),
    method<&SessionWrap::Close>("close"),
    accessor<&SessionWrap::Serial>("serial"),
  });
}

SessionWrap::SessionWrap(const Napi::CallbackInfo& info) : GuardedWrap<SessionWrap>(info) {
  guarded(info.Env(), [&] {
    std::string path = toString(info[0], "path");
    EnvOptions options;
    if (!info[1].IsUndefined()) options.mapSize = toU64(info[1], "mapSize");
    if (!info[2].IsUndefined()) options.maxReaders = unsigned(toU64(info[2], "maxReaders"));
    uint64_t mappings = info[3].IsUndefined() ? 0 : toU64(info[3], "mappings");
    if (!info[4].IsObject()) badArgument("open mode must be an object");
    Napi::Object mode = info[4].As<Napi::Object>();
    options.create = mode.Get("create").ToBoolean();
    options.readOnly = mode.Get("readOnly").ToBoolean();
    options.format = toBytes(mode.Get("format"), "format");
    if (path.find('\0') != std::string::npos) badArgument("path must not contain a NUL byte");
    session_ = std::make_unique<Session>(txa::Env::acquire(path, options), mappings);
    return 0;
  });
}

Session& SessionWrap::session() {
  if (!session_) throw Error(ErrorCode::kClosed, "the store is closed");
  return *session_;
}

std::shared_ptr<TrackedArray> SessionWrap::trackedOf(Napi::Env env, const Napi::Value& value) {
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(AddonData::of(env).arrayConstructor.Value())) {
    badArgument("array must be a NativeArray");
  }
  return ArrayWrap::Unwrap(value.As<Napi::Object>())->shared();
}

Napi::Value SessionWrap::GetRecord(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = toString(info[0], "name");
  Record record;
  if (!session().getRecord(name, &record)) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", double(record.id));
  out.Set("serial", double(record.serial));
  out.Set("rows", double(record.rows));
  out.Set("rowBytes", double(record.rowBytes));
  out.Set("body", toBuffer(env, record.body));
  return out;
}

Napi::Value SessionWrap::ListRecords(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto names = session().listRecords();
  Napi::Array out = Napi::Array::New(env, names.size());
  for (uint32_t i = 0; i < names.size(); ++i) out.Set(i, toBuffer(env, names[i]));
  return out;
}

Napi::Value SessionWrap::GetMeta(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string key = toString(info[0], "key");
  std::string value;
  if (!session().getMeta(key, &value)) return env.Null();
  return toBuffer(env, value);
}

Napi::Value SessionWrap::Track(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id = toU64(info[0], "id");
  uint32_t blockBytes = toBlockBytes(info[1]);
  uint64_t byteLength = toU64(info[2], "byteLength");
  std::string name = toString(info[3], "name");
  std::shared_ptr<TrackedArray> tracked = session().track(id, blockBytes, byteLength, name);
  Napi::Object object = AddonData::of(env).arrayConstructor.New({});
  ArrayWrap::Unwrap(object)->attach(tracked, Value(), session_.get(), &views_);
  TrackedArray* raw = tracked.get();
  ViewRegistry* views = &views_;
  tracked->setBeforeRelocate([views, raw]() { views->detach(raw); });
  arrays_.push_back(Napi::Weak(object));
  return object;
}

Napi::Value SessionWrap::Refresh(const Napi::CallbackInfo& info) {
  return outcomeToJs(info.Env(), session().refresh());
}

Napi::Value SessionWrap::Flush(const Napi::CallbackInfo& info) {
  session().flush();
  return info.Env().Undefined();
}

Napi::Value SessionWrap::Serial(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(session().snapshot().serial()));
}

Napi::Value SessionWrap::Close(const Napi::CallbackInfo& info) {
  views_.detach(nullptr);
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

}  // namespace txa::binding
