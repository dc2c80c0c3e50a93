"""Black-box harness for edgeguard integration tests.

Everything here talks to real processes over real loopback sockets: a recording upstream server that can be told
how to misbehave, the real `edgeguard` binary started on a config the test writes, and raw-socket clients that
see exactly the bytes edgeguard sends. Every wait is bounded and every process/socket is cleaned up by its owner.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

LOOPBACK = "127.0.0.1"

# Bounds for every wait in the harness: generous, because two cores are shared by several builds.
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
IO_TIMEOUT = 10.0
# Skip reasons conftest.ALLOWED_SKIPS accepts under CI=true (matched as substrings of the reason).
SKIP_NO_IPV6 = "no IPv6 loopback on this machine"
SKIP_SANITIZED_RSS = "RSS bound not meaningful in a sanitizer build"


def free_port() -> int:
    """A loopback port that was free a moment ago (the kernel picks it, so parallel runs do not collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# --------------------------------------------------------------------------------------------------------------
# HTTP/1.1 message reading shared by the upstream (requests) and the clients (responses).
# --------------------------------------------------------------------------------------------------------------


class PeerClosed(Exception):
    """The peer closed the connection before a complete message arrived."""


class SocketReader:
    """Buffered reads from a socket with a per-call deadline; keeps unread bytes for pipelined messages."""

    def __init__(self, sock: socket.socket, timeout: float = IO_TIMEOUT,
                 on_bytes: Optional[Callable[[int], None]] = None):
        self.sock = sock
        self.timeout = timeout
        self.buf = bytearray()
        self.total_received = 0
        self.on_bytes = on_bytes

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("read deadline passed")
        self.sock.settimeout(remaining)
        data = self.sock.recv(65536)
        if not data:
            raise PeerClosed()
        self.total_received += len(data)
        if self.on_bytes:
            self.on_bytes(len(data))
        self.buf += data

    def read_until(self, marker: bytes, limit: int = 1 << 20, timeout: Optional[float] = None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            idx = self.buf.find(marker)
            if idx >= 0:
                out = bytes(self.buf[: idx + len(marker)])
                del self.buf[: idx + len(marker)]
                return out
            if len(self.buf) > limit:
                raise ValueError(f"no {marker!r} within {limit} bytes")
            self._fill(deadline)

    def read_exact(self, n: int, timeout: Optional[float] = None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            self._fill(deadline)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_some(self, timeout: Optional[float] = None) -> bytes:
        """Whatever is buffered, or the next recv; b'' at EOF."""
        if self.buf:
            out = bytes(self.buf)
            self.buf.clear()
            return out
        try:
            self._fill(time.monotonic() + (timeout or self.timeout))
        except PeerClosed:
            return b""
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def discard_exact(self, n: int, sink: Callable[[bytes], None], timeout: Optional[float] = None) -> None:
        """Reads n bytes handing each piece to sink, without keeping them (for 50 MB bodies)."""
        deadline_step = timeout or self.timeout
        while n > 0:
            if not self.buf:
                self._fill(time.monotonic() + deadline_step)
            take = min(n, len(self.buf))
            sink(bytes(self.buf[:take]))
            del self.buf[:take]
            n -= take

    def read_to_eof(self, timeout: Optional[float] = None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                self._fill(deadline)
            except PeerClosed:
                out = bytes(self.buf)
                self.buf.clear()
                return out


def parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    """Splits a head (ending in CRLFCRLF) into its start line and (name, value) pairs, keeping order and case."""
    text = head.decode("latin-1")
    lines = text[:-4].split("\r\n") if text.endswith("\r\n\r\n") else text.split("\r\n")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.append((name, value.strip(" \t")))
    return lines[0], headers


def header_values(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for (n, v) in headers if n.lower() == name.lower()]


def header_value(headers: list[tuple[str, str]], name: str) -> Optional[str]:
    vals = header_values(headers, name)
    return vals[0] if vals else None


class BodyCollector:
    """Counts and hashes a body; keeps the bytes only while small so 50 MB uploads cost no memory."""

    def __init__(self, keep_limit: int):
        self.keep_limit = keep_limit
        self.kept = bytearray()
        self.length = 0
        self.sha = hashlib.sha256()
        self.overflowed = False

    def __call__(self, data: bytes) -> None:
        self.length += len(data)
        self.sha.update(data)
        if not self.overflowed:
            if len(self.kept) + len(data) <= self.keep_limit:
                self.kept += data
            else:
                self.overflowed = True
                self.kept.clear()


def read_chunked(reader: SocketReader, sink: Callable[[bytes], None], raw: Optional[bytearray] = None) -> list:
    """Decodes a chunked body (strict hex sizes, extensions ignored). Returns the trailer lines."""
    while True:
        line = reader.read_until(b"\r\n", limit=4096)
        if raw is not None:
            raw += line
        size_text = line[:-2].split(b";", 1)[0].strip()
        size = int(size_text, 16)
        if size == 0:
            trailers = []
            while True:
                tline = reader.read_until(b"\r\n", limit=65536)
                if raw is not None:
                    raw += tline
                if tline == b"\r\n":
                    return trailers
                trailers.append(tline[:-2].decode("latin-1"))
        reader.discard_exact(size, sink)
        crlf = reader.read_exact(2)
        if raw is not None:
            raw += crlf
        if crlf != b"\r\n":
            raise ValueError(f"chunk not followed by CRLF: {crlf!r}")


# --------------------------------------------------------------------------------------------------------------
# The recording upstream.
# --------------------------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    conn_id: int
    seq_on_conn: int  # 0 for the first request on its connection
    method: str
    target: str
    version: str
    headers: list  # [(name, value)] in received order, names as received
    raw_head: bytes
    body: Optional[bytes]  # None when larger than the upstream's keep limit
    body_length: int
    body_sha256: str
    chunked: bool
    trailers: list
    head_received_at: float
    completed_at: float

    def header(self, name: str) -> Optional[str]:
        return header_value(self.headers, name)

    def header_all(self, name: str) -> list[str]:
        return header_values(self.headers, name)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


@dataclass
class Reply:
    """How the upstream answers one request.

    action: "respond" (normal), "close" (close without a byte), "hang" (never answer until the upstream stops or
    `release` is set), "raw" (send `raw` bytes verbatim, then behave per `close_after`), "stream" (hand the
    socket to `stream`, which writes everything; the connection is closed afterwards).
    """

    status: int = 200
    reason: str = "OK"
    headers: list = field(default_factory=list)
    body: bytes = b""
    chunks: Optional[list] = None  # send a chunked body, one write per element
    chunk_gate: Optional[threading.Event] = None  # after the first chunk, wait for this before the rest
    chunk_delay: float = 0.0  # pause between chunks
    delay: float = 0.0  # pause before the status line
    action: str = "respond"
    raw: bytes = b""
    close_after: bool = False
    release: Optional[threading.Event] = None  # for "hang": answer normally once set
    stream: Optional[Callable[[socket.socket], None]] = None  # for "stream": writes the whole answer itself


def default_reply(upstream_name: str) -> Callable[["RecordedRequest"], Reply]:
    def reply(req: RecordedRequest) -> Reply:
        body = json.dumps({"upstream": upstream_name, "target": req.target}).encode()
        return Reply(headers=[("Content-Type", "application/json"), ("X-Upstream", upstream_name)], body=body)

    return reply


class Upstream:
    """A threaded HTTP/1.1 keep-alive server on loopback that records every request it receives.

    Connections get increasing ids, so tests can see pool reuse. `handler(request) -> Reply` decides the answer.
    """

    def __init__(self, name: str = "upstream", handler: Optional[Callable[[RecordedRequest], Reply]] = None,
                 keep_body_limit: int = 1 << 20, family: int = socket.AF_INET, host: str = LOOPBACK,
                 body_read_delay: float = 0.0):
        self.name = name
        self.handler = handler or default_reply(name)
        self.keep_body_limit = keep_body_limit
        self.body_read_delay = body_read_delay  # a slow reader: pause after each head before reading its body
        self.requests: list[RecordedRequest] = []
        self.connections_accepted = 0
        self.connections_closed = 0
        self.bytes_received = 0
        self.errors: list[str] = []  # requests the upstream could not parse (proxy sent bad bytes)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._conns: dict[int, socket.socket] = {}
        self._threads: list[threading.Thread] = []
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, 0))
        self.listener.listen(256)
        self.host = host
        self.port = self.listener.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop, name=f"upstream-{name}", daemon=True)
        self._accept_thread.start()

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    # -- test-facing queries ------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.errors.clear()
            self.bytes_received = 0

    def wait_requests(self, n: int, timeout: float = IO_TIMEOUT) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return list(self.requests)

    def wait_closed(self, n: int, timeout: float = IO_TIMEOUT) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.connections_closed < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self.requests)

    def open_connections(self) -> int:
        with self._lock:
            return self.connections_accepted - self.connections_closed

    # -- lifecycle ----------------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        try:
            self.listener.close()
        except OSError:
            pass
        with self._lock:
            conns = list(self._conns.values())
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._accept_thread.join(STOP_TIMEOUT)
        for t in list(self._threads):
            t.join(STOP_TIMEOUT)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- server internals ---------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                conn_id = self.connections_accepted
                self.connections_accepted += 1
                self._conns[conn_id] = conn
            # The harness must not add Nagle/delayed-ACK stalls of its own to what it measures.
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = threading.Thread(target=self._serve, args=(conn, conn_id), daemon=True)
            self._threads.append(t)
            t.start()

    def _count_bytes(self, n: int) -> None:
        with self._lock:
            self.bytes_received += n

    def _serve(self, conn: socket.socket, conn_id: int) -> None:
        reader = SocketReader(conn, timeout=120.0, on_bytes=self._count_bytes)
        seq = 0
        try:
            while not self._stop.is_set():
                try:
                    req = self._read_request(reader, conn_id, seq)
                except (PeerClosed, socket.timeout, OSError):
                    return
                except ValueError as e:
                    with self._cond:
                        self.errors.append(str(e))
                        self._cond.notify_all()
                    return
                with self._cond:
                    self.requests.append(req)
                    self._cond.notify_all()
                seq += 1
                reply = self.handler(req)
                if not self._answer(conn, req, reply):
                    return
        finally:
            try:
                conn.close()
            except OSError:
                pass
            with self._cond:
                self._conns.pop(conn_id, None)
                self.connections_closed += 1
                self._cond.notify_all()

    def _read_request(self, reader: SocketReader, conn_id: int, seq: int) -> RecordedRequest:
        # Block until the first byte without a deadline that would drop an idle pooled connection.
        while not reader.buf:
            try:
                reader._fill(time.monotonic() + 0.2)
            except socket.timeout:
                if self._stop.is_set():
                    raise PeerClosed()
        head = reader.read_until(b"\r\n\r\n", limit=1 << 20)
        head_at = time.monotonic()
        start, headers = parse_head(head)
        parts = start.split(" ")
        if len(parts) != 3:
            raise ValueError(f"bad request line from proxy: {start!r}")
        method, target, version = parts
        collector = BodyCollector(self.keep_body_limit)
        if self.body_read_delay:
            self._stop.wait(self.body_read_delay)
        te = header_value(headers, "transfer-encoding")
        cl = header_values(headers, "content-length")
        trailers: list = []
        chunked = False
        if te is not None:
            if te.lower() != "chunked" or cl:
                raise ValueError(f"proxy sent ambiguous framing: TE={te!r} CL={cl!r}")
            chunked = True
            trailers = read_chunked(reader, collector)
        elif cl:
            if len(cl) != 1 or not cl[0].isdigit():
                raise ValueError(f"proxy sent bad Content-Length: {cl!r}")
            reader.discard_exact(int(cl[0]), collector)
        body = None if collector.overflowed else bytes(collector.kept)
        return RecordedRequest(conn_id=conn_id, seq_on_conn=seq, method=method, target=target, version=version,
                               headers=headers, raw_head=head, body=body, body_length=collector.length,
                               body_sha256=collector.sha.hexdigest(), chunked=chunked, trailers=trailers,
                               head_received_at=head_at, completed_at=time.monotonic())

    def _answer(self, conn: socket.socket, req: RecordedRequest, reply: Reply) -> bool:
        """Sends the reply; returns whether the connection stays open for another request."""
        conn.settimeout(IO_TIMEOUT)
        try:
            if reply.action == "close":
                return False
            if reply.action == "hang":
                while not self._stop.is_set():
                    if reply.release is not None and reply.release.wait(0.05):
                        break
                    if reply.release is None:
                        self._stop.wait(0.05)
                if self._stop.is_set():
                    return False
            if reply.delay:
                if self._stop.wait(reply.delay):
                    return False
            if reply.action == "stream":
                reply.stream(conn)
                return False
            if reply.action == "raw":
                conn.sendall(reply.raw)
                return not reply.close_after
            head = [f"HTTP/1.1 {reply.status} {reply.reason}"]
            names = {n.lower() for (n, _) in reply.headers}
            head += [f"{n}: {v}" for (n, v) in reply.headers]
            no_body = req.method == "HEAD" or reply.status in (204, 304) or 100 <= reply.status < 200
            if reply.chunks is not None:
                head.append("Transfer-Encoding: chunked")
            elif "content-length" not in names and not no_body:
                head.append(f"Content-Length: {len(reply.body)}")
            if reply.close_after:
                head.append("Connection: close")
            head_bytes = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
            if reply.chunks is None and not no_body:
                conn.sendall(head_bytes + reply.body)  # one write, like real servers
                return not reply.close_after
            conn.sendall(head_bytes)
            if reply.chunks is not None:
                for i, chunk in enumerate(reply.chunks):
                    if i == 1 and reply.chunk_gate is not None:
                        reply.chunk_gate.wait(IO_TIMEOUT)
                    elif i > 0 and reply.chunk_delay:
                        time.sleep(reply.chunk_delay)
                    if chunk:
                        conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                conn.sendall(b"0\r\n\r\n")
            elif not no_body and reply.body:
                conn.sendall(reply.body)
            return not reply.close_after
        except OSError:
            return False


