#!/usr/bin/env bash
# CI wrapper around tests/docker/smoke.sh: uses a running Docker engine when there is one; otherwise, as root on
# Debian, starts a private dockerd for the duration of the test (installing docker.io and debootstrap first when
# missing) and stops it again, so CI proves the image on machines where nobody started an engine.
#
#   tests/docker/ci_smoke.sh
#
# With CI=true every way of not testing the image (no root, no engine, no base image) is a failure; elsewhere it
# prints a visible SKIP and exits 0.
#
# The private daemon uses the overlay2 storage driver, and vfs (which copies every layer in full, several times
# slower) only when overlay2 cannot start here. It touches neither the host's firewall nor its default bridge: no
# iptables rules, no default bridge (builds use --network host; the smoke test's own network is a user-defined
# bridge). It keeps its state in EDGEGUARD_DOCKER_ROOT (default /var/lib/edgeguard-ci-docker), so the base images
# and the package layers are reused by the next run. The base images debian:bookworm-local and
# debian:bookworm-slim-local are made with debootstrap from the Debian mirror this machine's apt uses and
# `docker import`ed (docs/deploy-posthog.md, "Offline builders"). The whole run is bounded by
# EDGEGUARD_DOCKER_TIMEOUT seconds (default 1800).
set -euo pipefail

cd "$(dirname "$0")/../.."
SMOKE=tests/docker/smoke.sh
DATA_ROOT=${EDGEGUARD_DOCKER_ROOT:-/var/lib/edgeguard-ci-docker}
TIMEOUT=${EDGEGUARD_DOCKER_TIMEOUT:-1800}
DOCKERD_PID=""
RUN_DIR=""
START=$SECONDS

skip() {
    if [ "${CI:-}" = true ]; then
        echo "FAIL - tests/docker/ci_smoke.sh: $*; the image was not tested (CI=true)"
        exit 1
    fi
    echo "SKIP: tests/docker/ci_smoke.sh: $*; container smoke test not run"
    exit 0
}

step() { echo "# [$((SECONDS - START)) s] $*"; }

# shellcheck disable=SC2317  # runs from the EXIT trap and between storage drivers
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
    DOCKERD_PID=""
    [ -n "$RUN_DIR" ] || return 0
    # dockerd leaves its default network namespace bind-mounted under the exec root; unmount, then remove.
    awk -v dir="$RUN_DIR/exec" 'index($2, dir) == 1 {print $2}' /proc/mounts | sort -r | while read -r mount; do
        umount -l "$mount" || true
    done
}

# shellcheck disable=SC2317  # runs from the EXIT trap
cleanup() {
    stop_dockerd
    if [ -n "$RUN_DIR" ]; then rm -rf "$RUN_DIR" || echo "# could not remove $RUN_DIR"; fi
}

# start_dockerd DRIVER: a private daemon on its own socket; returns non-zero when it is not ready within 60 s.
start_dockerd() {
    local driver=$1
    mkdir -p "$DATA_ROOT/$driver"
    # setsid: the daemon and its containerd are one process group of their own, stopped by pid above.
    setsid dockerd --host "unix://$SOCKET" --data-root "$DATA_ROOT/$driver" --exec-root "$RUN_DIR/exec" \
        --pidfile "$RUN_DIR/dockerd.pid" --storage-driver "$driver" --iptables=false --ip6tables=false \
        --bridge=none >"$RUN_DIR/dockerd-$driver.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 1 60); do
        if docker info >/dev/null 2>&1; then return 0; fi
        kill -0 "$DOCKERD_PID" 2>/dev/null || break
        sleep 1
    done
    tail -20 "$RUN_DIR/dockerd-$driver.log"
    stop_dockerd
    return 1
}

# The Debian mirror this machine's apt uses (deb822 or one-line sources), never a built-in host name.
apt_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        awk '/^URIs:/ && $2 !~ /security/ {print $2; exit} /^deb / && $0 !~ /security/ {
               for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}
             }' "$f"
    done | head -1
}

