"""Helpers shared by the operations tests (admin listener, reload): raw admin requests."""

from __future__ import annotations

import socket

import eg


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
