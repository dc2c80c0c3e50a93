"""TCP listeners' admission and operations through the real binary: allow/deny judged at accept by the
running config (and changed by reload), connection limits, listeners added and removed by reload, metrics,
one access-log line per connection, /readyz, PROXY protocol headers byte for byte, and `check` errors."""

from __future__ import annotations

import json
import socket
import struct

import pytest

import eg
import tcp_helpers as th


@pytest.fixture
def echo_upstream():
    up = th.TcpUpstream(th.echo)
    yield up
    up.stop()


def _config(tcp_port, up, workers=2, **listener_extra):
    return th.tcp_config(eg.free_port(), {"svc": [up.address]},
                         [th.tcp_listener("svc", tcp_port, "svc", **listener_extra)], workers=workers)


def test_allowlist_refuses_at_accept_and_follows_reload(echo_upstream, edgeguard):
    port = eg.free_port()
    config = _config(port, echo_upstream, allow=["127.0.0.1/32"])
    proc = edgeguard(config)
    assert th.echo_works(port, "127.0.0.1")
    assert th.refused_at_accept(port, "127.0.0.2")
    assert echo_upstream.accepted == 1  # the refused client never reached the upstream

    config["tcp"][0]["allow"] = ["127.0.0.2/32"]
    th.reload(proc, config)
    assert th.echo_works(port, "127.0.0.2")
    assert th.refused_at_accept(port, "127.0.0.1")

    config["tcp"][0]["allow"] = ["127.0.0.0/8"]
    config["tcp"][0]["deny"] = ["127.0.0.3/32"]
    th.reload(proc, config)
    assert th.echo_works(port, "127.0.0.1")
    assert th.refused_at_accept(port, "127.0.0.3")
    assert echo_upstream.accepted == 3
    assert th.metric(proc, "edgeguard_tcp_refused_total", listener="svc", reason="allowlist") == 3


def test_connection_limits_total_and_per_ip(echo_upstream, edgeguard):
    port = eg.free_port()
    proc = edgeguard(_config(port, echo_upstream, max_connections=3, max_connections_per_ip=2))
    open_socks = []
    try:
        for source in ("127.0.0.1", "127.0.0.1"):
            sock = th.connect(port, source)
            sock.sendall(b"x")
            assert sock.recv(1) == b"x"
            open_socks.append(sock)
        assert th.refused_at_accept(port, "127.0.0.1")  # third from the same address
        sock = th.connect(port, "127.0.0.5")
        sock.sendall(b"y")
        assert sock.recv(1) == b"y"
        open_socks.append(sock)
        assert th.refused_at_accept(port, "127.0.0.6")  # fourth in total
        assert th.metric(proc, "edgeguard_tcp_refused_total", listener="svc", reason="per_ip_limit") == 1
        assert th.metric(proc, "edgeguard_tcp_refused_total", listener="svc", reason="connection_limit") == 1
        assert th.metric(proc, "edgeguard_tcp_connections_open", listener="svc") == 3
        open_socks.pop().close()
        # The slot comes back once edgeguard has seen the close.
        assert eg.wait_until(lambda: th.metric(proc, "edgeguard_tcp_connections_open", listener="svc") == 2, 5.0)
        assert th.echo_works(port, "127.0.0.6")
    finally:
        for sock in open_socks:
            sock.close()


def test_listeners_added_and_removed_by_reload(echo_upstream, edgeguard):
    first, second = eg.free_port(), eg.free_port()
    config = _config(first, echo_upstream)
    proc = edgeguard(config)
    assert th.echo_works(first)
    with pytest.raises(ConnectionRefusedError):
        th.connect(second).close()

    config["tcp"].append(th.tcp_listener("second", second, "svc"))
    th.reload(proc, config)
    assert eg.wait_until(lambda: _accepts(second) and th.echo_works(second), 5.0)

    # A connection open on the first listener survives the reload that removes it.
    kept = th.connect(first)
    kept.sendall(b"before")
    assert kept.recv(100) == b"before"
    config["tcp"] = [config["tcp"][1]]
    th.reload(proc, config)
    assert eg.wait_until(lambda: not _accepts(first), 5.0)
    kept.sendall(b"after")
    assert kept.recv(100) == b"after"
    kept.close()
    assert th.echo_works(second)


def _accepts(port: int) -> bool:
    try:
        th.connect(port).close()
        return True
    except ConnectionRefusedError:
        return False


