"""pytest fixtures: the edgeguard binary, recording upstreams and edgeguard processes, all torn down per test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import eg  # noqa: E402
import tcp_helpers as th  # noqa: E402

# Tests that serve the shipped conf/ take the hash key from the environment, as a deployment does, so a test
# run never writes conf/secrets/edgeguard_hash_key into the source tree. Tests about the key file use their
# own rules files, which do not name this variable.
os.environ.setdefault("EDGEGUARD_HASH_KEY", "integration-tests-hash-key-0123456789abcdef")

# The only reasons a test may skip: the machine cannot offer what the test needs, and that says nothing about
# edgeguard. Any other skip is a failure under CI=true (a skip there hides whatever the test was meant to catch);
# elsewhere it is reported (`-rs`, set in tests/CMakeLists.txt) and the run passes.
ALLOWED_SKIPS = (
    eg.SKIP_NO_IPV6,       # no ::1 on this machine
    eg.SKIP_SANITIZED_RSS,  # peak RSS is meaningless under ASan/TSan shadow memory; the functional checks ran
)


def _skip_allowed(reason: str) -> bool:
    return any(allowed in reason for allowed in ALLOWED_SKIPS)


def _fail_disallowed_skip(report) -> None:
    if not report.skipped or os.environ.get("CI") != "true" or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if not _skip_allowed(reason):
        report.outcome = "failed"
        report.longrepr = (f"skipped under CI=true for a reason not in conftest.ALLOWED_SKIPS: {reason}\n"
                           "(install what the test needs: scripts/setup.sh; or fix what it covers)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_disallowed_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A module that skips as a whole (`pytest.skip(allow_module_level=True)`, importorskip) is held to the same
    list."""
    outcome = yield
    _fail_disallowed_skip(outcome.get_result())


@pytest.fixture(scope="session", autouse=True)
def shared_dir_present():
    """CI runs with ../shared beside the clone; without it the corpus-driven tests would silently shrink."""
    if os.environ.get("CI") == "true":
        shared = os.environ.get("EDGEGUARD_SHARED_DIR")
        assert shared and Path(shared).is_dir(), f"CI=true but the shared corpus is missing: {shared!r}"


@pytest.fixture(scope="session", autouse=True)
def sanitizer_reports(tmp_path_factory):
    """Every sanitizer report of this session lands in one directory; the session fails if one is left over."""
    reports = eg.SanitizerReportDir(tmp_path_factory.mktemp("sanitizer-reports"))
    reports.install()
    yield reports
    # Module-scoped harnesses stop their proxies after the last test's own check.
    left = reports.new_reports()
    if left:
        pytest.fail("sanitizer reports after the last test:\n" + "\n".join(left), pytrace=False)


@pytest.fixture(autouse=True)
def no_sanitizer_reports(sanitizer_reports):
    """Fails the test during which any process (edgeguard serve, a CLI run) wrote a sanitizer report.

    Autouse, so it is set up before and torn down after the fixtures that stop edgeguard processes.
    """
    yield
    found = sanitizer_reports.new_reports()
    if found:
        pytest.fail("sanitizer reports:\n" + "\n".join(found), pytrace=False)


@pytest.fixture(scope="session")
def edgeguard_bin() -> str:
    binary = eg.default_binary()
    if binary is None or not os.access(binary, os.X_OK):
        pytest.skip("edgeguard binary not built (set EDGEGUARD_BIN)")
    return binary


@pytest.fixture
def upstreams():
    """Factory: upstreams("name", handler=...) -> eg.Upstream, stopped after the test."""
    started: list[eg.Upstream] = []

    def make(name: str = "upstream", handler=None, **kwargs) -> eg.Upstream:
        up = eg.Upstream(name, handler, **kwargs)
        started.append(up)
        return up

    yield make
    for up in started:
        up.stop()


@pytest.fixture
def tcp_upstreams():
    """Starts raw TCP upstreams (tcp_helpers.TcpUpstream) for the test and stops them after it."""
    started: list[th.TcpUpstream] = []

    def make(handler) -> th.TcpUpstream:
        up = th.TcpUpstream(handler)
        started.append(up)
        return up

    yield make
    for up in started:
        up.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA, server and client certificates made by tests/tls/make_certs.sh (openssl CLI), once per test module:
    a module may replace files in it."""
    out = tmp_path_factory.mktemp("pki")
    script = eg.source_dir() / "tests" / "tls" / "make_certs.sh"
    subprocess.run(["bash", str(script), str(out)], check=True, timeout=60, capture_output=True)
    return out


@pytest.fixture
def edgeguard(edgeguard_bin, tmp_path, sanitizer_reports):
    """Factory: edgeguard(config_dict) -> a started eg.Edgeguard, stopped (SIGTERM, then kill) after the test."""
    started: list[eg.Edgeguard] = []

    def start(config, listen_port=None, name: str = "eg") -> eg.Edgeguard:
        proc = eg.Edgeguard(edgeguard_bin, config, tmp_path / f"{name}{len(started)}", listen_port)
        started.append(proc)
        return proc.start()

    yield start
    problems = []
    for proc in started:
        proc.stop()
        problems += proc.problems()
    # pytest shows only the first failing teardown, so this one carries the reports too (usually the reason for
    # an unclean exit), rather than leaving them to no_sanitizer_reports.
    if problems:
        problems += sanitizer_reports.new_reports()
    if problems:
        pytest.fail("edgeguard was unhealthy:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def simple_proxy(upstreams, edgeguard):
    """Factory for the common case: one upstream behind a catch-all route; returns (edgeguard, upstream)."""

    def make(handler=None, route: dict | None = None, timeouts: dict | None = None, limits: dict | None = None,
             upstream_kwargs: dict | None = None, workers: int = 2, extra: dict | None = None):
        up = upstreams("app", handler, **(upstream_kwargs or {}))
        port = eg.free_port()
        r = {"name": "all", "paths": ["/"], "upstream": "app"}
        r.update(route or {})
        config = eg.basic_config(port, {"app": [up.address]}, [r], timeouts=timeouts, limits=limits,
                                 workers=workers, extra=extra)
        return edgeguard(config), up

    return make
