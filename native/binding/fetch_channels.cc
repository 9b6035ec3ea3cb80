// Module functions of the fetch channels (fetch_channels.h):
//   openFetchChannel(waitMs) -> id
//   closeFetchChannel(id): no fault waits for it any more (they are served as unreadable)
//   listenFetchChannel(id, callback): on the calling thread, callback() runs whenever
//     requests were posted (a relay thread blocks on the channel's eventfd and calls it
//     through a thread-safe function); unlistenFetchChannel(id) ends that (also done when
//     the thread's environment is torn down)
//   takeFetchRequests(id) -> {arrayId, index, serial, length}[]
//   deliverFetched(id, {arrayId, index, serial, data}[]) -> how many the snapshot took
//   failFetched(id, {arrayId, index, serial}[])
//   fetchChannelStats(id) -> {blocks, bytes}
#include "fetch_channels.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../engine/fault_fetch.h"
#include "args.h"
#include "guarded.h"

namespace txa::binding {
namespace {

// The relay of one listening thread: wakes its callback when the eventfd says so.
struct Listener {
  std::shared_ptr<FetchChannel> channel;
  Napi::ThreadSafeFunction tsfn;
  napi_env env = nullptr;
  std::atomic<bool> stop{false};
  std::thread thread;
};

struct Entry {
  std::shared_ptr<FetchChannel> channel;
  std::weak_ptr<SnapshotHolder> holder;
  Listener* listener = nullptr;
};

std::mutex g_mu;  // guards g_channels and g_nextId
std::map<uint64_t, Entry> g_channels;
uint64_t g_nextId = 1;

uint64_t idOf(const Napi::Value& v) { return toU64(v, "fetch channel id"); }

Entry& entryLocked(uint64_t id) {
  auto found = g_channels.find(id);
  if (found == g_channels.end()) throw Error(ErrorCode::kArgument, "no fetch channel " + std::to_string(id));
  return found->second;
}

std::shared_ptr<FetchChannel> channelOf(uint64_t id) {
  std::lock_guard<std::mutex> g(g_mu);
  return entryLocked(id).channel;
}

std::shared_ptr<SnapshotHolder> holderOf(uint64_t id) {
  std::lock_guard<std::mutex> g(g_mu);
  return entryLocked(id).holder.lock();
}

// Stops and frees a listener: the relay thread is woken, joined, and the thread-safe
// function released, on the listening thread.
void endListener(Listener* l) {
  l->stop.store(true, std::memory_order_release);
  const uint64_t one = 1;
  while (::write(l->channel->fd(), &one, sizeof one) < 0 && errno == EINTR) {
  }
  l->thread.join();
  l->tsfn.Release();
  delete l;
}

// The listening thread's environment goes away: its listener ends with it.
void onEnvTeardown(void* arg) {
  Listener* l = static_cast<Listener*>(arg);
  {
    std::lock_guard<std::mutex> g(g_mu);
    for (auto it = g_channels.begin(); it != g_channels.end();) {
      if (it->second.listener == l) it->second.listener = nullptr;
      if (!it->second.listener && it->second.channel->closed()) it = g_channels.erase(it);
      else ++it;
    }
  }
  endListener(l);
}

void unlisten(uint64_t id) {
  Listener* l = nullptr;
  {
    std::lock_guard<std::mutex> g(g_mu);
    auto found = g_channels.find(id);
    if (found == g_channels.end() || !found->second.listener) return;
    l = found->second.listener;
    found->second.listener = nullptr;
  }
  napi_remove_env_cleanup_hook(l->env, onEnvTeardown, l);
  endListener(l);
}

Napi::Value OpenFetchChannel(const Napi::CallbackInfo& info) {
  const uint64_t waitMs = toU64(info[0], "waitMs");
  auto channel = std::make_shared<FetchChannel>(waitMs * 1000000);
  std::lock_guard<std::mutex> g(g_mu);
  const uint64_t id = g_nextId++;
  g_channels[id].channel = std::move(channel);
  return Napi::Number::New(info.Env(), double(id));
}

Napi::Value CloseFetchChannel(const Napi::CallbackInfo& info) {
  const uint64_t id = idOf(info[0]);
  std::shared_ptr<FetchChannel> channel;
  {
    std::lock_guard<std::mutex> g(g_mu);
    auto found = g_channels.find(id);
    if (found == g_channels.end()) return info.Env().Undefined();
    channel = found->second.channel;
    // A listener still attached ends with its thread (unlisten, or the teardown hook).
    if (!found->second.listener) g_channels.erase(found);
  }
  closeFetchChannel(*channel);
  return info.Env().Undefined();
}

Napi::Value ListenFetchChannel(const Napi::CallbackInfo& info) {
  const uint64_t id = idOf(info[0]);
  if (!info[1].IsFunction()) badArgument("listenFetchChannel: callback must be a function");
  Napi::Env env = info.Env();
  auto l = std::make_unique<Listener>();
  l->channel = channelOf(id);
  l->env = env;
  l->tsfn = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "txarray fetch requests", 0, 1);
  l->tsfn.Unref(env);  // never keeps the thread alive by itself
  {
    std::lock_guard<std::mutex> g(g_mu);
    Entry& e = entryLocked(id);
    if (e.listener) {
      l->tsfn.Release();
      throw Error(ErrorCode::kArgument, "fetch channel " + std::to_string(id) + " has a listener already");
    }
    e.listener = l.get();
  }
  Listener* started = l.release();  // ended by unlisten() or the environment's teardown
  started->thread = std::thread([l = started] {
    for (;;) {
      uint64_t count = 0;
      const ssize_t n = ::read(l->channel->fd(), &count, sizeof count);
      if (n < 0 && errno == EINTR) continue;
      if (n != sizeof count || l->stop.load(std::memory_order_acquire)) return;
      if (l->channel->closed()) continue;  // nothing more to fetch: wait to be stopped
      if (l->tsfn.BlockingCall() != napi_ok) return;  // the environment is closing
    }
  });
  napi_add_env_cleanup_hook(env, onEnvTeardown, started);
  return env.Undefined();
}

Napi::Value UnlistenFetchChannel(const Napi::CallbackInfo& info) {
  const uint64_t id = idOf(info[0]);
  unlisten(id);
  std::lock_guard<std::mutex> g(g_mu);
  auto found = g_channels.find(id);
  if (found != g_channels.end() && found->second.channel->closed()) g_channels.erase(found);
  return info.Env().Undefined();
}

Napi::Value TakeFetchRequests(const Napi::CallbackInfo& info) {
  std::vector<FetchChannel::Request> taken = channelOf(idOf(info[0]))->take();
  Napi::Array out = Napi::Array::New(info.Env(), taken.size());
  for (uint32_t i = 0; i < taken.size(); ++i) {
    Napi::Object r = Napi::Object::New(info.Env());
    r.Set("arrayId", double(taken[i].arrayId));
    r.Set("index", double(taken[i].index));
    r.Set("serial", double(taken[i].serial));
    r.Set("length", double(taken[i].length));
    out.Set(i, r);
  }
  return out;
}

Napi::Value DeliverFetched(const Napi::CallbackInfo& info) {
  const uint64_t id = idOf(info[0]);
  std::shared_ptr<FetchChannel> channel = channelOf(id);
  Napi::Array blocks = toArray(info[1], "deliverFetched: blocks");
  std::vector<FetchedBlock> fetched(blocks.Length());
  for (uint32_t i = 0; i < blocks.Length(); ++i) {
    Napi::Object b = toObject(blocks.Get(i), "a fetched block");
    fetched[i].arrayId = toU64(b.Get("arrayId"), "arrayId");
    fetched[i].index = toU64(b.Get("index"), "index");
    fetched[i].serial = toU64(b.Get("serial"), "serial");
    fetched[i].data = toBytes(b.Get("data"), "data");
  }
  std::shared_ptr<SnapshotHolder> holder = holderOf(id);
  if (!holder) {  // the session is gone: nothing to give the bytes to, nothing waits
    for (const FetchedBlock& b : fetched) channel->answered(b.arrayId, b.index, b.serial);
    return Napi::Number::New(info.Env(), 0);
  }
  return Napi::Number::New(info.Env(), double(deliverFetched(*holder, *channel, fetched)));
}

Napi::Value FailFetched(const Napi::CallbackInfo& info) {
  const uint64_t id = idOf(info[0]);
  std::shared_ptr<FetchChannel> channel = channelOf(id);
  Napi::Array blocks = toArray(info[1], "failFetched: blocks");
  std::vector<FetchChannel::Request> failed(blocks.Length());
  for (uint32_t i = 0; i < blocks.Length(); ++i) {
    Napi::Object b = toObject(blocks.Get(i), "a failed block");
    failed[i].arrayId = toU64(b.Get("arrayId"), "arrayId");
    failed[i].index = toU64(b.Get("index"), "index");
    failed[i].serial = toU64(b.Get("serial"), "serial");
  }
  std::shared_ptr<SnapshotHolder> holder = holderOf(id);
  if (holder) {
    failFetched(*holder, *channel, failed);
  } else {
    for (const FetchChannel::Request& r : failed) channel->answered(r.arrayId, r.index, r.serial);
  }
  return info.Env().Undefined();
}

Napi::Value FetchChannelStats(const Napi::CallbackInfo& info) {
  std::shared_ptr<FetchChannel> channel = channelOf(idOf(info[0]));
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("blocks", double(channel->blocksFetched()));
  out.Set("bytes", double(channel->bytesFetched()));
  return out;
}

}  // namespace

