// NativeSession.applyRemote(): a batch of a remote store's commits, unpacked into an
// engine RemoteBatch and written to this store (engine/remote_apply.h);
// NativeSession.flushRemoteCache(): its unflushed commits made durable (engine/cache_flush.h).
#include <string>
#include <utility>

#include "../engine/cache_flush.h"
#include "../engine/keys.h"
#include "../engine/remote_apply.h"
#include "../engine/session_stats.h"
#include "args.h"
#include "session_wrap.h"

namespace txa::binding {
namespace {

Napi::Object objectIn(const Napi::Value& value, const char* what) { return toObject(value, std::string("applyRemote: ") + what); }

Napi::Array arrayIn(const Napi::Value& value, const char* what) { return toArray(value, std::string("applyRemote: ") + what); }

RemoteCommit toRemoteCommit(const Napi::Object& c) {
  RemoteCommit commit;
  commit.serial = toU64(c.Get("serial"), "serial");
  commit.timeMs = toU64(c.Get("timeMs"), "timeMs");
  Napi::Array changes = arrayIn(c.Get("changes"), "changes");
  for (uint32_t j = 0; j < changes.Length(); ++j) {
    Napi::Object ch = objectIn(changes.Get(j), "a change");
    uint64_t id = toU64(ch.Get("id"), "id");
    if (ch.Get("record").ToBoolean()) commit.changes.addRecord(id);
    ArrayChange& told = commit.changes.at(id);
    told.name = toString(ch.Get("name"), "name");
    told.flags = uint32_t(toU64(ch.Get("flags"), "flags"));
    told.rowsBefore = toU64(ch.Get("rowsBefore"), "rowsBefore");
    told.rowsAfter = toU64(ch.Get("rowsAfter"), "rowsAfter");
    told.rowBytes = toU64(ch.Get("rowBytes"), "rowBytes");
    told.blockBytes = uint32_t(toU64(ch.Get("blockBytes"), "blockBytes"));
    Napi::Array ranges = arrayIn(ch.Get("blocks"), "blocks");
    for (uint32_t k = 0; k < ranges.Length(); ++k) {
      Napi::Array range = arrayIn(ranges.Get(k), "a block range");
      Napi::Value last = range.Get(1u);
      // a `last` below 0 (-1): to the end
      commit.changes.addBlocks(id, toU64(range.Get(0u), "first"),
                               last.IsNumber() && last.As<Napi::Number>().Int64Value() >= 0
                                   ? toU64(last, "last") : keys::kToEnd);
    }
  }
  return commit;
}

RemoteRecord toRemoteRecord(const Napi::Object& r) {
  RemoteRecord record;
  record.name = toString(r.Get("name"), "name");
  record.id = toU64(r.Get("id"), "id");
  record.serial = toU64(r.Get("serial"), "serial");
  record.rows = toU64(r.Get("rows"), "rows");
  record.rowBytes = toU64(r.Get("rowBytes"), "rowBytes");
  record.body = toBytes(r.Get("body"), "body");
  record.deleted = r.Get("deleted").ToBoolean();
  return record;
}

RemoteBlock toRemoteBlock(const Napi::Object& b) {
  RemoteBlock block;
  block.arrayId = toU64(b.Get("arrayId"), "arrayId");
  block.index = toU64(b.Get("index"), "index");
  block.serial = toU64(b.Get("serial"), "serial");
  block.blockBytes = toBlockBytes(b.Get("blockBytes"));
  Napi::Value data = b.Get("data");
  if (!data.IsNull() && !data.IsUndefined()) {
    block.data = toBytes(data, "data");
  } else if (b.Has("length") && b.Get("length").IsNumber()) {  // lazy catch-up: a stub
    block.length = toU64(b.Get("length"), "length");
    block.onServer = true;
  }
  return block;
}

RemoteSegment toRemoteSegment(const Napi::Object& g) {
  RemoteSegment segment;
  segment.arrayId = toU64(g.Get("arrayId"), "arrayId");
  segment.name = toBytes(g.Get("name"), "name");
  segment.start = toU64(g.Get("start"), "start");
  segment.stop = toU64(g.Get("stop"), "stop");
  segment.deleted = g.Get("deleted").ToBoolean();
  return segment;
}

}  // namespace

Napi::Value SessionWrap::ApplyRemote(const Napi::CallbackInfo& info) {
  Session& s = session();
  if (!info[0].IsObject()) badArgument("applyRemote takes a batch");
  Napi::Object in = info[0].As<Napi::Object>();
  RemoteBatch batch;
  batch.head = toU64(in.Get("head"), "head");
  batch.remoteMeta = toBytes(in.Get("remoteMeta"), "remoteMeta");
  batch.replaceAll = in.Get("replaceAll").ToBoolean();
  batch.sync = !in.Has("sync") || in.Get("sync").ToBoolean();
  Napi::Array commits = arrayIn(in.Get("commits"), "commits");
  for (uint32_t i = 0; i < commits.Length(); ++i) batch.commits.push_back(toRemoteCommit(objectIn(commits.Get(i), "a commit")));
  Napi::Array records = arrayIn(in.Get("records"), "records");
  for (uint32_t i = 0; i < records.Length(); ++i) batch.records.push_back(toRemoteRecord(objectIn(records.Get(i), "a record")));
  Napi::Array blocks = arrayIn(in.Get("blocks"), "blocks");
  for (uint32_t i = 0; i < blocks.Length(); ++i) batch.blocks.push_back(toRemoteBlock(objectIn(blocks.Get(i), "a block")));
  if (in.Has("segments")) {
    Napi::Array segments = arrayIn(in.Get("segments"), "segments");
    for (uint32_t i = 0; i < segments.Length(); ++i) {
      batch.segments.push_back(toRemoteSegment(objectIn(segments.Get(i), "a segment")));
    }
  }
  SessionStats counters;
  return Napi::Number::New(info.Env(), double(applyRemote(s.env(), batch, &counters)));
}

Napi::Value SessionWrap::FlushRemoteCache(const Napi::CallbackInfo& info) {
  Session& s = session();
  return Napi::Boolean::New(info.Env(), flushCache(*s.env()));
}

}  // namespace txa::binding
