#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to every test: installs, builds, runs CTest and prints its summary,
# then rebuilds with AddressSanitizer + UndefinedBehaviorSanitizer and runs the unit tests again.
# EDGEGUARD_SKIP_SANITIZERS=1 skips the second pass (quick local runs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
(cd build && ctest --output-on-failure -j"$(nproc)" --timeout 300 "$@")
if [ "${EDGEGUARD_SKIP_SANITIZERS:-0}" != 1 ]; then
  BUILD_DIR=build-asan scripts/build.sh -DEDGEGUARD_ASAN=ON -DEDGEGUARD_BENCH=OFF
  # alloc_dealloc_mismatch: Debian's prebuilt libsimdjson frees with free() what its header-inlined code
  # allocated with new; that pairing is outside our code and otherwise aborts every simdjson DOM parser.
  (cd build-asan && ASAN_OPTIONS=alloc_dealloc_mismatch=0:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure -j"$(nproc)" --timeout 300 -R '^unit\.')
fi
