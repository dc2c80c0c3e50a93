"""Rate limits through the real binary (a burst passes, then 429 with Retry-After and RateLimit-*), exempt
clients, the client IP behind trusted proxies (a spoofed X-Forwarded-For from an ordinary peer changes nothing),
the per-IP connection limit, and limits shared by two instances through one real redis-server, which falls back
to the local limiter when Redis dies. Distinct loopback peers are 127.0.0.x source addresses (all of 127/8 is
loopback). Rates of 1/h make refills impossible within a test, so counts are exact."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

import eg
from ops_helpers import admin_get


def _open(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(eg.IO_TIMEOUT)
    sock.bind((source, 0))
    sock.connect((eg.LOOPBACK, port))
    return sock


def _get(port: int, target: str = "/", headers: list | None = None, source: str = "127.0.0.1",
         body: bytes | None = None, method: str = "GET") -> eg.Response:
    sock = _open(port, source)
    try:
        sock.sendall(eg.build_request(method, target, [("Connection", "close")] + (headers or []), body))
        return eg.read_response(eg.SocketReader(sock), method)
    finally:
        sock.close()


def _limited_config(port: int, up: eg.Upstream, limit: dict, extra: dict | None = None, admin_port=None) -> dict:
    routes = [{"name": "all", "paths": ["/"], "upstream": "app", "rate_limit": "per_ip"}]
    config = eg.basic_config(port, {"app": [up.address]}, routes, admin_port=admin_port,
                             extra={"rate_limits": {"per_ip": limit}})
    config.update(extra or {})
    return config


def _assert_429(resp: eg.Response, burst: int) -> None:
    eg.assert_json_error(resp, 429)
    assert resp.json() == {"error": "rate limited", "status": 429}
    assert int(resp.header("retry-after")) >= 1, resp.headers
    assert resp.header("ratelimit-limit") == str(burst), resp.headers
    assert resp.header("ratelimit-remaining") == "0", resp.headers
    assert int(resp.header("ratelimit-reset")) >= 1, resp.headers


def _metric(admin_port: int, pattern: str) -> float:
    text = admin_get(admin_port, "/metrics").body.decode()
    total = 0.0
    for line in text.splitlines():
        if re.match(pattern, line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_burst_passes_then_429_with_rate_limit_headers(upstreams, edgeguard):
    up = upstreams("app")
    port, admin_port = eg.free_port(), eg.free_port()
    edgeguard(_limited_config(port, up, {"rate": "1/h", "burst": 3}, admin_port=admin_port))
    for remaining in (2, 1, 0):
        resp = _get(port)
        assert resp.status == 200
        assert resp.header("ratelimit-limit") == "3", resp.headers
        assert resp.header("ratelimit-remaining") == str(remaining), resp.headers
        assert int(resp.header("ratelimit-reset")) >= 1, resp.headers
    _assert_429(_get(port), 3)
    # A 429 for a request with a body is answered without reading it, and the connection is closed.
    sock = _open(port)
    try:
        sock.sendall(eg.build_request("POST", "/e", [("Content-Length", "100000")], None))
        resp = eg.read_response(eg.SocketReader(sock))
        _assert_429(resp, 3)
        assert (resp.header("connection") or "").lower() == "close"
    finally:
        sock.close()
    # Another client has its own bucket.
    assert _get(port, source="127.0.0.2").status == 200
    assert len(up.snapshot()) == 4
    assert _metric(admin_port, r'edgeguard_rejections_total\{.*reason="rate_limit"') >= 2


def test_keep_alive_connection_survives_a_429_on_a_bodyless_request(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    edgeguard(_limited_config(port, up, {"rate": "1/h", "burst": 1}))
    with eg.Client(port) as c:
        assert c.request("GET", "/a").status == 200
        _assert_429(c.request("GET", "/b"), 1)
        _assert_429(c.request("GET", "/c"), 1)  # same connection, still answered
    assert [r.path for r in up.snapshot()] == ["/a"]


def test_expect_100_continue_from_a_rate_limited_client_gets_429_and_nothing_reaches_the_upstream(upstreams,
                                                                                                   edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    edgeguard(_limited_config(port, up, {"rate": "1/h", "burst": 1}))
    assert _get(port, "/first").status == 200
    head = eg.expect_continue_head(port, "/limited")
    assert head.startswith(b"HTTP/1.1 429 "), head
    # Another client (its own bucket) as the sentinel: once it has reached the upstream, the limited request had
    # every chance to, and must not have.
    assert _get(port, "/sentinel", source="127.0.0.2").status == 200
    assert [r.path for r in up.snapshot()] == ["/first", "/sentinel"]


def test_exempt_client_is_never_limited(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    edgeguard(_limited_config(port, up, {"rate": "1/h", "burst": 1, "exempt": ["127.0.0.3/32"]}))
    for _ in range(5):
        resp = _get(port, source="127.0.0.3")
        assert resp.status == 200
        assert resp.header("ratelimit-limit") is None
    assert _get(port).status == 200
    assert _get(port).status == 429


def test_spoofed_forwarded_for_from_untrusted_peer_is_ignored(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    # 127.0.0.2 is a trusted proxy; 127.0.0.1 is an ordinary client.
    edgeguard(_limited_config(port, up, {"rate": "1/h", "burst": 2}, extra={"trusted_proxies": ["127.0.0.2/32"]}))
    statuses = [_get(port, headers=[("X-Forwarded-For", f"203.0.113.{i}")]).status for i in range(1, 4)]
    assert statuses == [200, 200, 429]  # rotating the header does not escape the limit
    seen = up.snapshot()
    assert len(seen) == 2
    for req in seen:
        assert req.header_all("x-forwarded-for") == ["127.0.0.1"], req.headers


def test_trusted_proxy_forwarded_for_gives_the_right_most_untrusted_client(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    edgeguard(_limited_config(port, up, {"rate": "1/h", "burst": 1},
                              extra={"trusted_proxies": ["127.0.0.2/32", "10.0.0.0/8"]}))
    # Right to left: 10.0.0.5 is a trusted hop, 198.51.100.7 is the client; the left-most entry is not trusted.
    hops = [("X-Forwarded-For", "203.0.113.1, 198.51.100.7"), ("X-Forwarded-For", "10.0.0.5")]
    assert _get(port, headers=hops, source="127.0.0.2").status == 200
    assert up.snapshot()[0].header_all("x-forwarded-for") == ["198.51.100.7"]
    # The limit counts the resolved client, not the proxy.
    _assert_429(_get(port, headers=hops, source="127.0.0.2"), 1)
    assert _get(port, headers=[("X-Forwarded-For", "198.51.100.8")], source="127.0.0.2").status == 200
    assert up.snapshot()[1].header_all("x-forwarded-for") == ["198.51.100.8"]


def test_route_allow_list_applies_to_the_forwarded_client(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    routes = [{"name": "lan", "paths": ["/"], "upstream": "app", "allow": ["198.51.100.0/24"]}]
    config = eg.basic_config(port, {"app": [up.address]}, routes, extra={"trusted_proxies": ["127.0.0.2/32"]})
    edgeguard(config)
    assert _get(port, headers=[("X-Forwarded-For", "198.51.100.9")], source="127.0.0.2").status == 200
    eg.assert_json_error(_get(port, headers=[("X-Forwarded-For", "203.0.113.9")], source="127.0.0.2"), 403)
    # An untrusted peer cannot claim an allowed address.
    eg.assert_json_error(_get(port, headers=[("X-Forwarded-For", "198.51.100.9")], source="127.0.0.1"), 403)
    assert len(up.snapshot()) == 1


def test_per_ip_connection_limit_refuses_cleanly(upstreams, edgeguard):
    up = upstreams("app")
    port, admin_port = eg.free_port(), eg.free_port()
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}],
                             admin_port=admin_port, limits={"max_connections_per_ip": 2})
    edgeguard(config)
    held = []
    try:
        for _ in range(2):
            sock = _open(port)
            sock.sendall(eg.build_request("GET", "/", []))
            assert eg.read_response(eg.SocketReader(sock)).status == 200
            held.append(sock)
        third = _open(port)
        try:
            third.sendall(eg.build_request("GET", "/", [("Connection", "close")]))
            try:
                data = third.recv(65536)
            except ConnectionResetError:
                data = b""
            assert data == b""  # closed at accept, no response
        finally:
            third.close()
        assert _get(port, source="127.0.0.2").status == 200  # other addresses are not affected
        assert _metric(admin_port, r'edgeguard_rejections_total\{.*reason="connection_limit"') >= 1
        held.pop().close()
        # The freed slot is reusable once edgeguard has seen the close.
        assert eg.wait_until(lambda: _try_status(port) == 200, timeout=5.0)
    finally:
        for sock in held:
            sock.close()


def _try_status(port: int) -> int:
    try:
        return _get(port).status
    except (OSError, eg.PeerClosed):
        return 0


def _redis_clients(port: int) -> int:
    """Connected clients other than this probe, from CLIENT LIST."""
    try:
        with socket.create_connection((eg.LOOPBACK, port), timeout=1.0) as s:
            s.sendall(b"CLIENT LIST\r\n")
            reader = eg.SocketReader(s)
            size = int(reader.read_until(b"\r\n")[1:-2])
            text = reader.read_exact(size).decode()
            return sum(1 for line in text.splitlines() if "cmd=client" not in line)
    except (OSError, ValueError, eg.PeerClosed):
        return 0


@pytest.fixture
def redis_server(tmp_path):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not installed")
    port = eg.free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up() -> bool:
        try:
            with socket.create_connection((eg.LOOPBACK, port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    assert eg.wait_until(up, timeout=10.0), "redis-server did not start"
    yield proc, port
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_two_instances_share_one_limit_through_redis_and_fall_back_when_it_dies(upstreams, edgeguard, redis_server):
    proc, redis_port = redis_server
    up = upstreams("app")
    shared = {"shared_limits": {"redis_url": f"redis://127.0.0.1:{redis_port}", "timeout": eg.ms(200)}}
    ports, admins = [eg.free_port(), eg.free_port()], [eg.free_port(), eg.free_port()]
    for i in range(2):
        edgeguard(_limited_config(ports[i], up, {"rate": "1/h", "burst": 4}, extra=shared, admin_port=admins[i]),
                  name=f"eg{i}")
    # Every worker of both instances (2 x 2) holds its own Redis connection once connected.
    assert eg.wait_until(lambda: _redis_clients(redis_port) >= 4, timeout=10.0)
    statuses = [_get(ports[i % 2]).status for i in range(6)]
    assert statuses == [200, 200, 200, 200, 429, 429], statuses
    assert _get(ports[0], source="127.0.0.2").status == 200
    assert sum(_metric(a, r"edgeguard_rate_limit_fallbacks_total") for a in admins) == 0

    proc.terminate()
    proc.wait(timeout=5)
    # No stall: every request is answered from the local fallback (each instance's own fresh table).
    started = time.monotonic()
    fallback_statuses = [_get(ports[i % 2], source="127.0.0.4").status for i in range(4)]
    assert time.monotonic() - started < 8.0
    assert fallback_statuses == [200, 200, 200, 200]
    assert sum(_metric(a, r"edgeguard_rate_limit_fallbacks_total") for a in admins) >= 4


def test_unreachable_redis_with_fail_open_false_refuses_without_stalling(upstreams, edgeguard):
    up = upstreams("app")
    port, admin_port = eg.free_port(), eg.free_port()
    dead = eg.free_port()  # nothing listens here
    shared = {"shared_limits": {"redis_url": f"redis://127.0.0.1:{dead}", "timeout": eg.ms(200), "fail_open": False}}
    limit = {"rate": "1/h", "burst": 100, "exempt": ["127.0.0.3/32"]}
    edgeguard(_limited_config(port, up, limit, extra=shared, admin_port=admin_port))
    for _ in range(3):
        _assert_429(_get(port), 100)
    # Exempt clients never ask Redis, so they are served even now.
    assert _get(port, source="127.0.0.3").status == 200
    assert len(up.snapshot()) == 1
    assert _metric(admin_port, r"edgeguard_rate_limit_fallbacks_total") >= 3


def test_reload_keeps_counters_and_applies_a_new_burst_to_them(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    config = _limited_config(port, up, {"rate": "1/h", "burst": 2})
    proc = edgeguard(config)
    assert [_get(port).status for _ in range(3)] == [200, 200, 429]
    config["rate_limits"]["per_ip"]["burst"] = 3
    proc.config_path.write_text(eg.dump_yaml(config))
    proc.signal(signal.SIGHUP)
    assert eg.wait_until(lambda: "config reloaded" in proc.stderr(), timeout=10.0), proc.stderr()
    # Two of the three are spent already: one more passes, not a fresh burst of three.
    assert [_get(port).status for _ in range(2)] == [200, 429]
