"""What edgeguard decides once per connection instead of per request stays right when the input changes: the
allow/deny answer for a connection's peer follows the route each request reaches and the running config
(a reload mid-connection), a client named by X-Forwarded-For is judged per request, the route and the
normalized path follow each request's path and the running config, a Host is checked whenever it differs
from the one before, and the timeouts that a request no longer arms when it does not need them still fire
when it does (a request body that stalls, a response body that stalls after its head)."""

from __future__ import annotations

import signal
import socket
import threading
import time

import eg


def _reload(proc, config: dict) -> None:
    before = proc.stderr().count("config reloaded")
    proc.config_path.write_text(eg.dump_yaml(config))
    proc.signal(signal.SIGHUP)
    assert eg.wait_until(lambda: proc.stderr().count("config reloaded") > before, 10.0), proc.stderr()


class _Connection:
    """One keep-alive connection from a chosen loopback source address."""

    def __init__(self, port: int, source: str):
        self.sock = socket.create_connection((eg.LOOPBACK, port), timeout=eg.IO_TIMEOUT, source_address=(source, 0))
        self.reader = eg.SocketReader(self.sock)

    def get(self, target: str, headers=None, host: str = "edgeguard.test") -> int:
        self.sock.sendall(eg.build_request("GET", target, headers or [], None, host))
        resp = eg.read_response(self.reader, "GET")
        assert resp.header("connection") != "close", resp.headers  # the connection stays for the next one
        return resp.status

    def close(self) -> None:
        self.sock.close()


def _routes(hooks_deny: list[str]) -> list[dict]:
    return [{"name": "hooks", "paths": ["/public/webhooks"], "upstream": "app", "deny": hooks_deny, "privacy": "none"},
            {"name": "all", "paths": ["/"], "upstream": "app"}]


def test_one_connection_is_judged_by_the_route_of_each_request(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    edgeguard(eg.basic_config(port, {"app": [up.address]}, _routes(["127.0.0.2/32"])))
    conn = _Connection(port, "127.0.0.2")
    try:
        # Alternating routes on one connection: each request gets its own route's answer, never the last one's.
        assert conn.get("/other") == 200
        assert conn.get("/public/webhooks/a") == 403
        assert conn.get("/other") == 200
        assert conn.get("/public/webhooks/b") == 403
    finally:
        conn.close()
    assert [r.path for r in up.snapshot()] == ["/other", "/other"]


def test_a_reload_changing_a_route_deny_list_applies_to_the_next_request_on_the_connection(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    proc = edgeguard(eg.basic_config(port, {"app": [up.address]}, _routes([])))
    conn = _Connection(port, "127.0.0.2")
    try:
        assert conn.get("/public/webhooks/x") == 200
        _reload(proc, eg.basic_config(port, {"app": [up.address]}, _routes(["127.0.0.2/32"])))
        assert conn.get("/public/webhooks/x") == 403  # same connection, same route, new answer
        _reload(proc, eg.basic_config(port, {"app": [up.address]}, _routes([])))
        assert conn.get("/public/webhooks/x") == 200
    finally:
        conn.close()
    assert len(up.snapshot()) == 2


def test_clients_behind_a_trusted_proxy_are_judged_per_request(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [up.address]}, _routes(["10.9.9.9/32", "127.0.0.1/32"]))
    config["trusted_proxies"] = ["127.0.0.1/32"]
    edgeguard(config)
    conn = _Connection(port, "127.0.0.1")
    try:
        # One connection from the trusted proxy carries several clients: each is decided on its own, and the
        # proxy itself (no X-Forwarded-For) is judged as the client it then is.
        assert conn.get("/public/webhooks/a", [("X-Forwarded-For", "10.9.9.8")]) == 200
        assert conn.get("/public/webhooks/b", [("X-Forwarded-For", "10.9.9.9")]) == 403
        assert conn.get("/public/webhooks/c", [("X-Forwarded-For", "10.9.9.8")]) == 200
        assert conn.get("/public/webhooks/d") == 403
        assert conn.get("/public/webhooks/e", [("X-Forwarded-For", "10.9.9.8")]) == 200
    finally:
        conn.close()
    assert [r.path for r in up.snapshot()] == ["/public/webhooks/a", "/public/webhooks/c", "/public/webhooks/e"]


def test_each_request_on_a_connection_is_routed_by_its_own_normalized_path(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    edgeguard(eg.basic_config(port, {"app": [up.address]}, _routes(["127.0.0.2/32"])))
    conn = _Connection(port, "127.0.0.2")
    try:
        assert conn.get("/x/../public/webhooks/a") == 403  # normalized to /public/webhooks/a
        assert conn.get("/x/../public/webhooks/a?q=1") == 403  # same path, another query
        assert conn.get("/public/webhooks/../other") == 200  # normalized to /public/other
        assert conn.get("/public/%77ebhooks/b") == 403  # %77 is 'w'
        assert conn.get("/public/webhooks%2Fb") == 200  # %2F stays encoded: not under /public/webhooks
        assert conn.get("/public/webhooks%2Fb") == 200
        assert conn.get("/public//webhooks/c") == 403
    finally:
        conn.close()
    assert [r.path for r in up.snapshot()] == ["/public/other", "/public/webhooks%2Fb", "/public/webhooks%2Fb"]


def test_a_reload_moving_a_path_to_another_route_applies_to_the_next_request_on_the_connection(upstreams, edgeguard):
    app, hooks = upstreams("app"), upstreams("hooks")
    port = eg.free_port()

    def config(hooks_paths):
        return eg.basic_config(port, {"app": [app.address], "hooks": [hooks.address]},
                               [{"name": "hooks", "paths": hooks_paths, "upstream": "hooks", "privacy": "none"},
                                {"name": "all", "paths": ["/"], "upstream": "app"}])

    proc = edgeguard(config(["/public/webhooks"]))
    conn = _Connection(port, "127.0.0.1")
    try:
        assert conn.get("/public/webhooks/x") == 200
        _reload(proc, config(["/public/m"]))
        assert conn.get("/public/webhooks/x") == 200  # same path on the same connection, now the catch-all
        _reload(proc, config(["/public/webhooks"]))
        assert conn.get("/public/webhooks/x") == 200
    finally:
        conn.close()
    assert [r.path for r in hooks.snapshot()] == ["/public/webhooks/x", "/public/webhooks/x"]
    assert [r.path for r in app.snapshot()] == ["/public/webhooks/x"]


def test_a_changed_host_on_a_keepalive_connection_is_checked_again(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    edgeguard(eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}]))
    conn = _Connection(port, "127.0.0.1")
    try:
        assert conn.get("/a", host="one.test") == 200
        assert conn.get("/b", host="one.test") == 200
        assert conn.get("/c", host="two.test:8080") == 200
        conn.sock.sendall(eg.build_request("GET", "/d", [], None, "bad host.test"))
        resp = eg.read_response(conn.reader, "GET")
        assert resp.status == 400, resp.status
    finally:
        conn.close()
    assert [(r.path, r.header("host")) for r in up.snapshot()] == [("/a", "one.test"), ("/b", "one.test"),
                                                                  ("/c", "two.test:8080")]


