// NativeArray.stubsIn() / stubsInWindows() / stubsInViews(): which committed blocks a copy
// of a selection, take() windows or the array's live views read are stubs the snapshot has
// not fetched (engine/snapshot.h), so that the remote handle fetches them all in one round
// trip before the copy runs (again), or before a view faults on them.
#include <set>

#include "args.h"
#include "array_wrap.h"

namespace txa::binding {
namespace {

// Adds the blocks [offset, offset + n) meets that hold committed bytes (they start below
// `committed`: a write past the committed end of a block still needs the block) to `out`.
void addBlocks(uint64_t offset, uint64_t n, uint64_t blockBytes, uint64_t committed, std::set<uint64_t>* out) {
  if (n == 0 || committed == 0) return;
  const uint64_t first = offset / blockBytes;
  const uint64_t last = std::min((offset + n - 1) / blockBytes, (committed - 1) / blockBytes);
  for (uint64_t b = first; b <= last; ++b) out->insert(b);
}

Napi::Array stubsOf(Napi::Env env, Snapshot& snap, uint64_t id, const std::set<uint64_t>& blocks) {
  Napi::Array out = Napi::Array::New(env);
  if (id == 0) return out;  // created in this transaction: nothing committed
  uint32_t n = 0;
  for (uint64_t index : blocks) {
    uint64_t serial = 0, length = 0;
    if (!snap.onServer(id, index, &serial, &length)) continue;
    Napi::Object stub = Napi::Object::New(env);
    stub.Set("index", double(index));
    stub.Set("serial", double(serial));
    stub.Set("length", double(length));
    out.Set(n++, stub);
  }
  return out;
}

}  // namespace

Napi::Value ArrayWrap::StubsIn(const Napi::CallbackInfo& info) {
  TrackedArray& a = array();
  Strided sel = toStrided(info);
  sel.checkWithin(a.byteLength());
  std::set<uint64_t> blocks;
  sel.forEachRun([&](uint64_t offset, uint64_t n, uint64_t) {
    addBlocks(offset, n, a.blockBytes(), a.committedLength(), &blocks);
  });
  return stubsOf(info.Env(), native_->snapshot(), a.id(), blocks);
}

Napi::Value ArrayWrap::StubsInWindows(const Napi::CallbackInfo& info) {
  TrackedArray& a = array();
  uint64_t windowBytes = 0;
  std::set<uint64_t> blocks;
  for (uint64_t offset : windowOffsets(info, &windowBytes)) {
    addBlocks(offset, windowBytes, a.blockBytes(), a.committedLength(), &blocks);
  }
  return stubsOf(info.Env(), native_->snapshot(), a.id(), blocks);
}

Napi::Value ArrayWrap::StubsInViews(const Napi::CallbackInfo& info) {
  TrackedArray& a = array();
  std::set<uint64_t> blocks;
  if (a.hasRegion()) {
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    views_->rangesOf(&a, a.base(), &ranges);
    for (const auto& [offset, bytes] : ranges) addBlocks(offset, bytes, a.blockBytes(), a.committedLength(), &blocks);
  }
  return stubsOf(info.Env(), native_->snapshot(), a.id(), blocks);
}

}  // namespace txa::binding
