#!/bin/sh
# Container entrypoint: `serve` (the default) validates the config first, so a typo stops the container with
# file:line:col messages in `docker logs` instead of a half-working proxy; then edgeguard replaces this shell
# (exec) and receives SIGTERM/SIGHUP directly. Any other arguments run the edgeguard CLI as given.
set -eu
CONFIG="${EDGEGUARD_CONFIG:-/etc/edgeguard/edgeguard.yaml}"
if [ "$#" -eq 0 ] || [ "$1" = "serve" ]; then
    /usr/local/bin/edgeguard check --config "$CONFIG"
    exec /usr/local/bin/edgeguard serve --config "$CONFIG"
fi
exec /usr/local/bin/edgeguard "$@"
