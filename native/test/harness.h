// The test harness of the native test programs. A check is one assertion (CHECK); a case
// is one test function run for one mode (CASE). A program ends with printSummary():
//   checks: N passed, N failed
//   cases: N passed, N failed, N skipped
// A case fails if a check failed or it threw; it is skipped if it called skip(), if its
// mode is unavailable (g_modeUnavailable), or if it reached no check at all; it passes
// otherwise. Skipped cases print "skipped <case>: <reason>".
#pragma once
#include <cstdio>
#include <exception>
#include <string>

inline int g_passed = 0, g_failed = 0;  // checks
inline int g_casesPassed = 0, g_casesFailed = 0, g_casesSkipped = 0;
inline std::string g_ctx;                      // what the running check is about, for FAIL lines
inline std::string g_skipReason;               // set by skip() inside the running case
inline const char* g_modeUnavailable = nullptr;  // set: every case run now is skipped, for this reason

#define CHECK(cond)                                                                   \
  do {                                                                                \
    if (cond) {                                                                       \
      g_passed++;                                                                     \
    } else {                                                                          \
      g_failed++;                                                                     \
      fprintf(stderr, "FAIL %s:%d [%s] %s\n", __FILE__, __LINE__, g_ctx.c_str(), #cond); \
    }                                                                                 \
  } while (0)

// Marks the running case as skipped (call, then return from the test function).
inline void skip(const std::string& reason) { g_skipReason = reason; }

template <class Body>
void runCase(const std::string& name, Body body) {
  if (g_modeUnavailable) {
    g_casesSkipped++;
    printf("skipped %s: %s\n", name.c_str(), g_modeUnavailable);
    return;
  }
  const int passedBefore = g_passed, failedBefore = g_failed;
  g_skipReason.clear();
  try {
    body();
  } catch (const std::exception& e) {
    g_failed++;
    fprintf(stderr, "FAIL %s [%s] exception: %s\n", name.c_str(), g_ctx.c_str(), e.what());
  }
  if (g_failed > failedBefore) {
    g_casesFailed++;
    printf("FAILED %s\n", name.c_str());
  } else if (!g_skipReason.empty() || g_passed == passedBefore) {
    g_casesSkipped++;
    printf("skipped %s: %s\n", name.c_str(),
           g_skipReason.empty() ? "no check applies in this mode or on this kernel" : g_skipReason.c_str());
  } else {
    g_casesPassed++;
  }
}

// CASE(mode, testX(c)) runs one test function as a case named after the mode and the call.
#define CASE(mode, call) runCase(std::string(mode) + (*(mode) ? " " : "") + #call, [&] { call; })

inline void printSummary() {
  printf("checks: %d passed, %d failed\n", g_passed, g_failed);
  printf("cases: %d passed, %d failed, %d skipped\n", g_casesPassed, g_casesFailed, g_casesSkipped);
}
