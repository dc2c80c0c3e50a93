"""Access control and `edgeguard check` through the real binary: the listener allowlist refuses a loopback peer
outside it before any parsing (the whole 127/8 is loopback, so 127.0.0.2 is a distinct peer), ::1 is served
when listed, a route's deny list answers 403 as JSON, and `check` points at a misspelled key by its line."""

from __future__ import annotations

import socket

import pytest

import eg




def test_check_points_at_a_misspelled_key_by_line(edgeguard_bin, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "listeners:\n"
        "  - address: 127.0.0.1:8080\n"
        "upstreams:\n"
        "  web: {servers: ['127.0.0.1:9000']}\n"
        "routes:\n"
        "  - name: web\n"
        "    paths: [/]\n"
        "    upsteam: web\n"
        "timeouts: {client_header: 10}\n")
    r = eg.run_cli(edgeguard_bin, "check", "--config", str(bad))
    assert r.returncode == 1, r
    assert r.stdout == ""
    assert f"{bad}:8:5: unknown key 'upsteam' in route 'web' (did you mean 'upstream'?)" in r.stderr
    assert f"{bad}:9:27: timeouts.client_header: expected a duration" in r.stderr


def test_check_accepts_the_default_config_with_one_summary_line(edgeguard_bin):
    conf = eg.source_dir() / "conf"
    # A shipped file: without it the feature under test is missing, never a reason to skip.
    assert (conf / "privacy.yaml").exists(), "conf/privacy.yaml not present"
    r = eg.run_cli(edgeguard_bin, "check", "--config", str(conf / "edgeguard.yaml"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r.stdout
    assert " OK: 1 listener, 10 upstreams, 10 routes, privacy rules " in lines[0]


def test_listener_allowlist_refuses_another_loopback_peer_before_parsing(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    config["listeners"][0]["allow"] = ["127.0.0.1/32"]
    edgeguard(config)
    assert eg.status_of(eg.request_from("127.0.0.1", port)) == 200
    assert eg.request_from("127.0.0.2", port) == b""  # closed without a byte of response
    assert len(up.snapshot()) == 1  # the refused request never reached the upstream


def _ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("allow, served", [(["10.1.1.0/24", "127.0.0.0/8", "::1"], True), (["127.0.0.1/32"], False)])
def test_ipv6_loopback_is_served_only_when_listed(upstreams, edgeguard, allow, served):
    if not _ipv6_loopback_available():
        pytest.skip(eg.SKIP_NO_IPV6)
    up = upstreams("app")
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    config["listeners"][0]["address"] = f"[::1]:{port}"
    config["listeners"][0]["allow"] = allow
    if not served:
        # Readiness is probed by connecting, which this allowlist refuses; an extra listener gives it a door.
        config["listeners"].insert(0, {"name": "probe", "address": f"127.0.0.1:{eg.free_port()}"})
    edgeguard(config)
    raw = eg.request_from("::1", port, family=socket.AF_INET6, host="::1")
    if served:
        assert eg.status_of(raw) == 200, raw
    else:
        assert raw == b""
        assert up.snapshot() == []


def test_route_deny_list_answers_403_json(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    routes = [{"name": "hooks", "paths": ["/public/webhooks"], "upstream": "app", "deny": ["127.0.0.2/32"],
               "privacy": "none"},
              {"name": "all", "paths": ["/"], "upstream": "app"}]
    edgeguard(eg.basic_config(port, {"app": [up.address]}, routes))
    assert eg.status_of(eg.request_from("127.0.0.1", port, "/public/webhooks/x")) == 200
    raw = eg.request_from("127.0.0.2", port, "/public/webhooks/x")
    assert eg.status_of(raw) == 403, raw
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"application/json" in head.lower()
    assert b'"status": 403' in body or b'"status":403' in body
    assert eg.status_of(eg.request_from("127.0.0.2", port, "/other")) == 200
    assert [r.path for r in up.snapshot()] == ["/public/webhooks/x", "/other"]


def test_expect_100_continue_from_a_denied_client_gets_403_and_nothing_reaches_the_upstream(upstreams, edgeguard):
    """A refused client must not be invited to send its body: the 403 is the first and final answer."""
    up = upstreams("app")
    port = eg.free_port()
    routes = [{"name": "hooks", "paths": ["/public/webhooks"], "upstream": "app", "deny": ["127.0.0.2/32"],
               "privacy": "none"},
              {"name": "all", "paths": ["/"], "upstream": "app"}]
    edgeguard(eg.basic_config(port, {"app": [up.address]}, routes))
    head = eg.expect_continue_head(port, "/public/webhooks/denied", source="127.0.0.2")
    assert head.startswith(b"HTTP/1.1 403 "), head
    # The same route from an allowed peer gets its 100, and is the sentinel: once it has reached the upstream,
    # the refused request had every chance to, and must not have.
    with eg.Client(port) as c:
        c.send(eg.build_request("POST", "/public/webhooks/allowed", [("Content-Length", "11"),
                                                                    ("Expect", "100-continue")]))
        interim = c.reader.read_until(b"\r\n\r\n", timeout=eg.IO_TIMEOUT)
        assert interim.startswith(b"HTTP/1.1 100"), interim
        c.send(b"hello world")
        assert c.read_response().status == 200
    assert [(r.path, r.body) for r in up.snapshot()] == [("/public/webhooks/allowed", b"hello world")]