def test_access_log_line_and_metrics_per_connection(echo_upstream, edgeguard, tmp_path):
    port = eg.free_port()
    log_path = tmp_path / "access.log"
    config = th.tcp_config(eg.free_port(), {"svc": [echo_upstream.address]},
                           [th.tcp_listener("temporal", port, "svc")], access_log=str(log_path))
    proc = edgeguard(config)
    with th.connect(port) as sock:
        sock.sendall(b"q" * 1000)
        got = bytearray()
        while len(got) < 1000:
            got += sock.recv(65536)
        sock.shutdown(socket.SHUT_WR)
        assert th.read_to_eof(sock) == b""
        client_port = sock.getsockname()[1]

    def tcp_lines():
        if not log_path.exists():
            return []
        return [json.loads(line) for line in log_path.read_text().splitlines() if '"kind":"tcp"' in line]

    assert eg.wait_until(lambda: len(tcp_lines()) == 1, 5.0)
    line = tcp_lines()[0]
    assert line["listener"] == "temporal"
    assert line["client_ip"] == "127.0.0.1" and line["client_port"] == client_port
    assert line["upstream"] == "svc" and line["server"] == echo_upstream.address
    assert line["bytes_in"] == 1000 and line["bytes_out"] == 1000
    assert line["end"] == "closed"
    assert th.metric(proc, "edgeguard_tcp_bytes_total", listener="temporal", direction="upstream") == 1000
    assert th.metric(proc, "edgeguard_tcp_bytes_total", listener="temporal", direction="downstream") == 1000
    assert th.metric(proc, "edgeguard_tcp_connections_total", listener="temporal") == 1
    assert th.metric(proc, "edgeguard_tcp_connection_duration_seconds_count", listener="temporal") == 1


def test_readyz_reports_a_tcp_listener_that_could_not_bind(echo_upstream, edgeguard):
    port = eg.free_port()
    config = _config(port, echo_upstream)
    proc = edgeguard(config)
    assert th.admin_get(proc, "/readyz")[0] == 200
    # Another process holds the port (without SO_REUSEPORT), so a reload that adds a listener there fails to bind.
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind((eg.LOOPBACK, 0))
    blocker.listen(1)
    try:
        taken = blocker.getsockname()[1]
        config["tcp"].append(th.tcp_listener("blocked", taken, "svc"))
        th.reload(proc, config)
        assert eg.wait_until(lambda: th.admin_get(proc, "/readyz")[0] == 503, 5.0)
        status, body = th.admin_get(proc, "/readyz")
        assert "tcp listener blocked" in json.loads(body)["message"]
    finally:
        blocker.close()
    config["tcp"].pop()
    th.reload(proc, config)
    assert eg.wait_until(lambda: th.admin_get(proc, "/readyz")[0] == 200, 5.0)


def _recording(conn: socket.socket, record: dict) -> None:
    record["received"] = th.read_to_eof(conn)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_proxy_protocol_header_bytes(version, edgeguard):
    up = th.TcpUpstream(_recording)
    try:
        port = eg.free_port()
        edgeguard(_config(port, up, proxy_protocol=version))
        with th.connect(port, "127.0.0.7") as sock:
            sock.sendall(b"payload")
            sock.shutdown(socket.SHUT_WR)
            client_port = sock.getsockname()[1]
            th.read_to_eof(sock)
        received = up.wait_records(1, "received")[0]["received"]
    finally:
        up.stop()
    if version == "v1":
        header = f"PROXY TCP4 127.0.0.7 127.0.0.1 {client_port} {port}\r\n".encode()
    else:
        header = (b"\r\n\r\n\x00\r\nQUIT\n" + b"\x21\x11" + struct.pack(">H", 12) +
                  socket.inet_aton("127.0.0.7") + socket.inet_aton("127.0.0.1") + struct.pack(">HH", client_port, port))
    assert received == header + b"payload"


def test_check_reports_tcp_mistakes_with_positions(edgeguard_bin, tmp_path):
    text = f"""listeners:
  - name: main
    address: 127.0.0.1:{eg.free_port()}
upstreams:
  temporal:
    servers: ["127.0.0.1:7233"]
routes: []
tcp:
  - name: temporal
    address: 127.0.0.1:7233
    upstream: temporl
    proxy_protocol: v3
  - name: again
    address: 127.0.0.1:7233
    upstream: temporal
    timeouts:
      idle: 0s
"""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = eg.run_cli(edgeguard_bin, "check", "--config", str(path))
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert f"{path}:11:15: tcp listener 'temporal': unknown upstream 'temporl'" in out
    assert f"{path}:12:21: tcp listener 'temporal' proxy_protocol: expected off, v1 or v2, got 'v3'" in out
    assert f"{path}:14:14: tcp listener 'again': 127.0.0.1:7233 is already used by tcp listener 'temporal'" in out
    assert f"{path}:17:13: tcp listener 'again' timeouts.idle: must be above 0" in out


def test_check_counts_tcp_listeners(edgeguard_bin, tmp_path):
    config = th.tcp_config(eg.free_port(), {"svc": ["127.0.0.1:7233"]},
                           [th.tcp_listener("a", eg.free_port(), "svc"), th.tcp_listener("b", eg.free_port(), "svc")])
    path = tmp_path / "ok.yaml"
    path.write_text(eg.dump_yaml(config))
    result = eg.run_cli(edgeguard_bin, "check", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert " OK: 1 listener, 1 upstream, 0 routes, 2 tcp listeners, no privacy rules" in result.stdout
