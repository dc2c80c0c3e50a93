"""A 413 means nothing was forwarded, through the real binary: on a route whose body limit fits in memory
(≤ 1 MiB, like the 512 KB webhook route) a chunked body is held whole before the upstream is contacted, so a
body over the limit never reaches it and one under the limit arrives with a Content-Length. On a streaming
route (limit above 1 MiB) the upstream may already hold part of the body when the limit trips; the access log
then names that upstream and says so."""

from __future__ import annotations

import json

import eg


def _config(port: int, up: eg.Upstream, max_body: str) -> dict:
    return eg.basic_config(port, {"plugins": [up.address]},
                           [{"name": "webhooks", "paths": ["/public/webhooks"], "upstream": "plugins",
                             # The buffering under test, without a privacy profile's inspection.
                             "max_body": max_body, "privacy": "none"}])


def test_chunked_body_over_a_small_limit_gets_413_with_nothing_forwarded(upstreams, edgeguard):
    up = upstreams("plugins")
    proc = edgeguard(_config(eg.free_port(), up, "512KB"))
    piece = b"w" * (100 * 1024)
    with eg.Client(proc.listen_port) as c:
        c.send(eg.build_request("POST", "/public/webhooks/hook", headers=[("Transfer-Encoding", "chunked")],
                                body=eg.encode_chunked([piece] * 6)))  # 600 KiB
        eg.assert_json_error(c.read_response(timeout=10), 413)
    assert up.connections_accepted == 0 and up.bytes_received == 0 and up.snapshot() == []


def test_chunked_body_under_a_small_limit_arrives_whole_with_content_length(upstreams, edgeguard):
    up = upstreams("plugins")
    proc = edgeguard(_config(eg.free_port(), up, "512KB"))
    pieces = [bytes([65 + i]) * 50_000 for i in range(4)]
    with eg.Client(proc.listen_port) as c:
        r = c.request("POST", "/public/webhooks/hook", headers=[("Transfer-Encoding", "chunked")],
                      body=eg.encode_chunked(pieces))
        assert r.status == 200
    (req,) = up.wait_requests(1)
    assert req.body == b"".join(pieces)
    assert req.header("Content-Length") == str(len(req.body)) and not req.chunked


def test_streaming_route_names_the_upstream_that_saw_a_partial_body(upstreams, edgeguard, tmp_path):
    up = upstreams("plugins")
    config = _config(eg.free_port(), up, "2MiB")  # above the buffering bound: streamed
    log_path = tmp_path / "access.log"
    config["access_log"] = {"output": str(log_path)}
    proc = edgeguard(config)
    piece = b"s" * (512 * 1024)
    with eg.Client(proc.listen_port) as c:
        try:
            # 2.5 MiB: edgeguard answers at the limit and stops reading, so the rest may not be accepted.
            c.send(eg.build_request("POST", "/public/webhooks/big", headers=[("Transfer-Encoding", "chunked")],
                                    body=eg.encode_chunked([piece] * 5)))
        except OSError:
            pass
        try:
            status = c.read_response(timeout=10).status
        except (eg.PeerClosed, OSError):
            status = None
    assert status in (413, None)
    assert eg.wait_until(lambda: log_path.exists() and log_path.read_text().strip(), 5.0)
    (line,) = [json.loads(l) for l in log_path.read_text().splitlines() if l.strip()]
    assert line["status"] == 413
    assert line["error"] == "body_too_large: partial body sent upstream"
    assert line["upstream"] == "plugins" and line["upstream_server"] == up.address