# --------------------------------------------------------------------------------------------------------------
# Configs and the edgeguard process.
# --------------------------------------------------------------------------------------------------------------


def dump_yaml(config: dict) -> str:
    """YAML text for a config dict. JSON is a YAML subset, so no YAML library is needed to write one."""
    return json.dumps(config, indent=2) + "\n"


def ms(value_ms: int) -> str:
    """A duration in the config's duration syntax."""
    return f"{value_ms}ms"


def basic_config(listen_port: int, upstreams: dict[str, list[str]], routes: list[dict], *,
                 admin_port: Optional[int] = None, workers: int = 2, timeouts: Optional[dict] = None,
                 limits: Optional[dict] = None, extra: Optional[dict] = None) -> dict:
    """A config with one plain listener on 127.0.0.1:listen_port and the given upstreams and routes."""
    config: dict = {
        "workers": workers,
        # Below STOP_TIMEOUT, so a request still in flight at teardown ends in a clean exit, not a kill.
        "graceful_shutdown": ms(5000),
        "listeners": [{"name": "main", "address": f"{LOOPBACK}:{listen_port}"}],
        "admin": {"address": f"{LOOPBACK}:{admin_port or free_port()}"},
        "upstreams": {name: {"servers": servers} for name, servers in upstreams.items()},
        "routes": routes,
        "access_log": {"output": "off"},
    }
    if timeouts:
        config["timeouts"] = timeouts
    if limits:
        config["limits"] = limits
    if extra:
        config.update(extra)
    return config


