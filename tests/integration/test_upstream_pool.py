"""Upstream pools through the real binary: reuse, the one retry on a reused connection, refused servers
skipped, round-robin, and names resolved asynchronously."""

from __future__ import annotations

import eg


def test_request_failing_on_a_reused_connection_is_retried_once_on_a_fresh_one(simple_proxy):
    # The upstream answers the first request on each connection and silently closes on the second: the
    # classic race with a keep-alive timeout. A body-less request is retried on a new connection.
    proc, up = simple_proxy(lambda req: eg.Reply(action="close") if req.seq_on_conn > 0 else eg.Reply(body=b"ok"),
                            workers=1)
    with eg.Client(proc.listen_port) as c:
        assert c.request("GET", "/one").status == 200
        r = c.request("GET", "/two")
        assert r.status == 200 and r.body == b"ok"
    reqs = up.wait_requests(3)
    assert [(r.path, r.seq_on_conn) for r in reqs] == [("/one", 0), ("/two", 1), ("/two", 0)]


def test_streamed_body_on_a_reused_connection_is_not_replayed(simple_proxy):
    proc, up = simple_proxy(lambda req: eg.Reply(action="close") if req.seq_on_conn > 0 else eg.Reply(body=b"ok"),
                            workers=1)
    with eg.Client(proc.listen_port) as c:
        assert c.request("GET", "/warm").status == 200
        eg.assert_json_error(c.request("POST", "/upload", body=b"x" * 1000), 502)
    assert len(up.wait_requests(2)) == 2


def test_refused_server_is_skipped_and_round_robin_spreads_requests(upstreams, edgeguard):
    a = upstreams("a")
    b = upstreams("b")
    dead = f"127.0.0.1:{eg.free_port()}"
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [dead, a.address, b.address]},
                             [{"name": "all", "paths": ["/"], "upstream": "app"}], workers=1)
    proc = edgeguard(config)
    for i in range(6):
        # A new client connection each time, so every request picks the next server afresh.
        with eg.Client(proc.listen_port) as c:
            assert c.request("GET", f"/r{i}", headers=[("Connection", "close")]).status == 200
    assert len(a.snapshot()) >= 2 and len(b.snapshot()) >= 2
    assert len(a.snapshot()) + len(b.snapshot()) == 6


def test_upstream_host_names_are_resolved(upstreams, edgeguard):
    up = upstreams("named")
    port = eg.free_port()
    upstream_port = up.address.rsplit(":", 1)[1]
    config = eg.basic_config(port, {"app": [f"localhost:{upstream_port}"]},
                             [{"name": "all", "paths": ["/"], "upstream": "app"}], workers=1)
    proc = edgeguard(config)
    with eg.Client(proc.listen_port) as c:
        assert c.request("GET", "/by-name").status == 200
    assert up.wait_requests(1)[0].path == "/by-name"
