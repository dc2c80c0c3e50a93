"""Proxy-core behaviour, black-box through the real binary: pooling, pipelining, streaming, timeouts,
limits, forwarding headers, error bodies, graceful stop and the CLI."""

from __future__ import annotations

import hashlib
import shutil
import signal
import socket
import subprocess
import threading
import time

import eg
import pytest


assert_json_error = eg.assert_json_error


# ---- keep-alive, pooling, pipelining --------------------------------------------------------------------------


def test_keepalive_client_requests_reuse_pooled_upstream_connections(simple_proxy):
    proxy, up = simple_proxy()
    with eg.Client(proxy.listen_port) as c:
        for i in range(100):
            resp = c.request("GET", f"/ka/{i}")
            assert resp.status == 200
            assert resp.json()["target"] == f"/ka/{i}"
    reqs = up.wait_requests(100)
    assert len(reqs) == 100
    # One client connection lives on one worker; sequential requests there need one pooled upstream
    # connection (two allows for one reconnect), never one per request.
    assert up.connections_accepted <= 2, up.connections_accepted
    assert max(r.seq_on_conn for r in reqs) >= 49


def test_pipelined_requests_are_answered_in_order(simple_proxy):
    def reply(req: eg.RecordedRequest) -> eg.Reply:
        # The first request is the slowest, so answering in completion order would reorder responses.
        delay = 0.3 if req.path == "/p/0" else 0.0
        return eg.Reply(delay=delay, body=req.path.encode(), headers=[("Content-Type", "text/plain")])

    proxy, up = simple_proxy(reply)
    with eg.Client(proxy.listen_port) as c:
        c.send(b"".join(eg.build_request("GET", f"/p/{i}") for i in range(10)))
        bodies = [c.read_response().body for _ in range(10)]
    assert bodies == [f"/p/{i}".encode() for i in range(10)]
    assert [r.path for r in up.wait_requests(10)] == [f"/p/{i}" for i in range(10)]


def test_pipelined_post_bodies_stay_with_their_requests(simple_proxy):
    proxy, up = simple_proxy()
    with eg.Client(proxy.listen_port) as c:
        c.send(eg.build_request("POST", "/a", body=b"first-body")
               + eg.build_request("POST", "/b", headers=[("Transfer-Encoding", "chunked")],
                                  body=eg.encode_chunked([b"second", b"-body"]))
               + eg.build_request("GET", "/c"))
        statuses = [c.read_response().status for _ in range(3)]
    assert statuses == [200, 200, 200]
    reqs = up.wait_requests(3)
    assert [(r.path, r.body) for r in reqs] == [("/a", b"first-body"), ("/b", b"second-body"), ("/c", b"")]


# ---- streaming bodies -----------------------------------------------------------------------------------------


def test_chunked_request_body_reaches_upstream_intact(simple_proxy):
    proxy, up = simple_proxy()
    pieces = [b"a" * 10, b"b" * 5000, b"c" * 70000, b"d"]
    with eg.Client(proxy.listen_port) as c:
        resp = c.request("POST", "/chunked-in", headers=[("Transfer-Encoding", "chunked")],
                         body=eg.encode_chunked(pieces))
    assert resp.status == 200
    (req,) = up.wait_requests(1)
    assert req.body == b"".join(pieces)
    # Exactly one framing upstream (the recording upstream rejects CL+TE); and no stale Content-Length.
    assert not (req.chunked and req.header("content-length"))


def test_chunked_response_body_reaches_client_intact(simple_proxy):
    pieces = [b"x" * 3, b"y" * 20000, b"z" * 100000]
    proxy, _ = simple_proxy(lambda req: eg.Reply(chunks=pieces))
    with eg.Client(proxy.listen_port) as c:
        resp = c.request("GET", "/chunked-out")
        assert resp.status == 200
        assert resp.body == b"".join(pieces)
        # The connection is still usable after a chunked response.
        assert c.request("GET", "/again").status == 200


