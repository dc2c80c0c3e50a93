"""Hot reload through the real binary: SIGHUP under a continuous request loop answers nothing but 2xx, a new
route takes effect, an invalid config keeps the old one serving (and is counted), and /readyz is never 200
before the listeners accept."""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import eg
import promtext
from ops_helpers import admin_get


def _config(port: int, admin_port: int, upstreams: dict, extra_routes: list | None = None) -> dict:
    routes = list(extra_routes or []) + [{"name": "all", "paths": ["/"], "upstream": "app"}]
    return eg.basic_config(port, upstreams, routes, admin_port=admin_port)


class RequestLoop:
    """Requests in a loop on a keep-alive connection and on fresh ones, recording every status (or error)."""

    def __init__(self, port: int):
        self.port = port
        self.statuses: list = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(eg.IO_TIMEOUT * 2)

    def _run(self):
        keepalive = None
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                if i % 2:
                    if keepalive is None:
                        keepalive = eg.Client(self.port)
                    r = keepalive.request("GET", f"/loop/{i}")
                    if (r.header("connection") or "").lower() == "close":
                        keepalive.close()
                        keepalive = None
                else:
                    with eg.Client(self.port) as c:
                        r = c.request("GET", f"/loop/{i}", headers=[("Connection", "close")])
                self.statuses.append(r.status)
            except (OSError, eg.PeerClosed, ValueError) as e:
                # A keep-alive connection the server closed between requests is legal HTTP; retry on a new
                # connection and only count real failures.
                if keepalive is not None and i % 2:
                    keepalive.close()
                    keepalive = None
                    continue
                self.statuses.append(repr(e))
        if keepalive is not None:
            keepalive.close()


def test_sighup_under_load_never_fails_a_request_and_applies_new_routes(upstreams, edgeguard):
    app = upstreams("app")
    extra = upstreams("extra")
    port, admin_port = eg.free_port(), eg.free_port()
    ups = {"app": [app.address], "extra": [extra.address]}
    proc = edgeguard(_config(port, admin_port, ups))

    with RequestLoop(port) as loop:
        assert eg.wait_until(lambda: len(loop.statuses) >= 20, 10.0)
        for n in range(6):
            routes = [{"name": f"extra{n}", "paths": ["/extra"], "upstream": "extra"}] if n % 2 == 0 else []
            proc.config_path.write_text(eg.dump_yaml(_config(port, admin_port, ups, routes)))
            proc.signal(signal.SIGHUP)
            time.sleep(0.3)
        before = len(loop.statuses)
        assert eg.wait_until(lambda: len(loop.statuses) >= before + 20, 10.0)

    bad = [s for s in loop.statuses if s != 200]
    assert not bad, f"{len(bad)} of {len(loop.statuses)} requests failed during reloads: {bad[:10]}"
    assert proc.proc.poll() is None

    # The last reload (n=4 added /extra, n=5 removed it) leaves no /extra route: it goes to "app".
    extra.reset()
    with eg.Client(port) as c:
        assert c.request("GET", "/extra/x").status == 200
    assert extra.snapshot() == []
    proc.config_path.write_text(
        eg.dump_yaml(_config(port, admin_port, ups, [{"name": "extra", "paths": ["/extra"], "upstream": "extra"}])))
    proc.signal(signal.SIGHUP)

    def routed_to_extra():
        with eg.Client(port) as c:
            c.request("GET", "/extra/y")
        return any(r.path == "/extra/y" for r in extra.snapshot())

    assert eg.wait_until(routed_to_extra, 5.0, interval=0.1), proc.stderr()


