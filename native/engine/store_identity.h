// Whether an LMDB environment is a txarray store, decided by reading only.
//
// A txarray store's main database holds exactly four plain sub-databases (keys.h) and
// its meta database a format record; all are written by one transaction when the store
// is created, so no other state is ours. An environment whose main database is empty is
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
  MDB_dbi meta = 0, arrays = 0, blocks = 0, log = 0;
};

// Inspects the environment in `txn` (a read transaction). For kStore the sub-databases
// are opened into `handles` (commit the transaction to keep them). Throws TXA_FORMAT
// for another program's environment, TXA_CORRUPT for damage it sees.
Identity identifyStore(MDB_txn* txn, const std::string& path, const files::MapBounds& bounds, StoreHandles* handles);

// Creates the sub-databases and writes `format` in the write transaction `txn` if the
// main database is still empty; false (nothing written) if another process got there first.
bool initialiseStore(MDB_txn* txn, const std::string& format, StoreHandles* handles);

}  // namespace txa
