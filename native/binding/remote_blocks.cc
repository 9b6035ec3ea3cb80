// NativeSession's side of blocks fetched on demand from a remote store (engine/snapshot.h
// stubs, engine/remote_fill.h): which blocks of a read are stubs of the snapshot, the
// fetched bytes given to the snapshot, and the cache's stubs filled with them.
#include <string>
#include <vector>

#include "../engine/remote_fill.h"
#include "../engine/session_stats.h"
#include "args.h"
#include "fetch_channels.h"
#include "session_wrap.h"

namespace txa::binding {

Napi::Value SessionWrap::BlocksOnServer(const Napi::CallbackInfo& info) {
  Snapshot& snap = session().snapshot();
  const uint64_t id = toU64(info[0], "arrayId");
  Napi::Array indexes = toArray(info[1], "blocksOnServer: indexes");
  Napi::Array out = Napi::Array::New(info.Env());
  uint32_t n = 0;
  for (uint32_t i = 0; i < indexes.Length(); ++i) {
    const uint64_t index = toU64(indexes.Get(i), "index");
    uint64_t serial = 0, length = 0;
    if (!snap.onServer(id, index, &serial, &length)) continue;
    Napi::Object stub = Napi::Object::New(info.Env());
    stub.Set("index", double(index));
    stub.Set("serial", double(serial));
    stub.Set("length", double(length));
    out.Set(n++, stub);
  }
  return out;
}

Napi::Value SessionWrap::AddFetched(const Napi::CallbackInfo& info) {
  Snapshot& snap = session().snapshot();
  const uint64_t id = toU64(info[0], "arrayId");
  Napi::Array blocks = toArray(info[1], "addFetched: blocks");
  uint32_t added = 0;
  for (uint32_t i = 0; i < blocks.Length(); ++i) {
    Napi::Object b = toObject(blocks.Get(i), "a fetched block");
    TypedMemory data = typedMemory(b.Get("data"), "data");
    if (snap.addFetched(id, toU64(b.Get("index"), "index"), toU64(b.Get("serial"), "serial"), data.data, data.byteLength)) {
      ++added;
    }
  }
  return Napi::Number::New(info.Env(), added);
}

Napi::Value SessionWrap::AttachFetchChannel(const Napi::CallbackInfo& info) {
  Session& s = session();
  s.attachFetchChannel(attachFetchChannel(toU64(info[0], "fetch channel id"), s.snapshotHolder()));
  return info.Env().Undefined();
}

Napi::Value SessionWrap::HeldInFull(const Napi::CallbackInfo& info) {
  Snapshot& snap = session().snapshot();
  Napi::Array blocks = toArray(info[0], "heldInFull: blocks");
  Napi::Array out = Napi::Array::New(info.Env(), blocks.Length());
  for (uint32_t i = 0; i < blocks.Length(); ++i) {
    Napi::Object b = toObject(blocks.Get(i), "a block");
    out.Set(i, snap.holdsInFull(toU64(b.Get("arrayId"), "arrayId"), toU64(b.Get("index"), "index")));
  }
  return out;
}

Napi::Value SessionWrap::FillStubs(const Napi::CallbackInfo& info) {
  Session& s = session();
  Napi::Array blocks = toArray(info[0], "fillStubs: blocks");
  std::vector<FetchedBlock> fetched;
  fetched.reserve(blocks.Length());
  for (uint32_t i = 0; i < blocks.Length(); ++i) {
    Napi::Object b = toObject(blocks.Get(i), "a fetched block");
    FetchedBlock block;
    block.arrayId = toU64(b.Get("arrayId"), "arrayId");
    block.index = toU64(b.Get("index"), "index");
    block.serial = toU64(b.Get("serial"), "serial");
    block.data = toBytes(b.Get("data"), "data");
    fetched.push_back(std::move(block));
  }
  SessionStats counters;
  return Napi::Number::New(info.Env(), double(fillStubs(*s.env(), fetched, &counters)));
}

}  // namespace txa::binding
