// Errors raised by the native core. Each carries a stable code; the binding maps the
// code to the TypeScript error class of the same code (src/errors.ts).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace txa {

enum class ErrorCode {
  kArgument,    // TXA_ARGUMENT: malformed input that TypeScript validation should have caught
  kNotFound,    // TXA_NOT_FOUND
  kExists,      // TXA_EXISTS
  kBounds,      // TXA_BOUNDS
  kConflict,    // TXA_CONFLICT: another commit touched what this one writes; retry
  kClosed,      // TXA_CLOSED: the store or array was closed
  kFormat,      // TXA_FORMAT: the file is not a txarray store of a known version
  kStorage,     // TXA_STORAGE: LMDB or the operating system failed
  kTooLarge,    // TXA_TOO_LARGE: a view or region beyond what the platform can map
  kCorrupt,     // TXA_CORRUPT: damaged files: a block with a bad header or checksum, a truncated data file, pages that cannot be right
  kDiskFull,    // TXA_DISK_FULL: the file system has no space (or quota) left for the store
  kReadOnly,    // TXA_READ_ONLY: a change through a handle opened with readOnly
  kRemoteUnavailable,  // TXA_REMOTE_UNAVAILABLE: bytes only the remote server holds (a stub not fetched)
};

const char* errorCodeName(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// What a commit conflict is about, for the caller to log or to retry selectively.
struct ConflictFacts {
  std::string array;    // the array's name; empty when unknown (the log no longer reaches back)
  uint64_t serial = 0;  // the commit that won: the first since the snapshot to conflict; 0 if unknown
  bool metadata = false;  // both changed the array's record: its shape, attributes or existence
  std::vector<std::pair<uint64_t, uint64_t>> blocks;  // block ranges both wrote, inclusive
  std::vector<std::pair<uint64_t, uint64_t>> rows;    // the rows of axis 0 those blocks hold, inclusive
};

// kConflict with its facts.
class ConflictError : public Error {
 public:
  ConflictError(const std::string& message, ConflictFacts facts)
      : Error(ErrorCode::kConflict, message), facts_(std::move(facts)) {}
  const ConflictFacts& facts() const { return facts_; }

 private:
  ConflictFacts facts_;
};

// Raised inside a store's write when the store is out of room (LMDB's map is full); the
// commit abandons the write, makes room (BlockStore::makeRoom) and runs again, so it
// never reaches JavaScript.
class StoreFullError : public Error {
 public:
  StoreFullError() : Error(ErrorCode::kStorage, "LMDB map full") {}
};
using MapFullError = StoreFullError;  // its name where LMDB raises it (throwLmdb)

// Throws MapFullError for MDB_MAP_FULL; TXA_DISK_FULL for ENOSPC and EDQUOT; TXA_CORRUPT
// for pages LMDB found damaged; TXA_FORMAT for a file that is not LMDB's; else
// TXA_STORAGE. `what` names the operation.
[[noreturn]] void throwLmdb(int rc, const char* what);

// Throws for a failed system call whose errno is `err`, classified as throwLmdb does;
// `what` names the operation and the file.
[[noreturn]] void throwErrno(int err, const std::string& what);

// True for the errno values that mean "no space left" (ENOSPC, EDQUOT).
bool isDiskFull(int err);

}  // namespace txa
