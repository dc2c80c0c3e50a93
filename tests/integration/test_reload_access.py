"""Listener allow/deny follow the running config: a reload that narrows or widens `listeners[].allow` or `deny`
applies to the next connection and to the next request of a keep-alive connection, without a restart; a
listener that the reloaded config no longer names admits nobody."""

from __future__ import annotations

import signal
import socket

import eg

WIDE = ["127.0.0.0/8"]
NARROW = ["127.0.0.1/32"]




def _config(port: int, up, *, allow=None, deny=None, extra_listener_port=None) -> dict:
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    listener = config["listeners"][0]
    if allow is not None:
        listener["allow"] = allow
    if deny is not None:
        listener["deny"] = deny
    if extra_listener_port is not None:
        config["listeners"].append({"name": "extra", "address": f"{eg.LOOPBACK}:{extra_listener_port}"})
    return config


def _reload(proc, config: dict) -> None:
    before = proc.stderr().count("config reloaded")
    proc.config_path.write_text(eg.dump_yaml(config))
    proc.signal(signal.SIGHUP)
    assert eg.wait_until(lambda: proc.stderr().count("config reloaded") > before, 10.0), proc.stderr()


def test_narrowing_and_widening_allow_by_reload(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    proc = edgeguard(_config(port, up, allow=WIDE))
    assert eg.status_of(eg.request_from("127.0.0.2", port)) == 200

    _reload(proc, _config(port, up, allow=NARROW))
    seen = len(up.snapshot())
    assert eg.request_from("127.0.0.2", port) == b""  # refused at accept, not a byte of response
    assert eg.status_of(eg.request_from("127.0.0.1", port)) == 200
    assert len(up.snapshot()) == seen + 1  # only the admitted request reached the upstream

    _reload(proc, _config(port, up, allow=WIDE))
    assert eg.status_of(eg.request_from("127.0.0.2", port)) == 200


def test_adding_and_removing_deny_by_reload(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    proc = edgeguard(_config(port, up))
    assert eg.status_of(eg.request_from("127.0.0.3", port)) == 200

    _reload(proc, _config(port, up, deny=["127.0.0.3/32"]))
    seen = len(up.snapshot())
    assert eg.request_from("127.0.0.3", port) == b""
    assert eg.status_of(eg.request_from("127.0.0.4", port)) == 200
    assert len(up.snapshot()) == seen + 1

    _reload(proc, _config(port, up, deny=[]))
    assert eg.status_of(eg.request_from("127.0.0.3", port)) == 200


def test_keepalive_connection_is_judged_by_the_reloaded_allowlist(upstreams, edgeguard):
    up = upstreams("app")
    port = eg.free_port()
    proc = edgeguard(_config(port, up, allow=WIDE))
    sock = socket.create_connection((eg.LOOPBACK, port), timeout=eg.IO_TIMEOUT, source_address=("127.0.0.2", 0))
    try:
        sock.sendall(eg.build_request("GET", "/before", [], None, "edgeguard.test"))
        reader = eg.SocketReader(sock)
        head = reader.read_until(b"\r\n\r\n")
        status, headers = eg.parse_head(head)
        assert " 200 " in status
        reader.read_exact(int(eg.header_value(headers, "content-length") or 0))

        _reload(proc, _config(port, up, allow=NARROW))
        seen = len(up.snapshot())
        sock.sendall(eg.build_request("GET", "/after", [], None, "edgeguard.test"))
        head = reader.read_until(b"\r\n\r\n")
        status, _ = eg.parse_head(head)
        assert " 403 " in status, status
        assert len(up.snapshot()) == seen
    finally:
        sock.close()


def test_a_listener_removed_by_reload_admits_nobody(upstreams, edgeguard):
    up = upstreams("app")
    port, extra = eg.free_port(), eg.free_port()
    proc = edgeguard(_config(port, up, extra_listener_port=extra))
    assert eg.status_of(eg.request_from("127.0.0.1", extra)) == 200

    _reload(proc, _config(port, up))
    assert "listener addresses changed" in proc.stderr()
    seen = len(up.snapshot())
    assert eg.request_from("127.0.0.1", extra) == b""
    assert eg.status_of(eg.request_from("127.0.0.1", port)) == 200
    assert len(up.snapshot()) == seen + 1
