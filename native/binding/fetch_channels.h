// The fetch channels of the process (engine/fetch_channel.h), by id: one per Store handle
// of a remote store, made by its JavaScript thread, listened to and answered by the remote
// link's thread (src/remote/link-worker.ts).
#pragma once
#include <napi.h>

#include <cstdint>
#include <memory>

#include "../engine/fetch_channel.h"
#include "../engine/snapshot_source.h"

namespace txa::binding {

// Adds openFetchChannel, closeFetchChannel, listenFetchChannel, unlistenFetchChannel,
// takeFetchRequests, deliverFetched, failFetched and fetchChannelStats to `exports`.
void defineFetchChannels(Napi::Env env, Napi::Object exports);

// The channel `id` (Error(kArgument) if there is none), and the snapshots it answers to
// from now on (the session it is attached to).
std::shared_ptr<FetchChannel> attachFetchChannel(uint64_t id, std::weak_ptr<SnapshotHolder> holder);

}  // namespace txa::binding
