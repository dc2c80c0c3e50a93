"""HTTP/2 from clients through the real binary: ALPN (h2, then http/1.1), h2c with prior knowledge, many streams
on one connection to different routes, large bodies both ways under flow control, the privacy stage on /batch,
server-sent events, trailers, RFC 9113 §8.3.1 authority rules, WebSocket over HTTP/1.1 beside h2, the access
log's protocol and the h2 metrics. Clients: python-h2, nghttp, h2load and curl, all on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import hpack
import pytest

import eg
import h2_helpers as h2h
from test_streams import SseSource

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

CLI_TIMEOUT = 60.0
RULES = eg.source_dir() / "conf" / "privacy.yaml"


def tls(pki: Path) -> dict:
    return {"certificates": [{"cert": str(pki / "a.pem"), "key": str(pki / "a.key")}]}


def start(edgeguard, pki: Path, upstreams: dict, routes: list, *, listener: dict | None = None,
          extra: dict | None = None, access_log: Path | None = None):
    port = eg.free_port()
    config = eg.basic_config(port, {n: [u.address] for n, u in upstreams.items()}, routes, extra=extra)
    config["listeners"][0]["tls"] = tls(pki)
    config["listeners"][0].update(listener or {})
    if access_log is not None:
        config["access_log"] = {"output": str(access_log)}
    return edgeguard(config), port


def h2_client(port: int, pki: Path, alpn=("h2",), **kwargs) -> h2h.H2Client:
    sock = h2h.open_socket(port, ca=pki / "ca.pem", alpn=alpn)
    assert sock.selected_alpn_protocol() == "h2"
    return h2h.H2Client(sock, **kwargs)


@pytest.fixture
def app(upstreams, edgeguard, pki):
    up = upstreams("app")
    proc, port = start(edgeguard, pki, {"app": up}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    return proc, up, port


# ---- ALPN and h2c ------------------------------------------------------------------------------------------


def test_alpn_prefers_h2_and_an_h2_only_offer_is_served(app, pki):
    _, up, port = app
    with h2h.open_socket(port, ca=pki / "ca.pem", alpn=("http/1.1", "h2")) as s:
        assert s.selected_alpn_protocol() == "h2", "the server's preference (h2) wins"
    client = h2_client(port, pki, alpn=("h2",))
    resp = client.get("/hello?x=1")
    client.close()
    assert resp.status == 200
    assert json.loads(resp.body)["target"] == "/hello?x=1"
    req = up.wait_requests(1)[0]
    assert req.version == "HTTP/1.1", "upstreams stay HTTP/1.1"
    assert req.header("host") == "a.test"
    assert req.header("x-forwarded-proto") == "https"


def test_alpn_falls_back_to_http11(app, pki):
    _, up, port = app
    with h2h.open_socket(port, ca=pki / "ca.pem", alpn=("http/1.1",)) as s:
        assert s.selected_alpn_protocol() == "http/1.1"
        s.sendall(eg.build_request("GET", "/one", host="a.test"))
        assert eg.read_response(eg.SocketReader(s)).status == 200
    out = subprocess.run(["curl", "-sS", "--http1.1", "--max-time", "10", "--cacert", str(pki / "ca.pem"),
                          "--resolve", f"a.test:{port}:127.0.0.1", "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
                          f"https://a.test:{port}/two"], capture_output=True, text=True, timeout=CLI_TIMEOUT)
    assert out.stdout == "200 1.1", out.stderr
    out = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", str(pki / "ca.pem"),
                          "--resolve", f"a.test:{port}:127.0.0.1", "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
                          f"https://a.test:{port}/three"], capture_output=True, text=True, timeout=CLI_TIMEOUT)
    assert out.stdout == "200 2", out.stderr
    assert [r.path for r in up.wait_requests(3)] == ["/one", "/two", "/three"]


def test_a_listener_with_http2_off_speaks_http11_only(upstreams, edgeguard, pki):
    up = upstreams("app")
    _, port = start(edgeguard, pki, {"app": up}, [{"name": "all", "paths": ["/"], "upstream": "app"}],
                    listener={"http2": False})
    with h2h.open_socket(port, ca=pki / "ca.pem", alpn=("h2", "http/1.1")) as s:
        assert s.selected_alpn_protocol() == "http/1.1"
    with pytest.raises(ssl.SSLError):
        h2h.open_socket(port, ca=pki / "ca.pem", alpn=("h2",)).close()


def test_h2c_prior_knowledge_when_enabled(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    config["listeners"][0]["h2c"] = True
    edgeguard(config)
    client = h2h.H2Client(h2h.open_socket(port), scheme="http")
    resp = client.get("/plain")
    client.close()
    assert resp.status == 200
    assert up.wait_requests(1)[0].header("x-forwarded-proto") == "http"
    # HTTP/1.1 keeps working on the same listener.
    with eg.Client(port) as c:
        assert c.request("GET", "/h1").status == 200


def test_h2c_is_refused_when_not_enabled(simple_proxy):
    proxy, up = simple_proxy()
    with socket.create_connection((eg.LOOPBACK, proxy.listen_port), timeout=eg.IO_TIMEOUT) as s:
        s.sendall(h2h.PREFACE + h2h.settings_frame())
        data = eg.SocketReader(s).read_to_eof(timeout=5)
    assert data.startswith(b"HTTP/1.1 505 ") or data.startswith(b"HTTP/1.1 400 "), data[:80]
    assert up.snapshot() == []


# ---- Streams, bodies, flow control -------------------------------------------------------------------------


def test_many_concurrent_streams_on_one_connection_reach_their_routes(upstreams, edgeguard, pki):
    a, b = upstreams("a"), upstreams("b")
    _, port = start(edgeguard, pki, {"a": a, "b": b}, [{"name": "a", "paths": ["/a"], "upstream": "a"},
                                                      {"name": "b", "paths": ["/"], "upstream": "b"}])
    client = h2_client(port, pki)
    sids = {client.request("GET", f"/a/{i}" if i % 2 == 0 else f"/b/{i}"): i for i in range(60)}
    responses = client.wait(list(sids))
    client.close()
    for sid, resp in zip(sids, responses):
        i = sids[sid]
        assert resp.status == 200, (i, resp)
        body = json.loads(resp.body)
        assert body["upstream"] == ("a" if i % 2 == 0 else "b")
        assert body["target"].endswith(f"/{i}")
    assert len(a.snapshot()) == 30 and len(b.snapshot()) == 30


def test_large_upload_and_download_under_flow_control(upstreams, edgeguard, pki):
    download = os.urandom(3 * 1024 * 1024)

    def handler(req):
        if req.method == "POST":
            return eg.Reply(body=req.body_sha256.encode())
        return eg.Reply(headers=[("Content-Type", "application/octet-stream")], body=download)

    up = upstreams("app", handler, keep_body_limit=0)
    _, port = start(edgeguard, pki, {"app": up}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    upload = os.urandom(4 * 1024 * 1024 + 123)
    client = h2_client(port, pki)
    sid = client.request("POST", "/upload", headers=[("content-length", str(len(upload)))], body=upload)
    resp = client.wait([sid], timeout=60)[0]
    assert resp.status == 200
    assert resp.body.decode() == hashlib.sha256(upload).hexdigest()
    req = up.wait_requests(1)[0]
    assert req.body_length == len(upload)
    # A slow reader: the window is given back only as the client reads, and the whole body still arrives.
    client.auto_ack = True
    resp = client.get("/download")
    client.close()
    assert resp.status == 200
    assert bytes(resp.body) == download


@pytest.mark.parametrize("window", [None, 5000])
def test_response_bodies_of_every_piece_size_arrive_whole(upstreams, edgeguard, window):
    # Upstream pieces below, at and around one DATA frame's payload (16384), chunked so each arrives as
    # written, through a wide window and through one narrower than a frame (frames then end mid-piece).
    sizes = [1, 4095, 4096, 16383, 16384, 16385, 70000, 3, 32768]
    pieces = [os.urandom(n) for n in sizes]
    up = upstreams("app", lambda req: eg.Reply(chunks=pieces))
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    config["listeners"][0]["h2c"] = True
    edgeguard(config)
    client = h2h.H2Client(h2h.open_socket(port), scheme="http", window=window)
    responses = client.wait([client.request("GET", f"/p{i}") for i in range(3)], timeout=60)
    client.close()
    for resp in responses:
        assert resp.status == 200 and resp.reset is None
        assert bytes(resp.body) == b"".join(pieces)


class EarlyAnswerUpstream:
    """An upstream that answers as soon as it has a request head, then reads the body it announced (nginx's
    `return 200` does this): whatever the proxy then does with the rest of the body, a connection must never
    carry part of one request's body into the next request (the upstream would read body bytes as a head)."""

    def __init__(self):
        self.listener = socket.create_server((eg.LOOPBACK, 0))
        self.port = self.listener.getsockname()[1]
        self.bodies: list[bytes] = []
        self.errors: list[str] = []
        self.connections = 0
        self._stop = False
        import threading  # noqa: PLC0415
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            self.connections += 1
            import threading  # noqa: PLC0415
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn: socket.socket) -> None:
        reader = eg.SocketReader(conn)
        try:
            while not self._stop:
                head = reader.read_until(b"\r\n\r\n", timeout=30)
                request_line, headers = eg.parse_head(head)
                if not request_line.startswith(("POST ", "GET ")):
                    self.errors.append(request_line[:40])
                    return
                length = int(eg.header_value(headers, "content-length") or 0)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                self.bodies.append(reader.read_exact(length, timeout=30) if length else b"")
        except (eg.PeerClosed, OSError):
            return

    def stop(self) -> None:
        self._stop = True
        self.listener.close()


