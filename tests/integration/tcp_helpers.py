"""Helpers for TCP listener tests: a threaded raw-TCP upstream whose behaviour per connection is a function,
configs with a `tcp:` section, and small socket utilities. Loopback only; every wait is bounded."""

from __future__ import annotations

import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from typing import Callable, Optional

import eg

IO_TIMEOUT = eg.IO_TIMEOUT


class TcpUpstream:
    """Accepts on 127.0.0.1:<free port>; each connection runs handler(conn, record) on its own thread.

    record is a dict the handler may fill (e.g. "received": bytes); all records are kept in accept order.
    """

    def __init__(self, handler: Callable[[socket.socket, dict], None]):
        self.handler = handler
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((eg.LOOPBACK, 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.records: list[dict] = []
        self.lock = threading.Lock()
        self.stopping = False
        self.threads: list[threading.Thread] = []
        self.accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.accept_thread.start()

    @property
    def address(self) -> str:
        return f"{eg.LOOPBACK}:{self.port}"

    @property
    def accepted(self) -> int:
        with self.lock:
            return len(self.records)

    def wait_records(self, n: int, key: str, timeout: float = IO_TIMEOUT) -> list[dict]:
        """Waits until the first n connections each have `key` in their record."""
        ok = eg.wait_until(lambda: self.accepted >= n and all(key in r for r in self.records[:n]), timeout)
        assert ok, f"upstream: {self.accepted} connections, wanted {n} with {key!r}: {self.records}"
        return self.records[:n]

    def _accept_loop(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            conn.settimeout(IO_TIMEOUT)
            record: dict = {}
            with self.lock:
                self.records.append(record)
            t = threading.Thread(target=self._run, args=(conn, record), daemon=True)
            self.threads.append(t)
            t.start()

    def _run(self, conn: socket.socket, record: dict) -> None:
        try:
            self.handler(conn, record)
        except OSError as e:
            record["error"] = type(e).__name__
        finally:
            conn.close()
            record["done"] = True

    def stop(self) -> None:
        self.stopping = True
        self.accept_thread.join(2)
        self.sock.close()
        for t in self.threads:
            t.join(IO_TIMEOUT)


def read_to_eof(conn: socket.socket, limit: int = 1 << 24) -> bytes:
    data = bytearray()
    while len(data) < limit:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return bytes(data)


def echo(conn: socket.socket, record: dict) -> None:
    """Echoes until EOF, then closes; records what it received."""
    received = bytearray()
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        received += chunk
        conn.sendall(chunk)
    record["received"] = bytes(received)


def reset_close(conn: socket.socket) -> None:
    """Closes with RST instead of FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def tcp_listener(name: str, port: int, upstream: str, **extra) -> dict:
    listener = {"name": name, "address": f"{eg.LOOPBACK}:{port}", "upstream": upstream}
    listener.update(extra)
    return listener


def tcp_config(http_port: int, upstreams: dict[str, list[str]], listeners: list[dict], *, workers: int = 2,
               admin_port: Optional[int] = None, access_log: Optional[str] = None, limits: Optional[dict] = None) -> dict:
    """An HTTP listener with no routes (edgeguard needs one) and the given TCP listeners."""
    config = eg.basic_config(http_port, upstreams, [], workers=workers, admin_port=admin_port, limits=limits)
    config["tcp"] = listeners
    if access_log is not None:
        config["access_log"] = {"output": access_log}
    return config


def connect(port: int, source: str = eg.LOOPBACK, timeout: float = IO_TIMEOUT,
            rcvbuf: Optional[int] = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    if rcvbuf is not None:  # before connect, so the advertised window is small from the start
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((source, 0))
    sock.connect((eg.LOOPBACK, port))
    return sock


def outcome(sock: socket.socket, timeout: float = IO_TIMEOUT) -> str:
    """What the peer does next: "data", "eof" or "reset" (or "timeout")."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "timeout"
    return "data" if data else "eof"


def refused_at_accept(port: int, source: str) -> bool:
    """True when a connection from `source` is closed by edgeguard without a byte, even after we sent one."""
    sock = connect(port, source)
    try:
        try:
            sock.sendall(b"ping")
        except (BrokenPipeError, ConnectionResetError):
            return True
        return outcome(sock) in ("eof", "reset")
    finally:
        sock.close()


def echo_works(port: int, source: str = eg.LOOPBACK, payload: bytes = b"ping") -> bool:
    sock = connect(port, source)
    try:
        sock.sendall(payload)
        got = bytearray()
        deadline = time.monotonic() + IO_TIMEOUT
        while len(got) < len(payload) and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
        return bytes(got) == payload
    except (ConnectionResetError, BrokenPipeError, socket.timeout):
        return False
    finally:
        sock.close()


def admin_get(proc: eg.Edgeguard, path: str) -> tuple[int, str]:
    address = proc.config["admin"]["address"]
    try:
        with urllib.request.urlopen(f"http://{address}{path}", timeout=IO_TIMEOUT) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(proc: eg.Edgeguard, name: str, **labels) -> float:
    """One sample of the /metrics scrape (0 when absent)."""
    _, text = admin_get(proc, "/metrics")
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(name + "{") and line.split("}", 1)[0] == f"{name}{{{want}":
            return float(line.rsplit(" ", 1)[1])
        if not labels and line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def reload(proc: eg.Edgeguard, config: dict) -> None:
    import signal

    before = proc.stderr().count("config reloaded")
    proc.config = config
    proc.config_path.write_text(eg.dump_yaml(config))
    proc.signal(signal.SIGHUP)
    assert eg.wait_until(lambda: proc.stderr().count("config reloaded") > before, 10.0), proc.stderr()
