// A block store (block_store.h) in memory, for testing the engine's commit rules without
// LMDB. Every commit makes a new immutable state; a read holds the state of its serial.
// One write at a time (a mutex); settle() publishes the write's copy of the state.
//
// It can be told to fail, so that tests see what each failure leaves: a room limit (a
// write storing more blocks than `room` throws StoreFullError until makeRoom() doubles
// it) and a failing settle (the next settle() throws Error(kStorage) and publishes
// nothing).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "block_store.h"

namespace txa {

class RamBlockStore : public BlockStore {
 public:
  struct State {
    std::map<std::string, std::string> tables[3];  // by Table
    std::map<std::pair<uint64_t, uint64_t>, std::vector<uint8_t>> blocks;  // (id, index) -> data
    std::map<std::pair<uint64_t, uint64_t>, uint64_t> stubs;  // (id, index) -> length on the server
    std::map<uint64_t, std::string> log;  // serial -> entry
  };

  std::unique_ptr<BlockRead> read() override;
  std::unique_ptr<BlockWrite> beginWrite() override;
  void makeRoom() override;

  // Blocks one write may store before StoreFullError (0: no limit).
  void setRoom(uint64_t blocks);
  // The next settle() throws Error(kStorage) and publishes nothing.
  void failNextSettle();
  uint64_t settled() const;    // writes published
  uint64_t abandoned() const;  // writes ended without publishing
  uint64_t roomMade() const;   // makeRoom() calls

 private:
  friend class RamWrite;
  std::shared_ptr<const State> current() const;

  mutable std::mutex lock_;  // guards everything below
  std::shared_ptr<const State> state_ = std::make_shared<State>();
  uint64_t room_ = 0, settled_ = 0, abandoned_ = 0, roomMade_ = 0;
  bool failSettle_ = false;
  std::mutex writeLock_;  // one write at a time
};

}  // namespace txa
