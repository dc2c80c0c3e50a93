"""A `redirect_https_to` listener answers every request with a 308 to https, whatever protocol carried it:
HTTP/1.1 (also one asking for `Upgrade: h2c`), h2c with prior knowledge (several streams on one connection, a
request with a body), and a WebSocket extended CONNECT over h2c, which is refused or redirected and never
tunnelled. Nothing reaches the upstream: a second, ordinary listener on the same edgeguard sends a sentinel
request through, after which the upstream must have seen that request only. Clients: raw sockets, python-h2
and raw HTTP/2 frames, all on 127.0.0.1.
"""

from __future__ import annotations

import json

import pytest

import eg
import h2_helpers as h2h

HTTPS_PORT = 8443


@pytest.fixture
def redirecting(upstreams, edgeguard, tmp_path):
    """edgeguard with a redirect listener (h2c on) and an ordinary one, both in front of one upstream.
    Returns (redirect port, ordinary port, upstream, access log path)."""
    up = upstreams("app")
    port, plain_port = eg.free_port(), eg.free_port()
    log = tmp_path / "access.log"
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    config["listeners"] = [
        {"name": "http", "address": f"{eg.LOOPBACK}:{port}", "h2c": True, "redirect_https_to": f":{HTTPS_PORT}"},
        {"name": "inner", "address": f"{eg.LOOPBACK}:{plain_port}", "h2c": True},
    ]
    config["access_log"] = {"output": str(log)}
    edgeguard(config)
    return port, plain_port, up, log


def assert_nothing_proxied(plain_port: int, up: eg.Upstream) -> None:
    eg.sentinel(plain_port, up)
    assert [r.target for r in up.snapshot()] == [eg.SENTINEL_TARGET], "a redirected request reached the upstream"


def log_lines(log, n: int) -> list[dict]:
    assert eg.wait_until(lambda: log.exists() and log.read_text().count("\n") >= n, eg.IO_TIMEOUT)
    return [json.loads(line) for line in log.read_text().splitlines()]


def expected_http11(path: str, keep_alive: bool = True) -> bytes:
    return (f"HTTP/1.1 308 Permanent Redirect\r\nLocation: https://a.test:{HTTPS_PORT}{path}\r\n"
            "Content-Length: 0\r\n" + ("" if keep_alive else "Connection: close\r\n") + "\r\n").encode()


def test_http11_gets_the_308_byte_for_byte(redirecting):
    port, plain_port, up, _ = redirecting
    with eg.Client(port) as c:
        c.send(eg.build_request("GET", "/e/?ip=1", host="a.test"))
        assert c.read_response().raw_head == expected_http11("/e/?ip=1")
        # The connection is kept for the next body-less request.
        c.send(eg.build_request("HEAD", "/decide/", host="a.test"))
        assert c.read_response("HEAD").raw_head == expected_http11("/decide/")
    with eg.Client(port) as c:
        # A body is never read: the connection closes after the answer.
        c.send(eg.build_request("POST", "/batch/", body=b'{"api_key":"k"}', host="a.test"))
        assert c.read_response().raw_head == expected_http11("/batch/", keep_alive=False)
        assert c.is_closed_by_peer()
    assert_nothing_proxied(plain_port, up)


def test_http11_upgrade_to_h2c_is_redirected_not_upgraded(redirecting):
    port, plain_port, up, _ = redirecting
    with eg.Client(port) as c:
        c.send(eg.build_request("GET", "/e/?x=1", host="a.test", headers=[
            ("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABkAARAAAAA")]))
        assert c.read_response().raw_head == expected_http11("/e/?x=1")
    assert_nothing_proxied(plain_port, up)


def test_h2c_streams_are_redirected(redirecting):
    port, plain_port, up, log = redirecting
    client = h2h.H2Client(h2h.open_socket(port), scheme="http")
    sids = [client.request("GET", "/e/?ip=1"), client.request("GET", "/flags/?v=2"),
            client.request("HEAD", "/s/"), client.request("POST", "/batch/", body=b'{"api_key":"k"}' * 100)]
    responses = client.wait(sids)
    # The connection outlives the answers: one more stream after all of them.
    responses.append(client.get("/after"))
    client.close()
    for resp, path in zip(responses, ["/e/?ip=1", "/flags/?v=2", "/s/", "/batch/", "/after"]):
        assert resp.reset is None and resp.ended
        assert resp.status == 308, (path, resp.status, bytes(resp.body))
        assert resp.header("location") == f"https://a.test:{HTTPS_PORT}{path}"
        assert resp.header("content-length") == "0"
        assert bytes(resp.body) == b""
    assert_nothing_proxied(plain_port, up)
    lines = [line for line in log_lines(log, 6) if line["proto"] == "HTTP/2"]
    assert sorted((line["method"], line["status"]) for line in lines) == [
        ("GET", 308), ("GET", 308), ("GET", 308), ("HEAD", 308), ("POST", 308)], lines
    assert all(not line.get("route") and not line.get("upstream") for line in lines), lines


def test_h2c_stream_that_cannot_be_redirected_gets_400(redirecting):
    port, plain_port, up, _ = redirecting
    # A valid authority (RFC 3986 allows '~') that is no host name a Location may carry.
    client = h2h.H2Client(h2h.open_socket(port), authority="a~b.test", scheme="http")
    resp = client.get("/e/")
    client.close()
    assert resp.status == 400
    assert resp.header("location") is None
    assert_nothing_proxied(plain_port, up)


def test_h2c_websocket_connect_is_never_tunnelled(redirecting):
    port, plain_port, up, _ = redirecting
    raw = h2h.RawConnection(h2h.open_socket(port))
    raw.start()
    enc = h2h.hpack.Encoder()
    connect = h2h.request_block("/ws", method="CONNECT", scheme="http", encoder=enc,
                                extra=[(":protocol", "websocket"), ("sec-websocket-version", "13")])
    raw.send(h2h.headers_frame(1, connect, end_stream=False))
    raw.send(h2h.frame(h2h.DATA, 0, 1, b"\x82\x85tunnel"))  # tunnel bytes, were it ever opened
    raw.send(h2h.headers_frame(3, h2h.request_block("/after", scheme="http", encoder=enc)))
    dec = h2h.hpack.Decoder()
    statuses: dict[int, str] = {}
    reset: set[int] = set()
    frames = []
    deadline_reads = 20
    while 3 not in statuses and deadline_reads and not raw.eof:
        deadline_reads -= 1
        for ftype, flags, sid, payload in raw.read_frames(timeout=1.0):
            frames.append((ftype, flags, sid))
            if ftype == h2h.HEADERS:
                statuses[sid] = dict(dec.decode(payload)).get(":status")
            elif ftype == h2h.RST_STREAM:
                reset.add(sid)
    raw.close()
    # The CONNECT is refused (reset) or redirected, never answered 200.
    assert statuses.get(1) in (None, "308"), (statuses, frames)
    assert statuses.get(1) == "308" or 1 in reset, (statuses, frames)
    assert statuses.get(3) == "308", (statuses, frames)
    assert_nothing_proxied(plain_port, up)


def test_h2c_on_the_ordinary_listener_still_proxies(redirecting):
    _, plain_port, up, _ = redirecting
    client = h2h.H2Client(h2h.open_socket(plain_port), scheme="http")
    resp = client.get("/e/?ip=1")
    client.close()
    assert resp.status == 200
    assert up.wait_requests(1)[0].target == "/e/?ip=1"