def default_binary() -> Optional[str]:
    env = os.environ.get("EDGEGUARD_BIN")
    if env:
        return env
    src = Path(os.environ.get("EDGEGUARD_SOURCE_DIR", Path(__file__).resolve().parents[2]))
    for candidate in ("build/edgeguard", "build-itest/edgeguard"):
        p = src / candidate
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


def source_dir() -> Path:
    return Path(os.environ.get("EDGEGUARD_SOURCE_DIR", Path(__file__).resolve().parents[2]))


_SANITIZED: dict[str, bool] = {}


def binary_is_sanitized(binary: str) -> bool:
    """Whether the binary was built with ASan/TSan, whose shadow memory makes RSS bounds meaningless."""
    if binary not in _SANITIZED:
        with open(binary, "rb") as f:
            data = f.read()
        _SANITIZED[binary] = b"__asan_init" in data or b"__tsan_init" in data
    return _SANITIZED[binary]


def assert_rss_below(proc: "Edgeguard", limit_kb: int, what: str) -> None:
    """Peak RSS (VmHWM) bound; skipped, after the functional checks already ran, for sanitizer builds."""
    if binary_is_sanitized(proc.binary):
        import pytest  # only the test process needs it

        pytest.skip(f"{what}: {SKIP_SANITIZED_RSS} (functional checks passed)")
    hwm_kb = proc.status_kb("VmHWM")
    assert hwm_kb < limit_kb, f"edgeguard peak RSS {hwm_kb} kB {what}"


