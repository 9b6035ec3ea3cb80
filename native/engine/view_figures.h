// What the engine tells of the view layer (vmem) to its callers: the fault mode this
// process uses, an array's mapping figures and a session's mapped-block budget. Callers
// above the engine (the binding) read the view layer only through these.
#pragma once
#include <cstdint>
#include <string>

namespace txa {

class Session;
class TrackedArray;

struct FaultModeReport {
  std::string mode;           // "uffd" or "sigsegv": what a new view uses
  bool userfaultfd = false;   // the kernel lets this process use userfaultfd
  bool systemCalls = false;   // system calls on a view fault its pages in (uffd with kernel faults)
  std::string writeScan;      // how stores are found: "PAGEMAP_SCAN" or "pagemap"
  uint64_t pageBytes = 0;
  std::string error;          // TXARRAY_FAULT_MODE held a value that is not a mode; else empty
};

// The fault mode of this process (decided once, at the first use of the view layer).
FaultModeReport faultModeReport();

struct ArrayMemoryFigures {
  uint64_t faults = 0;        // faults served (one per window)
  uint64_t blocksMapped = 0;  // blocks mapped, cumulative
  uint64_t fileBlocks = 0;    // ... of which mapped from the data file
  uint64_t copiedBlocks = 0;  // ... of which copied
  uint64_t mappedBlocks = 0;  // blocks mapped now
  uint64_t dirtyBlocks = 0;   // blocks known dirty now
  uint64_t evictions = 0;     // blocks the budget unmapped
  uint64_t spills = 0;        // dirty blocks written to the spill file, cumulative
  uint64_t spilledBlocks = 0; // blocks whose bytes live in the spill file now
  uint64_t scans = 0;         // write scans
  uint64_t unmapCalls = 0;    // system calls that unmapped runs of blocks
  uint64_t scanWindows = 0;   // 2 MiB scan windows loaded by sequential views
  uint64_t scanWindowsOpened = 0;  // ... of which opened by a write
  uint64_t scanWindowsRecycled = 0;    // scan windows whose huge page was reused for another
  uint64_t scanWindowsPrefetched = 0;  // scan windows loaded ahead of the reader
  uint64_t reservedBytes = 0; // address space of the array's region
};

// The figures of the array's region (reserving it if it has none yet). Throws
// Error(kClosed) when the array's memory is released.
ArrayMemoryFigures arrayMemoryFigures(TrackedArray& array);

struct MapBudgetFigures {
  uint64_t limit = 0;         // mappings (VMAs) the budget's arrays may hold together
  uint64_t mappings = 0;      // mappings held now, all arrays of the budget
  uint64_t mappedBlocks = 0;  // blocks mapped now, all arrays of the budget
  uint64_t evictions = 0;     // blocks unmapped to stay under the limit
  uint64_t spills = 0;        // dirty blocks spilled to stay under the limit
};

MapBudgetFigures mapBudgetFigures(const Session& session);

// The process's shared budget (vmem::processBudget()): its figures, and a new limit for
// it (1 to vmem::kMaxMappingsLimit, else Error(kArgument); it holds from the next fault
// on: nothing is unmapped at once). Both create it if no handle did yet, and throw
// Error(kArgument) where TXARRAY_MAPPINGS holds no valid limit.
MapBudgetFigures processBudgetFigures();
void setProcessMappingsLimit(uint64_t limit);

}  // namespace txa
