#!/usr/bin/env bash
# Side-by-side load comparison: edgeguard vs nginx, HAProxy and Caddy as reverse proxies for one loopback origin.
# Installs what is missing from Debian, builds edgeguard (Release), runs interleaved shuffled rounds, prints a table.
# Starts nothing it does not stop. Usage: bench/compare.sh [--rounds N] [--seconds S] [--only get,post,...]
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for p in nginx-light haproxy caddy wrk linux-perf python3 procps util-linux; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# Debian starts packaged daemons on install; the benchmark runs its own instances on private ports.
for svc in nginx haproxy caddy; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then systemctl stop "$svc" || true; fi
done
BUILD_DIR=${BUILD_DIR:-build-release} BUILD_TYPE=Release scripts/build.sh -DEDGEGUARD_BENCH=OFF >/dev/null
exec python3 bench/compare.py --edgeguard "${BUILD_DIR:-build-release}/edgeguard" "$@"
