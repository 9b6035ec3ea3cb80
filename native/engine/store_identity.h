// Whether an LMDB environment is a txarray store, decided by reading only.
//
// A txarray store's main database holds exactly five plain sub-databases (keys.h) and
// its meta database a format record; all are written by one transaction when the store
// is created, so no other state is ours. A store of format 3 written before named
// segments has four (no `segments`): it opens, and its first write-open adds the fifth
// (addSegments). An environment whose main database is empty is
// not yet initialised (a creation that has not committed, or failed): it may become a
// store. Anything else belongs to another program and is refused before anything is
// written to it.
#pragma once
#include <lmdb.h>

#include <string>

#include "store_files.h"

namespace txa {

enum class Identity { kEmpty, kStore };

// The handles of a store's sub-databases, in the order of keys.h.
struct StoreHandles {
  MDB_dbi meta = 0, arrays = 0, blocks = 0, log = 0, segments = 0;
  bool hasSegments = false;  // false: `segments` does not exist yet (see addSegments)
};

// Inspects the environment in `txn` (a read transaction). For kStore the sub-databases
// are opened into `handles` (commit the transaction to keep them). Throws TXA_FORMAT
// for another program's environment, TXA_CORRUPT for damage it sees.
Identity identifyStore(MDB_txn* txn, const std::string& path, const files::MapBounds& bounds, StoreHandles* handles);

// Creates the sub-databases and writes `format` in the write transaction `txn` if the
// main database is still empty; false (nothing written) if another process got there first.
bool initialiseStore(MDB_txn* txn, const std::string& format, StoreHandles* handles);

// Creates `segments` in the write transaction `txn` for a store that has none yet (no-op
// if another process did it first). Log entries written before then use an earlier
// encoding: they are replaced by one empty entry at the newest serial, so the serial is
// kept and older commits read as pruned (TXA_LOG_PRUNED for a watch reaching back).
void addSegments(MDB_txn* txn, StoreHandles* handles);

}  // namespace txa
