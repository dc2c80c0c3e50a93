"""The metrics an SRE expects, from a live /metrics of the real binary: status codes one by one beside the
classes, the standard process_* families, latency buckets that start at 100 µs, and invalid JSON counted apart
from privacy rule hits. Every scrape goes through the strict exposition parser in promtext.py."""

from __future__ import annotations

import json
import os
import time

import pytest

import eg
import promtext
from ops_helpers import admin_get

RULES = eg.source_dir() / "conf" / "privacy.yaml"


def scrape(admin_port: int) -> dict:
    r = admin_get(admin_port, "/metrics")
    assert r.status == 200, r
    return promtext.parse(r.body.decode("utf-8"))


def value(families: dict, family: str, sample: str | None = None, **labels: str) -> float | None:
    return promtext.value(families, sample or family, family, **labels)


@pytest.fixture
def measured(upstreams, edgeguard):
    app = upstreams("app", lambda req: eg.Reply(status=int(req.path.rsplit("/", 1)[1]), body=b"x")
                    if req.path.startswith("/status/") else eg.Reply(body=b"ok"))
    port, admin_port = eg.free_port(), eg.free_port()
    routes = [{"name": "app", "paths": ["/"], "upstream": "app", "max_body": "1KB"}]
    extra = {"privacy": {"rules": str(RULES)}} if RULES.exists() else {}
    if extra:
        routes.insert(0, {"name": "capture", "paths": ["/e"], "upstream": "app", "privacy": "events",
                          "max_body": "64KiB"})
    config = eg.basic_config(port, {"app": [app.address]}, routes, admin_port=admin_port, extra=extra)
    proc = edgeguard(config)
    assert eg.wait_until(lambda: admin_get(admin_port, "/readyz").status == 200, eg.READY_TIMEOUT), proc.stderr()
    return proc, admin_port


def _send(port: int, method: str, target: str, body: bytes | None = None, headers=None) -> int:
    with eg.Client(port) as c:
        return c.request(method, target, headers=[("Connection", "close")] + (headers or []), body=body).status


def test_status_codes_are_counted_one_by_one_beside_the_classes(measured):
    proc, admin_port = measured
    port = proc.listen_port
    assert _send(port, "GET", "/status/404") == 404
    assert _send(port, "GET", "/status/503") == 503
    assert _send(port, "GET", "/status/503") == 503
    assert _send(port, "POST", "/big", body=b"x" * 2000) == 413
    assert _send(port, "GET", "/status/299") == 299
    f = scrape(admin_port)
    assert value(f, "edgeguard_responses_total", route="app", code="404") == 1
    assert value(f, "edgeguard_responses_total", route="app", code="503") == 2
    assert value(f, "edgeguard_responses_total", route="app", code="413") == 1
    assert value(f, "edgeguard_responses_total", route="app", code="other") == 1  # 299 is not tracked alone
    # The classes stay as they were.
    assert value(f, "edgeguard_requests_total", route="app", code="4xx") == 2
    assert value(f, "edgeguard_requests_total", route="app", code="5xx") == 2


def test_process_metrics_describe_this_process(measured):
    proc, admin_port = measured
    f = scrape(admin_port)
    open_fds = value(f, "process_open_fds")
    max_fds = value(f, "process_max_fds")
    assert open_fds is not None and max_fds is not None and 0 < open_fds <= max_fds
    # The process holds at least its listener, its admin socket and stdio.
    assert open_fds >= len(os.listdir(f"/proc/{proc.pid}/fd")) - 4
    rss = value(f, "process_resident_memory_bytes")
    assert rss is not None and rss > 1 << 20
    assert value(f, "process_virtual_memory_bytes") >= rss
    assert value(f, "process_cpu_seconds_total") >= 0
    start = value(f, "process_start_time_seconds")
    proc_start = os.stat(f"/proc/{proc.pid}").st_ctime
    assert start is not None and abs(start - proc_start) < 120 and start <= time.time() + 1
    assert f["process_cpu_seconds_total"].type == "counter"


def test_latency_buckets_start_at_100_microseconds(measured):
    proc, admin_port = measured
    assert _send(proc.listen_port, "GET", "/fast") == 200
    f = scrape(admin_port)
    first = value(f, "edgeguard_request_duration_seconds", "edgeguard_request_duration_seconds_bucket",
                  route="app", le="0.0001")
    assert first is not None, "no 100 µs bucket"
    assert value(f, "edgeguard_upstream_duration_seconds", "edgeguard_upstream_duration_seconds_bucket",
                 upstream="app", le="0.0001") is not None
    les = sorted(float(labels["le"]) for (name, labels, _) in f["edgeguard_request_duration_seconds"].samples
                 if name.endswith("_bucket") and labels.get("route") == "app")
    assert les[0] == 0.0001 and les[-1] == float("inf")


def test_invalid_json_is_counted_apart_from_rule_hits(measured):
    # A shipped file: without it the feature under test is missing, never a reason to skip.
    assert RULES.exists(), "conf/privacy.yaml not present"
    proc, admin_port = measured
    json_headers = [("Content-Type", "application/json")]
    assert _send(proc.listen_port, "POST", "/e/", b"{not json", json_headers) == 400
    secret = json.dumps({"event": "e", "properties": {"k": "phx_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0uVw"}})
    assert _send(proc.listen_port, "POST", "/e/", secret.encode(), json_headers) == 422
    f = scrape(admin_port)
    assert value(f, "edgeguard_privacy_requests_total", profile="events", verdict="invalid_json") == 1
    assert value(f, "edgeguard_privacy_requests_total", profile="events", verdict="rejected") == 1
    assert value(f, "edgeguard_privacy_requests_total", profile="events", verdict="decode_failed") == 0
    hits = f["edgeguard_privacy_decisions_total"].samples
    assert [labels["rule"] for (_, labels, _) in hits] == ["secrets"]  # the invalid body is no rule hit
