// NativeSession's reads of the newest commit and of the commit log (session_wrap.h), for
// followers and waits.
#include <algorithm>
#include <string>
#include <vector>

#include "../engine/env.h"
#include "args.h"
#include "session_wrap.h"

namespace txa::binding {

Napi::Value SessionWrap::LatestRecord(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = toString(info[0], "name");
  Record record;
  if (!session().latestRecord(name, &record)) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", double(record.id));
  out.Set("serial", double(record.serial));
  out.Set("rows", double(record.rows));
  out.Set("rowBytes", double(record.rowBytes));
  return out;
}

Napi::Value SessionWrap::LatestSerial(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(session().env()->currentSerial()));
}

Napi::Value SessionWrap::ReadCommits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t after = toU64(info[0], "after");
  uint64_t limit = toU64(info[1], "limit");
  std::vector<CommitEntry> commits;
  if (!session().readCommits(after, size_t(std::min<uint64_t>(limit, 1 << 20)), &commits)) return env.Null();
  Napi::Array out = Napi::Array::New(env, commits.size());
  for (uint32_t i = 0; i < commits.size(); ++i) {
    const CommitEntry& c = commits[i];
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
}

}  // namespace txa::binding
