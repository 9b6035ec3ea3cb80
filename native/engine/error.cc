#include "error.h"

#include <lmdb.h>

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
  }
  return "TXA_STORAGE";
}

void throwLmdb(int rc, const char* what) {
  if (rc == MDB_MAP_FULL) throw MapFullError();
  ErrorCode code = ErrorCode::kStorage;
  if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) code = ErrorCode::kFormat;
  throw Error(code, std::string(what) + ": " + mdb_strerror(rc));
}

}  // namespace txa
