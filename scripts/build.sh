#!/usr/bin/env bash
# Configures and builds edgeguard into ${BUILD_DIR:-build} (Release with debug info), reusing an existing build.
# Arguments go to the configure step (-DEDGEGUARD_ASAN=ON, ...); BUILD_TARGETS (space-separated) builds only those.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
targets=()
for t in ${BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$BUILD_DIR" -j"$(nproc)" "${targets[@]}"
