#include "fault_fetch.h"

#include <exception>

#include "../vmem/vmem.h"

namespace txa {

uint64_t deliverFetched(SnapshotHolder& holder, FetchChannel& channel, const std::vector<FetchedBlock>& blocks) {
  std::shared_ptr<Snapshot> snapshot = holder.get();
  uint64_t taken = 0, bytes = 0;
  std::exception_ptr error;
  for (const FetchedBlock& b : blocks) {
    try {
      if (snapshot && snapshot->addFetched(b.arrayId, b.index, b.serial, reinterpret_cast<const uint8_t*>(b.data.data()), b.data.size()))
        ++taken;
    } catch (...) {
      if (!error) error = std::current_exception();
      if (snapshot) snapshot->markFetchFailed(b.arrayId, b.index, b.serial);
    }
    bytes += b.data.size();
    channel.answered(b.arrayId, b.index, b.serial);
  }
  channel.countFetched(blocks.size(), bytes);
  vmem::resumeWaitingFaults();
  if (error) std::rethrow_exception(error);
  return taken;
}

void failFetched(SnapshotHolder& holder, FetchChannel& channel, const std::vector<FetchChannel::Request>& failed) {
  std::shared_ptr<Snapshot> snapshot = holder.get();
  for (const FetchChannel::Request& r : failed) {
    if (snapshot) snapshot->markFetchFailed(r.arrayId, r.index, r.serial);
    channel.answered(r.arrayId, r.index, r.serial);
  }
  vmem::resumeWaitingFaults();
}

void closeFetchChannel(FetchChannel& channel) {
  channel.close();
  vmem::resumeWaitingFaults();
}

}  // namespace txa
