"""HTTP/2 clients for the integration tests: a python-h2 client for well-behaved requests, and a raw frame
writer (struct + hpack) for the floods a conforming library refuses to send.

Everything talks to 127.0.0.1 only, with a deadline on every read.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack

import eg

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types and flags (RFC 9113 §6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
ENHANCE_YOUR_CALM, NO_ERROR, PROTOCOL_ERROR, CANCEL = 0xB, 0x0, 0x1, 0x8


def tls_context(ca: Path, alpn=("h2",)) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.set_alpn_protocols(list(alpn))
    return ctx


def open_socket(port: int, *, ca: Optional[Path] = None, server_name: str = "a.test",
                alpn=("h2",), timeout: float = eg.IO_TIMEOUT) -> socket.socket:
    """A TCP connection to the listener, TLS with the given ALPN offer when `ca` is set (plain for h2c)."""
    raw = socket.create_connection((eg.LOOPBACK, port), timeout=timeout)
    if ca is None:
        return raw
    try:
        return tls_context(ca, alpn).wrap_socket(raw, server_hostname=server_name)
    except Exception:
        raw.close()
        raise


@dataclass
class H2Response:
    status: int = 0
    headers: list = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False
    reset: Optional[int] = None  # RST_STREAM error code, when the stream was reset

    def header(self, name: str) -> Optional[str]:
        for k, v in self.headers:
            if k == name:
                return v
        return None


class H2Client:
    """A conforming HTTP/2 client on one connection (python-h2), for many streams at once."""

    def __init__(self, sock: socket.socket, authority: str = "a.test", scheme: str = "https",
                 window: Optional[int] = None, validate: bool = True):
        self.sock = sock
        self.authority = authority
        self.scheme = scheme
        # validate=False sends what a test asks for even when python-h2 would refuse it (a Host that
        # contradicts :authority): the server's own checks are what such a test is about.
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", validate_outbound_headers=validate))
        self.conn.initiate_connection()
        if window is not None:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.responses: dict[int, H2Response] = {}
        self.goaway: Optional[h2.events.ConnectionTerminated] = None
        self.closed = False
        self.auto_ack = True  # give window back for response bytes as they arrive
        self._flush()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, method: str, path: str, headers: Optional[list] = None, body: Optional[bytes] = None,
                end: bool = True) -> int:
        sid = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":scheme", self.scheme), (":authority", self.authority), (":path", path)]
        fields += headers or []
        self.conn.send_headers(sid, fields, end_stream=(body is None and end))
        self.responses[sid] = H2Response()
        self._flush()
        if body is not None:
            self.send_body(sid, body, end=end)
        return sid

    def send_body(self, sid: int, body: bytes, end: bool = True, timeout: float = eg.IO_TIMEOUT) -> None:
        """Sends `body` as flow control allows, reading (and answering) frames while the window is shut."""
        view = memoryview(body)
        deadline = time.monotonic() + timeout
        while view:
            room = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if room <= 0:
                if time.monotonic() > deadline:
                    raise TimeoutError("the server never opened its window")
                self.read_events(timeout=max(0.05, deadline - time.monotonic()), once=True)
                if self.closed or self.responses[sid].ended or self.responses[sid].reset is not None:
                    return
                continue
            n = min(room, len(view))
            self.conn.send_data(sid, view[:n].tobytes())
            view = view[n:]
            self._flush()
        if end:
            self.conn.end_stream(sid)
            self._flush()

    def read_events(self, timeout: float = eg.IO_TIMEOUT, once: bool = False) -> list:
        deadline = time.monotonic() + timeout
        events = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("no HTTP/2 frames before the deadline")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            if not data:
                self.closed = True
                return events
            got = self.conn.receive_data(data)
            for ev in got:
                self._apply(ev)
            events += got
            self._flush()
            if once and got:
                return events
            if once:
                continue
            return events

    def _apply(self, ev) -> None:
        if isinstance(ev, h2.events.ResponseReceived):
            r = self.responses.setdefault(ev.stream_id, H2Response())
            r.headers = list(ev.headers)
            r.status = int(dict(ev.headers)[":status"])
        elif isinstance(ev, h2.events.DataReceived):
            self.responses.setdefault(ev.stream_id, H2Response()).body += ev.data
            if self.auto_ack and ev.flow_controlled_length:
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            self.responses.setdefault(ev.stream_id, H2Response()).ended = True
        elif isinstance(ev, h2.events.StreamReset):
            self.responses.setdefault(ev.stream_id, H2Response()).reset = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev

    def wait(self, sids, timeout: float = eg.IO_TIMEOUT) -> list[H2Response]:
        """Reads until every stream in `sids` ended or was reset."""
        sids = list(sids)
        deadline = time.monotonic() + timeout
        while not all(self.responses[s].ended or self.responses[s].reset is not None for s in sids):
            if self.closed:  # a GOAWAY alone still lets the streams it covers finish
                break
            self.read_events(timeout=max(0.01, deadline - time.monotonic()))
        return [self.responses[s] for s in sids]

    def get(self, path: str, headers: Optional[list] = None) -> H2Response:
        return self.wait([self.request("GET", path, headers)])[0]

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------------------------------------------
# Raw frames: what a flood looks like on the wire
# --------------------------------------------------------------------------------------------------------------


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, stream_id & 0x7FFFFFFF) + payload


def settings_frame(values: Optional[dict] = None, ack: bool = False) -> bytes:
    payload = b"".join(struct.pack(">HI", k, v) for k, v in (values or {}).items())
    return frame(SETTINGS, ACK if ack else 0, 0, payload)


def request_block(path: str = "/", method: str = "GET", authority: str = "a.test", scheme: str = "https",
                  extra: Optional[list] = None, encoder: Optional[hpack.Encoder] = None) -> bytes:
    enc = encoder or hpack.Encoder()
    return enc.encode([(":method", method), (":scheme", scheme), (":authority", authority), (":path", path)]
                      + (extra or []))


def headers_frame(stream_id: int, block: bytes, end_stream: bool = True, end_headers: bool = True) -> bytes:
    flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
    return frame(HEADERS, flags, stream_id, block)


def rst_stream(stream_id: int, code: int = CANCEL) -> bytes:
    return frame(RST_STREAM, 0, stream_id, struct.pack(">I", code))


def ping(data: bytes = b"12345678") -> bytes:
    return frame(PING, 0, 0, data)


def priority(stream_id: int, depends_on: int = 0, weight: int = 16) -> bytes:
    return frame(PRIORITY, 0, stream_id, struct.pack(">IB", depends_on, weight))


class RawConnection:
    """Writes frames as given and reads the server's frames back, without any protocol logic of its own."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def send(self, data: bytes) -> bool:
        """False once the server closed the connection (a flood may still be in flight when it does)."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            return False

    def start(self, settings: Optional[dict] = None) -> None:
        self.send(PREFACE + settings_frame(settings))

    def read_frames(self, timeout: float = eg.IO_TIMEOUT) -> list[tuple[int, int, int, bytes]]:
        """Frames until EOF or the deadline: (type, flags, stream id, payload)."""
        deadline = time.monotonic() + timeout
        frames = []
        while not self.eof and time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, ssl.SSLError, OSError):
                self.eof = True
                break
            if not data:
                self.eof = True
                break
            self.buf += data
            frames += self._parse()
        frames += self._parse()
        return frames

    def _parse(self) -> list:
        out = []
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[0:3], "big")
            if len(self.buf) < 9 + length:
                break
            ftype, flags = self.buf[3], self.buf[4]
            sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            out.append((ftype, flags, sid, bytes(self.buf[9:9 + length])))
            del self.buf[:9 + length]
        return out

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def goaway_code(frames) -> Optional[int]:
    for ftype, _, _, payload in frames:
        if ftype == GOAWAY:
            return struct.unpack(">I", payload[4:8])[0]
    return None


def read_until_closed(raw: RawConnection, timeout: float = eg.IO_TIMEOUT) -> list:
    frames = []
    deadline = time.monotonic() + timeout
    while not raw.eof and time.monotonic() < deadline:
        frames += raw.read_frames(timeout=max(0.05, deadline - time.monotonic()))
    return frames


def metric(proc, name: str, labels: Optional[dict] = None) -> float:
    """One sample from the admin listener's /metrics (0 when the sample is absent)."""
    from ops_helpers import admin_get  # noqa: PLC0415 - the admin helpers are for the tests that scrape

    port = int(proc.config["admin"]["address"].rsplit(":", 1)[1])
    resp = admin_get(port, "/metrics")
    assert resp.status == 200
    want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    for line in resp.body.decode().splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return 0.0
