"""Conformance suite: replays every tests/conformance/*.case through the real binary against a recording
upstream and compares the responses and what the upstream received."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import eg
import pytest
from conformance_case import ConformanceCase, load_case

CASE_DIR = Path(__file__).resolve().parents[1] / "conformance"
CASE_FILES = sorted(CASE_DIR.glob("*.case"))

# Headers edgeguard writes itself or that carry framing/connection management; checked separately, never
# compared against the case's end-to-end header list.
PROXY_OWNED = {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "via", "connection", "content-length",
               "transfer-encoding"}
PROBE_TARGET = "/__conformance_probe"
SENTINEL_TARGET = "/__conformance_sentinel"


class Harness:
    """One edgeguard and one upstream shared by all cases; edgeguard is restarted if a case kills it."""

    def __init__(self, binary: str, workdir: Path):
        self.binary = binary
        self.workdir = workdir
        self.upstream = eg.Upstream("conformance")
        self.restarts = 0
        self.proxy = self._start()

    def _start(self) -> eg.Edgeguard:
        port = eg.free_port()
        config = eg.basic_config(port, {"app": [self.upstream.address]},
                                 [{"name": "all", "paths": ["/"], "upstream": "app"}],
                                 timeouts={"client_header": eg.ms(3000)})
        return eg.Edgeguard(self.binary, config, self.workdir / f"run{self.restarts}").start()

    def ensure_alive(self) -> None:
        if self.proxy.proc.poll() is not None:
            self.restarts += 1
            self.proxy = self._start()

    def stop(self) -> list[str]:
        self.proxy.stop()
        self.upstream.stop()
        return self.proxy.problems()


@pytest.fixture(scope="module")
def harness(edgeguard_bin, tmp_path_factory):
    h = Harness(edgeguard_bin, tmp_path_factory.mktemp("conformance"))
    yield h
    problems = h.stop()
    if problems:
        pytest.fail("edgeguard was unhealthy:\n" + "\n".join(problems), pytrace=False)


def test_suite_has_at_least_80_cases():
    assert len(CASE_FILES) >= 80, len(CASE_FILES)


def _request_method(data: bytes) -> str:
    return data.lstrip(b"\r\n").split(b" ", 1)[0].decode("latin-1")


def _send_in_background(sock: socket.socket, data: bytes) -> threading.Thread:
    """Sends while the main thread reads, so an early response to a large request is not lost."""

    def send() -> None:
        try:
            sock.sendall(data)
        except OSError:
            pass  # edgeguard may answer and close before reading everything: that is allowed

    t = threading.Thread(target=send, daemon=True)
    t.start()
    return t


def _sentinel(harness: Harness) -> eg.RecordedRequest:
    """Proof that the upstream has seen everything the case made edgeguard send, without a sleep: a request on a
    fresh connection through the same edgeguard to the same upstream, sent after the case's last answer. A pooled
    upstream connection carries it behind anything the case sent there; a new one is opened after the case's."""
    with eg.Client(harness.proxy.listen_port, timeout=5) as client:
        assert client.request("GET", SENTINEL_TARGET, host="sentinel.test", timeout=5).status == 200
    assert eg.wait_until(lambda: any(r.target == SENTINEL_TARGET for r in harness.upstream.snapshot()), 10.0)
    (sentinel,) = [r for r in harness.upstream.snapshot() if r.target == SENTINEL_TARGET]
    return sentinel


def _compare_upstream(case: ConformanceCase, harness: Harness) -> None:
    upstream = harness.upstream
    if case.upstream_mode != "none":
        upstream.wait_requests(len(case.upstream), timeout=5)
    sentinel = _sentinel(harness)
    got = [r for r in upstream.snapshot() if r.target not in (PROBE_TARGET, SENTINEL_TARGET)]
    if case.upstream_mode == "none":
        assert got == [], "upstream received a request"
        extra = upstream.bytes_received - len(sentinel.raw_head)
        assert extra == 0, f"upstream received {extra} bytes besides the sentinel"
        return
    if case.upstream_mode == "no-complete-request":
        assert got == [], f"upstream received a complete request: {got}"
        return

    expected = case.upstream
    assert upstream.errors == [], f"upstream could not parse what edgeguard sent: {upstream.errors}"
    assert len(got) == len(expected), [(r.method, r.target) for r in got]
    for want, have in zip(expected, got):
        assert (have.method, have.target) == (want.method, want.target)
        assert have.version == "HTTP/1.1", have.version
        end_to_end = [(n.lower(), v) for (n, v) in have.headers if n.lower() not in PROXY_OWNED]
        assert end_to_end == want.headers, have.raw_head
        assert have.header_all("x-forwarded-for") == ["127.0.0.1"], have.raw_head
        assert len(have.header_all("content-length")) <= 1, have.raw_head
        assert not (have.header("content-length") and have.header("transfer-encoding")), have.raw_head
        assert have.body == want.body


# Cases edgeguard is known to fail, with the reason; strict, so a fix turns them into failures to clean up here.
KNOWN_FAILING: dict[str, str] = {}


def _case_params():
    for p in CASE_FILES:
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_FAILING[p.stem])] if p.stem in KNOWN_FAILING else []
        yield pytest.param(p, id=p.stem, marks=marks)


@pytest.mark.parametrize("case_file", list(_case_params()))
def test_case(harness: Harness, case_file: Path):
    case = load_case(case_file)
    harness.ensure_alive()
    harness.upstream.reset()
    method = _request_method(case.request)
    with eg.Client(harness.proxy.listen_port, timeout=5) as client:
        sender = _send_in_background(client.sock, case.request)
        statuses = []
        for i, allowed in enumerate(case.statuses):
            try:
                resp = client.read_response(method=method, timeout=5)
            except (eg.PeerClosed, ConnectionResetError, socket.timeout) as e:
                pytest.fail(f"{case.name}: response {i + 1} missing ({type(e).__name__}); got {statuses} so far; "
                            f"{case.description}")
            statuses.append(resp.status)
            assert resp.status in allowed, f"{case.name}: response {i + 1} is {resp.status}, want {sorted(allowed)}"
            if resp.status >= 400:
                # edgeguard's own error responses are JSON; upstream answers here are always 200.
                assert resp.json()["status"] == resp.status
        sender.join(5)
        if case.close is True:
            if statuses and statuses[-1] >= 400:
                # The client is told the connection ends, so it does not send (and lose) another request.
                assert (resp.header("connection") or "").lower() == "close", resp.raw_head
            assert client.is_closed_by_peer(timeout=3), f"{case.name}: connection left open"
        elif case.close is False:
            probe = client.request("GET", PROBE_TARGET, host="probe.test", timeout=5)
            assert probe.status == 200, f"{case.name}: connection unusable after the case"
    assert harness.proxy.proc.poll() is None, f"edgeguard died:\n{harness.proxy.stderr()[-2000:]}"
    _compare_upstream(case, harness)
