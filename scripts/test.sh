#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to every test: installs what is missing, then these passes, each
# printing CTest's summary:
#   1. build/          the whole suite (unit + integration);
#   2. build-release/  the build users and packagers make (CMAKE_BUILD_TYPE=Release: the binary and the tests;
#                      the benchmarks, compiled in pass 1, are left out) and its unit tests;
#   3. build-asan/     AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer): the whole suite again;
#   4. build-tsan/     ThreadSanitizer: the tests labelled "threads" (workers, reload, rate limits, metrics shards,
#                      access-log writer, admin thread), building only edgeguard and those unit tests;
#   5. build-fuzz/     the libFuzzer targets (clang), each run for a bounded time (scripts/fuzz.sh).
# Warnings are errors in every pass here (EDGEGUARD_WERROR), unlike the default build users get.
# With CI=true a skipped test fails its pass, and so does a missing ../shared (the corpus the suite reads):
# a skip there means something CI was meant to cover was not covered. Integration tests allow a skip only for
# the reasons listed in tests/integration/conftest.py (ALLOWED_SKIPS), whatever CI says.
# In the sanitizer passes any report from any process fails the test that saw it (tests/integration/conftest.py).
# Every pass runs even after a failure, so one run shows every failure; the exit status is 1 if any pass failed.
# Arguments go to the ctest runs of passes 1-3 (e.g. -R proxy_core). EDGEGUARD_SKIP_SANITIZERS=1 runs pass 1 only;
# EDGEGUARD_SKIP_FUZZ=1 skips pass 5; EDGEGUARD_SKIP_RELEASE=1 skips pass 2.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
scripts/setup.sh || exit 1

jobs=$(nproc)
failed=()
ci=false
[ "${CI:-}" = true ] && ci=true

if [ ! -d ../shared ]; then
  if $ci; then
    echo "FAILED: ../shared is missing; CI runs with the shared corpus beside the clone" >&2
    exit 1
  fi
  echo "NOTE: ../shared is missing; the tests that read the shared corpus skip (CI=true makes that a failure)"
fi

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
# Under CI=true a test CTest reports as skipped (a GTEST_SKIP, an integration module that skipped whole) fails
# the pass; elsewhere CTest's own list of skipped tests is the visible record.
suite() {
  local dir=$1 status=0 log
  shift
  log=$(mktemp)
  (cd "$dir" && ctest --output-on-failure -j"${jobs}" --timeout 300 "$@") 2>&1 | tee "$log" || status=$?
  if $ci && grep -q '(Skipped)' "$log"; then
    echo "=== skipped tests under CI=true:"
    grep '(Skipped)' "$log"
    status=1
  fi
  rm -f "$log"
  return "$status"
}

werror=-DEDGEGUARD_WERROR=ON

if pass "build" scripts/build.sh "$werror"; then
  pass "tests" suite build "$@"
fi

if [ "${EDGEGUARD_SKIP_RELEASE:-0}" != 1 ]; then
  if pass "release build" env BUILD_DIR=build-release BUILD_TYPE=Release scripts/build.sh "$werror" \
       -DEDGEGUARD_BENCH=OFF; then
    pass "release unit tests" suite build-release -R '^unit\.' "$@"
  fi
fi

if [ "${EDGEGUARD_SKIP_SANITIZERS:-0}" != 1 ]; then
  if pass "asan build" env BUILD_DIR=build-asan scripts/build.sh "$werror" -DEDGEGUARD_ASAN=ON -DEDGEGUARD_TSAN=OFF \
       -DEDGEGUARD_BENCH=OFF; then
    pass "asan tests" suite build-asan "$@"
  fi
  if pass "tsan build" env BUILD_DIR=build-tsan BUILD_TARGETS=edgeguard_threaded_tests scripts/build.sh \
       "$werror" -DEDGEGUARD_TSAN=ON -DEDGEGUARD_ASAN=OFF -DEDGEGUARD_BENCH=OFF; then
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
