#!/usr/bin/env bash
# Bounded fuzz smoke runs: builds the libFuzzer targets in build-fuzz with clang (reusing the
# directory when it exists) and runs ctest's fuzz.* cases, each stopped after EDGEGUARD_FUZZ_RUNS
# iterations or EDGEGUARD_FUZZ_SECONDS seconds, whichever comes first. Exits non-zero when a target finds a
# crash, a leak, undefined behaviour or a broken invariant; the input that did it is left in
# build-fuzz/tests/fuzz as crash-*/leak-*/timeout-* (see tests/fuzz/README.md to reproduce and minimise it).
#   EDGEGUARD_FUZZ_RUNS     iterations per target (default 20000)
#   EDGEGUARD_FUZZ_SECONDS  seconds per target (default 30)
#   EDGEGUARD_FUZZ_SEED     libFuzzer seed (default 1: repeatable on a given corpus; 0 = random)
#   BUILD_DIR               build directory (default build-fuzz)
# Extra arguments go to ctest (e.g. -R '^fuzz\.request_fuzz$').
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-fuzz}
RUNS=${EDGEGUARD_FUZZ_RUNS:-20000}
SECONDS_PER_TARGET=${EDGEGUARD_FUZZ_SECONDS:-30}
SEED=${EDGEGUARD_FUZZ_SEED:-1}
JOBS=${EDGEGUARD_FUZZ_BUILD_JOBS:-2}

for tool in clang clang++; do
  command -v "$tool" >/dev/null || { echo "fuzz: $tool not found (scripts/setup.sh installs it)" >&2; exit 2; }
done

# A build directory configured with another compiler cannot be switched to clang in place.
if [ -f "$BUILD_DIR/CMakeCache.txt" ] && ! grep -q '^CMAKE_CXX_COMPILER:.*clang++' "$BUILD_DIR/CMakeCache.txt"; then
  echo "fuzz: $BUILD_DIR was configured without clang; use another BUILD_DIR or remove it" >&2
  exit 2
fi
# -O1 with line tables only: a fraction of -O2 -g's compile time, enough for symbolized sanitizer reports, and
# without NDEBUG, so assert()s in the code under test are live while fuzzing.
CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
  -DEDGEGUARD_FUZZ=ON -DEDGEGUARD_BENCH=OFF -DEDGEGUARD_FUZZ_RUNS="$RUNS" \
  -DEDGEGUARD_FUZZ_SECONDS="$SECONDS_PER_TARGET" -DEDGEGUARD_FUZZ_SEED="$SEED" >/dev/null
targets=()
for src in tests/fuzz/*_fuzz.cc; do targets+=("$(basename "$src" .cc)"); done
cmake --build "$BUILD_DIR" -j"$JOBS" --target "${targets[@]}"

# One target at a time: each fuzzer is single-threaded and the smoke runs are bounded by time. The
# sanitizer options are set per test in tests/fuzz/CMakeLists.txt.
cd "$BUILD_DIR"
ctest --output-on-failure -j1 -R '^fuzz\.' "$@"