SENTINEL_TARGET = "/__sentinel"


def sentinel(port: int, upstream: "Upstream") -> "RecordedRequest":
    """Positive proof, without a sleep, that `upstream` has seen whatever edgeguard was going to send it so far:
    a GET on a fresh client connection through the same edgeguard, waited for at the upstream. A pooled upstream
    connection carries it behind anything sent there earlier; a new one is opened after any earlier one."""
    with Client(port) as c:
        assert c.request("GET", SENTINEL_TARGET).status == 200
    assert wait_until(lambda: any(r.target == SENTINEL_TARGET for r in upstream.snapshot()), IO_TIMEOUT)
    return next(r for r in upstream.snapshot() if r.target == SENTINEL_TARGET)


def expect_continue_head(port: int, target: str, source: str = LOOPBACK, body_length: int = 11) -> bytes:
    """Sends a POST head with `Expect: 100-continue` from `source` and returns the first response head the server
    sends (the body is never sent): a refusal must come as the final status, never after a `100 Continue`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(IO_TIMEOUT)
    try:
        sock.bind((source, 0))
        sock.connect((LOOPBACK, port))
        sock.sendall(build_request("POST", target, [("Content-Length", str(body_length)),
                                                   ("Expect", "100-continue")], None))
        return SocketReader(sock).read_until(b"\r\n\r\n", timeout=IO_TIMEOUT)
    finally:
        sock.close()


def run_cli(binary: str, *args: str, timeout: float = 30.0, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """Runs an edgeguard subcommand; `env` adds to (or overrides) this process's environment."""
    full_env = {**os.environ, **env} if env else None
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout, env=full_env)