def test_a_body_that_stalls_after_a_bodyless_request_on_the_connection_still_gets_408(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    edgeguard(eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}],
                              timeouts={"client_body_idle": eg.ms(500)}))
    with eg.Client(port) as c:
        assert c.request("GET", "/first").status == 200  # body-less: no body timer was needed
        c.send(b"POST /second HTTP/1.1\r\nHost: edgeguard.test\r\nContent-Length: 10\r\n\r\n12345")
        resp = c.read_response("POST", timeout=10)
        assert resp.status == 408, resp.status


def test_a_response_body_that_stalls_after_its_head_is_cut_by_upstream_body_idle(upstreams, edgeguard):
    gate = threading.Event()
    up = upstreams("app", lambda req: eg.Reply(chunks=[b"first", b"second"], chunk_gate=gate))
    port = eg.free_port()
    # The response-header timeout is far longer than the test: only the body idle timeout, which takes over
    # once the head is relayed, can end this response.
    edgeguard(eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}],
                              timeouts={"upstream_response_header": "120s", "upstream_body_idle": eg.ms(500)}))
    try:
        with eg.Client(port, timeout=30) as c:
            c.send(eg.build_request("GET", "/slow"))
            head = c.reader.read_until(b"\r\n\r\n", timeout=10)
            assert b" 200 " in head.split(b"\r\n", 1)[0]
            start = time.monotonic()
            body = b""
            while True:  # the first chunk, then the cut: EOF (or a reset) without the last chunk
                try:
                    data = c.reader.read_some(timeout=60)
                except ConnectionResetError:
                    break
                if not data:
                    break
                body += data
            assert time.monotonic() - start < 60  # well before the 120 s response-header timeout
            assert b"first" in body and not body.endswith(b"0\r\n\r\n"), body
    finally:
        gate.set()
