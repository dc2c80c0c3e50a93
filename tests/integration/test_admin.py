"""The admin listener through the real binary: /healthz, /readyz, /metrics (strict Prometheus text that moves with
traffic and carries no client IPs or raw paths), its allowlist, POST /reload, and the JSON access log."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time

import pytest

import eg
import promtext
from ops_helpers import admin_get


def scrape(port: int) -> dict:
    r = admin_get(port, "/metrics")
    assert r.status == 200, r
    assert r.header("content-type").startswith("text/plain; version=0.0.4")
    return promtext.parse(r.body.decode("utf-8"))


@pytest.fixture
def proxied(upstreams, edgeguard, tmp_path):
    """An edgeguard with one upstream on route "all", a known admin port and a file access log."""

    def make(admin: dict | None = None, access_log: dict | None = None, handler=None):
        up = upstreams("app", handler)
        port, admin_port = eg.free_port(), eg.free_port()
        config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}],
                                 admin_port=admin_port)
        config["admin"].update(admin or {})
        log_path = tmp_path / "access.log"
        config["access_log"] = access_log or {"output": str(log_path)}
        proc = edgeguard(config)
        assert eg.wait_until(lambda: _listening(admin_port), eg.READY_TIMEOUT), proc.stderr()
        return proc, up, admin_port, log_path

    return make


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((eg.LOOPBACK, port), timeout=0.2):
            return True
    except OSError:
        return False


def test_promtext_parser_rejects_malformed_text():
    """The parser guards the scrape tests, so it must refuse each class of mistake (runs without the binary)."""
    bad = [
        "x_total 1\n",
        "# TYPE x counter\nx 1",
        '# TYPE x counter\nx{a="b\\q"} 1\n',
        '# TYPE x counter\nx{a="b"}  1\n',
        "# TYPE x counter\nx -1\n",
        "# TYPE x counter\nx 1\nx 1\n",
        '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
        '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n',
        "# TYPE x counter\n# TYPE y gauge\ny 1\n# HELP x again\n",
    ]
    for text in bad:
        with pytest.raises(promtext.ExpositionError):
            promtext.parse(text)
    ok = promtext.parse('# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\n'
                        "h_sum 3\nh_count 2\n")
    assert promtext.value(ok, "h_count", "h") == 2


def test_healthz_and_readyz(proxied):
    proc, _, admin_port, _ = proxied()
    r = admin_get(admin_port, "/healthz")
    assert r.status == 200 and r.json() == {"status": "ok"}
    # Ready once config is loaded, workers run and listeners are bound (the fixture waited for the listener).
    assert eg.wait_until(lambda: admin_get(admin_port, "/readyz").status == 200, 5.0)
    assert admin_get(admin_port, "/readyz").json() == {"status": "ready"}
    assert admin_get(admin_port, "/nope").status == 404
    assert admin_get(admin_port, "/metrics", method="POST").status == 405


def test_metrics_parse_and_move_with_traffic(proxied):
    proc, up, admin_port, _ = proxied()
    before = scrape(admin_port)
    base = promtext.value(before, "edgeguard_requests_total", route="all", code="2xx") or 0
    base_count = promtext.value(before, "edgeguard_request_duration_seconds_count",
                                "edgeguard_request_duration_seconds", route="all") or 0
    base_in = promtext.value(before, "edgeguard_received_bytes_total", route="all") or 0
    with eg.Client(proc.listen_port) as c:
        for i in range(3):
            assert c.request("POST", f"/e/?n={i}", body=b'{"event":"x"}').status == 200
    after = scrape(admin_port)
    assert promtext.value(after, "edgeguard_requests_total", route="all", code="2xx") == base + 3
    assert promtext.value(after, "edgeguard_request_duration_seconds_count", "edgeguard_request_duration_seconds",
                          route="all") == base_count + 3
    assert promtext.value(after, "edgeguard_received_bytes_total", route="all") >= base_in + 3 * 13
    assert promtext.value(after, "edgeguard_upstream_duration_seconds_count", "edgeguard_upstream_duration_seconds",
                          upstream="app") >= 3
    assert promtext.value(after, "edgeguard_config_info", hash=_config_hash(after)) == 1


def _config_hash(families: dict) -> str:
    samples = families["edgeguard_config_info"].samples
    assert len(samples) == 1
    return samples[0][1]["hash"]


def test_metrics_carry_no_client_ip_or_raw_path(proxied):
    proc, _, admin_port, _ = proxied()
    with eg.Client(proc.listen_port) as c:
        c.request("GET", "/very-secret-path-4711/x?email=a@b.c")
    text = admin_get(admin_port, "/metrics").body.decode()
    assert "very-secret-path-4711" not in text
    assert "a@b.c" not in text
    for fam in promtext.parse(text).values():
        for _, labels, _ in fam.samples:
            assert "127.0.0.1" not in labels.values()
            assert set(labels) <= {"route", "code", "le", "upstream", "state", "reason", "profile", "rule",
                                   "action", "verdict", "hash", "version", "listener"}, labels


def test_admin_allowlist_refuses_other_loopback_peers(proxied):
    proc, _, admin_port, _ = proxied(admin={"allow": ["127.0.0.1/32"]})
    assert admin_get(admin_port, "/healthz", source="127.0.0.1").status == 200
    # The whole 127/8 is loopback, so 127.0.0.2 is a distinct peer outside the allowlist.
    try:
        r = admin_get(admin_port, "/metrics", source="127.0.0.2")
        assert r.status == 403
    except (eg.PeerClosed, ConnectionResetError):
        pass  # refusing at accept time is also a refusal


def test_reload_endpoint_counts_reloads(proxied):
    proc, _, admin_port, _ = proxied()
    before = promtext.value(scrape(admin_port), "edgeguard_config_reloads_total")
    assert admin_get(admin_port, "/reload").status in (404, 405)  # never on GET
    r = admin_get(admin_port, "/reload", method="POST")
    assert r.status == 200, r.body
    assert promtext.value(scrape(admin_port), "edgeguard_config_reloads_total") == before + 1


def test_readyz_flips_to_503_while_draining(proxied):
    release = threading.Event()
    proc, up, admin_port, _ = proxied(handler=lambda req: eg.Reply(action="hang", release=release, body=b"ok"))
    assert eg.wait_until(lambda: admin_get(admin_port, "/readyz").status == 200, 5.0)
    client = eg.Client(proc.listen_port)
    try:
        client.send(eg.build_request("GET", "/slow"))
        up.wait_requests(1)
        proc.signal(signal.SIGTERM)  # drain: the in-flight request keeps the process alive
        assert eg.wait_until(lambda: _readyz_status(admin_port) in (503, None), 5.0)
        release.set()
        assert client.read_response().status == 200
    finally:
        release.set()
        client.close()
    assert proc.wait_exit() == 0


def _readyz_status(port: int):
    try:
        return admin_get(port, "/readyz").status
    except OSError:
        return None  # the admin listener already closed: also "not ready"


def test_access_log_lines_are_json_without_secrets(proxied):
    proc, _, _, log_path = proxied()
    with eg.Client(proc.listen_port) as c:
        r = c.request("POST", "/batch/?token=phc_secret_token&data=eyJzZWNyZXQiOjF9",
                      headers=[("Authorization", "Bearer sk-live-authsecret"), ("Cookie", "session=cookiesecret")],
                      body=b'{"batch":[]}')
        assert r.status == 200
        c.request("GET", "/caf\xc3\xa9".encode().decode("latin-1"))
    assert eg.wait_until(lambda: log_path.exists() and len(log_path.read_bytes().splitlines()) >= 2, 5.0)
    raw = log_path.read_bytes()
    for secret in (b"phc_secret_token", b"eyJzZWNyZXQiOjF9", b"sk-live-authsecret", b"cookiesecret"):
        assert secret not in raw
    lines = [json.loads(line) for line in raw.decode("utf-8").splitlines()]
    first = next(l for l in lines if l["method"] == "POST")
    for key in ("ts", "client_ip", "method", "host", "path", "status", "bytes_in", "bytes_out", "duration_ms",
                "upstream", "upstream_ms", "route", "verdict", "rule_ids"):
        assert key in first, key
    assert first["path"] == "/batch/"
    assert first["status"] == 200 and first["route"] == "all" and first["upstream"] == "app"
    assert first["bytes_in"] > 0 and first["bytes_out"] > 0
    assert isinstance(first["ts"], float) and abs(first["ts"] - time.time()) < 600
