"""Metrics the first operations pass left out, through the real binary: per-listener TLS handshake counters
(by protocol version, resumed sessions, failures by reason class) and the access log's dropped-line count when
its output cannot keep up. Every scrape goes through the strict exposition parser in promtext.py.

Clients are Python's ssl module and raw sockets on 127.0.0.1 only; each has a timeout.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

import eg
import promtext
from ops_helpers import admin_get

F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, spelled out for Pythons that lack the constant

TLS_FAMILIES = ("edgeguard_tls_handshakes_total", "edgeguard_tls_resumed_handshakes_total",
                "edgeguard_tls_handshake_errors_total")


def scrape(admin_port: int) -> tuple[dict, str]:
    r = admin_get(admin_port, "/metrics")
    assert r.status == 200, r
    text = r.body.decode("utf-8")
    return promtext.parse(text), text


def sample(families: dict, family: str, **labels: str) -> float:
    v = promtext.value(families, family, family, **labels)
    assert v is not None, f"{family}{labels} missing"
    return v


# --------------------------------------------------------------------------------------------------------------
# TLS listeners


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl CLI to make test certificates")
    out = tmp_path_factory.mktemp("pki")
    script = eg.source_dir() / "tests" / "tls" / "make_certs.sh"
    subprocess.run(["bash", str(script), str(out)], check=True, timeout=60, capture_output=True)
    return out


def tls_listener(name: str, port: int, pki: Path, min_version: str) -> dict:
    return {"name": name, "address": f"{eg.LOOPBACK}:{port}",
            "tls": {"min_version": min_version,
                    "certificates": [{"cert": str(pki / "a.pem"), "key": str(pki / "a.key")}]}}


def client_context(pki: Path, max_version=None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    ctx.set_alpn_protocols(["http/1.1"])
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


def https_get_until_close(port: int, ctx: ssl.SSLContext, session=None):
    """One GET with Connection: close, read to EOF so TLS 1.3 tickets arrive; returns (status, session, reused)."""
    raw = socket.create_connection((eg.LOOPBACK, port), timeout=eg.IO_TIMEOUT)
    with ctx.wrap_socket(raw, server_hostname="a.test", session=session) as s:
        s.sendall(eg.build_request("GET", "/tls", [("Connection", "close")], host="a.test"))
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ssl.SSLEOFError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
        return int(data.split(b" ", 2)[1]), s.session, s.session_reused


def handshake_fails(port: int, ctx: ssl.SSLContext) -> bool:
    raw = socket.create_connection((eg.LOOPBACK, port), timeout=eg.IO_TIMEOUT)
    try:
        with ctx.wrap_socket(raw, server_hostname="a.test") as s:
            s.recv(1)  # a TLS 1.3 server reports a client-side rejection only when it reads the alert
    except (ssl.SSLError, ssl.CertificateError, ConnectionResetError, BrokenPipeError):
        return True
    finally:
        raw.close()
    return False


def test_tls_handshakes_resumptions_and_failures_by_listener(upstreams, edgeguard, pki):
    up = upstreams("app")
    main_port, strict_port, admin_port = eg.free_port(), eg.free_port(), eg.free_port()
    config = eg.basic_config(main_port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}],
                             admin_port=admin_port)
    config["listeners"] = [tls_listener("https", main_port, pki, "1.2"),
                           tls_listener("strict13", strict_port, pki, "1.3")]
    proc = edgeguard(config)
    assert eg.wait_until(lambda: admin_get(admin_port, "/readyz").status == 200, eg.READY_TIMEOUT), proc.stderr()
    before, _ = scrape(admin_port)
    for family in TLS_FAMILIES:
        assert before[family].type == "counter"

    # Succeeds: a full TLS 1.3 handshake, then one resumed from its ticket, then a full TLS 1.2 one.
    ctx13 = client_context(pki)
    status, session, reused = https_get_until_close(main_port, ctx13)
    assert status == 200 and not reused
    status, _, reused = https_get_until_close(main_port, ctx13, session=session)
    assert status == 200 and reused, "the second connection should resume from the session ticket"
    status, _, _ = https_get_until_close(main_port, client_context(pki, ssl.TLSVersion.TLSv1_2))
    assert status == 200

    # Fails, one of each class: TLS 1.2 against min_version 1.3; plain HTTP to a TLS port; a client that does not
    # trust the certificate (it aborts with an alert).
    assert handshake_fails(strict_port, client_context(pki, ssl.TLSVersion.TLSv1_2))
    with socket.create_connection((eg.LOOPBACK, main_port), timeout=eg.IO_TIMEOUT) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert eg.read_response(eg.SocketReader(s)).status == 400
    untrusting = ssl.create_default_context()  # system CAs only: our test CA is unknown to it
    assert handshake_fails(main_port, untrusting)

    def delta(family: str, **labels: str) -> float:
        return sample(after, family, **labels) - sample(before, family, **labels)

    # The failure callbacks run on the worker; a scrape right after the client saw the failure may precede them.
    def settled() -> bool:
        nonlocal after
        after, _ = scrape(admin_port)
        return delta("edgeguard_tls_handshake_errors_total", listener="https", reason="peer_alert") >= 1

    after: dict = {}
    assert eg.wait_until(settled, 5.0), after.get("edgeguard_tls_handshake_errors_total")
    after, text = scrape(admin_port)

    assert delta("edgeguard_tls_handshakes_total", listener="https", version="TLSv1.3") == 2
    assert delta("edgeguard_tls_handshakes_total", listener="https", version="TLSv1.2") == 1
    assert delta("edgeguard_tls_handshakes_total", listener="strict13", version="TLSv1.3") == 0
    assert delta("edgeguard_tls_resumed_handshakes_total", listener="https") == 1
    assert delta("edgeguard_tls_resumed_handshakes_total", listener="strict13") == 0
    assert delta("edgeguard_tls_handshake_errors_total", listener="strict13", reason="protocol_version") == 1
    assert delta("edgeguard_tls_handshake_errors_total", listener="https", reason="plain_http") == 1
    assert delta("edgeguard_tls_handshake_errors_total", listener="https", reason="peer_alert") == 1
    for reason in ("protocol_version", "no_shared_cipher", "alpn", "client_certificate", "malformed"):
        assert delta("edgeguard_tls_handshake_errors_total", listener="https", reason=reason) == 0, reason
    # Fixed label sets: listener names and closed enums, never a peer address or a client-sent server name.
    labels = {k for f in TLS_FAMILIES for _, ls, _ in after[f].samples for k in ls}
    assert labels <= {"listener", "version", "reason"}
    assert "127.0.0.1" not in text and "a.test" not in text

    # A reload carries the listener's counters over (they are monotonic counters, not per-snapshot).
    proc.signal(signal.SIGHUP)
    assert eg.wait_until(lambda: "config reloaded" in proc.stderr(), 5.0), proc.stderr()
    reloaded, _ = scrape(admin_port)
    assert sample(reloaded, "edgeguard_tls_handshakes_total", listener="https", version="TLSv1.3") == \
        sample(after, "edgeguard_tls_handshakes_total", listener="https", version="TLSv1.3")


def test_handshakes_cut_off_by_our_deadline_count_as_timeouts(upstreams, edgeguard, pki):
    """A client that opens a TLS connection and never finishes its handshake is closed by edgeguard's first-byte
    deadline; that is a failed handshake (reason "timeout"), while an idle keep-alive close after a completed
    handshake is not."""
    up = upstreams("app")
    port, admin_port = eg.free_port(), eg.free_port()
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}],
                             admin_port=admin_port, workers=1,
                             timeouts={"client_header": eg.ms(300), "client_keepalive": eg.ms(300)})
    config["listeners"] = [tls_listener("https", port, pki, "1.2")]
    proc = edgeguard(config)
    assert eg.wait_until(lambda: admin_get(admin_port, "/readyz").status == 200, eg.READY_TIMEOUT), proc.stderr()
    before, _ = scrape(admin_port)

    def closed_by_server(sock: socket.socket) -> bool:
        try:
            return sock.recv(1) == b""
        except (ConnectionResetError, ssl.SSLError):
            return True

    silent = socket.create_connection((eg.LOOPBACK, port), timeout=eg.IO_TIMEOUT)  # sends nothing
    partial = socket.create_connection((eg.LOOPBACK, port), timeout=eg.IO_TIMEOUT)
    partial.sendall(b"\x16\x03\x01\x00\xc8\x01\x00")  # the start of a ClientHello record, never finished
    completed = client_context(pki).wrap_socket(socket.create_connection((eg.LOOPBACK, port), timeout=eg.IO_TIMEOUT),
                                                server_hostname="a.test")
    completed.sendall(eg.build_request("GET", "/tls", [], host="a.test"))
    assert completed.recv(65536).startswith(b"HTTP/1.1 200")
    for s in (silent, partial, completed):  # each closed by the server's deadline, within the socket timeout
        assert closed_by_server(s)
        s.close()

    def delta(after: dict, family: str, **labels: str) -> float:
        return sample(after, family, **labels) - sample(before, family, **labels)

    def settled() -> bool:
        after, _ = scrape(admin_port)
        return delta(after, "edgeguard_tls_handshake_errors_total", listener="https", reason="timeout") >= 2

    assert eg.wait_until(settled, 5.0)
    after, _ = scrape(admin_port)
    assert delta(after, "edgeguard_tls_handshake_errors_total", listener="https", reason="timeout") == 2
    assert delta(after, "edgeguard_tls_handshake_failures_total") == 2
    assert delta(after, "edgeguard_tls_handshakes_total", listener="https", version="TLSv1.3") == 1
    for reason in ("peer_closed", "malformed", "other"):
        assert delta(after, "edgeguard_tls_handshake_errors_total", listener="https", reason=reason) == 0, reason


# --------------------------------------------------------------------------------------------------------------
# Access log


def pipelined(port: int, count: int, target: bytes) -> int:
    """Sends `count` GETs on keep-alive connections in batches; returns how many responses arrived."""
    answered = 0
    batch = 200
    request = b"GET " + target + b" HTTP/1.1\r\nHost: t\r\n\r\n"
    with socket.create_connection((eg.LOOPBACK, port), timeout=eg.IO_TIMEOUT) as s:
        reader = eg.SocketReader(s)
        while answered < count:
            n = min(batch, count - answered)
            s.sendall(request * n)
            for _ in range(n):
                eg.read_response(reader)
                answered += 1
    return answered


def test_access_log_drops_are_counted_when_stdout_is_blocked(edgeguard_bin, tmp_path):
    """stdout is a pipe nobody reads: the writer thread blocks, the worker's queue fills, lines are dropped and
    counted, requests never wait; once the pipe is read again, every line that was kept arrives intact."""
    port, admin_port = eg.free_port(), eg.free_port()
    config = eg.basic_config(port, {"app": [f"{eg.LOOPBACK}:{eg.free_port()}"]},
                             [{"name": "only", "paths": ["/only-this"], "upstream": "app"}],
                             admin_port=admin_port, workers=1)
    config["access_log"] = {"output": "stdout"}
    path = tmp_path / "edgeguard.yaml"
    path.write_text(eg.dump_yaml(config))
    stderr_path = tmp_path / "edgeguard.stderr"
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen([edgeguard_bin, "serve", "--config", str(path)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=err, cwd=tmp_path)
    reader = None
    lines: list[bytes] = []
    try:
        fcntl.fcntl(proc.stdout.fileno(), F_SETPIPE_SZ, 4096)  # the smallest pipe: it fills after ~15 lines
        assert eg.wait_until(lambda: b"edgeguard: ready" in stderr_path.read_bytes() or proc.poll() is not None,
                             eg.READY_TIMEOUT)
        assert proc.poll() is None, stderr_path.read_text(errors="replace")
        before, _ = scrape(admin_port)
        assert sample(before, "edgeguard_access_log_dropped_lines_total") == 0
        assert before["edgeguard_access_log_dropped_lines_total"].type == "counter"
        assert sample(before, "edgeguard_access_log_write_errors_total") == 0

        # No route matches: edgeguard answers 404 itself, one ~200-byte line each. The worker's 1 MiB queue holds
        # roughly 5,000 of them; keep sending until the counter moves (bounded).
        sent = 0
        dropped = 0.0
        deadline = time.monotonic() + 60
        while dropped == 0 and time.monotonic() < deadline and sent < 60000:
            sent += pipelined(port, 2000, b"/nothing-routes-here")
            after, _ = scrape(admin_port)
            dropped = sample(after, "edgeguard_access_log_dropped_lines_total")
        assert dropped > 0, f"no drop counted after {sent} requests with a blocked stdout"
        # Counted (and logged) once each exchange is recorded, which may trail the client's read by a moment.
        def all_recorded() -> bool:
            nonlocal after
            after, _ = scrape(admin_port)
            return sample(after, "edgeguard_requests_total", route="_other", code="4xx") == sent

        assert eg.wait_until(all_recorded, 5.0)
        dropped = sample(after, "edgeguard_access_log_dropped_lines_total")
        assert sample(after, "edgeguard_access_log_write_errors_total") == 0, "a full pipe is slow, not an error"

        # Unblock: everything kept is written, and kept + dropped accounts for every request.
        def drain():
            for line in proc.stdout:
                lines.append(line)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(eg.STOP_TIMEOUT * 3) == 0, stderr_path.read_text(errors="replace")
        stderr = stderr_path.read_text(errors="replace")
        assert not [m for m in eg.SANITIZER_MARKERS if m in stderr], stderr[-3000:]
        reader.join(eg.IO_TIMEOUT)
        assert len(lines) + dropped == sent, (len(lines), dropped, sent)
        for line in lines[:50] + lines[-50:]:
            entry = json.loads(line)
            assert entry["status"] == 404 and entry["path"] == "/nothing-routes-here"
    finally:
        if proc.poll() is None:
            if reader is None:
                threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(eg.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(eg.STOP_TIMEOUT)
