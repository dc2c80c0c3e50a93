#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running proxy on the default config.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec build/edgeguard serve --config "${EDGEGUARD_CONFIG:-conf/edgeguard.yaml}"
