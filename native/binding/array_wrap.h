// NativeArray: the JavaScript handle of one TrackedArray of a store handle (NativeSession).
// It keeps its session object alive while attached; close() of the session or release()
// detaches it, after which every member raises TXA_CLOSED.
#pragma once
#include <napi.h>

#include <memory>

#include "../engine/session.h"
#include "../engine/tracked_array.h"
#include "guarded.h"
#include "view_registry.h"

namespace txa::binding {

// The byte offsets of take()'s windows (startRows, windowRows, rowBytes at info[0..2]),
// checked, and the bytes of one window.
std::vector<uint64_t> windowOffsets(const Napi::CallbackInfo& info, uint64_t* windowBytes);

class ArrayWrap : public GuardedWrap<ArrayWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit ArrayWrap(const Napi::CallbackInfo& info) : GuardedWrap<ArrayWrap>(info) {}

  // Binds the handle to `array` of `native`, the session of the JavaScript object
  // `session`, whose views `views` registers.
  void attach(std::shared_ptr<TrackedArray> array, Napi::Object session, Session* native, ViewRegistry* views);
  void detach();
  // The array, for a commit (Error(kClosed) once detached).
  std::shared_ptr<TrackedArray> shared();

 private:
  TrackedArray& array();

  // gather(base, counts, strides, itemBytes, out, verify)
  Napi::Value Gather(const Napi::CallbackInfo& info);
  // scatter(base, counts, strides, itemBytes, in)
  Napi::Value Scatter(const Napi::CallbackInfo& info);
  // take(startRows, windowRows, rowBytes, out, verify): windows of rows copied back to back.
  // startRows: an Array of numbers, or a Float64Array / Int32Array / Uint32Array.
  Napi::Value Take(const Napi::CallbackInfo& info);
  // stubsIn(base, counts, strides, itemBytes) / stubsInWindows(startRows, windowRows,
  // rowBytes) -> {index, serial, length}[]: the committed blocks a gather/scatter or take()
  // of them reads that are stubs the snapshot has not fetched (array_stubs.cc).
  Napi::Value StubsIn(const Napi::CallbackInfo& info);
  Napi::Value StubsInWindows(const Napi::CallbackInfo& info);
  // stubsInViews() -> the same for the ranges the array's live views cover.
  Napi::Value StubsInViews(const Napi::CallbackInfo& info);
  // releaseMappedPages(): after a long copy out of the store (an export), lets go of the
  // map pages it touched so they stop counting as this process's resident memory.
  Napi::Value ReleaseMappedPages(const Napi::CallbackInfo& info);
  Napi::Value Resize(const Napi::CallbackInfo& info);
  Napi::Value AdoptCommittedLength(const Napi::CallbackInfo& info);
  // view(byteOffset, byteLength, populate) -> ArrayBuffer over the array's region. The
  // buffer keeps the array (and so its mapping) alive; close() detaches it before unmapping.
  Napi::Value View(const Napi::CallbackInfo& info);
  // plan() -> { blocks: { index, data }[], shrinkFromBlock, appendOnly, appended | null }:
  // this transaction's changes as values (TrackedArray::plan).
  Napi::Value Plan(const Napi::CallbackInfo& info);
  Napi::Value AfterCommitElsewhere(const Napi::CallbackInfo& info);
  Napi::Value MemoryStats(const Napi::CallbackInfo& info);
  // release(): the array is gone for this handle (its delete was committed, by this handle
  // or another; or it was created and then aborted or deleted). Its views are detached, as
  // close() does, and its region is unmapped, so that no write through them can reach a
  // later commit under the dead array's id and no read shows an array that no longer
  // exists. Idempotent.
  Napi::Value Release(const Napi::CallbackInfo& info);
  Napi::Value Id(const Napi::CallbackInfo& info);
  Napi::Value ByteLength(const Napi::CallbackInfo& info);
  Napi::Value HasChanges(const Napi::CallbackInfo& info);

  std::shared_ptr<TrackedArray> array_;
  Napi::ObjectReference session_;  // keeps the session alive while the array is
  Session* native_ = nullptr;
  ViewRegistry* views_ = nullptr;  // the session's, alive while session_ is held
};

}  // namespace txa::binding
