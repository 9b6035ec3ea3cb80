#!/usr/bin/env bash
# Builds and runs the native test programs (vmem and engine), plain and under ASan+UBSan,
# and prints the combined totals for test/run.mjs:
#   native checks: N passed, N failed              (single assertions)
#   native cases: N passed, N failed, N skipped    (test functions per mode and build)
set -uo pipefail
cd "$(dirname "$0")"
mkdir -p build
if ! make -s -j2 all >build/build.log 2>&1; then
  cat build/build.log
  echo "native checks: 0 passed, 0 failed"
  echo "native cases: 0 passed, 1 failed, 0 skipped"
  exit 1
fi
checksPassed=0; checksFailed=0; casesPassed=0; casesFailed=0; casesSkipped=0; status=0
run() {
  local out rc checks cases
  out=$("$@" 2>&1); rc=$?
  # Failures, skips and the summary; passing cases stay quiet.
  printf '%s\n' "$out" | grep -E '^(FAIL|FAILED|skipped|mode |checks:|cases:)'
  checks=$(printf '%s\n' "$out" | grep -E '^checks: [0-9]+ passed, [0-9]+ failed$' | tail -n 1)
  cases=$(printf '%s\n' "$out" | grep -E '^cases: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' | tail -n 1)
  if [ -z "$checks" ] || [ -z "$cases" ]; then
    printf '%s\n' "$out" | tail -n 20
    echo "the program ended (status $rc) without its summary: counted as one failed case"
    casesFailed=$((casesFailed + 1)); status=1; return
  fi
  read -r _ p _ f _ <<<"$checks"
  checksPassed=$((checksPassed + p)); checksFailed=$((checksFailed + f))
  read -r _ p _ f _ s _ <<<"$cases"
  casesPassed=$((casesPassed + p)); casesFailed=$((casesFailed + f)); casesSkipped=$((casesSkipped + s))
  [ $rc -eq 0 ] || status=1
}
echo "--- vmem, plain build"
run ./build/vmem_test
echo "--- vmem, ASan + UBSan build"
ASAN_OPTIONS=handle_segv=0:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 run ./build/vmem_test_asan
echo "--- engine, plain build"
run ./build/engine_test
echo "--- engine, ASan + UBSan build"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 run ./build/engine_test_asan
echo "native checks: $checksPassed passed, $checksFailed failed"
echo "native cases: $casesPassed passed, $casesFailed failed, $casesSkipped skipped"
exit $status
