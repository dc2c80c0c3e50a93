"""Streams against connection limits, and streams across a reload.

A WebSocket tunnel or an event stream is a client connection like any other: it holds its slot of
`limits.max_connections` and `limits.max_connections_per_ip` for as long as it is open, a connection over a
limit is closed at accept without a response (README "connection-limit refusals"), and the slot is free again
once the stream ends from either side. A SIGHUP reload never cuts an open stream: it keeps the route, upstream
and timeouts of the configuration it started with, while new connections get the new ones. On SIGTERM open
streams keep flowing until the graceful_shutdown deadline and are ended then.
"""

from __future__ import annotations

import base64
import hashlib
import re
import select
import signal
import socket
import threading
import time

import eg
import pytest
from ops_helpers import admin_get

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def ws_accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


class StreamUpstream:
    """Upstream side of streams: answers an Upgrade with 101 and then echoes every read prefixed with its name
    (so a client sees which upstream its tunnel reaches); answers anything else with an event stream whose
    first event is sent at once and whose next ones are sent on `emit()`. Counts the streams it has open."""

    def __init__(self, name: str):
        self.name = name.encode()
        self._lock = threading.Lock()
        self._open = 0
        self._events = threading.Condition(self._lock)
        self._emitted = 0
        self._stop = threading.Event()

    def reply(self, req: eg.RecordedRequest) -> eg.Reply:
        if (req.header("upgrade") or "").lower() == "websocket":
            key = req.header("sec-websocket-key") or ""
            return eg.Reply(action="stream", stream=lambda conn: self._tunnel(conn, key))
        return eg.Reply(action="stream", stream=self._event_stream)

    def open_streams(self) -> int:
        with self._lock:
            return self._open

    def emit(self) -> None:
        """Every open event stream writes one more event."""
        with self._events:
            self._emitted += 1
            self._events.notify_all()

    def stop(self) -> None:
        self._stop.set()
        with self._events:
            self._events.notify_all()

    def _enter(self) -> None:
        with self._lock:
            self._open += 1

    def _leave(self) -> None:
        with self._lock:
            self._open -= 1

    def _tunnel(self, conn: socket.socket, key: str) -> None:
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + ws_accept(key).encode() + b"\r\n\r\n")
        self._enter()
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select([conn], [], [], 0.05)
                if not readable:
                    continue
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(self.name + b":" + data)
        except OSError:
            return
        finally:
            self._leave()

    def _event_stream(self, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        self._enter()
        sent = 0
        try:
            while not self._stop.is_set():
                with self._events:
                    target = self._emitted + 1  # the first event goes out at once
                while sent < target:
                    event = b"data: %s %d\n\n" % (self.name, sent)
                    conn.sendall(b"%x\r\n%s\r\n" % (len(event), event))
                    sent += 1
                readable, _, _ = select.select([conn], [], [], 0.05)
                if readable and conn.recv(1) == b"":
                    return
        except OSError:
            return
        finally:
            self._leave()


def _connect(port: int, source: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(eg.IO_TIMEOUT)
    sock.bind((source, 0))
    sock.connect((eg.LOOPBACK, port))
    return sock


class Stream:
    """One client stream through edgeguard: a WebSocket tunnel ("ws") or an event stream ("sse")."""

    def __init__(self, port: int, kind: str, source: str = "127.0.0.1", path: str | None = None):
        self.kind = kind
        self.sock = _connect(port, source)
        self.reader = eg.SocketReader(self.sock)
        if kind == "ws":
            self.sock.sendall(eg.build_request("GET", path or "/ws", [
                ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Key", WS_KEY)]))
            head = self.reader.read_until(b"\r\n\r\n", timeout=5)
            status, headers = eg.parse_head(head)
            assert status.startswith("HTTP/1.1 101"), head
            assert eg.header_value(headers, "sec-websocket-accept") == ws_accept(WS_KEY), head
        else:
            self.sock.sendall(eg.build_request("GET", path or "/events", [("Accept", "text/event-stream")]))
            head = self.reader.read_until(b"\r\n\r\n", timeout=5)
            assert head.startswith(b"HTTP/1.1 200"), head
            self.next_event()

    def echo(self, data: bytes) -> bytes:
        """Tunnel round trip: returns the name of the upstream that answered."""
        assert self.kind == "ws"
        self.sock.sendall(data)
        got = self.reader.read_until(b":" + data, timeout=5)
        return got[: -len(data) - 1]

    def next_event(self) -> bytes:
        assert self.kind == "sse"
        self.reader.read_until(b"data: ", timeout=5)
        return self.reader.read_until(b"\n\n", timeout=5)[:-2]

    def is_closed_by_peer(self, timeout: float) -> bool:
        return eg.Client.is_closed_by_peer(self, timeout)  # needs only .reader

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def is_refused(port: int, source: str) -> bool:
    """True when edgeguard closes a new connection from `source` without answering (its limit refusal)."""
    sock = _connect(port, source)
    try:
        sock.sendall(eg.build_request("GET", "/probe", [("Connection", "close")]))
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        return data == b""
    except (BrokenPipeError, ConnectionResetError):
        return True
    finally:
        sock.close()


def is_admitted(port: int, source: str) -> bool:
    """True when a new connection from `source` gets an answer (the probe route answers 200)."""
    try:
        sock = _connect(port, source)
    except OSError:
        return False
    try:
        sock.sendall(eg.build_request("GET", "/probe", [("Connection", "close")]))
        return eg.read_response(eg.SocketReader(sock), timeout=5).status == 200
    except (OSError, eg.PeerClosed):
        return False
    finally:
        sock.close()


def open_when_admitted(port: int, kind: str, source: str, timeout: float = 5.0) -> Stream:
    """A new stream once a slot is free. A probe that was just answered may still hold its slot for a moment
    (edgeguard releases it when it sees the probe's close), so a refusal here is retried until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return Stream(port, kind, source)
        except (eg.PeerClosed, ConnectionResetError, BrokenPipeError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def metric(admin_port: int, pattern: str) -> float:
    text = admin_get(admin_port, "/metrics").body.decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if re.match(pattern, line))


@pytest.fixture
def stream_upstreams(upstreams):
    """Factory: a recording eg.Upstream answering with a StreamUpstream, both stopped after the test.
    /probe gets a plain 200, so limit probes never open a stream; /refuse answers 404 (an upgrade refused)."""
    made: list[StreamUpstream] = []

    def make(name: str) -> tuple[eg.Upstream, StreamUpstream]:
        streams = StreamUpstream(name)
        made.append(streams)

        def reply(req: eg.RecordedRequest) -> eg.Reply:
            if req.path == "/probe":
                return eg.Reply(body=b"probe")
            if req.path == "/refuse":
                return eg.Reply(status=404, reason="Not Found", body=b"no stream here")
            return streams.reply(req)

        return upstreams(name, reply), streams

    yield make
    for s in made:
        s.stop()


def stream_config(port: int, admin_port: int, up: eg.Upstream, limits: dict, stream_idle: str = "30s") -> dict:
    routes = [{"name": "all", "paths": ["/"], "upstream": "app"}]
    return eg.basic_config(port, {"app": [up.address]}, routes, admin_port=admin_port, limits=limits,
                           timeouts={"stream_idle": stream_idle, "upstream_body_idle": stream_idle})


def test_streams_hold_per_ip_slots_until_they_end(stream_upstreams, edgeguard):
    up, streams = stream_upstreams("app")
    port, admin_port = eg.free_port(), eg.free_port()
    edgeguard(stream_config(port, admin_port, up, {"max_connections_per_ip": 4}))
    held = [Stream(port, "ws"), Stream(port, "ws"), Stream(port, "sse"), Stream(port, "sse")]
    try:
        assert eg.wait_until(lambda: streams.open_streams() == 4, 5)
        # A fifth connection from the same address is closed at accept, answered nothing, and counted.
        assert is_refused(port, "127.0.0.1")
        assert metric(admin_port, r'edgeguard_rejections_total\{.*reason="connection_limit"') >= 1
        # Another address has its own budget, for streams too.
        other = Stream(port, "ws", source="127.0.0.2")
        assert other.echo(b"hi") == b"app"
        other.close()
        # The refusals cut nothing: every held stream still carries data.
        assert held[0].echo(b"ping") == b"app"
        streams.emit()
        assert held[2].next_event() == b"app 1"

        # The client closing a tunnel frees its slot.
        held.pop(0).close()
        assert eg.wait_until(lambda: is_admitted(port, "127.0.0.1"), 5, interval=0.1)
        replacement = open_when_admitted(port, "sse", "127.0.0.1")
        held.append(replacement)
        assert is_refused(port, "127.0.0.1")

        # The client closing an event stream frees its slot as well.
        held.pop(held.index(replacement)).close()
        assert eg.wait_until(lambda: is_admitted(port, "127.0.0.1"), 5, interval=0.1)
    finally:
        for s in held:
            s.close()


@pytest.mark.parametrize("kind", ["ws", "sse"])
def test_an_upstream_ending_the_stream_frees_the_slot(stream_upstreams, edgeguard, kind):
    up, streams = stream_upstreams("app")
    port, admin_port = eg.free_port(), eg.free_port()
    edgeguard(stream_config(port, admin_port, up, {"max_connections_per_ip": 1}))
    stream = Stream(port, kind)
    try:
        assert is_refused(port, "127.0.0.1")
        streams.stop()  # the upstream ends the stream
        stream.reader.read_to_eof(timeout=5)  # edgeguard ends the client side (EOF, not a timeout)
        # The client has not closed its end; edgeguard's bounded lingering close still gives the slot back.
        assert eg.wait_until(lambda: is_admitted(port, "127.0.0.1"), 5, interval=0.1)
    finally:
        stream.close()


def test_streams_hold_slots_of_the_total_limit(stream_upstreams, edgeguard):
    up, streams = stream_upstreams("app")
    port, admin_port = eg.free_port(), eg.free_port()
    edgeguard(stream_config(port, admin_port, up, {"max_connections": 4, "max_connections_per_ip": 0}))
    held = [Stream(port, "ws", "127.0.0.1"), Stream(port, "sse", "127.0.0.1"),
            Stream(port, "ws", "127.0.0.2"), Stream(port, "sse", "127.0.0.3")]
    try:
        assert eg.wait_until(lambda: streams.open_streams() == 4, 5)
        # Full: every address is refused, including one that holds nothing.
        assert is_refused(port, "127.0.0.4")
        assert is_refused(port, "127.0.0.1")
        assert metric(admin_port, r'edgeguard_rejections_total\{.*reason="connection_limit"') >= 2
        assert held[2].echo(b"still") == b"app"
        held.pop(2).close()
        assert eg.wait_until(lambda: is_admitted(port, "127.0.0.4"), 5, interval=0.1)
        held.append(open_when_admitted(port, "ws", "127.0.0.4"))
        assert is_refused(port, "127.0.0.5")
    finally:
        for s in held:
            s.close()


def test_reload_lowering_the_per_ip_limit_cuts_no_stream_and_counts_them(stream_upstreams, edgeguard):
    up, streams = stream_upstreams("app")
    port, admin_port = eg.free_port(), eg.free_port()
    proc = edgeguard(stream_config(port, admin_port, up, {"max_connections_per_ip": 4}))
    held = [Stream(port, "ws"), Stream(port, "ws"), Stream(port, "sse"), Stream(port, "sse")]
    try:
        before = metric(admin_port, r"edgeguard_config_reloads_total")
        proc.config_path.write_text(eg.dump_yaml(stream_config(port, admin_port, up, {"max_connections_per_ip": 2})))
        proc.signal(signal.SIGHUP)
        assert eg.wait_until(lambda: metric(admin_port, r"edgeguard_config_reloads_total") > before, 5,
                             interval=0.05), proc.stderr()
        # Four streams against a new limit of two: none is cut, and they still fill the budget.
        assert held[0].echo(b"a") == b"app" and held[1].echo(b"b") == b"app"
        streams.emit()
        assert held[2].next_event() == b"app 1" and held[3].next_event() == b"app 1"
        assert is_refused(port, "127.0.0.1")
        held.pop().close()
        held.pop().close()
        # Two open = the new limit: still full.
        assert eg.wait_until(lambda: metric(admin_port, r"edgeguard_active_connections ") == 2, 5, interval=0.05)
        assert is_refused(port, "127.0.0.1")
        held.pop().close()
        assert eg.wait_until(lambda: is_admitted(port, "127.0.0.1"), 5, interval=0.1)
    finally:
        for s in held:
            s.close()


def test_reload_keeps_open_streams_on_their_route_upstream_and_timeouts(stream_upstreams, edgeguard):
    old_up, old_streams = stream_upstreams("old")
    new_up, _ = stream_upstreams("new")
    port, admin_port = eg.free_port(), eg.free_port()

    def config(upstream_name: str, up: eg.Upstream, stream_idle: str) -> dict:
        return eg.basic_config(port, {upstream_name: [up.address]},
                               [{"name": f"to-{upstream_name}", "paths": ["/"], "upstream": upstream_name,
                                 "timeouts": {"stream_idle": stream_idle, "upstream_body_idle": stream_idle}}],
                               admin_port=admin_port)

    proc = edgeguard(config("old", old_up, "30s"))
    ws = Stream(port, "ws")
    sse = Stream(port, "sse")
    assert ws.echo(b"before") == b"old"
    try:
        # The new configuration no longer knows the old upstream and gives streams a 300 ms idle timeout.
        proc.config_path.write_text(eg.dump_yaml(config("new", new_up, "300ms")))
        proc.signal(signal.SIGHUP)

        def new_connections_reach_new() -> bool:
            probe = Stream(port, "ws")
            try:
                return probe.echo(b"probe") == b"new"
            finally:
                probe.close()

        assert eg.wait_until(new_connections_reach_new, 5, interval=0.1), proc.stderr()
        fresh = Stream(port, "ws")
        try:
            # A stream opened after the reload has the new idle timeout ...
            assert fresh.echo(b"x") == b"new"
            assert fresh.is_closed_by_peer(timeout=5), "new 300 ms stream idle timeout not applied"
        finally:
            fresh.close()
        # ... while the old ones, idle for much longer than that, keep their 30 s and their old upstream.
        time.sleep(1.5)
        assert ws.echo(b"after") == b"old"
        old_streams.emit()
        assert sse.next_event() == b"old 1"
        assert old_streams.open_streams() == 2
    finally:
        ws.close()
        sse.close()



def test_shutdown_gives_open_streams_the_grace_deadline_then_ends_them(stream_upstreams, edgeguard):
    up, streams = stream_upstreams("app")
    port, admin_port = eg.free_port(), eg.free_port()
    config = stream_config(port, admin_port, up, {})
    config["graceful_shutdown"] = "2s"
    proc = edgeguard(config)
    ws, sse = Stream(port, "ws"), Stream(port, "sse")
    try:
        proc.signal(signal.SIGTERM)
        signalled = time.monotonic()
        # Within the grace period the streams still carry data both ways ...
        time.sleep(0.3)
        assert proc.proc.poll() is None, "exited with streams open before the grace deadline"
        assert ws.echo(b"during-grace") == b"app"
        streams.emit()
        assert sse.next_event() == b"app 1"
        # ... while nothing new is accepted.
        with pytest.raises(OSError):
            _connect(port, "127.0.0.1").close()
        # At the deadline both are ended, the upstream sees its side closed, and the process exits cleanly.
        ws.reader.read_to_eof(timeout=10)
        sse.reader.read_to_eof(timeout=10)
        assert time.monotonic() - signalled >= 1.5, "streams ended long before the 2 s grace deadline"
        assert proc.wait_exit(10) == 0
        assert eg.wait_until(lambda: streams.open_streams() == 0, 5)
    finally:
        ws.close()
        sse.close()


def test_a_refused_upgrade_gives_its_slot_back(stream_upstreams, edgeguard):
    up, streams = stream_upstreams("app")
    port, admin_port = eg.free_port(), eg.free_port()
    edgeguard(stream_config(port, admin_port, up, {"max_connections_per_ip": 1}))
    for _ in range(3):
        sock = _connect(port, "127.0.0.1")
        try:
            sock.sendall(eg.build_request("GET", "/refuse", [
                ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Key", WS_KEY)]))
            reader = eg.SocketReader(sock)
            resp = eg.read_response(reader, timeout=5)
            assert resp.status == 404 and resp.body == b"no stream here"
            # Nothing is tunnelled after a refused upgrade: edgeguard closes, and the slot comes back.
            assert reader.read_to_eof(timeout=5) == b""
        finally:
            sock.close()
        stream = open_when_admitted(port, "ws", "127.0.0.1")
        assert stream.echo(b"ok") == b"app"
        stream.close()
        assert eg.wait_until(lambda: streams.open_streams() == 0, 5)

def test_an_event_stream_is_timed_by_its_routes_stream_idle(stream_upstreams, edgeguard):
    up, streams = stream_upstreams("app")
    port = eg.free_port()
    # The shipped flags route's shape: a long stream_idle on the route, the global upstream_body_idle short.
    config = eg.basic_config(port, {"app": [up.address]},
                             [{"name": "flags", "paths": ["/"], "upstream": "app", "timeouts": {"stream_idle": "30s"}}],
                             timeouts={"upstream_body_idle": "500ms"})
    edgeguard(config)
    sse = Stream(port, "sse", path="/flags/stream")
    try:
        time.sleep(2.0)  # silent for 4x upstream_body_idle, far below stream_idle
        streams.emit()
        assert sse.next_event() == b"app 1"
    finally:
        sse.close()


def test_the_active_streams_gauge_counts_event_streams_once_each(stream_upstreams, upstreams, edgeguard):
    """edgeguard_active_streams is "WebSocket tunnels and event streams open now": an event stream counts from
    its response head until it ends, whichever side ends it, and a complete event-stream response on a
    keep-alive connection stops counting although the connection stays open."""
    up, streams = stream_upstreams("app")
    short = upstreams("short", lambda req: eg.Reply(headers=[("Content-Type", "text/event-stream; charset=utf-8")],
                                                    body=b"data: done\n\n"))
    port, admin_port = eg.free_port(), eg.free_port()
    routes = [{"name": "short", "paths": ["/short"], "upstream": "short"},
              {"name": "all", "paths": ["/"], "upstream": "app"}]
    edgeguard(eg.basic_config(port, {"app": [up.address], "short": [short.address]}, routes, admin_port=admin_port))

    def active() -> float:
        return metric(admin_port, r"edgeguard_active_streams ")

    assert active() == 0
    first = Stream(port, "sse")
    try:
        assert active() == 1
        tunnel = Stream(port, "ws")
        try:
            assert active() == 2
        finally:
            tunnel.close()
        assert eg.wait_until(lambda: active() == 1, 5, interval=0.05)
        first.close()  # the client ends its event stream
        assert eg.wait_until(lambda: active() == 0, 5, interval=0.05)

        second = Stream(port, "sse")
        assert active() == 1
        streams.stop()  # the upstream ends this one mid-stream
        second.reader.read_to_eof(timeout=5)
        second.close()
        assert eg.wait_until(lambda: active() == 0, 5, interval=0.05)
    finally:
        first.close()

    with eg.Client(port) as client:
        for _ in range(2):
            resp = client.request("GET", "/short")
            assert resp.status == 200 and resp.body == b"data: done\n\n"
            assert active() == 0  # the response ended; the connection is still open
