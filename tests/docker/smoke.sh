#!/usr/bin/env bash
# Container smoke test: builds the image, starts it on a private Docker network with stub upstreams under
# PostHog's compose service names, sends one request per route and one payload with personal data, checks
# routing, filtering, /readyz, /metrics and a clean SIGTERM stop, then removes everything it created.
#
#   tests/docker/smoke.sh            (from anywhere; needs a working `docker info`)
#   BASE_IMAGE=debian:bookworm-local RUNTIME_BASE_IMAGE=debian:bookworm-slim-local tests/docker/smoke.sh
#                                    (offline: base images made with debootstrap, as tests/docker/ci_smoke.sh does)
#
# The image builds with `--network host` (DOCKER_BUILD_NETWORK overrides it, "default" for Docker's own):
# apt inside the build then works on daemons started without a default bridge (--bridge=none), as in CI
# sandboxes, and it changes nothing where the bridge exists.
#
# Without a Docker engine it prints a visible SKIP and exits 0 (CI calls it through ci_smoke.sh, which makes sure
# there is one).
# The JSON payloads below carry literal PostHog keys such as "$snapshot": single quotes are intended.
# shellcheck disable=SC2016
set -euo pipefail

cd "$(dirname "$0")/../.."
BASE_IMAGE=${BASE_IMAGE:-debian:bookworm}
RUNTIME_BASE_IMAGE=${RUNTIME_BASE_IMAGE:-debian:bookworm-slim}
# A user pulls the runtime image on every upgrade.
MAX_IMAGE_MB=${EDGEGUARD_MAX_IMAGE_MB:-120}
BUILD_NETWORK=${DOCKER_BUILD_NETWORK:-host}
TAG=${EDGEGUARD_SMOKE_TAG:-edgeguard:smoke}
STUB_TAG=${TAG}-stub
RUN_ID="egsmoke-$$"
NET="$RUN_ID-net"
PROXY="$RUN_ID-proxy"
STUB_A="$RUN_ID-stub-a"
STUB_B="$RUN_ID-stub-b"
HASH_KEY=0123456789abcdef0123456789abcdef  # fixed test key: the smoke test never sees real data

if ! docker info >/dev/null 2>&1; then
    echo "SKIP: tests/docker/smoke.sh: no usable Docker engine ('docker info' failed); container smoke test not run"
    exit 0
fi

failures=0
pass() { echo "ok   - $*"; }
fail() {
    echo "FAIL - $*"
    failures=$((failures + 1))
}

