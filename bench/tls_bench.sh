#!/usr/bin/env bash
# TLS side by side: edgeguard vs nginx terminating TLS with the same certificate (EC P-256), the same
# protocols (TLS 1.2 + 1.3), the same TLS 1.2 cipher list and session tickets, both proxying to one
# loopback origin (an nginx answering a small 200). Measures
#   1. new full handshakes/s        openssl s_time -new             (one handshake per connection, no HTTP)
#   2. handshake + 1 request/s      wrk -H "Connection: close"      (a new TLS connection per request)
#   3. keep-alive HTTPS req/s       wrk over kept-alive connections
# Each proxy gets one worker pinned to CPU 0; clients run on CPU 1. Starts nothing it does not stop.
# Usage: bench/tls_bench.sh [path/to/edgeguard] [seconds per run]
set -euo pipefail
cd "$(dirname "$0")/.."
EDGEGUARD=${1:-build-release/edgeguard}
SECONDS_PER_RUN=${2:-10}
[ -x "$EDGEGUARD" ] || { echo "tls_bench: $EDGEGUARD is not an executable (build it first)" >&2; exit 2; }
for tool in nginx wrk openssl taskset; do
  command -v "$tool" >/dev/null || { echo "tls_bench: needs $tool" >&2; exit 2; }
done

work=$(mktemp -d /tmp/edgeguard-tls-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

bash tests/tls/make_certs.sh "$work/pki" >/dev/null
CIPHERS="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
ORIGIN=$(port); NGINX_TLS=$(port); EG_TLS=$(port); EG_ADMIN=$(port)

mkdir -p "$work/origin" "$work/nginx"
cat > "$work/origin/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $work/origin/nginx.pid; error_log $work/origin/error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$ORIGIN; location / { return 200 "ok\n"; } } }
CONF
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $work/nginx/nginx.pid; error_log $work/nginx/error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  upstream origin { server 127.0.0.1:$ORIGIN; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_TLS ssl;
    ssl_certificate $work/pki/a.pem; ssl_certificate_key $work/pki/a.key;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers $CIPHERS; ssl_prefer_server_ciphers on;
    ssl_ecdh_curve X25519:prime256v1:secp384r1; ssl_session_tickets on; ssl_session_cache off;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; }
  } }
CONF
cat > "$work/edgeguard.yaml" <<CONF
workers: 1
listeners:
  - name: https
    address: 127.0.0.1:$EG_TLS
    tls:
      certificates: [{cert: $work/pki/a.pem, key: $work/pki/a.key}]
admin: {address: 127.0.0.1:$EG_ADMIN}
upstreams: {origin: {servers: ["127.0.0.1:$ORIGIN"]}}
routes: [{name: all, paths: ["/"], upstream: origin}]
access_log: {output: "off"}
CONF

taskset -c 1 nginx -c "$work/origin/nginx.conf" -p "$work/origin" & pids+=($!)
taskset -c 0 nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" & pids+=($!)
taskset -c 0 "$EDGEGUARD" serve --config "$work/edgeguard.yaml" 2>"$work/edgeguard.stderr" & pids+=($!)
for p in "$ORIGIN" "$NGINX_TLS" "$EG_TLS"; do wait_port "$p" || { echo "tls_bench: port $p never opened" >&2; exit 1; }; done

handshakes() {  # port -> new handshakes per second (s_time counts connections over wall-clock seconds)
  taskset -c 1 openssl s_time -connect "127.0.0.1:$1" -new -time "$SECONDS_PER_RUN" 2>/dev/null \
    | awk '/connections in [0-9]+ real seconds/ { printf "%.0f", $1 / $4 }'
}
wrk_rps() {  # port extra-args... -> requests per second
  local p=$1; shift
  taskset -c 1 wrk -t1 -c32 -d"${SECONDS_PER_RUN}s" "$@" "https://127.0.0.1:$p/" 2>/dev/null \
    | awk '/Requests\/sec/ { printf "%.0f", $2 }'
}

printf "%-10s %18s %22s %20s\n" proxy "handshakes/s" "conn-per-request req/s" "keep-alive req/s"
for name in edgeguard nginx; do
  p=$EG_TLS; [ "$name" = nginx ] && p=$NGINX_TLS
  printf "%-10s %18s %22s %20s\n" "$name" "$(handshakes "$p")" "$(wrk_rps "$p" -H 'Connection: close')" "$(wrk_rps "$p")"
done
echo "(openssl $(openssl version | awk '{print $2}'), $(nproc) CPUs, ${SECONDS_PER_RUN}s per cell; proxies pinned to CPU 0, clients to CPU 1)"