def test_invalid_reload_keeps_serving_and_is_counted(upstreams, edgeguard):
    app = upstreams("app")
    port, admin_port = eg.free_port(), eg.free_port()
    proc = edgeguard(_config(port, admin_port, {"app": [app.address]}))
    assert eg.wait_until(lambda: _can_scrape(admin_port), 5.0)
    failures_before = _failures(admin_port)

    with RequestLoop(port) as loop:
        assert eg.wait_until(lambda: len(loop.statuses) >= 10, 10.0)
        proc.config_path.write_text("listeners: [ this is not: valid\n  routes: {{{\n")
        proc.signal(signal.SIGHUP)
        refused = "reload failed, keeping the running config"
        assert eg.wait_until(lambda: proc.stderr().count(refused) == 1, 5.0), proc.stderr()
        proc.config_path.write_text(eg.dump_yaml({"workers": 1, "listeners": [], "routes": [{"name": "x"}]}))
        proc.signal(signal.SIGHUP)
        # The requests counted from here run after the second refusal, not merely after a pause.
        assert eg.wait_until(lambda: proc.stderr().count(refused) == 2, 5.0), proc.stderr()
        before = len(loop.statuses)
        assert eg.wait_until(lambda: len(loop.statuses) >= before + 10, 10.0)

    bad = [s for s in loop.statuses if s != 200]
    assert not bad, f"requests failed after an invalid reload: {bad[:10]}"
    assert proc.proc.poll() is None
    assert eg.wait_until(lambda: _failures(admin_port) >= failures_before + 2, 5.0)


def _can_scrape(port: int) -> bool:
    try:
        return admin_get(port, "/metrics").status == 200
    except OSError:
        return False


def _failures(admin_port: int) -> float:
    families = promtext.parse(admin_get(admin_port, "/metrics").body.decode())
    return promtext.value(families, "edgeguard_config_reload_failures_total")


def test_readyz_is_never_200_before_listeners_accept(upstreams, edgeguard_bin, tmp_path):
    app = upstreams("app")
    port, admin_port = eg.free_port(), eg.free_port()
    proc = eg.Edgeguard(edgeguard_bin, _config(port, admin_port, {"app": [app.address]}), tmp_path / "eg")
    proc._out = open(proc.stdout_path, "wb")
    proc._err = open(proc.stderr_path, "wb")
    proc.proc = subprocess.Popen([edgeguard_bin, "serve", "--config", str(proc.config_path)],
                                 stdin=subprocess.DEVNULL, stdout=proc._out, stderr=proc._err, cwd=proc.workdir)
    try:
        seen = []
        deadline = time.monotonic() + eg.READY_TIMEOUT
        while time.monotonic() < deadline:
            try:
                status = admin_get(admin_port, "/readyz").status
            except OSError:
                status = None
            seen.append(status)
            if status == 200:
                # Ready must mean serving: the data listener accepts and proxies right now.
                with eg.Client(port) as c:
                    assert c.request("GET", "/ready-check").status == 200
                break
            assert status in (None, 503), status
            time.sleep(0.005)
        assert seen and seen[-1] == 200, f"never ready: {seen[-5:]}\n{proc.stderr()}"
    finally:
        proc.stop()


def test_stop_while_the_admin_thread_reloads_exits_cleanly(upstreams, edgeguard):
    """POST /reload keeps arriving on the admin thread while SIGTERM stops the server. The admin server is taken
    down under the reload lock, so a reload in flight finishes first and a later one finds no admin server (a
    TSan build reports the race otherwise); the process exits 0 and no reload was answered with an error."""
    app = upstreams("app")
    port, admin_port = eg.free_port(), eg.free_port()
    proc = edgeguard(_config(port, admin_port, {"app": [app.address]}))
    assert eg.wait_until(lambda: _can_scrape(admin_port), 5.0)
    stop = threading.Event()
    answered: list = []

    def reload_loop():
        while not stop.is_set():
            try:
                answered.append(admin_get(admin_port, "/reload", method="POST").status)
            except (OSError, eg.PeerClosed, ValueError):
                if proc.proc.poll() is not None:
                    return
                time.sleep(0.01)

    thread = threading.Thread(target=reload_loop, daemon=True)
    thread.start()
    try:
        assert eg.wait_until(lambda: len(answered) >= 3, 10.0), proc.stderr()
        proc.signal(signal.SIGTERM)
        assert proc.wait_exit() == 0, proc.stderr()
    finally:
        stop.set()
        thread.join(eg.IO_TIMEOUT * 2)
    assert 200 in answered and all(status in (200, 503) for status in answered), answered[:10]
    assert "stopped" in proc.stderr()