cleanup() {
    docker rm -f "$PROXY" "$STUB_A" "$STUB_B" >/dev/null 2>&1 || true
    docker network rm "$NET" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

echo "# building $TAG (build stage on $BASE_IMAGE, runtime on $RUNTIME_BASE_IMAGE)"
started=$SECONDS
docker build --network "$BUILD_NETWORK" --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --build-arg RUNTIME_BASE_IMAGE="$RUNTIME_BASE_IMAGE" -t "$TAG" .
echo "# image built in $((SECONDS - started)) s"
docker build --network "$BUILD_NETWORK" --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --build-arg RUNTIME_BASE_IMAGE="$RUNTIME_BASE_IMAGE" --target smoke-stub -t "$STUB_TAG" .
# Tagged so that its layers (the compilers, the compiled binary) are not dangling: a prune of dangling images
# (ci_smoke.sh) would otherwise drop them, and with them the cache the next build starts from.
docker build --network "$BUILD_NETWORK" --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --build-arg RUNTIME_BASE_IMAGE="$RUNTIME_BASE_IMAGE" --target build -t "$TAG-build" . >/dev/null

size=$(docker image inspect -f '{{.Size}}' "$TAG")
size_mb=$(((size + 999999) / 1000000))
if [ "$size_mb" -le "$MAX_IMAGE_MB" ]; then
    pass "runtime image is $size_mb MB (at most $MAX_IMAGE_MB)"
else
    fail "runtime image is $size_mb MB, over $MAX_IMAGE_MB MB"
    docker history "$TAG" || true
fi

docker network create "$NET" >/dev/null
# Two stubs so that services sharing a port (capture:3000, replay-capture:3000, capture-ai:3000) are told
# apart by which stub answers. Aliases are the compose service names conf/edgeguard.yaml uses.
docker run -d --name "$STUB_A" --network "$NET" -e STUB_NAME=a \
    --network-alias capture --network-alias feature-flags --network-alias livestream --network-alias plugins \
    --network-alias capture-logs --network-alias objectstorage --network-alias web \
    "$STUB_TAG" >/dev/null
docker run -d --name "$STUB_B" --network "$NET" -e STUB_NAME=b \
    --network-alias replay-capture --network-alias capture-ai --network-alias capture-metrics \
    "$STUB_TAG" >/dev/null

# The image's own defaults (conf/ baked in); only the hash key comes from the environment, as in compose.
docker run -d --name "$PROXY" --network "$NET" -e EDGEGUARD_HASH_KEY="$HASH_KEY" "$TAG" >/dev/null

# Requests run inside the proxy container: the default allowlist admits loopback (and 10.1.1.0/24), not the
# Docker bridge, and curl is in the image for the HEALTHCHECK anyway.
in_proxy() { docker exec "$PROXY" "$@"; }

ready=0
for _ in $(seq 1 60); do
    if in_proxy curl -fsS -o /dev/null http://127.0.0.1:9180/readyz 2>/dev/null; then
        ready=1
        break
    fi
    if [ "$(docker inspect -f '{{.State.Running}}' "$PROXY")" != "true" ]; then break; fi
    sleep 1
done
if [ "$ready" -ne 1 ]; then
    fail "edgeguard did not become ready within 60s"
    docker logs "$PROXY" 2>&1 | tail -50
    exit 1
fi
pass "/readyz is 200 after start"

health=$(in_proxy curl -fsS http://127.0.0.1:9180/healthz || true)
if [ "$health" = '{"status":"ok"}' ]; then pass "/healthz"; else fail "/healthz answered: $health"; fi

# request METHOD PATH [BODY [CONTENT_TYPE]]: prints "<status> <response body>"
request() {
    local method=$1 path=$2 body=${3:-} ctype=${4:-application/json}
    if [ -n "$body" ]; then
        in_proxy curl -sS -o /dev/stdout -w ' %{http_code}' -X "$method" -H "Content-Type: $ctype" \
            --data-binary "$body" "http://127.0.0.1:80$path"
    else
        in_proxy curl -sS -o /dev/stdout -w ' %{http_code}' -X "$method" "http://127.0.0.1:80$path"
    fi
}

# expect_route NAME METHOD PATH STUB PORT UPSTREAM_PATH [BODY [CONTENT_TYPE]]
expect_route() {
    local name=$1 method=$2 path=$3 stub=$4 port=$5 upath=$6 body=${7:-} ctype=${8:-application/json}
    local out status json
    out=$(request "$method" "$path" "$body" "$ctype" || true)
    status=${out##* }
    json=${out% *}
    if [ "$status" != "200" ]; then
        fail "$name: $method $path -> HTTP $status: $json"
        return
    fi
    if ! grep -q "\"stub\": \"$stub\", \"port\": $port, \"method\": \"$method\", \"path\": \"$upath\"" <<<"$json"; then
        fail "$name: $method $path reached the wrong place: $json"
        return
    fi
    pass "$name: $method $path -> $stub:$port $upath"
}

EVENT='{"api_key":"phc_smoke","event":"signup","distinct_id":"user-1","properties":{"plan":"pro"}}'
FLAGS='{"token":"phc_smoke","distinct_id":"user-1"}'
expect_route livestream GET /livestream/events a 8080 /events
# LLM analytics events are multipart/form-data (the `ai` profile refuses anything else).
AI_EVENT=$'--smokeB\r\nContent-Disposition: form-data; name="event"\r\nContent-Type: application/json\r\n\r\n{"event":"$ai_generation","distinct_id":"user-1","properties":{"$ai_model":"m"}}\r\n--smokeB--\r\n'
expect_route capture-ai POST /i/v0/ai/ b 3000 /i/v0/ai/ "$AI_EVENT" 'multipart/form-data; boundary=smokeB'
expect_route capture POST /e/ a 3000 /e/ "$EVENT"
expect_route replay POST /s/ b 3000 /s/ \
    '{"api_key":"phc_smoke","event":"$snapshot","distinct_id":"user-1","properties":{"$session_id":"s1","$window_id":"w1","$snapshot_data":[]}}'
expect_route capture-logs POST /i/v1/logs a 4318 /i/v1/logs '{}'
expect_route capture-metrics POST /i/v1/metrics b 4319 /i/v1/metrics '{}'
expect_route flags POST '/flags/?v=2' a 3001 '/flags/?v=2' "$FLAGS"
expect_route webhooks POST /public/webhooks/abc a 6738 /public/webhooks/abc '{"hello":"world"}'
expect_route objectstorage GET /posthog/bucket/object a 19000 /posthog/bucket/object
expect_route web GET /api/projects/ a 8000 /api/projects/

# Personal data: an email and a phone number in person properties must never reach capture.
PII='{"api_key":"phc_smoke","event":"$identify","distinct_id":"user-2","properties":{"$set":{"email":"jane.smoke@example.com","phone":"+1 415 555 0199","plan":"pro"}}}'
out=$(request POST /batch/ "[${PII}]" || true)
status=${out##* }
case "$status" in
    200) pass "payload with personal data forwarded after filtering (HTTP 200)" ;;
    4??) pass "payload with personal data refused (HTTP $status)" ;;
    *) fail "payload with personal data: HTTP $status: ${out% *}" ;;
esac
# Logs are read whole before grep: with pipefail, a grep -q that stops at its first match leaves
# docker logs writing into a closed pipe (SIGPIPE), and the pipeline would read as "no match".
stub_a_logs=$(docker logs "$STUB_A" 2>&1)
proxy_logs=$(docker logs "$PROXY" 2>&1)
proxy_stdout=$(docker logs "$PROXY" 2>/dev/null)
if grep -q -e 'jane.smoke@example.com' -e '555 0199' <<<"$stub_a_logs"; then
    fail "personal data reached the capture stub"
else
    pass "no personal data reached any upstream"
fi
if grep -q -e 'jane.smoke@example.com' -e 'phc_smoke' <<<"$proxy_logs"; then
    fail "personal data or a token appears in edgeguard's own logs"
else
    pass "edgeguard's logs carry no personal data or tokens"
fi

metrics=$(in_proxy curl -fsS http://127.0.0.1:9180/metrics || true)
if grep -Eq '^edgeguard_requests_total\{route="capture",code="2xx"\} [1-9]' <<<"$metrics"; then
    pass "/metrics counts the capture request"
else
    fail "/metrics has no 2xx capture request: $(printf '%s\n' "$metrics" | grep requests_total | head -5)"
fi

# The access log goes to stdout (docker logs); in a quiet container nothing may be dropped on the way.
if grep -Eq '^edgeguard_access_log_dropped_lines_total 0$' <<<"$metrics"; then
    pass "/metrics: no access-log line dropped"
else
    fail "/metrics: access-log drops: $(printf '%s\n' "$metrics" | grep access_log_ || echo 'family missing')"
fi
if grep -q '"path":"/e/"' <<<"$proxy_stdout"; then
    pass "the access log reaches docker logs as JSON lines"
else
    fail "no access-log line for POST /e/ in docker logs"
fi

# The default allowlist (10.1.1.0/24, loopback) refuses a peer on the Docker network: 403, or a close at accept.
refused=$(docker exec "$STUB_A" curl -s -o /dev/null -w '%{http_code}' "http://$PROXY:80/api/" || true)
case "$refused" in
    403 | 000) pass "allowlist refuses a non-listed peer ($refused)" ;;
    *) fail "a peer outside the allowlist got HTTP $refused" ;;
esac

health_state=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$PROXY")
echo "# docker health status: ${health_state:-none} (starting is normal this early)"

# Graceful stop: SIGTERM (the image's STOPSIGNAL) drains and exits 0 well within Docker's grace period.
docker stop -t 40 "$PROXY" >/dev/null
code=$(docker inspect -f '{{.State.ExitCode}}' "$PROXY")
if [ "$code" = "0" ]; then pass "SIGTERM stop exits 0"; else fail "SIGTERM stop exit code $code"; fi

if [ "$failures" -ne 0 ]; then
    echo "# $failures check(s) failed; edgeguard log tail:"
    docker logs "$PROXY" 2>&1 | tail -30
    exit 1
fi
echo "# container smoke test passed"
