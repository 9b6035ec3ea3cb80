#include "error.h"

#include <lmdb.h>

namespace txa {

const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kArgument: return "ERR_ARGUMENT";
    case ErrorCode::kNotFound: return "ERR_NOT_FOUND";
    case ErrorCode::kExists: return "ERR_EXISTS";
    case ErrorCode::kBounds: return "ERR_BOUNDS";
    case ErrorCode::kConflict: return "ERR_CONFLICT";
    case ErrorCode::kClosed: return "ERR_CLOSED";
    case ErrorCode::kFormat: return "ERR_FORMAT";
    case ErrorCode::kStorage: return "ERR_STORAGE";
    case ErrorCode::kTooLarge: return "ERR_TOO_LARGE";
  }
  return "ERR_STORAGE";
}

void throwLmdb(int rc, const char* what) {
  if (rc == MDB_MAP_FULL) throw MapFullError();
  ErrorCode code = ErrorCode::kStorage;
  if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) code = ErrorCode::kFormat;
  throw Error(code, std::string(what) + ": " + mdb_strerror(rc));
}

}  // namespace txa
