"""Helpers shared by the operations tests (admin listener, reload): raw admin requests and the check that a
component is wired into the binary yet, so tests written ahead of the wiring skip visibly instead of failing."""

from __future__ import annotations

import socket

import pytest

import eg


# What the server runtime calls once each component is wired in (any one of the spellings).
ADMIN = ("AdminServer::start",)
TRAFFIC_METRICS = ("request_done(",)
READINESS = ("set_ready(",)
RELOAD_METRICS = ("config_reload_failed(",)
ACCESS_LOG = ("AccessLogEntry",)


def _wired(symbols: tuple) -> bool:
    """Whether the server runtime (files other than the components' own) calls any of `symbols` yet."""
    proxy = eg.source_dir() / "proxy"
    own = {"admin_server.cc", "access_log.cc", "metrics.cc"}
    # Every subsystem folder: proxy/ is grouped by subsystem, so a top-level glob would see only main.cc and
    # skip every test that asks.
    texts = [p.read_text(errors="replace") for p in proxy.rglob("*.cc") if p.name not in own]
    return any(s in t for s in symbols for t in texts)


def _require(*needs: tuple) -> None:
    for symbols in needs:
        if not _wired(symbols):
            pytest.skip(f"SKIP: {symbols[0]} is not wired into the edgeguard binary yet")


def admin_get(port: int, path: str, method: str = "GET", source: str | None = None) -> eg.Response:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(eg.IO_TIMEOUT)
    try:
        if source:
            sock.bind((source, 0))
        sock.connect((eg.LOOPBACK, port))
        sock.sendall(eg.build_request(method, path, [("Connection", "close")], b"" if method == "POST" else None,
                                      host="admin"))
        return eg.read_response(eg.SocketReader(sock), method)
    finally:
        sock.close()
