"""Logs an operator can act on, through the real binary: the access log's `error` field names why edgeguard
answered a request itself or why the upstream exchange failed (with the upstream and its server on 502/504),
connections refused at accept leave a rate-limited process log line that counts the ones it did not log, and
every process message on stderr is a JSON line with a timestamp and a level."""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest

import eg

RULES = eg.source_dir() / "conf" / "privacy.yaml"
SECRET = "phx_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0uVw"


def _closed_port() -> int:
    """A loopback port nothing listens on (bound then released, so a connect is refused)."""
    return eg.free_port()


def _log_lines(path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _entry_for(path, target: str, timeout: float = 5.0) -> dict:
    found: list[dict] = []

    def seen() -> bool:
        found[:] = [e for e in _log_lines(path) if e["path"] == target]
        return bool(found)

    assert eg.wait_until(seen, timeout), f"no access log line for {target}: {_log_lines(path)}"
    return found[-1]


@pytest.fixture
def logged(upstreams, edgeguard, tmp_path):
    """Routes that each end in one way: a working upstream, a refused one, a slow one, one that resets, a
    rate-limited route, a denied route and a small body limit; the access log goes to a file."""
    slow = upstreams("slow", lambda req: eg.Reply(action="hang"))
    reset = upstreams("reset", lambda req: eg.Reply(action="close"))
    app = upstreams("app")
    refused = f"{eg.LOOPBACK}:{_closed_port()}"
    port = eg.free_port()
    routes = [
        {"name": "refused", "paths": ["/refused"], "upstream": "refused"},
        {"name": "slow", "paths": ["/slow"], "upstream": "slow"},
        {"name": "reset", "paths": ["/reset"], "upstream": "reset"},
        {"name": "limited", "paths": ["/limited"], "upstream": "app", "rate_limit": "tight"},
        {"name": "denied", "paths": ["/denied"], "upstream": "app", "deny": ["127.0.0.0/8"]},
        {"name": "small", "paths": ["/small"], "upstream": "app", "max_body": "1KB"},
        {"name": "app", "paths": ["/app"], "upstream": "app"},
    ]
    config = eg.basic_config(port, {"refused": [refused], "slow": [slow.address], "reset": [reset.address],
                                    "app": [app.address]}, routes,
                             timeouts={"upstream_response_header": eg.ms(400)},
                             extra={"rate_limits": {"tight": {"rate": "1/h", "burst": 1}}})
    log_path = tmp_path / "access.log"
    config["access_log"] = {"output": str(log_path)}
    return edgeguard(config), log_path, refused, slow


def _request(port: int, method: str, target: str, headers=None, body=None) -> eg.Response:
    with eg.Client(port) as c:
        return c.request(method, target, headers=[("Connection", "close")] + (headers or []), body=body)


def test_every_local_answer_and_upstream_failure_says_why(logged):
    proc, log_path, refused, slow = logged
    port = proc.listen_port
    assert _request(port, "GET", "/app").status == 200
    assert _request(port, "GET", "/nowhere").status == 404
    assert _request(port, "GET", "/denied").status == 403
    assert _request(port, "GET", "/limited").status == 200
    assert _request(port, "GET", "/limited?again").status == 429
    assert _request(port, "POST", "/small", body=b"x" * 2000).status == 413
    assert _request(port, "GET", "/refused").status == 502
    assert _request(port, "GET", "/slow").status == 504
    assert _request(port, "GET", "/reset").status == 502
    with eg.Client(port) as c:
        c.send(b"GET /app HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        assert c.read_response().status == 400

    ok = _entry_for(log_path, "/app")
    assert "error" not in ok or ok["error"] is None  # a proxied 200 has no error
    assert _entry_for(log_path, "/nowhere")["error"] == "no_route"
    assert _entry_for(log_path, "/denied")["error"] == "allowlist"
    assert _entry_for(log_path, "/small")["error"] == "body_too_large"

    limited = [e for e in _log_lines(log_path) if e["path"] == "/limited" and e["status"] == 429]
    assert limited and limited[0]["error"] == "rate_limited"

    refused_line = _entry_for(log_path, "/refused")
    assert refused_line["error"] == "upstream_refused"
    assert refused_line["upstream"] == "refused" and refused_line["upstream_server"] == refused

    slow_line = _entry_for(log_path, "/slow")
    assert slow_line["error"] == "upstream_timeout"
    assert slow_line["upstream"] == "slow" and slow_line["upstream_server"] == slow.address

    reset_line = _entry_for(log_path, "/reset")
    assert reset_line["error"] == "upstream_reset" and reset_line["upstream"] == "reset"

    bad = [e for e in _log_lines(log_path) if e["status"] == 400]
    assert bad and bad[0]["error"].startswith("bad_request: ") and "Host" in bad[0]["error"], bad


def test_privacy_rejection_is_logged_as_such(upstreams, edgeguard, tmp_path):
    # A shipped file: without it the feature under test is missing, never a reason to skip.
    assert RULES.exists(), "conf/privacy.yaml not present"
    capture = upstreams("capture")
    port = eg.free_port()
    routes = [{"name": "capture", "paths": ["/e"], "upstream": "capture", "privacy": "events", "max_body": "64KiB"}]
    config = eg.basic_config(port, {"capture": [capture.address]}, routes, extra={"privacy": {"rules": str(RULES)}})
    log_path = tmp_path / "access.log"
    config["access_log"] = {"output": str(log_path)}
    proc = edgeguard(config)
    body = json.dumps({"event": "e", "properties": {"k": SECRET}}).encode()
    r = _request(proc.listen_port, "POST", "/e/", [("Content-Type", "application/json")], body)
    assert r.status == 422
    line = _entry_for(log_path, "/e/")
    assert line["error"] == "privacy_rejected" and line["verdict"] == "rejected"
    assert SECRET not in log_path.read_text()
    assert capture.snapshot() == []


def _refusal_lines(proc) -> list[str]:
    return [json.loads(l)["msg"] for l in proc.stderr().splitlines()
            if l.strip() and "connection refused at accept" in l]


def test_connections_refused_at_accept_leave_a_rate_limited_line_with_a_count(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}],
                             workers=1)
    config["listeners"][0]["allow"] = ["127.0.0.1/32"]
    proc = edgeguard(config)
    attempts = 6
    for _ in range(attempts - 1):
        with socket.socket() as s:
            s.settimeout(eg.IO_TIMEOUT)
            s.bind(("127.0.0.2", 0))
            s.connect((eg.LOOPBACK, port))
            assert s.recv(1) == b""  # closed at accept, nothing sent
    assert eg.wait_until(lambda: len(_refusal_lines(proc)) >= 1, 5.0), proc.stderr()
    time.sleep(1.2)  # past the one-line-a-second window, so the next refusal is logged with the count
    with socket.socket() as s:
        s.settimeout(eg.IO_TIMEOUT)
        s.bind(("127.0.0.2", 0))
        s.connect((eg.LOOPBACK, port))
        assert s.recv(1) == b""
    assert eg.wait_until(lambda: len(_refusal_lines(proc)) >= 2, 5.0), proc.stderr()
    lines = _refusal_lines(proc)
    assert all("reason=allowlist" in l and "peer=127.0.0.2" in l for l in lines), lines
    # Every refusal is either a line of its own or counted in the next line's `suppressed=`.
    suppressed = sum(int(l.rsplit("suppressed=", 1)[1]) for l in lines)
    assert len(lines) + suppressed == attempts, lines
    assert len(lines) < attempts  # rate-limited: a burst does not give one line per connection


def test_process_messages_are_json_lines_with_time_and_level(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    proc = edgeguard(config)
    proc.signal(signal.SIGHUP)
    assert eg.wait_until(lambda: "config reloaded" in proc.stderr(), 10.0), proc.stderr()
    lines = [l for l in proc.stderr().splitlines() if l.strip()]
    assert lines
    entries = [json.loads(l) for l in lines]
    for e in entries:
        assert set(e) == {"time", "level", "msg"}, e
        assert e["level"] in ("info", "warning", "error")
        assert e["time"].endswith("Z") and "T" in e["time"]
    msgs = [e["msg"] for e in entries]
    assert any(m.startswith("edgeguard: ready") for m in msgs), msgs
    assert any(m.startswith("edgeguard: config reloaded") for m in msgs), msgs


def test_a_config_error_at_start_is_a_json_error_line(edgeguard_bin, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("listeners: [\n")
    r = eg.run_cli(edgeguard_bin, "serve", "--config", str(bad))
    assert r.returncode == 1
    entries = [json.loads(l) for l in r.stderr.splitlines() if l.strip()]
    assert entries and all(e["level"] == "error" for e in entries), entries
    assert any("not starting" in e["msg"] for e in entries)