def test_50mb_upload_streams_through_with_bounded_rss(simple_proxy):
    size = 50 * 1024 * 1024
    block = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB of non-repeating-looking bytes
    proxy, up = simple_proxy(upstream_kwargs={"keep_body_limit": 0})
    expected = hashlib.sha256()
    with eg.Client(proxy.listen_port, timeout=60) as c:
        c.send(eg.build_request("POST", "/upload", headers=[("Content-Length", str(size))]))
        sent = 0
        while sent < size:
            piece = block[: min(len(block), size - sent)]
            c.send(piece)
            expected.update(piece)
            sent += len(piece)
        resp = c.read_response(timeout=60)
    assert resp.status == 200
    (req,) = up.wait_requests(1)
    assert req.body_length == size
    assert req.body_sha256 == expected.hexdigest()
    eg.assert_rss_below(proxy, 64 * 1024, "while streaming a 50 MB upload")


def test_first_chunk_of_slow_response_reaches_client_before_upstream_finishes(simple_proxy):
    gate = threading.Event()
    proxy, _ = simple_proxy(lambda req: eg.Reply(chunks=[b"first-chunk|", b"rest-of-it"], chunk_gate=gate))
    try:
        with eg.Client(proxy.listen_port) as c:
            c.send(eg.build_request("GET", "/slow-stream"))
            # The upstream is parked after its first chunk until the gate opens, so seeing the chunk here
            # proves edgeguard relayed it without waiting for the end of the body.
            seen = c.reader.read_until(b"first-chunk|", timeout=5)
            assert seen.startswith(b"HTTP/1.1 200")
            assert not gate.is_set()
            gate.set()
            rest = c.reader.read_until(b"rest-of-it", timeout=5)
            assert rest
    finally:
        gate.set()


# ---- upstream failures and timeouts ---------------------------------------------------------------------------


def test_upstream_down_gives_502_within_connect_timeout(upstreams, edgeguard):
    dead_port = eg.free_port()  # nothing listens here: connect is refused
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [f"{eg.LOOPBACK}:{dead_port}"]},
                             [{"name": "all", "paths": ["/"], "upstream": "app"}],
                             timeouts={"upstream_connect": eg.ms(2000)})
    proxy = edgeguard(config)
    with eg.Client(port) as c:
        start = time.monotonic()
        resp = c.request("GET", "/anything")
        elapsed = time.monotonic() - start
    assert_json_error(resp, 502)
    assert elapsed < 2.0 + 1.0, elapsed
    assert proxy.proc.poll() is None


def test_silent_upstream_gives_504(simple_proxy):
    proxy, up = simple_proxy(lambda req: eg.Reply(action="hang"),
                             timeouts={"upstream_response_header": eg.ms(500)})
    with eg.Client(proxy.listen_port) as c:
        start = time.monotonic()
        resp = c.request("GET", "/silent", timeout=15)
        elapsed = time.monotonic() - start
    assert_json_error(resp, 504)
    assert elapsed < 10, elapsed
    assert len(up.snapshot()) == 1


def test_upstream_closing_without_answer_gives_502(simple_proxy):
    proxy, _ = simple_proxy(lambda req: eg.Reply(action="close"))
    with eg.Client(proxy.listen_port) as c:
        resp = c.request("GET", "/closes")
    assert_json_error(resp, 502)


def test_headers_sent_too_slowly_give_408(simple_proxy):
    proxy, up = simple_proxy(timeouts={"client_header": eg.ms(500)})
    with eg.Client(proxy.listen_port, timeout=15) as c:
        c.send(b"GET /slowloris HTTP/1.1\r\nHost: edgeguard.test\r\nX-A: 1\r\n")
        start = time.monotonic()
        resp = c.read_response(timeout=15)
        elapsed = time.monotonic() - start
        assert_json_error(resp, 408)
        assert c.is_closed_by_peer()
    assert elapsed < 10, elapsed
    assert up.snapshot() == [] and up.bytes_received == 0


