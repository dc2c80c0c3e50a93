"""The privacy step in the request path through the real binary: filtered routes buffer the
body, run the route's profile and forward the result with correct framing; other routes stream untouched."""

from __future__ import annotations

import gzip
import json

import pytest

import eg

RULES = eg.source_dir() / "conf" / "privacy.yaml"

PERSONAL = {"api_key": "phc_public", "batch": [
    {"event": "signup", "distinct_id": "u-1", "properties": {"$set": {"email": "john.doe@example.com"},
                                                            "plan": "pro"}}]}
CLEAN = b'{"api_key":"phc_public","batch":[{"event":"screen","distinct_id":"u-1","properties":{"plan":"pro"}}]}'


@pytest.fixture
def filtered(upstreams, edgeguard):
    # A shipped file: without it the feature under test is missing, never a reason to skip.
    assert RULES.exists(), "conf/privacy.yaml not present"
    capture = upstreams("capture")
    web = upstreams("web")
    port = eg.free_port()
    routes = [
        {"name": "capture", "paths": ["/e", "/batch"], "upstream": "capture", "privacy": "events",
         "max_body": "64KiB", "client_ip": "truncate"},
        {"name": "web", "paths": ["/"], "upstream": "web"},
    ]
    config = eg.basic_config(port, {"capture": [capture.address], "web": [web.address]}, routes,
                             extra={"privacy": {"rules": str(RULES)}})
    return edgeguard(config), capture, web


def test_personal_data_is_removed_and_reframed_as_plain_json(filtered):
    proc, capture, _ = filtered
    body = gzip.compress(json.dumps(PERSONAL).encode())
    with eg.Client(proc.listen_port) as c:
        r = c.request("POST", "/batch/", headers=[("Content-Type", "text/plain"), ("Content-Encoding", "gzip")],
                      body=body)
    assert r.status == 200
    (req,) = capture.wait_requests(1)
    assert b"john.doe@example.com" not in req.body
    forwarded = json.loads(req.body)
    assert forwarded["batch"][0]["properties"]["plan"] == "pro"
    assert req.header("Content-Type") == "application/json"
    assert req.header("Content-Encoding") is None
    assert req.header("Content-Length") == str(len(req.body))
    assert not req.chunked


def test_clean_payload_is_forwarded_byte_identical(filtered):
    proc, capture, _ = filtered
    with eg.Client(proc.listen_port) as c:
        r = c.request("POST", "/e/", headers=[("Content-Type", "application/json")], body=CLEAN)
    assert r.status == 200
    (req,) = capture.wait_requests(1)
    assert req.body == CLEAN
    assert req.header("Content-Length") == str(len(CLEAN))


def test_chunked_request_is_buffered_and_forwarded_with_content_length(filtered):
    proc, capture, _ = filtered
    with eg.Client(proc.listen_port) as c:
        c.send(eg.build_request("POST", "/e/", headers=[("Content-Type", "application/json"),
                                                        ("Transfer-Encoding", "chunked")],
                                body=eg.encode_chunked([CLEAN[:10], CLEAN[10:]])))
        assert c.read_response().status == 200
    (req,) = capture.wait_requests(1)
    assert req.body == CLEAN and not req.chunked
    assert req.header("Content-Length") == str(len(CLEAN))


def test_undecodable_body_is_rejected_in_captures_style_and_never_forwarded(filtered):
    proc, capture, _ = filtered
    with eg.Client(proc.listen_port) as c:
        r = c.request("POST", "/batch/", headers=[("Content-Type", "application/json")], body=b"{not json")
        assert 400 <= r.status < 500
        doc = r.json()
        assert doc["status"] == r.status and doc["code"] and doc["error"]
        # The connection survives a rejection of a fully read body.
        assert c.request("POST", "/e/", headers=[("Content-Type", "application/json")], body=CLEAN).status == 200
    assert len(capture.wait_requests(1)) == 1
    assert capture.snapshot()[0].body == CLEAN


def test_body_over_the_route_limit_gives_413_and_upstream_sees_nothing(filtered):
    proc, capture, _ = filtered
    big = b"x" * (65 * 1024)
    with eg.Client(proc.listen_port) as c:
        c.send(eg.build_request("POST", "/batch/", headers=[("Transfer-Encoding", "chunked")],
                                body=eg.encode_chunked([big[:40000], big[40000:]])))
        eg.assert_json_error(c.read_response(), 413)
    assert capture.snapshot() == []


def test_options_preflight_passes_untouched(filtered):
    proc, capture, _ = filtered
    with eg.Client(proc.listen_port) as c:
        r = c.request("OPTIONS", "/batch/", headers=[("Origin", "https://app.example"),
                                                     ("Access-Control-Request-Method", "POST")])
    assert r.status == 200
    (req,) = capture.wait_requests(1)
    assert req.method == "OPTIONS" and req.header("Origin") == "https://app.example"


def test_client_ip_policy_truncates_x_forwarded_for(filtered):
    proc, capture, _ = filtered
    with eg.Client(proc.listen_port) as c:
        c.request("POST", "/e/", headers=[("Content-Type", "application/json"), ("X-Forwarded-For", "8.8.8.8")],
                  body=CLEAN)
    (req,) = capture.wait_requests(1)
    assert req.header_all("X-Forwarded-For") == ["127.0.0.0"]


def test_routes_without_a_profile_stream_untouched(filtered):
    proc, _, web = filtered
    body = json.dumps(PERSONAL).encode()
    with eg.Client(proc.listen_port) as c:
        assert c.request("POST", "/api/things", headers=[("Content-Type", "application/json")],
                         body=body).status == 200
    (req,) = web.wait_requests(1)
    assert req.body == body
    assert req.header("X-Forwarded-For") == "127.0.0.1"


def test_get_with_data_is_filtered_and_get_without_data_passes(filtered):
    """A GET carries an event only in ?data=; a GET with other query parameters has nothing to inspect."""
    import base64
    import urllib.parse
    proc, capture, _ = filtered
    data = base64.b64encode(json.dumps(PERSONAL).encode()).decode()
    with eg.Client(proc.listen_port) as c:
        r1 = c.request("GET", "/e/?ver=1.2&_=1700000000000")
        r2 = c.request("GET", "/e/?data=" + urllib.parse.quote(data, safe="") + "&ver=1.2")
    assert r1.status == 200 and r2.status == 200
    plain, filtered_req = capture.wait_requests(2)
    assert plain.target == "/e/?ver=1.2&_=1700000000000" and plain.body == b""
    assert b"john.doe@example.com" not in filtered_req.body
    assert "data=" not in filtered_req.target and json.loads(filtered_req.body)["batch"][0]["properties"]["plan"] == "pro"