std::shared_ptr<FetchChannel> attachFetchChannel(uint64_t id, std::weak_ptr<SnapshotHolder> holder) {
  std::lock_guard<std::mutex> g(g_mu);
  Entry& e = entryLocked(id);
  e.holder = std::move(holder);
  return e.channel;
}

void defineFetchChannels(Napi::Env env, Napi::Object exports) {
  exports.Set("openFetchChannel", Napi::Function::New(env, guardedFunction<&OpenFetchChannel>));
  exports.Set("closeFetchChannel", Napi::Function::New(env, guardedFunction<&CloseFetchChannel>));
  exports.Set("listenFetchChannel", Napi::Function::New(env, guardedFunction<&ListenFetchChannel>));
  exports.Set("unlistenFetchChannel", Napi::Function::New(env, guardedFunction<&UnlistenFetchChannel>));
  exports.Set("takeFetchRequests", Napi::Function::New(env, guardedFunction<&TakeFetchRequests>));
  exports.Set("deliverFetched", Napi::Function::New(env, guardedFunction<&DeliverFetched>));
  exports.Set("failFetched", Napi::Function::New(env, guardedFunction<&FailFetched>));
  exports.Set("fetchChannelStats", Napi::Function::New(env, guardedFunction<&FetchChannelStats>));
}

}  // namespace txa::binding