def test_header_deadline_is_total_not_per_byte(simple_proxy):
    """Trickling one header byte at a time must not extend the deadline (slowloris)."""
    proxy, up = simple_proxy(timeouts={"client_header": eg.ms(800)})
    with eg.Client(proxy.listen_port, timeout=15) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Trickle: ")
        start = time.monotonic()
        answer = None
        while answer is None and time.monotonic() - start < 8:
            try:
                c.send(b"X")
                answer = c.reader.read_some(timeout=0.2)  # b"" when closed without an answer
            except socket.timeout:
                continue
            except OSError:
                answer = b""
        assert answer is not None, "still reading headers 8 s after a 0.8 s header deadline"
        assert answer.startswith(b"HTTP/1.1 408"), answer
    assert up.snapshot() == []


def test_oversized_content_length_gives_413_before_upstream_sees_a_byte(simple_proxy):
    proxy, up = simple_proxy(route={"max_body": "1KB"})
    with eg.Client(proxy.listen_port) as c:
        # Only the head is sent: edgeguard must decide from Content-Length without waiting for the body.
        c.send(eg.build_request("POST", "/big", headers=[("Content-Length", "100000")]))
        resp = c.read_response(timeout=5)
        assert_json_error(resp, 413)
    sent = eg.sentinel(proxy.listen_port, up)
    assert [r.path for r in up.snapshot()] == [eg.SENTINEL_TARGET]
    assert up.connections_accepted == 1 and up.bytes_received == len(sent.raw_head)


def test_body_at_the_limit_passes(simple_proxy):
    proxy, up = simple_proxy(route={"max_body": "1KB"})
    with eg.Client(proxy.listen_port) as c:
        assert c.request("POST", "/ok", body=b"k" * 1000).status == 200
    assert up.wait_requests(1)[0].body == b"k" * 1000


def test_oversized_chunked_body_gives_413(simple_proxy):
    proxy, up = simple_proxy(route={"max_body": "1KB"})
    with eg.Client(proxy.listen_port) as c:
        resp = c.request("POST", "/big-chunked", headers=[("Transfer-Encoding", "chunked")],
                         body=eg.encode_chunked([b"q" * 600, b"q" * 600]))
        assert_json_error(resp, 413)
    assert all(r.body_length <= 1000 for r in up.snapshot())


# ---- graceful stop --------------------------------------------------------------------------------------------


def test_sigterm_lets_in_flight_request_finish_and_exits_0(simple_proxy):
    release = threading.Event()
    proxy, up = simple_proxy(lambda req: eg.Reply(action="hang", release=release, body=b"finished"))
    try:
        with eg.Client(proxy.listen_port) as c:
            c.send(eg.build_request("GET", "/in-flight"))
            assert up.wait_requests(1, timeout=5)
            proxy.signal(signal.SIGTERM)
            time.sleep(0.3)
            assert proxy.proc.poll() is None, "exited with a request in flight"
            release.set()
            resp = c.read_response(timeout=10)
            assert resp.status == 200 and resp.body == b"finished"
        assert proxy.wait_exit(15) == 0
    finally:
        release.set()


def test_sigterm_when_idle_exits_0_and_stops_accepting(simple_proxy):
    proxy, _ = simple_proxy()
    proxy.signal(signal.SIGTERM)
    assert proxy.wait_exit(10) == 0
    with pytest.raises(OSError):
        socket.create_connection((eg.LOOPBACK, proxy.listen_port), timeout=1).close()


# ---- forwarding headers ---------------------------------------------------------------------------------------


