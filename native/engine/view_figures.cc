#include "view_figures.h"

#include "error.h"
#include "session.h"
#include "tracked_array.h"

namespace txa {

FaultModeReport faultModeReport() {
  const vmem::SystemInfo& sys = vmem::systemInfo();
  FaultModeReport report;
  report.mode = vmem::faultModeName(sys.defaultMode);
  report.userfaultfd = sys.uffd;
  report.systemCalls = sys.defaultMode == vmem::FaultMode::Uffd && sys.kernelFaults;
  report.writeScan = sys.pagemapScan ? "PAGEMAP_SCAN" : "pagemap";
  report.pageBytes = sys.pageBytes;
  if (sys.envError.status != vmem::Status::Ok) report.error = vmem::describe(sys.envError);
  return report;
}

ArrayMemoryFigures arrayMemoryFigures(TrackedArray& array) {
  if (array.closed()) throw Error(ErrorCode::kClosed, "the array's memory is released");
  vmem::RegionStats st = array.region()->stats();
  ArrayMemoryFigures out;
  out.faults = st.faults;
  out.blocksMapped = st.blocksMapped;
  out.fileBlocks = st.fileBlocks;
  out.copiedBlocks = st.copiedBlocks;
  out.mappedBlocks = st.mappedNow;
  out.dirtyBlocks = st.dirtyNow;
  out.evictions = st.evictions;
  out.spills = st.spills;
  out.spilledBlocks = st.spilledNow;
  out.scans = st.scans;
  out.unmapCalls = st.unmapCalls;
  out.scanWindows = st.scanWindows;
  out.scanWindowsOpened = st.scanWindowsOpened;
  out.scanWindowsRecycled = st.scanWindowsRecycled;
  out.scanWindowsPrefetched = st.scanWindowsPrefetched;
  out.reservedBytes = array.reservedBytes();
  return out;
}

namespace {

MapBudgetFigures figuresOf(const vmem::Budget& budget) {
  vmem::BudgetStats st = budget.stats();
  return {st.limit, st.mappings, st.mappedBlocks, st.evictions, st.spills};
}

}  // namespace

MapBudgetFigures mapBudgetFigures(const Session& session) { return figuresOf(session.budget()); }

MapBudgetFigures processBudgetFigures() { return figuresOf(*processMappingBudget()); }

void setProcessMappingsLimit(uint64_t limit) {
  if (limit == 0 || limit > vmem::kMaxMappingsLimit)
    throw Error(ErrorCode::kArgument, "the process's mapping limit must be a whole number from 1 to 2147483647");
  processMappingBudget()->setLimit(limit);
}

}  // namespace txa
