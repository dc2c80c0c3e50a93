#!/usr/bin/env bash
# CI wrapper around tests/docker/smoke.sh: uses a running Docker engine when there is one; otherwise, as root on
# Debian, starts a private dockerd for the duration of the test (installing docker.io first when missing) and
# stops it again, so CI proves the image on machines where nobody started an engine. Without root or without a
# way to get an engine, it prints the smoke test's visible SKIP and exits 0.
#
#   tests/docker/ci_smoke.sh
#
# The private daemon runs with settings that work inside a VM sandbox without touching the host's firewall:
# vfs storage, no iptables rules, no default bridge (builds use --network host; the smoke test's own network
# is a user-defined bridge). It keeps its state in EDGEGUARD_DOCKER_ROOT (default /var/lib/edgeguard-ci-docker)
# so the base image and the apt layer are reused by the next run. If debian:bookworm cannot be pulled, the base
# image is made with debootstrap from the Debian mirror apt uses and `docker import`ed (docs/deploy-posthog.md,
# "Offline builders"). The whole run is bounded by EDGEGUARD_DOCKER_TIMEOUT seconds (default 3600).
set -euo pipefail

cd "$(dirname "$0")/../.."
SMOKE=tests/docker/smoke.sh
DATA_ROOT=${EDGEGUARD_DOCKER_ROOT:-/var/lib/edgeguard-ci-docker}
TIMEOUT=${EDGEGUARD_DOCKER_TIMEOUT:-3600}
DOCKERD_PID=""

skip() {
    echo "SKIP: tests/docker/ci_smoke.sh: $*; container smoke test not run"
    exit 0
}

# shellcheck disable=SC2317  # runs from the EXIT trap
stop_dockerd() {
    if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        kill -TERM "$DOCKERD_PID"
        for _ in $(seq 1 30); do
            kill -0 "$DOCKERD_PID" 2>/dev/null || break
            sleep 1
        done
        if kill -0 "$DOCKERD_PID" 2>/dev/null; then kill -KILL "$DOCKERD_PID"; fi
        wait "$DOCKERD_PID" 2>/dev/null || true
    fi
    # dockerd leaves its default network namespace bind-mounted under the exec root; unmount, then remove.
    awk -v dir="$RUN_DIR/" 'index($2, dir) == 1 {print $2}' /proc/mounts | sort -r | while read -r mount; do
        umount -l "$mount" || true
    done
    rm -rf "$RUN_DIR" || echo "# could not remove $RUN_DIR"
}

if docker info >/dev/null 2>&1; then
    exec timeout --kill-after=30 "$TIMEOUT" "$SMOKE"
fi
if [ "$(id -u)" -ne 0 ]; then skip "no Docker engine and not root (cannot start one)"; fi
RUN_DIR=$(mktemp -d /tmp/edgeguard-ci-docker.XXXXXX)
SOCKET="$RUN_DIR/docker.sock"
trap stop_dockerd EXIT INT TERM

if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then skip "no Docker engine, and no apt-get to install docker.io"; fi
    echo "# installing docker.io and debootstrap for the container smoke test"
    install() {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io debootstrap \
            >>"$RUN_DIR/apt.log" 2>&1
    }
    if ! install && ! { apt-get update -qq >>"$RUN_DIR/apt.log" 2>&1 && install; }; then
        tail -5 "$RUN_DIR/apt.log"
        skip "no Docker engine, and installing docker.io failed"
    fi
fi
if ! command -v docker >/dev/null 2>&1; then skip "no docker client"; fi

mkdir -p "$DATA_ROOT"
echo "# starting a private dockerd (state in $DATA_ROOT, log in $RUN_DIR/dockerd.log)"
# setsid: the daemon and its containerd are one process group of their own, stopped by pid below.
setsid dockerd --host "unix://$SOCKET" --data-root "$DATA_ROOT" --exec-root "$RUN_DIR/exec" \
    --pidfile "$RUN_DIR/dockerd.pid" --storage-driver vfs --iptables=false --ip6tables=false --bridge=none \
    >"$RUN_DIR/dockerd.log" 2>&1 &
DOCKERD_PID=$!
export DOCKER_HOST="unix://$SOCKET"
ready=0
for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
        ready=1
        break
    fi
    kill -0 "$DOCKERD_PID" 2>/dev/null || break
    sleep 1
done
if [ "$ready" -ne 1 ]; then
    tail -20 "$RUN_DIR/dockerd.log"
    skip "dockerd could not start here (log above)"
fi

base=${BASE_IMAGE:-debian:bookworm}
if ! docker image inspect "$base" >/dev/null 2>&1 && ! timeout 120 docker pull "$base" >/dev/null 2>&1; then
    base=debian:bookworm-local
    if ! docker image inspect "$base" >/dev/null 2>&1; then
        mirror=$(awk '/^URIs:/ {print $2; exit} /^deb / {print $2; exit}' \
            /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list 2>/dev/null || true)
        mirror=${mirror:-http://deb.debian.org/debian}
        echo "# debian:bookworm cannot be pulled: building $base with debootstrap from $mirror"
        rootfs="$RUN_DIR/rootfs"
        if ! timeout 1200 debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$RUN_DIR/debootstrap.log" 2>&1
        then
            tail -5 "$RUN_DIR/debootstrap.log"
            echo "FAIL - debootstrap of the base image failed"
            exit 1
        fi
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        tar -C "$rootfs" -c . | docker import - "$base" >/dev/null
        rm -rf "$rootfs"
    fi
fi

status=0
BASE_IMAGE="$base" timeout --kill-after=30 "$TIMEOUT" "$SMOKE" || status=$?
# The smoke images are rebuilt every run from the cached layers; drop the tags so vfs copies do not pile up.
docker image prune -f >/dev/null 2>&1 || true
exit "$status"
