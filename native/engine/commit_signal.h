// Wakes readers when any process commits to the store: "wait for new rows".
//
// A 4 KiB file next to LMDB's (txarray.signal) is mapped shared by every process using the
// store; its first word counts commits. A committer increments it and FUTEX_WAKEs; a
// waiter FUTEX_WAITs on the value it last saw (a futex on a shared file mapping works
// across processes). The counter is only a doorbell: waiters always confirm with LMDB's
// own commit serial, so a process killed between its LMDB commit and the bump costs a
// waiter its timeout at worst, never a wrong answer. The file's block is allocated
// before it is mapped (a write to an unallocated page of a mapping on a full disk is a
// SIGBUS). Where the file cannot be created or allocated (read-only directory, full
// disk), waiting falls back to polling every few milliseconds. A read-only handle maps
// an existing file read-only: it waits on the doorbell but never rings it.
#pragma once
#include <cstdint>
#include <string>

namespace txa {

class CommitSignal {
 public:
  // Never throws: degrades to polling.
  CommitSignal(const std::string& directory, bool readOnly);
  ~CommitSignal();
  CommitSignal(const CommitSignal&) = delete;
  CommitSignal& operator=(const CommitSignal&) = delete;

  // The doorbell's value now; pass it to wait() after checking the serial.
  uint32_t sample() const;
  // After a commit: bump and wake every waiter in every process.
  void ring();
  // Sleeps until the doorbell differs from `seen` or `timeoutMs` passes (spurious wake-ups
  // allowed). Returns at once if it already differs.
  void wait(uint32_t seen, int64_t timeoutMs) const;

 private:
  uint32_t* word_ = nullptr;  // null: no shared file, poll
  bool writable_ = false;
};

}  // namespace txa
