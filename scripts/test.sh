#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to every test: installs what is missing, then three passes, each
# printing CTest's summary:
#   1. build/       the whole suite (unit + integration);
#   2. build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer): the whole suite again;
#   3. build-tsan/  ThreadSanitizer: the tests labelled "threads" (workers, reload, rate limits, metrics shards,
#                   access-log writer, admin thread), building only edgeguard and those unit tests;
#   4. build-fuzz/  the libFuzzer targets (clang), each run for a bounded time (scripts/fuzz.sh).
# In the sanitizer passes any report from any process fails the test that saw it (tests/integration/conftest.py).
# Every pass runs even after a failure, so one run shows every failure; the exit status is 1 if any pass failed.
# Arguments go to the ctest runs of passes 1-3 (e.g. -R proxy_core). EDGEGUARD_SKIP_SANITIZERS=1 runs pass 1 only;
# EDGEGUARD_SKIP_FUZZ=1 skips pass 4.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
scripts/setup.sh || exit 1

jobs=$(nproc)
failed=()

# pass NAME COMMAND...: runs one step, records its failure and its duration; returns the step's status (the
# script itself never stops on it).
pass() {
  local name=$1 start=$SECONDS status=0
  shift
  echo "=== ${name}"
  "$@" || status=$?
  if [ "${status}" -ne 0 ]; then
    failed+=("${name}")
    echo "=== ${name}: FAILED"
  fi
  echo "=== ${name}: $((SECONDS - start)) s"
  return "${status}"
}

# Tests are independent (each integration test picks its own loopback ports), so CTest runs one per core.
suite() {
  local dir=$1
  shift
  (cd "$dir" && ctest --output-on-failure -j"${jobs}" --timeout 300 "$@")
}

if pass "build" scripts/build.sh; then
  pass "tests" suite build "$@"
fi

if [ "${EDGEGUARD_SKIP_SANITIZERS:-0}" != 1 ]; then
  if pass "asan build" env BUILD_DIR=build-asan scripts/build.sh -DEDGEGUARD_ASAN=ON -DEDGEGUARD_TSAN=OFF \
       -DEDGEGUARD_BENCH=OFF; then
    pass "asan tests" suite build-asan "$@"
  fi
  if pass "tsan build" env BUILD_DIR=build-tsan BUILD_TARGETS=edgeguard_threaded_tests scripts/build.sh \
       -DEDGEGUARD_TSAN=ON -DEDGEGUARD_ASAN=OFF -DEDGEGUARD_BENCH=OFF; then
    pass "tsan tests" suite build-tsan -L threads "$@"
  fi
fi

if [ "${EDGEGUARD_SKIP_SANITIZERS:-0}" != 1 ] && [ "${EDGEGUARD_SKIP_FUZZ:-0}" != 1 ]; then
  pass "fuzz" scripts/fuzz.sh
fi

if [ ${#failed[@]} -ne 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all passes succeeded"
