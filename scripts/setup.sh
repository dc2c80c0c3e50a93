#!/usr/bin/env bash
# Installs the Debian 12 packages edgeguard's build, tests and benchmarks need, only those missing.
# Run as root (or with sudo available). Idempotent: a second run installs nothing.
#   scripts/setup.sh           everything: build, tests (unit, integration, sanitizers, fuzz), benchmarks
#   scripts/setup.sh --build   only what `cmake -DEDGEGUARD_TESTS=OFF -DEDGEGUARD_BENCH=OFF` needs (the image)
set -euo pipefail
BUILD_PKGS=(
  g++ cmake make pkg-config
  libevent-dev libssl-dev libre2-dev libsimdjson-dev libyaml-cpp-dev zlib1g-dev libdeflate-dev libhiredis-dev
  libicu-dev node-llhttp
  icu-devtools binutils  # icupkg, genccode, objcopy: the trimmed ICU data linked statically (cmake/icu_static.cmake)
  libprotobuf-dev protobuf-compiler  # OTLP protobuf bodies (filters/otlp/proto)
  libnghttp2-dev                     # HTTP/2 from clients (proxy/http2)
)
TEST_PKGS=(
  libgtest-dev libgmock-dev libbenchmark-dev
  curl openssl python3 python3-pytest python3-websockets python3-yaml python3-h2 redis-server wrk procps iproute2
  nghttp2-client            # nghttp and h2load: HTTP/2 integration tests and bench/h2_compare.py
  shellcheck                # test_container_files.py lints the container scripts
  clang libclang-rt-14-dev  # scripts/fuzz.sh: libFuzzer and the sanitizer runtimes for clang
)
PKGS=("${BUILD_PKGS[@]}")
case "${1:-}" in
  --build) ;;
  "") PKGS+=("${TEST_PKGS[@]}") ;;
  *) echo "usage: $0 [--build]" >&2; exit 2 ;;
esac
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  # policy-rc.d keeps freshly installed daemons (redis-server) from starting system-wide;
  # tests start their own on loopback ports.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
