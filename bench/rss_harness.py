"""Shared pieces of the RSS benches (streams_rss.py, slow_conns_rss.py): descriptor limits, an edgeguard child
process and its memory, and a cheap loopback upstream that holds thousands of sockets in one selectors loop.

Only 127.0.0.0/8 is ever used. Whatever is started here is stopped by its owner's stop().
"""
from __future__ import annotations

import base64
import hashlib
import multiprocessing
import os
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_accept(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + WS_GUID).digest())


def raise_nofile() -> int:
    """Raises this process's soft descriptor limit to its hard limit (only root with CAP_SYS_RESOURCE could go
    higher, and this machine's container does not allow it). Returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status_kib(pid: int, field: str) -> int:
    """A /proc/<pid>/status memory line (VmRSS, VmHWM) in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class EdgeguardProc:
    """`edgeguard serve` on a config text, in its own session with the soft nofile limit at the hard limit."""

    def __init__(self, binary: str, config_text: str, listen_port: int, admin_port: int):
        self.binary = os.path.abspath(binary)
        self.listen_port = listen_port
        self.admin_port = admin_port
        self.dir = tempfile.mkdtemp(prefix="eg-rss-")
        self.config_path = os.path.join(self.dir, "edgeguard.yaml")
        with open(self.config_path, "w") as f:
            f.write(config_text)
        self.stderr_path = os.path.join(self.dir, "stderr")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([self.binary, "serve", "--config", self.config_path], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._err, cwd=self.dir,
                                     start_new_session=True, preexec_fn=raise_nofile)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.stderr()
                self.stop()
                raise RuntimeError(f"edgeguard exited {self.proc.returncode}: {err}")
            try:
                with socket.create_connection(("127.0.0.1", listen_port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        err = self.stderr()
        self.stop()
        raise RuntimeError(f"edgeguard did not listen on {listen_port}: {err}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        with open(self.stderr_path, errors="replace") as f:
            return f.read()[-4000:]

    def nofile_limit(self) -> int:
        with open(f"/proc/{self.pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
        raise KeyError("Max open files")

    def kib(self, field: str) -> int:
        return proc_status_kib(self.pid, field)

    def metric(self, name: str) -> float:
        """Sum of the samples of one metric family line prefix from the admin listener's /metrics."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/metrics", timeout=10) as r:
            text = r.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._err.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------------
# The upstream: one process, one selectors loop, a few hundred bytes of Python state per socket.
# ----------------------------------------------------------------------------------------------------------

SSE_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
SSE_FIRST_EVENT = b"data: {\"hello\": 1}\n\n"
WS_FIRST_FRAME = b"\x81\x05hello"  # unmasked text frame "hello", server to client
OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class _Conn:
    __slots__ = ("sock", "buf", "state", "body_left")

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.state = "head"  # head -> body -> (answered: idle keep-alive) | stream
        self.body_left = 0


def _upstream_main(port_pipe, stop_event) -> None:
    """Answers, per request: `Upgrade: websocket` -> 101 (with the right Sec-WebSocket-Accept) then one text
    frame; GET /events... -> an event stream with one event, then silence; anything else -> 200 "ok" once its
    Content-Length body has fully arrived (slow bodies are simply held). Streams stay open until the peer
    closes. Reports its counts on `port_pipe` when asked."""
    raise_nofile()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sel = selectors.DefaultSelector()
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4096)
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ, None)
    port_pipe.send(lsock.getsockname()[1])
    counts = {"accepted": 0, "open": 0, "ws": 0, "sse": 0, "answered": 0, "body_waiting": 0}

    def close(c: _Conn) -> None:
        sel.unregister(c.sock)
        c.sock.close()
        counts["open"] -= 1
        if c.state == "ws":
            counts["ws"] -= 1
        elif c.state == "sse":
            counts["sse"] -= 1
        elif c.state == "body":
            counts["body_waiting"] -= 1

    def handle_head(c: _Conn) -> None:
        end = c.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head, c.buf = c.buf[:end].decode("latin-1"), c.buf[end + 4:]
        lines = head.split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        target = lines[0].split(" ")[1] if len(lines[0].split(" ")) == 3 else "/"
        if headers.get("upgrade", "").lower() == "websocket":
            key = headers.get("sec-websocket-key", "").encode()
            c.sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           b"Sec-WebSocket-Accept: " + ws_accept(key) + b"\r\n\r\n" + WS_FIRST_FRAME)
            c.state = "ws"
            counts["ws"] += 1
        elif target.startswith("/events"):
            c.sock.sendall(SSE_HEAD + b"%x\r\n%s\r\n" % (len(SSE_FIRST_EVENT), SSE_FIRST_EVENT))
            c.state = "sse"
            counts["sse"] += 1
        else:
            c.body_left = int(headers.get("content-length", "0") or 0)
            c.state = "body"
            counts["body_waiting"] += 1
            handle_body(c)

    def handle_body(c: _Conn) -> None:
        take = min(len(c.buf), c.body_left)
        c.body_left -= take
        c.buf = c.buf[take:]
        if c.body_left == 0:
            c.sock.sendall(OK_RESPONSE)
            counts["answered"] += 1
            counts["body_waiting"] -= 1
            c.state = "head"
            if c.buf:
                handle_head(c)

    while not stop_event.is_set():
        if port_pipe.poll():
            port_pipe.recv()
            port_pipe.send(dict(counts))
        for key, _ in sel.select(timeout=0.1):
            if key.data is None:
                for _ in range(256):
                    try:
                        s, _ = lsock.accept()
                    except BlockingIOError:
                        break
                    s.setblocking(False)
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    sel.register(s, selectors.EVENT_READ, _Conn(s))
                    counts["accepted"] += 1
                    counts["open"] += 1
                continue
            c = key.data
            try:
                data = c.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                close(c)
                continue
            if c.state in ("ws", "sse"):
                continue  # stream bytes from the client are not needed here
            c.buf += data
            try:
                if c.state == "head":
                    handle_head(c)
                elif c.state == "body":
                    handle_body(c)
            except OSError:
                close(c)
    for key in list(sel.get_map().values()):
        key.fileobj.close()


class LoopbackUpstream:
    """The upstream above in a child process (so its sockets do not use this process's descriptors)."""

    def __init__(self):
        ctx = multiprocessing.get_context("fork")
        self._pipe, child_pipe = ctx.Pipe()
        self._stop = ctx.Event()
        self.proc = ctx.Process(target=_upstream_main, args=(child_pipe, self._stop), daemon=True)
        self.proc.start()
        if not self._pipe.poll(10):
            self.stop()
            raise RuntimeError("upstream did not start")
        self.port = self._pipe.recv()

    def counts(self) -> dict:
        self._pipe.send("counts")
        if not self._pipe.poll(10):
            raise RuntimeError("upstream did not answer")
        return self._pipe.recv()

    def stop(self) -> None:
        self._stop.set()
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
