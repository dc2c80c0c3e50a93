"""Fixed response fields per listener and per route: added to upstream responses unless the upstream set the
field itself (kept, unless `override: true`), added to edgeguard's own error responses, refused by `check` when
a name or value could not be a header field or names one edgeguard manages.
"""

from __future__ import annotations

import eg

HSTS = "max-age=63072000; includeSubDomains"


def handler(req: eg.RecordedRequest) -> eg.Reply:
    headers = [("Content-Type", "application/json")]
    if req.path.startswith("/own"):
        headers += [("X-Frame-Options", "SAMEORIGIN"), ("Strict-Transport-Security", "max-age=1"),
                    ("Referrer-Policy", "origin")]
    return eg.Reply(headers=headers, body=b"{}")


def start(upstreams, edgeguard):
    up = upstreams("app", handler)
    port = eg.free_port()
    routes = [
        {"name": "static", "paths": ["/static"], "upstream": "app",
         "response_headers": [{"name": "Cache-Control", "value": "public, max-age=31536000"},
                              {"name": "X-Frame-Options", "value": "SAMEORIGIN"}]},
        {"name": "all", "paths": ["/"], "upstream": "app"},
    ]
    config = eg.basic_config(port, {"app": [up.address]}, routes)
    config["listeners"][0]["response_headers"] = [
        {"name": "Strict-Transport-Security", "value": HSTS},
        {"name": "X-Content-Type-Options", "value": "nosniff"},
        {"name": "X-Frame-Options", "value": "DENY", "override": True},
        {"name": "Referrer-Policy", "value": "strict-origin-when-cross-origin", "override": True},
    ]
    edgeguard(config)
    return port


def test_fields_added_upstream_kept_unless_override(upstreams, edgeguard):
    port = start(upstreams, edgeguard)
    with eg.Client(port) as c:
        plain = c.request("GET", "/x")
        own = c.request("GET", "/own")
        static = c.request("GET", "/static/app.js")
    assert plain.status == 200
    assert plain.header("strict-transport-security") == HSTS
    assert plain.header("x-content-type-options") == "nosniff"
    assert plain.header("x-frame-options") == "DENY"
    # The upstream's own HSTS is kept (no override); its X-Frame-Options and Referrer-Policy are replaced.
    assert eg.header_values(own.headers, "strict-transport-security") == ["max-age=1"]
    assert eg.header_values(own.headers, "x-frame-options") == ["DENY"]
    assert eg.header_values(own.headers, "referrer-policy") == ["strict-origin-when-cross-origin"]
    assert own.body == b"{}"
    # The route's fields join the listener's; the route's X-Frame-Options (no override) replaces the listener's.
    assert static.header("cache-control") == "public, max-age=31536000"
    assert static.header("x-frame-options") == "SAMEORIGIN"
    assert static.header("strict-transport-security") == HSTS


def test_fields_on_edgeguards_own_responses(upstreams, edgeguard):
    port = start(upstreams, edgeguard)
    with eg.Client(port) as c:
        c.send(b"GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
        resp = c.read_response()
    assert resp.status == 400
    assert resp.header("strict-transport-security") == HSTS
    assert resp.header("x-content-type-options") == "nosniff"
    assert resp.header("content-type") == "application/json"
    assert b"duplicate content-length" in resp.body.lower()


def check_fields(edgeguard_bin, tmp_path, fields) -> str:
    config = eg.basic_config(eg.free_port(), {"app": ["127.0.0.1:9"]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    config["listeners"][0]["response_headers"] = fields
    path = tmp_path / "edgeguard.yaml"
    path.write_text(eg.dump_yaml(config))
    r = eg.run_cli(edgeguard_bin, "check", "--config", str(path))
    return "" if r.returncode == 0 else r.stderr


def test_check_validates_names_and_values(edgeguard_bin, tmp_path):
    assert check_fields(edgeguard_bin, tmp_path, [{"name": "X-Content-Type-Options", "value": "nosniff"}]) == ""
    assert "not a token" in check_fields(edgeguard_bin, tmp_path, [{"name": "Bad Name", "value": "x"}])
    assert "control" in check_fields(edgeguard_bin, tmp_path, [{"name": "X-A", "value": "a\r\nSet-Cookie: x=1"}])
    assert "managed by edgeguard" in check_fields(edgeguard_bin, tmp_path, [{"name": "Content-Length", "value": "5"}])
    assert "managed by edgeguard" in check_fields(edgeguard_bin, tmp_path, [{"name": "Connection", "value": "close"}])
    assert "listed twice" in check_fields(edgeguard_bin, tmp_path, [{"name": "X-A", "value": "1"},
                                                                     {"name": "x-a", "value": "2"}])
    assert "empty" in check_fields(edgeguard_bin, tmp_path, [{"name": "X-A", "value": ""}])