# What sanitizer builds (-DEDGEGUARD_ASAN=ON / EDGEGUARD_TSAN) print; any of them fails the test that saw it.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error:", "ThreadSanitizer:")

# The sanitizer runtimes read these; ASan's also governs LeakSanitizer and, in the combined build, UBSan.
SANITIZER_OPTION_VARS = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS")


def sanitizer_findings(text: str) -> list[str]:
    """Excerpts around every sanitizer marker in text (a stderr capture or a report file)."""
    found = []
    for marker in SANITIZER_MARKERS:
        idx = text.find(marker)
        if idx >= 0:
            found.append(text[max(0, idx - 200): idx + 3000])
    return found


class SanitizerReportDir:
    """Makes every sanitized process of this test run write its reports into one directory (log_path).

    Not every test starts edgeguard through Edgeguard (CLI runs via subprocess, a harness that restarts a
    crashed proxy and keeps only the last one's stderr), so reading stderr alone could miss a report. With
    log_path the runtime writes <dir>/report.<pid> for any process that inherits the environment, and
    new_reports() hands each file to the test during which it appeared. Harmless for uninstrumented binaries:
    nothing reads the variables and no file appears.
    """

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._seen: set[str] = set()

    def install(self, environ=os.environ) -> None:
        prefix = self.directory / "report"
        for var in SANITIZER_OPTION_VARS:
            kept = [o for o in environ.get(var, "").replace(" ", ":").split(":")
                    if o and not o.startswith("log_path=")]
            environ[var] = ":".join(kept + [f"log_path={prefix}"])

    def new_reports(self) -> list[str]:
        """Contents of report files not returned before (one per process that reported)."""
        reports = []
        for path in sorted(self.directory.glob("report*")):
            if path.name in self._seen:
                continue
            self._seen.add(path.name)
            text = path.read_text(errors="replace")
            reports.append(f"{path.name}:\n{text[:6000]}")
        return reports


