// store.check(): walks one snapshot of the whole store and reports what is damaged or
// inconsistent, without changing anything.
//
// What it verifies:
//   records  every array record has a header, a non-zero id below meta nextId, ids are
//            unique, its serial is not newer than the snapshot
//   blocks   every block value: key layout, block header (magic, version, layout), the
//            header's array id and index equal the key's, page-aligned data of whole
//            pages, blockBytes equal to the record's, index within the array's length,
//            checksum over the stored bytes; a stub (a lazily cached remote block) has
//            its header checked and is counted, its bytes being on the server
//   refs     every block belongs to an array record (else: a block of a deleted or
//            unknown array); the commit that wrote a block, and the commit that last
//            changed a record, are in the commit log while the log reaches back to them
//   log      keys are serials, entries decode, ids are below meta nextId
// The TypeScript layer adds what only it can read: the format stamp and record bodies.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "snapshot.h"

namespace txa {

struct CheckProblem {
  std::string array;          // the array's name, or "#id" when no record names it
  int64_t block = -1;         // block index, or -1
  std::string kind;           // record, block-header, misplaced, layout, beyond-end, checksum,
                              // orphan, log, meta
  std::string message;
};

struct CheckReport {
  std::vector<CheckProblem> problems;
  uint64_t arrays = 0;  // array records
  uint64_t blocks = 0;  // block values
  uint64_t bytes = 0;   // data bytes they store (zero fill excluded)
  uint64_t onServer = 0;  // of the block values, stubs: bytes on the remote server (block_format.h)
};

// blockBytesByName: each record's blockBytes as its body says (0: unknown, body damaged).
CheckReport checkStore(Snapshot& snapshot, const std::map<std::string, uint32_t>& blockBytesByName);

}  // namespace txa
