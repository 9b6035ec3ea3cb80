// NativeSession.commit() and refresh()'s outcome (session_wrap.h).
#include <string>
#include <vector>

#include "args.h"
#include "session_wrap.h"

namespace txa::binding {

Napi::Value SessionWrap::Commit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Session& s = session();
  if (!info[0].IsArray() || !info[1].IsArray()) badArgument("commit takes arrays");
  auto recordList = info[0].As<Napi::Array>();
  std::vector<RecordChange> records;
  for (uint32_t i = 0; i < recordList.Length(); ++i) {
    Napi::Object r = toObject(recordList.Get(i), "a record change");
    RecordChange change;
    change.name = toString(r.Get("name"), "name");
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
    if (array.IsObject()) change.array = trackedOf(env, array);
    records.push_back(std::move(change));
  }
  auto metaList = info[1].As<Napi::Array>();
  std::vector<MetaPut> meta;
  for (uint32_t i = 0; i < metaList.Length(); ++i) {
    Napi::Object m = toObject(metaList.Get(i), "a metadata change");
    meta.push_back({toString(m.Get("key"), "key"), toBytes(m.Get("value"), "value")});
  }
  auto segmentList = toArray(info[2], "segments");
  std::vector<SegmentChange> segments;
  for (uint32_t i = 0; i < segmentList.Length(); ++i) {
    Napi::Object c = toObject(segmentList.Get(i), "a segment change");
    SegmentChange change;
    change.array = trackedOf(env, c.Get("array"));
    Napi::Array puts = toArray(c.Get("puts"), "puts");
    for (uint32_t j = 0; j < puts.Length(); ++j) {
      Napi::Object p = toObject(puts.Get(j), "a segment put");
      change.puts.push_back({toString(p.Get("name"), "name"), toU64(p.Get("start"), "start"), toU64(p.Get("rows"), "rows")});
    }
    Napi::Array deletes = toArray(c.Get("deletes"), "deletes");
    for (uint32_t j = 0; j < deletes.Length(); ++j) {
      Napi::Object d = toObject(deletes.Get(j), "a segment delete");
      change.deletes.push_back({toString(d.Get("name"), "name"), toU64(d.Get("start"), "start"), toU64(d.Get("stop"), "stop")});
    }
    segments.push_back(std::move(change));
  }
  return outcomeToJs(env, s.commit(records, meta, segments, info[3].ToBoolean()));
}

Napi::Value SessionWrap::outcomeToJs(Napi::Env env, const Session::Outcome& outcome) {
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

}  // namespace txa::binding
