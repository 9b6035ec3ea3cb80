// The fetcher's answers to faults waiting for blocks of a lazily cached remote store
// (fetch_channel.h; vmem.h, FAULTS THAT WAIT FOR A FETCH), run on the fetcher's thread.
// Both end by serving the waiting faults again (vmem::resumeWaitingFaults), so they take
// only the locks a fault takes (the snapshot's) and the channel's: never a lock a faulting
// thread may hold while it touches a view (Env::writeLock is not taken here; the cache
// write of the fetched bytes, remote_fill.h, comes after, separately).
#pragma once
#include <cstdint>
#include <vector>

#include "fetch_channel.h"
#include "remote_fill.h"
#include "snapshot_source.h"

namespace txa {

// Gives the fetched versions to the handle's current snapshot (those it names: Snapshot::
// addFetched), answers their requests, counts them, and serves the waiting faults again.
// Returns how many versions the snapshot took. Throws Error(kFormat) for bytes that do not
// fit their version (after answering and resuming: no fault is left waiting).
uint64_t deliverFetched(SnapshotHolder& holder, FetchChannel& channel, const std::vector<FetchedBlock>& blocks);

// The fetch of these requests failed: the current snapshot serves the faults on them as
// unreadable blocks (zeros, the error recorded on the region) until the handle moves.
void failFetched(SnapshotHolder& holder, FetchChannel& channel, const std::vector<FetchChannel::Request>& failed);

// The handle closes: nothing is fetched for faults any more; those waiting are served as
// unreadable blocks now.
void closeFetchChannel(FetchChannel& channel);

}  // namespace txa
