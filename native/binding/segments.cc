// NativeSession's reads of named segments in the snapshot (session_wrap.h).
#include <algorithm>
#include <string>
#include <vector>

#include "args.h"
#include "session_wrap.h"

namespace txa::binding {
namespace {

Napi::Object segmentToJs(Napi::Env env, const Segment& segment) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("name", Napi::String::New(env, segment.name));
  out.Set("start", double(segment.start));
  out.Set("stop", double(segment.stop));
  return out;
}

}  // namespace

Napi::Value SessionWrap::GetSegment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id = toU64(info[0], "arrayId");
  std::string name = toString(info[1], "name");
  Segment segment;
  if (!session().getSegment(id, name, &segment)) return env.Null();
  return segmentToJs(env, segment);
}

Napi::Value SessionWrap::ListSegments(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id = toU64(info[0], "arrayId");
  bool first = !info[1].IsObject();
  uint64_t afterStart = 0;
  std::string afterName;
  if (!first) {
    Napi::Object after = info[1].As<Napi::Object>();
    afterStart = toU64(after.Get("start"), "start");
    afterName = toString(after.Get("name"), "name");
  }
  uint64_t limit = toU64(info[2], "limit");
  std::vector<Segment> segments;
  session().listSegments(id, first, afterStart, afterName, size_t(std::min<uint64_t>(limit, 1 << 20)), &segments);
  Napi::Array out = Napi::Array::New(env, segments.size());
  for (uint32_t i = 0; i < segments.size(); ++i) out.Set(i, segmentToJs(env, segments[i]));
  return out;
}

}  // namespace txa::binding