# make_base_images: debian:bookworm-local (debootstrap minbase) and debian:bookworm-slim-local (the same without
# documentation, manual pages and locales, and with dpkg told to leave them out of later installs, as the
# official slim image does).
make_base_images() {
    local mirror rootfs
    mirror=$(apt_mirror)
    [ -n "$mirror" ] || skip "no Debian mirror in this machine's apt sources to debootstrap the base image from"
    step "making debian:bookworm-local and debian:bookworm-slim-local with debootstrap from $mirror"
    rootfs="$RUN_DIR/rootfs"
    if ! timeout 1200 debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$RUN_DIR/debootstrap.log" 2>&1; then
        tail -5 "$RUN_DIR/debootstrap.log"
        echo "FAIL - debootstrap of the base image failed"
        exit 1
    fi
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log \
        "$rootfs"/var/cache/apt/*.bin
    tar -C "$rootfs" -c . | docker import - debian:bookworm-local >/dev/null
    find "$rootfs"/usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
    find "$rootfs"/usr/share/doc -mindepth 1 -type d -empty -delete
    rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
        "$rootfs"/usr/share/groff/* "$rootfs"/usr/share/lintian/* "$rootfs"/usr/share/linda/*
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/edgeguard-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
CFG
    tar -C "$rootfs" -c . | docker import - debian:bookworm-slim-local >/dev/null
    rm -rf "$rootfs"
}

if docker info >/dev/null 2>&1; then
    exec timeout --kill-after=30 "$TIMEOUT" "$SMOKE"
fi
if [ "$(id -u)" -ne 0 ]; then skip "no Docker engine and not root (cannot start one)"; fi
RUN_DIR=$(mktemp -d /tmp/edgeguard-ci-docker.XXXXXX)
SOCKET="$RUN_DIR/docker.sock"
trap cleanup EXIT INT TERM

if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then skip "no Docker engine, and no apt-get to install docker.io"; fi
    step "installing docker.io and debootstrap for the container smoke test"
    install() {
        DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends docker.io \
            debootstrap >>"$RUN_DIR/apt.log" 2>&1
    }
    if ! install && ! { apt-get update -qq >>"$RUN_DIR/apt.log" 2>&1 && install; }; then
        tail -5 "$RUN_DIR/apt.log"
        skip "no Docker engine, and installing docker.io failed"
    fi
fi
if ! command -v docker >/dev/null 2>&1; then skip "no docker client"; fi

export DOCKER_HOST="unix://$SOCKET"
step "starting a private dockerd (state in $DATA_ROOT, logs in $RUN_DIR)"
if ! start_dockerd overlay2; then
    echo "# NOTE: dockerd cannot use overlay2 here (log above); falling back to vfs, which copies every layer"
    start_dockerd vfs || skip "dockerd could not start here (log above)"
fi
step "dockerd ready, storage driver $(docker info -f '{{.Driver}}')"

# The base images are made here rather than pulled, so CI depends on no registry (only on the Debian mirror the
# build's apt needs anyway); BASE_IMAGE and RUNTIME_BASE_IMAGE name others (e.g. the pulled debian:bookworm and
# debian:bookworm-slim).
base=${BASE_IMAGE:-debian:bookworm-local}
runtime_base=${RUNTIME_BASE_IMAGE:-debian:bookworm-slim-local}
if ! docker image inspect "$base" >/dev/null 2>&1 || ! docker image inspect "$runtime_base" >/dev/null 2>&1; then
    if [ "$base" = debian:bookworm-local ] && [ "$runtime_base" = debian:bookworm-slim-local ]; then
        make_base_images
    else
        for image in "$base" "$runtime_base"; do
            docker image inspect "$image" >/dev/null 2>&1 || docker pull "$image" >/dev/null || skip "cannot pull $image"
        done
    fi
fi
step "base images $base and $runtime_base ready"

status=0
BASE_IMAGE="$base" RUNTIME_BASE_IMAGE="$runtime_base" timeout --kill-after=30 "$TIMEOUT" "$SMOKE" || status=$?
step "smoke test finished with status $status"
# The smoke images are rebuilt every run from the cached layers; drop dangling ones so old copies do not pile up.
docker image prune -f >/dev/null 2>&1 || true
exit "$status"