def test_an_upstream_that_answers_before_the_body_never_sees_a_torn_request(edgeguard, pki):
    early = EarlyAnswerUpstream()
    try:
        port = eg.free_port()
        config = eg.basic_config(port, {"app": [f"{eg.LOOPBACK}:{early.port}"]},
                                 [{"name": "all", "paths": ["/"], "upstream": "app"}], workers=1)
        config["listeners"][0]["tls"] = tls(pki)
        edgeguard(config)
        client = h2_client(port, pki)
        bodies = [os.urandom(10_000 + i) for i in range(40)]
        sids = [client.request("POST", "/capture/", headers=[("content-length", str(len(b)))], body=b) for b in bodies]
        assert all(r.status == 200 and r.body == b"ok" for r in client.wait(sids, timeout=30))
        client.close()
        # Every body the upstream read whole is one that was sent; none was cut and followed by another head
        # (the upstream reads a reused connection's next head before it answers, so all 40 answers prove it).
        assert early.errors == []
        assert all(b in bodies for b in early.bodies)
    finally:
        early.stop()


def test_upload_without_content_length_streams_through(upstreams, edgeguard, pki):
    up = upstreams("app", lambda req: eg.Reply(body=str(req.body_length).encode()), keep_body_limit=0)
    _, port = start(edgeguard, pki, {"app": up}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    body = b"x" * (700 * 1024)
    client = h2_client(port, pki)
    sid = client.request("POST", "/chunked", body=body)
    resp = client.wait([sid], timeout=30)[0]
    client.close()
    assert resp.status == 200 and resp.body == str(len(body)).encode()
    assert up.wait_requests(1)[0].chunked


def test_h2load_and_nghttp_clients(app, pki):
    _, up, port = app
    if shutil.which("h2load") is None or shutil.which("nghttp") is None:
        pytest.fail("nghttp2-client (h2load, nghttp) is not installed: scripts/setup.sh installs it")
    out = subprocess.run(["h2load", "-n", "200", "-c", "2", "-m", "20", f"https://127.0.0.1:{port}/load"],
                         capture_output=True, text=True, timeout=CLI_TIMEOUT)
    assert "200 succeeded" in out.stdout and "0 failed" in out.stdout, out.stdout + out.stderr
    assert "status codes: 200 2xx" in out.stdout, out.stdout
    out = subprocess.run(["nghttp", "-n", "-v", f"https://127.0.0.1:{port}/n1", f"https://127.0.0.1:{port}/n2"],
                         capture_output=True, text=True, timeout=CLI_TIMEOUT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count(":status: 200") == 2, out.stdout


# ---- The pipeline over h2: privacy, local answers, SSE, trailers ------------------------------------------


def test_privacy_filter_on_batch_over_h2(upstreams, edgeguard, pki):
    capture, web = upstreams("capture"), upstreams("web")
    routes = [{"name": "capture", "paths": ["/e", "/batch"], "upstream": "capture", "privacy": "events",
               "max_body": "64KiB", "client_ip": "truncate"},
              {"name": "web", "paths": ["/"], "upstream": "web"}]
    _, port = start(edgeguard, pki, {"capture": capture, "web": web}, routes, extra={"privacy": {"rules": str(RULES)}})
    personal = {"api_key": "phc_public", "batch": [
        {"event": "signup", "distinct_id": "u-1",
         "properties": {"$set": {"email": "john.doe@example.com"}, "plan": "pro", "note": "mail john.doe@example.com"}}]}
    body = gzip.compress(json.dumps(personal).encode())
    client = h2_client(port, pki)
    sid = client.request("POST", "/batch/", headers=[("content-type", "text/plain"), ("content-encoding", "gzip")],
                         body=body)
    resp = client.wait([sid])[0]
    assert resp.status == 200
    (req,) = capture.wait_requests(1)
    assert b"john.doe" not in req.body
    assert json.loads(req.body)["batch"][0]["properties"]["plan"] == "pro"
    assert req.header("content-type") == "application/json"
    assert req.header("content-length") == str(len(req.body))
    # A body the filter cannot inspect is refused, never forwarded.
    sid = client.request("POST", "/e/", headers=[("content-type", "application/json")], body=b"{not json")
    resp = client.wait([sid])[0]
    client.close()
    assert resp.status == 400
    assert len(capture.snapshot()) == 1


def test_local_answers_and_authority_rules(app, pki):
    _, up, port = app
    client = h2_client(port, pki, validate=False)
    r = client.get("/x", headers=[("host", "evil.test")])
    assert r.status == 400 and b"differs from :authority" in r.body
    r = client.get("/a\\b")
    assert r.status == 400
    sid = client.request("TRACE", "/t")
    assert client.wait([sid])[0].status == 405
    client.close()
    assert up.snapshot() == []


def test_connection_specific_fields_reset_the_stream(app, pki):
    _, up, port = app
    raw = h2h.RawConnection(h2h.open_socket(port, ca=pki / "ca.pem"))
    raw.start()
    enc = hpack.Encoder()
    raw.send(h2h.headers_frame(1, h2h.request_block("/c", extra=[("connection", "keep-alive")], encoder=enc)))
    raw.send(h2h.headers_frame(3, h2h.request_block("/te", extra=[("te", "gzip")], encoder=enc)))
    raw.send(h2h.headers_frame(5, h2h.request_block("/ok", extra=[("te", "trailers")], encoder=enc)))
    deadline = time.monotonic() + eg.IO_TIMEOUT
    frames = []
    while time.monotonic() < deadline and not any(f[0] == h2h.HEADERS and f[2] == 5 for f in frames):
        frames += raw.read_frames(timeout=0.5)
    raw.close()
    resets = {sid for t, _, sid, _ in frames if t == h2h.RST_STREAM}
    assert {1, 3} <= resets, [f[:3] for f in frames]
    assert [r.path for r in up.snapshot()] == ["/ok"]


def test_request_trailers_are_dropped(app, pki):
    _, up, port = app
    client = h2_client(port, pki)
    sid = client.request("POST", "/tr", body=b"abc", end=False)
    client.conn.send_headers(sid, [("x-checksum", "123")], end_stream=True)
    client._flush()
    assert client.wait([sid])[0].status == 200
    client.close()
    req = up.wait_requests(1)[0]
    assert req.body == b"abc"
    assert req.trailers == [] and req.header("x-checksum") is None


def test_sse_over_h2_is_flushed_per_event(upstreams, edgeguard, pki):
    source = SseSource()
    up = upstreams("app", lambda req: eg.Reply(action="stream", stream=source))
    _, port = start(edgeguard, pki, {"app": up}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    client = h2_client(port, pki)
    try:
        sid = client.request("GET", "/livestream/events", headers=[("accept", "text/event-stream")])
        deadline = time.monotonic() + eg.IO_TIMEOUT
        while client.responses[sid].status == 0 and time.monotonic() < deadline:
            client.read_events(timeout=5)
        assert client.responses[sid].status == 200
        assert client.responses[sid].header("content-type") == "text/event-stream"
        for n in range(10):
            source.emit()
            want = b'data: {"n": %d}\n\n' % n
            while want not in client.responses[sid].body:
                client.read_events(timeout=5)
    finally:
        source.stop()
        client.close()


# ---- Beside h2: WebSocket over HTTP/1.1, the access log, metrics -------------------------------------------


def test_websocket_over_http11_keeps_working_on_an_h2_listener(upstreams, edgeguard, pki):
    websockets = pytest.importorskip("websockets", reason="python3-websockets is needed for the WebSocket test")
    from websockets.server import serve  # noqa: PLC0415

    async def run():
        async def echo(ws):
            async for msg in ws:
                await ws.send(msg)

        async with serve(echo, eg.LOOPBACK, 0) as server:
            ws_port = server.sockets[0].getsockname()[1]
            proxy_port = eg.free_port()
            config = eg.basic_config(proxy_port, {"ws": [f"{eg.LOOPBACK}:{ws_port}"]},
                                     [{"name": "ws", "paths": ["/"], "upstream": "ws"}])
            config["listeners"][0]["tls"] = tls(pki)
            await asyncio.get_running_loop().run_in_executor(None, edgeguard, config)
            ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
            ctx.set_alpn_protocols(["http/1.1"])
            async with websockets.connect(f"wss://a.test:{proxy_port}/ws", ssl=ctx,
                                          host=eg.LOOPBACK, port=proxy_port, open_timeout=10) as ws:
                await ws.send("ping over h1")
                assert await asyncio.wait_for(ws.recv(), 10) == "ping over h1"

    asyncio.run(run())


def test_access_log_says_http2_and_metrics_count_streams(upstreams, edgeguard, pki, tmp_path):
    up = upstreams("app")
    log = tmp_path / "access.log"
    proc, port = start(edgeguard, pki, {"app": up}, [{"name": "all", "paths": ["/"], "upstream": "app"}],
                       access_log=log)
    client = h2_client(port, pki)
    client.wait([client.request("GET", f"/m/{i}") for i in range(3)])
    client.close()
    with h2h.open_socket(port, ca=pki / "ca.pem", alpn=("http/1.1",)) as s:
        s.sendall(eg.build_request("GET", "/h1", host="a.test"))
        assert eg.read_response(eg.SocketReader(s)).status == 200
    assert eg.wait_until(lambda: log.exists() and log.read_text().count("\n") >= 4, eg.IO_TIMEOUT)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    protos = {line["path"]: line["proto"] for line in lines}
    assert protos["/m/0"] == "HTTP/2" and protos["/h1"] == "HTTP/1.1", protos
    assert h2h.metric(proc, "edgeguard_http2_streams_total") == 3
    assert h2h.metric(proc, "edgeguard_http2_connections_total") == 1


def test_sigterm_sends_goaway_and_lets_the_stream_in_flight_finish(upstreams, edgeguard, pki):
    release = __import__("threading").Event()
    up = upstreams("app", lambda req: eg.Reply(action="hang", release=release, body=b"finished"))
    proc, port = start(edgeguard, pki, {"app": up}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    # Raw frames: python-h2 treats any GOAWAY as the end of the connection and refuses what follows it.
    raw = h2h.RawConnection(h2h.open_socket(port, ca=pki / "ca.pem"))
    raw.start()
    raw.send(h2h.settings_frame(ack=True) + h2h.headers_frame(1, h2h.request_block("/slow")))
    up.wait_requests(1)
    proc.signal(__import__("signal").SIGTERM)
    frames = []
    deadline = time.monotonic() + eg.IO_TIMEOUT
    while h2h.goaway_code(frames) is None and time.monotonic() < deadline:
        frames += raw.read_frames(timeout=0.5)
    assert h2h.goaway_code(frames) == h2h.NO_ERROR, "a graceful GOAWAY"
    release.set()
    frames += h2h.read_until_closed(raw)
    raw.close()
    data = b"".join(p for t, _, sid, p in frames if t == h2h.DATA and sid == 1)
    assert data == b"finished", "the stream the GOAWAY covers still completes"
    assert any(t == h2h.DATA and sid == 1 and f & h2h.END_STREAM for t, f, sid, _ in frames)
    assert proc.wait_exit() == 0


def test_rate_limits_and_configured_response_fields_over_h2(upstreams, edgeguard, pki):
    up = upstreams("app")
    routes = [{"name": "all", "paths": ["/"], "upstream": "app", "rate_limit": "per_ip"}]
    proc, port = start(edgeguard, pki, {"app": up}, routes,
                       listener={"response_headers": [{"name": "Strict-Transport-Security", "value": "max-age=60"}]},
                       extra={"rate_limits": {"per_ip": {"rate": "1/h", "burst": 2}}})
    client = h2_client(port, pki)
    first, second, third = client.wait([client.request("GET", f"/r/{i}") for i in range(3)])
    client.close()
    assert first.status == 200 and second.status == 200
    assert first.header("ratelimit-limit") == "2" and first.header("strict-transport-security") == "max-age=60"
    assert third.status == 429
    assert third.header("retry-after") is not None and third.header("ratelimit-remaining") == "0"
    assert third.header("strict-transport-security") == "max-age=60", "edgeguard's own answers get the fields too"
    assert json.loads(third.body)["status"] == 429
    assert len(up.snapshot()) == 2
