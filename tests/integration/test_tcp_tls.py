"""TLS termination on TCP listeners through the real binary: the client speaks TLS to edgeguard, the upstream
gets the plaintext byte stream; ALPN is the listener's to answer; a failed handshake never reaches the
upstream; the upstream's FIN reaches the client as close_notify."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest

import eg
import tcp_helpers as th


def start_tls_relay(edgeguard, pki: Path, up, **extra):
    port = eg.free_port()
    tls = {"certificates": [{"cert": str(pki / "a.pem"), "key": str(pki / "a.key")}]}
    config = th.tcp_config(eg.free_port(), {"svc": [up.address]},
                           [th.tcp_listener("secure", port, "svc", tls=tls, **extra)])
    return edgeguard(config), port


def tls_client(port: int, pki: Path, alpn=None) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if alpn:
        ctx.set_alpn_protocols(alpn)
    raw = th.connect(port)
    try:
        return ctx.wrap_socket(raw, server_hostname="a.test")
    except Exception:
        raw.close()
        raise


def test_tls_client_plaintext_upstream_echo(tcp_upstreams, edgeguard, pki):
    up = tcp_upstreams(th.echo)
    _, port = start_tls_relay(edgeguard, pki, up)
    with tls_client(port, pki) as sock:
        assert sock.selected_alpn_protocol() is None
        payload = bytes(range(256)) * 1000
        sock.sendall(payload)
        got = bytearray()
        while len(got) < len(payload):
            chunk = sock.recv(65536)
            assert chunk, "edgeguard closed mid-echo"
            got += chunk
        assert bytes(got) == payload
    assert up.wait_records(1, "done")[0]["received"] == payload  # the upstream saw the plaintext


def test_upstream_fin_reaches_the_tls_client_as_close_notify(tcp_upstreams, edgeguard, pki):
    def greet_then_listen(conn: socket.socket, record: dict) -> None:
        conn.sendall(b"greeting")
        conn.shutdown(socket.SHUT_WR)
        record["received"] = th.read_to_eof(conn)

    up = tcp_upstreams(greet_then_listen)
    _, port = start_tls_relay(edgeguard, pki, up)
    with tls_client(port, pki) as sock:
        got = bytearray()
        while True:
            chunk = sock.recv(65536)  # b"" only after close_notify: a truncation would raise
            if not chunk:
                break
            got += chunk
        assert bytes(got) == b"greeting"
        sock.sendall(b"still talking")
        sock.shutdown(socket.SHUT_WR)
    assert up.wait_records(1, "received")[0]["received"] == b"still talking"


def test_alpn_is_the_listeners_answer(tcp_upstreams, edgeguard, pki):
    up = tcp_upstreams(th.echo)
    _, port = start_tls_relay(edgeguard, pki, up, alpn=["h2"])
    with tls_client(port, pki, alpn=["h2", "http/1.1"]) as sock:
        assert sock.selected_alpn_protocol() == "h2"
        sock.sendall(b"grpc")
        assert sock.recv(100) == b"grpc"
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        tls_client(port, pki, alpn=["http/1.1"]).close()
    assert up.accepted == 1


def test_failed_handshake_never_reaches_the_upstream(tcp_upstreams, edgeguard, pki):
    up = tcp_upstreams(th.echo)
    proc, port = start_tls_relay(edgeguard, pki, up)
    with th.connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # not TLS
        assert th.outcome(sock) in ("eof", "reset", "data")  # closed, perhaps after an alert
    with th.connect(port):
        pass  # connected and left without a ClientHello
    assert eg.wait_until(lambda: th.metric(proc, "edgeguard_tcp_connections_open", listener="secure") == 0, 5.0)
    assert up.accepted == 0
    assert th.metric(proc, "edgeguard_tls_handshake_errors_total", listener="secure", reason="plain_http") == 1
