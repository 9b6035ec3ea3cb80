// Written room past the end of data.mdb, so that a durable commit costs the file system no
// journal commit.
//
// A durable LMDB commit writes its pages, calls fdatasync, then writes its meta page
// through a descriptor opened with O_DSYNC. When the pages land in blocks the file has
// never written (past its end, or allocated by fallocate but unwritten), the file's block
// map changes, and fdatasync must also commit the file system's journal (ext4, xfs): one
// more device flush per commit, and a wait for the journal thread. A stream of appends
// grows the file at every commit, so every commit paid that. With zeros written ahead of
// LMDB's last page (and made durable by the next fdatasync, once), the commits that follow
// overwrite written blocks: fdatasync is their data and one flush, the meta page one more.
//
// The zeros are written while this process holds LMDB's writer lock (a write transaction
// that changes nothing): the pages past the last one are then written by no one else, and
// a commit of another process cannot interleave. Best effort: a failure (full disk) leaves
// the file as it is, and commits cost what they cost without it.
#pragma once
#include <cstdint>

namespace txa {

class Env;

class WrittenSlack {
 public:
  // After a durable commit of `env`, holding env.writeLock and no write transaction: when
  // fewer than kLowBytes written bytes remain past LMDB's last page, writes zeros up to
  // kHighBytes past it. Never throws.
  void afterDurableCommit(Env& env) noexcept;

  static constexpr uint64_t kLowBytes = 256 * 1024;
  static constexpr uint64_t kHighBytes = 1024 * 1024;

 private:
  uint64_t writtenEnd_ = 0;  // zeros this process wrote reach this file offset
};

}  // namespace txa