class Edgeguard:
    """One `edgeguard serve` process on a config written into workdir."""

    def __init__(self, binary: str, config: dict | str, workdir: Path, listen_port: Optional[int] = None):
        self.binary = binary
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "edgeguard.yaml"
        text = config if isinstance(config, str) else dump_yaml(config)
        self.config_path.write_text(text)
        self.config = config
        self.listen_port = listen_port if listen_port is not None else self._first_listener_port(config)
        self.listen_host = LOOPBACK
        if isinstance(config, dict) and config["listeners"][0]["address"].startswith("[::1]"):
            self.listen_host = "::1"
        self.stdout_path = self.workdir / "edgeguard.stdout"
        self.stderr_path = self.workdir / "edgeguard.stderr"
        self.proc: Optional[subprocess.Popen] = None
        self.returncode: Optional[int] = None

    @staticmethod
    def _first_listener_port(config) -> int:
        if isinstance(config, dict):
            return int(config["listeners"][0]["address"].rsplit(":", 1)[1])
        raise ValueError("listen_port is required with a text config")

    def start(self) -> "Edgeguard":
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([self.binary, "serve", "--config", str(self.config_path)],
                                     stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err,
                                     cwd=self.workdir)
        self.wait_ready()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Ready when stderr says so (printed once every worker listens); fails at once if the process exits.

        No probe connection to the listener: edgeguard counts it against max_connections_per_ip until its worker
        sees the close, so a test with a per-IP limit of 1 could have its first connection refused (seen under
        ASan, where that gap is wider).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"edgeguard exited with {self.proc.returncode} before ready:\n{self.stderr()}")
            if "edgeguard: ready" in self.stderr():
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"edgeguard not ready within {timeout}s:\n{self.stderr()}")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> Optional[int]:
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self) -> Optional[int]:
        """SIGTERM, then SIGKILL after a bound. Returns the exit code of the SIGTERM stop (None if killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.returncode = self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
                self.returncode = None
        else:
            self.returncode = self.proc.returncode
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f:
                f.close()
        return self.returncode

    def problems(self) -> list[str]:
        """After stop(): what says this run was unhealthy (unclean exit, sanitizer reports on stderr)."""
        found = []
        if self.proc is not None and self.returncode != 0:
            found.append(f"edgeguard exit status {self.returncode} (None = had to be killed)")
        found += sanitizer_findings(self.stderr())
        return found

    def status_kb(self, field_name: str) -> int:
        """A /proc/<pid>/status memory field (VmHWM, VmRSS) in kB."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
        raise KeyError(field_name)


