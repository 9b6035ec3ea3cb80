// NativeSession: the JavaScript handle of one Session (one Store handle). Its members are
// spread over files by concern:
//   session_wrap.cc    opening, records and metadata, tracking arrays, refresh, flush, close
//   commit.cc          commit(): the transaction's records, metadata and segments in, the outcome out
//   remote_apply.cc    applyRemote(): a batch of another store's commits written here;
//                      flushRemoteCache()
//   remote_blocks.cc   blocksOnServer(), addFetched(), heldInFull(), fillStubs(),
//                      attachFetchChannel(): blocks fetched on demand
//   commit_log.cc      reads of the newest commit and of the commit log, for followers
//   segments.cc        named segments of the snapshot
//   store_figures.cc   stats(), check() and envFigures()
//   follower_wrap.cc   follower(); waiter_wrap.cc waiter()
#pragma once
#include <napi.h>

#include <memory>
#include <vector>

#include "../engine/session.h"
#include "guarded.h"
#include "view_registry.h"

namespace txa::binding {

class SessionWrap : public GuardedWrap<SessionWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  // new NativeSession(path, mapSize, maxReaders, mappedBlocks, { create, readOnly, format })
  explicit SessionWrap(const Napi::CallbackInfo& info);

 private:
  // The session, or Error(kClosed) after close().
  Session& session();
  // The TrackedArray of a NativeArray argument.
  std::shared_ptr<TrackedArray> trackedOf(Napi::Env env, const Napi::Value& value);
  static Napi::Value outcomeToJs(Napi::Env env, const Session::Outcome& outcome);

  Napi::Value GetRecord(const Napi::CallbackInfo& info);
  Napi::Value ListRecords(const Napi::CallbackInfo& info);
  Napi::Value GetMeta(const Napi::CallbackInfo& info);
  // track(id, blockBytes, byteLength, name) -> NativeArray (name: for error messages)
  Napi::Value Track(const Napi::CallbackInfo& info);
  // commit(records: {name, expectedSerial, remove, body, rows, rowBytes, appendOnly,
  //   attrsChanged, resized, array}[], meta: {key, value}[],
  //   segments: {array, puts: {name, start, rows}[], deletes: {name, start, stop}[]}[], sync)
  //   -> {serial, assignedIds, recordsChanged, unknown, stale?}
  Napi::Value Commit(const Napi::CallbackInfo& info);
  // applyRemote({ head, replaceAll, commits: {serial, timeMs, changes: {id, record, name, flags,
  //   rowsBefore, rowsAfter, rowBytes, blockBytes, blocks: [first, last | -1][]}[]}[],
  //   records: {name, id, serial, rows, rowBytes, body, deleted}[],
  //   blocks: {arrayId, index, serial, blockBytes, data | null}[], remoteMeta }) -> local serial
  Napi::Value ApplyRemote(const Napi::CallbackInfo& info);
  // flushRemoteCache() -> whether there was anything to flush (engine/cache_flush.h)
  Napi::Value FlushRemoteCache(const Napi::CallbackInfo& info);
  // blocksOnServer(arrayId, indexes[]) -> {index, serial, length}[]: the stubs among them
  // the snapshot has not fetched (engine/snapshot.h)
  Napi::Value BlocksOnServer(const Napi::CallbackInfo& info);
  // addFetched(arrayId, {index, serial, data}[]) -> how many the snapshot took
  Napi::Value AddFetched(const Napi::CallbackInfo& info);
  // attachFetchChannel(id): faults of this session's views post the blocks they wait for
  // to fetch channel `id` (fetch_channels.h)
  Napi::Value AttachFetchChannel(const Napi::CallbackInfo& info);
  // heldInFull({arrayId, index}[]) -> boolean[]: the snapshot holds the block's bytes
  Napi::Value HeldInFull(const Napi::CallbackInfo& info);
  // fillStubs({arrayId, index, serial, data}[]) -> how many stubs of the store were filled
  // (engine/remote_fill.h)
  Napi::Value FillStubs(const Napi::CallbackInfo& info);
  Napi::Value Refresh(const Napi::CallbackInfo& info);
  Napi::Value Flush(const Napi::CallbackInfo& info);
  // latestRecord(name) -> {id, rows, rowBytes, serial} | null, in the newest commit.
  Napi::Value LatestRecord(const Napi::CallbackInfo& info);
  // latestSerial() -> the newest commit's serial (a fresh read, not the snapshot's).
  Napi::Value LatestSerial(const Napi::CallbackInfo& info);
  // readCommits(after, limit) -> [{serial, time, arrays: [{id, name, flags, rowsBefore,
  // rowsAfter, rowBytes, blockBytes, blocks: [first, last, ...]}]}] | null when pruned.
  // A `last` of -1 means "to the end".
  Napi::Value ReadCommits(const Napi::CallbackInfo& info);
  // getSegment(arrayId, name) -> {name, start, stop} | null, in the snapshot.
  Napi::Value GetSegment(const Napi::CallbackInfo& info);
  // listSegments(arrayId, after: {start, name} | null, limit) -> [{name, start, stop}]
  Napi::Value ListSegments(const Napi::CallbackInfo& info);
  // follower(callback) -> NativeFollower calling callback() on the JavaScript thread after
  // commits of any process (and once a second while it runs).
  Napi::Value Follower(const Napi::CallbackInfo& info);
  // waiter() -> NativeWaiter: waits on this store that outlive close() (see WaiterWrap).
  Napi::Value Waiter(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  // check(blockBytesByName: {[name]: number}) -> {problems: [{array, block, kind, message}],
  // arrays, blocks, bytes}: a walk of the session's snapshot (engine/store_check.h).
  Napi::Value Check(const Napi::CallbackInfo& info);
  // envFigures(): the whole environment's map, pages, readers and sub-database sizes.
  Napi::Value EnvFigures(const Napi::CallbackInfo& info);
  Napi::Value Serial(const Napi::CallbackInfo& info);
  // Idempotent: detaches every view and array handle, unmaps the arrays' regions, ends
  // the snapshot, releases the environment.
  Napi::Value Close(const Napi::CallbackInfo& info);

  std::unique_ptr<Session> session_;
  ViewRegistry views_;
  std::vector<Napi::ObjectReference> arrays_;  // weak: detached on close
};

}  // namespace txa::binding
