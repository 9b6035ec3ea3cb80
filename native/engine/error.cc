#include "error.h"

#include <lmdb.h>

#include <cerrno>
#include <cstring>

namespace txa {

const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kArgument: return "TXA_ARGUMENT";
    case ErrorCode::kNotFound: return "TXA_NOT_FOUND";
    case ErrorCode::kExists: return "TXA_EXISTS";
    case ErrorCode::kBounds: return "TXA_BOUNDS";
    case ErrorCode::kConflict: return "TXA_CONFLICT";
    case ErrorCode::kClosed: return "TXA_CLOSED";
    case ErrorCode::kFormat: return "TXA_FORMAT";
    case ErrorCode::kStorage: return "TXA_STORAGE";
    case ErrorCode::kTooLarge: return "TXA_TOO_LARGE";
    case ErrorCode::kCorrupt: return "TXA_CORRUPT";
    case ErrorCode::kDiskFull: return "TXA_DISK_FULL";
    case ErrorCode::kReadOnly: return "TXA_READ_ONLY";
    case ErrorCode::kRemoteUnavailable: return "TXA_REMOTE_UNAVAILABLE";
  }
  return "TXA_STORAGE";
}

bool isDiskFull(int err) { return err == ENOSPC || err == EDQUOT; }

void throwLmdb(int rc, const char* what) {
  if (rc == MDB_MAP_FULL) throw MapFullError();
  if (isDiskFull(rc)) {
    throw Error(ErrorCode::kDiskFull, std::string(what) + ": the disk is full (" + mdb_strerror(rc) +
                                          "); free some space and retry");
  }
  ErrorCode code = ErrorCode::kStorage;
  if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) code = ErrorCode::kFormat;
  if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND) code = ErrorCode::kCorrupt;
  throw Error(code, std::string(what) + ": " + mdb_strerror(rc));
}

void throwErrno(int err, const std::string& what) {
  if (isDiskFull(err)) throw Error(ErrorCode::kDiskFull, what + ": the disk is full (" + strerror(err) + "); free some space and retry");
  throw Error(ErrorCode::kStorage, what + ": " + strerror(err));
}

}  // namespace txa