# --------------------------------------------------------------------------------------------------------------
# Clients.
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    reason: str
    version: str
    headers: list
    body: bytes
    raw_head: bytes

    def header(self, name: str) -> Optional[str]:
        return header_value(self.headers, name)

    def json(self):
        return json.loads(self.body)


def read_response(reader: SocketReader, method: str = "GET", timeout: Optional[float] = None) -> Response:
    """Reads one response, skipping 1xx interim responses other than 101."""
    while True:
        head = reader.read_until(b"\r\n\r\n", limit=1 << 20, timeout=timeout)
        start, headers = parse_head(head)
        version, _, rest = start.partition(" ")
        code_text, _, reason = rest.partition(" ")
        status = int(code_text)
        if 100 <= status < 200 and status != 101:
            continue
        break
    body = bytearray()
    te = header_value(headers, "transfer-encoding")
    cl = header_value(headers, "content-length")
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        pass
    elif te is not None and te.lower() == "chunked":
        read_chunked(reader, body.extend)
    elif cl is not None:
        body += reader.read_exact(int(cl), timeout=timeout)
    else:
        body += reader.read_to_eof(timeout=timeout)
    return Response(status=status, reason=reason, version=version, headers=headers, body=bytes(body),
                    raw_head=head)


def assert_json_error(resp: Response, status: int) -> None:
    """edgeguard's own errors: the status and a short JSON body {"error": "...", "status": N}."""
    assert resp.status == status, (resp.status, resp.body)
    assert (resp.header("content-type") or "").startswith("application/json"), resp.headers
    doc = resp.json()
    assert doc["status"] == status, doc
    assert isinstance(doc["error"], str) and doc["error"], doc


class Client:
    """A raw keep-alive client connection to edgeguard."""

    def __init__(self, port: int, host: str = LOOPBACK, timeout: float = IO_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = SocketReader(self.sock, timeout=timeout)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, method: str, target: str, headers: Optional[list] = None, body: Optional[bytes] = None,
                host: str = "edgeguard.test", timeout: Optional[float] = None) -> Response:
        self.send(build_request(method, target, headers, body, host))
        return read_response(self.reader, method, timeout=timeout)

    def read_response(self, method: str = "GET", timeout: Optional[float] = None) -> Response:
        return read_response(self.reader, method, timeout=timeout)

    def is_closed_by_peer(self, timeout: float = 2.0) -> bool:
        """True when the server closes (EOF or reset) within timeout and sends nothing more."""
        try:
            data = self.reader.read_some(timeout=timeout)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        return data == b""

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def build_request(method: str, target: str, headers: Optional[list] = None, body: Optional[bytes] = None,
                  host: Optional[str] = "edgeguard.test") -> bytes:
    lines = [f"{method} {target} HTTP/1.1"]
    hdrs = list(headers or [])
    names = {n.lower() for (n, _) in hdrs}
    if host is not None and "host" not in names:
        lines.append(f"Host: {host}")
    lines += [f"{n}: {v}" for (n, v) in hdrs]
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def encode_chunked(pieces: list[bytes]) -> bytes:
    out = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p)
    return out + b"0\r\n\r\n"


def request_from(source: str, port: int, target: str = "/", family=socket.AF_INET, host: str = LOOPBACK) -> bytes:
    """One GET from the local address `source` on a new connection; the raw bytes the server sent before closing
    (b"" = nothing: refused at accept). All of 127/8 is loopback, so 127.0.0.x are distinct peers."""
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(IO_TIMEOUT)
        sock.bind((source, 0))
        sock.connect((host, port))
        try:
            sock.sendall(build_request("GET", target, [("Connection", "close")], None, "edgeguard.test"))
        except (BrokenPipeError, ConnectionResetError):
            return b""
        data = bytearray()
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        return bytes(data)


def status_of(raw: bytes) -> int:
    """The status code of a raw HTTP/1.1 response, 0 when there is none."""
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0
