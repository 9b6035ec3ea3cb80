#!/usr/bin/env bash
# Builds and runs the native vmem and engine test programs, plain and under ASan+UBSan, and prints
# one combined "N passed, N failed" line for test/run.mjs.
set -uo pipefail
cd "$(dirname "$0")"
mkdir -p build
if ! make -s -j2 all >build/build.log 2>&1; then
  cat build/build.log
  echo "0 passed, 1 failed"
  exit 1
fi
passed=0; failed=0; status=0
run() {
  local out
  out=$("$@" 2>&1); local rc=$?
  printf '%s\n' "$out" | tail -n 5
  local line
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
  if [ -z "$line" ]; then failed=$((failed + 1)); status=1; return; fi
  passed=$((passed + $(echo "$line" | cut -d' ' -f1)))
  failed=$((failed + $(echo "$line" | cut -d' ' -f3)))
  [ $rc -eq 0 ] || status=1
}
echo "--- plain build"
run ./build/vmem_test
echo "--- ASan + UBSan build"
ASAN_OPTIONS=handle_segv=0:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 run ./build/vmem_test_asan
echo "--- engine, plain build"
run ./build/engine_test
echo "--- engine, ASan + UBSan build"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 run ./build/engine_test_asan
echo "$passed passed, $failed failed"
exit $status
