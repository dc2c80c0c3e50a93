"""pytest fixtures: the edgeguard binary, recording upstreams and edgeguard processes, all torn down per test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import eg  # noqa: E402


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
def edgeguard(edgeguard_bin, tmp_path):
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
