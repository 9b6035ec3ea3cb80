// NativeSession's figures about the store (session_wrap.h): the session's counters and
// mapped-block budget, a consistency check of its snapshot, the LMDB environment's sizes.
#include <map>
#include <string>

#include "../engine/env_stats.h"
#include "../engine/session_stats.h"
#include "../engine/store_check.h"
#include "../engine/view_figures.h"
#include "args.h"
#include "session_wrap.h"

namespace txa::binding {

Napi::Value SessionWrap::Stats(const Napi::CallbackInfo& info) {
  Session& s = session();
  const SessionStats& st = s.stats();
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("commits", double(st.commits));
  out.Set("conflicts", double(st.conflicts));
  out.Set("blocksWritten", double(st.blocksWritten));
  out.Set("bytesWritten", double(st.bytesWritten));
  out.Set("valueBytesWritten", double(st.valueBytesWritten));
  out.Set("blocksRead", double(st.blocksRead));
  out.Set("checksumSeconds", double(st.checksumNanos) / 1e9);
  out.Set("checksumBytes", double(st.checksumBytes));
  MapBudgetFigures budget = mapBudgetFigures(s);
  out.Set("mappingsLimit", double(budget.limit));
  out.Set("mappings", double(budget.mappings));
  out.Set("mappedBlocks", double(budget.mappedBlocks));
  out.Set("evictedBlocks", double(budget.evictions));
  out.Set("spilledBlocks", double(budget.spills));
  return out;
}

Napi::Value SessionWrap::Check(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Session& s = session();
  if (!info[0].IsObject()) badArgument("check takes an object of block sizes");
  Napi::Object sizes = info[0].As<Napi::Object>();
  std::map<std::string, uint32_t> blockBytes;
  Napi::Array names = sizes.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); ++i) {
    std::string name = toString(names.Get(i), "an array name");
    uint64_t bytes = toU64(sizes.Get(name), "blockBytes");
    if (bytes > UINT32_MAX) badArgument("blockBytes out of range");
    blockBytes[name] = uint32_t(bytes);
  }
  CheckReport report = checkStore(s.snapshot(), blockBytes);
  Napi::Array problems = Napi::Array::New(env, report.problems.size());
  for (uint32_t i = 0; i < report.problems.size(); ++i) {
    const CheckProblem& p = report.problems[i];
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
  out.Set("onServer", double(report.onServer));
  return out;
}

Napi::Value SessionWrap::EnvFigures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  txa::EnvFigures f = readEnvFigures(*session().env());
  Napi::Object out = Napi::Object::New(env);
  out.Set("mapBytes", double(f.mapBytes));
  out.Set("pageBytes", double(f.pageBytes));
  out.Set("usedPages", double(f.usedPages));
  out.Set("freePages", double(f.freePages));
  out.Set("fileBytes", double(f.fileBytes));
  out.Set("readers", double(f.readers));
  out.Set("maxReaders", double(f.maxReaders));
  const std::pair<const char*, const DbFigures*> dbs[] = {
      {"meta", &f.meta}, {"arrays", &f.arrays}, {"blocks", &f.blocks}, {"log", &f.log}};
  for (const auto& [name, db] : dbs) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("entries", double(db->entries));
    o.Set("pages", double(db->pages));
    out.Set(name, o);
  }
  return out;
}

}  // namespace txa::binding
