#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to every test: installs, builds, runs CTest and prints its summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 300 "$@"