def test_forwarding_headers_set_spoofs_dropped_hop_by_hop_removed(simple_proxy):
    proxy, up = simple_proxy()
    headers = [
        ("Host", "posthog.example.com"),
        ("X-Forwarded-For", "6.6.6.6"),
        ("Forwarded", "for=6.6.6.6;proto=https"),
        ("X-Real-IP", "6.6.6.6"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "evil.example"),
        ("Connection", "keep-alive, X-Drop-Me"),
        ("X-Drop-Me", "secret"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Connection", "keep-alive"),
        ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
        ("TE", "gzip"),
        ("Trailer", "X-Checksum"),
        ("Authorization", "Bearer end-to-end"),
        ("X-End-To-End", "kept"),
    ]
    with eg.Client(proxy.listen_port) as c:
        c.send(eg.build_request("GET", "/fwd?q=1", headers=headers, host=None))
        assert c.read_response().status == 200
    (req,) = up.wait_requests(1)
    assert req.target == "/fwd?q=1"
    assert req.header_all("host") == ["posthog.example.com"]
    assert req.header_all("x-forwarded-for") == ["127.0.0.1"]
    assert req.header_all("x-forwarded-proto") == ["http"]
    assert req.header_all("x-forwarded-host") == ["posthog.example.com"]
    for name in ("forwarded", "x-real-ip", "x-drop-me", "keep-alive", "proxy-connection", "proxy-authorization",
                 "te", "trailer", "transfer-encoding"):
        assert req.header(name) is None, (name, req.headers)
    conn = req.header("connection")
    assert conn is None or conn.lower() in ("keep-alive", "close"), conn
    assert req.header("authorization") == "Bearer end-to-end"
    assert req.header("x-end-to-end") == "kept"


def test_connection_header_cannot_remove_forwarding_headers_we_own(simple_proxy):
    proxy, up = simple_proxy()
    with eg.Client(proxy.listen_port) as c:
        resp = c.request("GET", "/own", headers=[("Connection", "X-Forwarded-For, X-Forwarded-Host, Host")])
        assert resp.status == 200
    (req,) = up.wait_requests(1)
    assert req.header_all("x-forwarded-for") == ["127.0.0.1"]
    assert req.header("host") == "edgeguard.test"


def test_response_hop_by_hop_headers_are_removed(simple_proxy):
    reply = eg.Reply(headers=[("Connection", "X-Internal"), ("X-Internal", "leak"), ("Keep-Alive", "timeout=1"),
                              ("X-App", "kept")], body=b"hello")
    proxy, _ = simple_proxy(lambda req: reply)
    with eg.Client(proxy.listen_port) as c:
        resp = c.request("GET", "/resp-hop")
    assert resp.status == 200 and resp.body == b"hello"
    assert resp.header("x-internal") is None and resp.header("keep-alive") is None
    assert resp.header("x-app") == "kept"


# ---- routing errors -------------------------------------------------------------------------------------------


def test_no_catch_all_route_gives_404_json(upstreams, edgeguard):
    up = upstreams("capture")
    port = eg.free_port()
    config = eg.basic_config(port, {"capture": [up.address]},
                             [{"name": "capture", "paths": ["/e"], "upstream": "capture", "privacy": "none"}])
    edgeguard(config)
    with eg.Client(port) as c:
        resp = c.request("GET", "/events")
        assert_json_error(resp, 404)
        # Keeping the connection is optional, but closing it must be announced.
        if c.is_closed_by_peer(timeout=0.5):
            assert (resp.header("connection") or "").lower() == "close"
    with eg.Client(port) as c:
        assert c.request("GET", "/e/").status == 200
    assert [r.path for r in up.wait_requests(1)] == ["/e/"]
    assert len(up.snapshot()) == 1


def test_head_response_has_no_body_and_connection_stays_usable(simple_proxy):
    def reply(req: eg.RecordedRequest) -> eg.Reply:
        # A HEAD response announces the length of the body a GET would get, and sends none.
        if req.method == "HEAD":
            return eg.Reply(headers=[("Content-Length", "1234")])
        return eg.Reply(body=b"get-body")

    proxy, _ = simple_proxy(reply)
    with eg.Client(proxy.listen_port) as c:
        resp = c.request("HEAD", "/head")
        assert resp.status == 200 and resp.body == b""
        assert c.request("GET", "/after-head").body == b"get-body"


# ---- CLI ------------------------------------------------------------------------------------------------------


def test_check_accepts_the_default_config_with_one_line(edgeguard_bin):
    # The hash key as a deployment provides it (the environment wins over the key file): whether another test
    # already created conf/secrets/edgeguard_hash_key must not decide the outcome (without a key `check` adds a
    # warning naming `keygen`, tested in test_cli.py).
    result = eg.run_cli(edgeguard_bin, "check", "--config", str(eg.source_dir() / "conf" / "edgeguard.yaml"),
                        env={"EDGEGUARD_HASH_KEY": "0123456789abcdef0123456789abcdef"})
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [l for l in (result.stdout + result.stderr).splitlines() if l.strip()]
    assert len(lines) == 1, lines


def test_check_points_at_a_misspelled_key_by_line_and_column(edgeguard_bin, tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text(
        "listeners:\n"
        "  - name: main\n"
        "    address: 127.0.0.1:18080\n"
        "upstreams:\n"
        "  web:\n"
        "    servers: [\"127.0.0.1:18000\"]\n"
        "routes:\n"
        "  - name: web\n"
        "    paths: [\"/\"]\n"
        "    upstream: web\n"
        "timeouts:\n"
        "  upstream_conect: 3s\n")
    result = eg.run_cli(edgeguard_bin, "check", "--config", str(path))
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert f"{path}:12:3:" in out, out
    assert "upstream_conect" in out, out


def test_check_reports_every_error(edgeguard_bin, tmp_path):
    path = tmp_path / "two-errors.yaml"
    path.write_text(
        "listeners:\n"
        "  - name: main\n"
        "    adress: 127.0.0.1:18080\n"
        "upstreams:\n"
        "  web:\n"
        "    servers: [\"127.0.0.1:18000\"]\n"
        "routes:\n"
        "  - name: web\n"
        "    paths: [\"/\"]\n"
        "    upstream: nowhere\n")
    result = eg.run_cli(edgeguard_bin, "check", "--config", str(path))
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert f"{path}:3:" in out and f"{path}:10:" in out, out


def test_serve_refuses_an_invalid_config(edgeguard_bin, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("listeners: 5\n")
    result = eg.run_cli(edgeguard_bin, "serve", "--config", str(path), timeout=15)
    assert result.returncode != 0
    assert f"{path}:1:" in result.stdout + result.stderr


def test_version_prints_the_version(edgeguard_bin):
    result = eg.run_cli(edgeguard_bin, "version")
    assert result.returncode == 0
    assert "0.1.0" in result.stdout


# ---- upstream pool behaviour ----------------------------------------------------------------------------------


def test_request_failing_on_a_reused_connection_is_retried_on_a_fresh_one(simple_proxy):
    """The upstream drops a pooled connection as the request arrives (a Node/Go idle close race)."""

    def reply(req: eg.RecordedRequest) -> eg.Reply:
        if req.seq_on_conn >= 1:
            return eg.Reply(action="close")
        return eg.Reply(body=req.path.encode())

    proxy, up = simple_proxy(reply)
    with eg.Client(proxy.listen_port) as c:
        assert c.request("GET", "/one").body == b"/one"
        assert c.request("GET", "/two").body == b"/two"
    reqs = up.wait_requests(3)
    two = [r for r in reqs if r.path == "/two"]
    assert [r.seq_on_conn for r in two] == [1, 0], [(r.path, r.conn_id, r.seq_on_conn) for r in reqs]


def test_refused_server_is_skipped_for_the_next_one(upstreams, edgeguard):
    up = upstreams("live")
    port = eg.free_port()
    dead = f"{eg.LOOPBACK}:{eg.free_port()}"
    config = eg.basic_config(port, {"app": [dead, up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    edgeguard(config)
    for i in range(6):
        with eg.Client(port) as c:  # new client connections, so round-robin meets the dead server
            resp = c.request("GET", f"/rr/{i}", headers=[("Connection", "close")])
            assert resp.status == 200, (i, resp.status, resp.body)
    assert len(up.wait_requests(6)) == 6


def test_round_robin_spreads_over_servers(upstreams, edgeguard):
    a, b = upstreams("a"), upstreams("b")
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [a.address, b.address]},
                             [{"name": "all", "paths": ["/"], "upstream": "app"}], workers=1)
    edgeguard(config)
    clients = [eg.Client(port) for _ in range(4)]
    try:
        # Four requests in flight at once cannot share one pooled connection.
        release = threading.Event()
        a.handler = b.handler = lambda req: eg.Reply(action="hang", release=release, body=b"x")
        for i, c in enumerate(clients):
            c.send(eg.build_request("GET", f"/spread/{i}"))
        assert eg.wait_until(lambda: len(a.snapshot()) + len(b.snapshot()) == 4, 5)
        release.set()
        assert all(c.read_response().status == 200 for c in clients)
    finally:
        for c in clients:
            c.close()
    assert len(a.snapshot()) >= 1 and len(b.snapshot()) >= 1, (len(a.snapshot()), len(b.snapshot()))


def test_idle_pooled_connections_are_closed_after_keepalive_idle(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    config["upstreams"]["app"]["keepalive_idle"] = eg.ms(300)
    edgeguard(config)
    with eg.Client(port) as c:
        assert c.request("GET", "/pooled").status == 200
        # edgeguard, not the upstream, lets go of the idle connection (before a Node/Go 5 s idle close).
        assert up.wait_closed(1, timeout=5)
        assert c.request("GET", "/after-idle").status == 200
    assert up.connections_accepted == 2


# ---- backpressure, body deadlines, shutdown deadline, IPv6 ----------------------------------------------------


def test_50mb_download_to_a_slow_reader_keeps_rss_bounded(simple_proxy):
    block = b"d" * 65536
    count = 800  # 50 MiB
    proxy, _ = simple_proxy(lambda req: eg.Reply(chunks=[block] * count))
    with eg.Client(proxy.listen_port, timeout=60) as c:
        c.send(eg.build_request("GET", "/download"))
        time.sleep(1.0)  # not reading: edgeguard must stop reading the upstream, not buffer
        resp = c.read_response(timeout=60)
    assert resp.status == 200 and len(resp.body) == 65536 * count
    eg.assert_rss_below(proxy, 64 * 1024, "relaying 50 MiB to a slow reader")


def test_stalled_request_body_gives_408(simple_proxy):
    proxy, up = simple_proxy(timeouts={"client_body_idle": eg.ms(500)})
    with eg.Client(proxy.listen_port, timeout=15) as c:
        c.send(eg.build_request("POST", "/stall", headers=[("Content-Length", "100")]) + b"only ten b")
        resp = c.read_response(timeout=15)
        assert_json_error(resp, 408)
        assert c.is_closed_by_peer()
    assert [r for r in up.snapshot() if r.path == "/stall"] == []  # never a complete request upstream


def test_grace_deadline_bounds_shutdown_with_a_stuck_request(simple_proxy):
    proxy, up = simple_proxy(lambda req: eg.Reply(action="hang"), extra={"graceful_shutdown": eg.ms(500)})
    with eg.Client(proxy.listen_port) as c:
        c.send(eg.build_request("GET", "/stuck"))
        assert up.wait_requests(1, timeout=5)
        proxy.signal(signal.SIGTERM)
        assert proxy.wait_exit(10) == 0


def test_ipv6_loopback_listener_forwards_the_v6_peer(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    try:
        socket.create_server(("::1", port), family=socket.AF_INET6).close()
    except OSError:
        pytest.skip(eg.SKIP_NO_IPV6)
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    config["listeners"][0]["address"] = f"[::1]:{port}"
    started = edgeguard(config, listen_port=port, name="v6")
    with eg.Client(port, host="::1") as c:
        assert c.request("GET", "/v6").status == 200
    (req,) = up.wait_requests(1)
    assert req.header_all("x-forwarded-for") == ["::1"]
    assert started.proc.poll() is None


# ---- Expect: 100-continue, h2c, concurrency, real clients ----------------------------------------------------


def test_expect_100_continue_is_answered_before_the_body_is_sent(simple_proxy):
    proxy, up = simple_proxy()
    with eg.Client(proxy.listen_port) as c:
        c.send(eg.build_request("POST", "/expect", headers=[("Content-Length", "11"),
                                                            ("Expect", "100-continue")]))
        interim = c.reader.read_until(b"\r\n\r\n", timeout=5)
        assert interim.startswith(b"HTTP/1.1 100"), interim
        c.send(b"hello world")
        resp = c.read_response()
    assert resp.status == 200
    (req,) = up.wait_requests(1)
    assert req.body == b"hello world"
    assert req.header("expect") is None  # answered here, so the upstream must not answer it again


def test_expect_100_continue_over_the_limit_is_refused_without_reading_the_body(simple_proxy):
    proxy, up = simple_proxy(route={"max_body": "1KB"})
    with eg.Client(proxy.listen_port) as c:
        c.send(eg.build_request("POST", "/expect-big", headers=[("Content-Length", "5000"),
                                                                ("Expect", "100-continue")]))
        head = c.reader.read_until(b"\r\n\r\n", timeout=5)
        assert head.startswith(b"HTTP/1.1 413"), head  # final status, no 100 first
    assert up.connections_accepted == 0


def test_h2c_upgrade_never_reaches_the_upstream(simple_proxy):
    """h2c smuggling (BishopFox 2020): an h2c upgrade through a proxy would bypass its path rules."""
    proxy, up = simple_proxy()
    with eg.Client(proxy.listen_port) as c:
        resp = c.request("GET", "/h2c", headers=[("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
                                                 ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")])
    assert resp.status in (200, 400), resp.status
    for req in up.snapshot():
        assert req.header("upgrade") is None and req.header("http2-settings") is None, req.raw_head
        assert "upgrade" not in (req.header("connection") or "").lower()


def test_concurrent_clients_each_get_their_own_responses(simple_proxy):
    proxy, up = simple_proxy(workers=2)
    errors: list = []

    def client(n: int) -> None:
        try:
            with eg.Client(proxy.listen_port) as c:
                for i in range(20):
                    target = f"/c{n}/r{i}"
                    body = f"{n}:{i}".encode() * (i + 1)
                    resp = c.request("POST", target, body=body)
                    if resp.status != 200 or resp.json()["target"] != target:
                        errors.append((target, resp.status, resp.body[:100]))
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append((n, repr(e)))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    reqs = up.wait_requests(600)
    assert len(reqs) == 600
    for r in reqs:
        n, i = r.path[2:].split("/r")
        assert r.body == f"{n}:{i}".encode() * (int(i) + 1), r.path


def test_curl_posts_a_chunked_body_through(simple_proxy, tmp_path):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    proxy, up = simple_proxy()
    payload = tmp_path / "payload.json"
    payload.write_bytes(b'{"event":"x","properties":{"n":1}}' * 1000)
    result = subprocess.run([curl, "-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}",
                             "-H", "Transfer-Encoding: chunked", "-H", "Expect: 100-continue",
                             "--data-binary", f"@{payload}", f"http://{eg.LOOPBACK}:{proxy.listen_port}/curl"],
                            capture_output=True, text=True, timeout=30)
    assert result.stdout == "200", result.stdout + result.stderr
    (req,) = up.wait_requests(1)
    assert req.body == payload.read_bytes()


def test_check_reports_a_missing_referenced_file_by_line(edgeguard_bin, tmp_path):
    path = tmp_path / "missing-file.yaml"
    path.write_text(
        "listeners:\n"
        "  - name: main\n"
        "    address: 127.0.0.1:18080\n"
        "upstreams:\n"
        "  web:\n"
        "    servers: [\"127.0.0.1:18000\"]\n"
        "routes:\n"
        "  - name: web\n"
        "    paths: [\"/\"]\n"
        "    upstream: web\n"
        "privacy:\n"
        "  rules: does-not-exist.yaml\n")
    result = eg.run_cli(edgeguard_bin, "check", "--config", str(path))
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert f"{path}:12:" in out and "does-not-exist.yaml" in out, out


# ---- early replies, idle clients, request streaming -----------------------------------------------------------


def test_body_of_a_refused_request_is_never_parsed_as_a_request(simple_proxy):
    """413 from Content-Length leaves the body unread; its bytes must not become a second request."""
    proxy, up = simple_proxy(route={"max_body": "1KB"})
    hidden = eg.build_request("GET", "/smuggled")
    body = hidden + b"p" * (2000 - len(hidden))
    with eg.Client(proxy.listen_port) as c:
        c.send(eg.build_request("POST", "/big", body=body))
        resp = c.read_response(timeout=5)
        assert_json_error(resp, 413)
        assert (resp.header("connection") or "").lower() == "close"
        assert c.is_closed_by_peer(timeout=3)
    eg.sentinel(proxy.listen_port, up)
    assert [r.path for r in up.snapshot()] == [eg.SENTINEL_TARGET]


def test_pipelined_request_after_connection_close_is_not_served(simple_proxy):
    proxy, up = simple_proxy()
    with eg.Client(proxy.listen_port) as c:
        c.send(eg.build_request("GET", "/last", headers=[("Connection", "close")])
               + eg.build_request("GET", "/ignored"))
        assert c.read_response().status == 200
        assert c.is_closed_by_peer(timeout=3)
    eg.sentinel(proxy.listen_port, up)
    assert [r.path for r in up.snapshot()] == ["/last", eg.SENTINEL_TARGET]


def test_idle_client_connection_is_closed_after_keepalive_timeout(simple_proxy):
    proxy, _ = simple_proxy(timeouts={"client_keepalive": eg.ms(500)})
    with eg.Client(proxy.listen_port, timeout=15) as c:
        assert c.request("GET", "/once").status == 200
        start = time.monotonic()
        assert c.is_closed_by_peer(timeout=10)
        assert time.monotonic() - start < 10


def test_request_body_streams_to_the_upstream_before_the_client_finishes(simple_proxy):
    proxy, up = simple_proxy()
    half = b"s" * 50000
    with eg.Client(proxy.listen_port, timeout=15) as c:
        c.send(eg.build_request("POST", "/stream-up", headers=[("Content-Length", str(2 * len(half)))]) + half)
        # Pass-through routes never buffer the request: the first half is upstream while the rest is unsent.
        assert eg.wait_until(lambda: up.bytes_received >= len(half), 5), up.bytes_received
        c.send(half)
        assert c.read_response().status == 200
    assert up.wait_requests(1)[0].body_length == 2 * len(half)


# ---- framing toward old clients, deep pipelines ---------------------------------------------------------------


def test_http10_client_never_gets_a_chunked_response(simple_proxy):
    """RFC 9112 §6.1: no Transfer-Encoding in a response to an HTTP/1.0 request."""
    pieces = [b"old-", b"client-", b"body"]
    proxy, _ = simple_proxy(lambda req: eg.Reply(chunks=pieces))
    with eg.Client(proxy.listen_port) as c:
        c.send(b"GET /old HTTP/1.0\r\nHost: edgeguard.test\r\n\r\n")
        resp = c.read_response()
        assert resp.status == 200
        assert resp.header("transfer-encoding") is None, resp.raw_head
        assert resp.body == b"".join(pieces)


def test_deep_pipeline_with_large_responses_is_answered_in_order(simple_proxy):
    """200 pipelined requests whose responses (2 MB in all) pile up while the client is not reading yet."""
    proxy, up = simple_proxy(lambda req: eg.Reply(body=req.path.encode().ljust(10000, b".")))
    with eg.Client(proxy.listen_port, timeout=30) as c:
        c.send(b"".join(eg.build_request("GET", f"/deep/{i}") for i in range(200)))
        time.sleep(0.3)
        for i in range(200):
            resp = c.read_response(timeout=30)
            assert resp.status == 200 and resp.body.rstrip(b".") == f"/deep/{i}".encode(), i
    assert len(up.wait_requests(200)) == 200


def test_50mb_upload_to_a_slow_upstream_keeps_rss_bounded(simple_proxy):
    """The upstream stops reading for a while: edgeguard must stop reading the client, not buffer the upload."""
    size = 50 * 1024 * 1024
    block = b"u" * 65536
    proxy, up = simple_proxy(upstream_kwargs={"keep_body_limit": 0, "body_read_delay": 1.5})
    with eg.Client(proxy.listen_port, timeout=60) as c:
        c.send(eg.build_request("POST", "/slow-sink", headers=[("Content-Length", str(size))]))
        for _ in range(size // len(block)):
            c.send(block)
        resp = c.read_response(timeout=60)
    assert resp.status == 200
    assert up.wait_requests(1)[0].body_length == size
    eg.assert_rss_below(proxy, 64 * 1024, "while a 50 MB upload waited for a slow upstream")
