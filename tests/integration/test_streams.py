"""Streams that never buffer: server-sent events flushed per upstream write, client disconnects that
close the upstream stream at once, stream idle timeouts, and WebSocket tunnelling with python3-websockets."""

from __future__ import annotations

import asyncio
import select
import socket
import statistics
import threading
import time

import eg
import pytest

websockets = pytest.importorskip("websockets", reason="python3-websockets is needed for the WebSocket tests")
from ws_upstream import WebSocketEchoServer  # noqa: E402  (after the importorskip)

SSE_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")


def sse_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class SseSource:
    """Upstream side of an event stream: writes events on demand and notices when edgeguard closes it."""

    def __init__(self):
        self.sent_at: list[float] = []
        self.closed_at: float | None = None
        self.started = threading.Event()
        self.closed = threading.Event()
        self._send = threading.Semaphore(0)
        self._stop = threading.Event()

    def emit(self) -> None:
        self._send.release()

    def stop(self) -> None:
        self._stop.set()
        self._send.release()

    def __call__(self, conn: socket.socket) -> None:
        conn.sendall(SSE_HEAD)
        self.started.set()
        n = 0
        while not self._stop.is_set():
            readable, _, _ = select.select([conn], [], [], 0.01)
            if readable:
                try:
                    if conn.recv(1) == b"":
                        break
                except OSError:
                    break
            if self._send.acquire(timeout=0.01) and not self._stop.is_set():
                self.sent_at.append(time.monotonic())
                try:
                    conn.sendall(sse_chunk(b"id: %d\ndata: {\"n\": %d}\n\n" % (n, n)))
                except OSError:
                    break
                n += 1
        self.closed_at = time.monotonic()
        self.closed.set()


def test_sse_events_are_flushed_as_the_upstream_writes_them(simple_proxy):
    source = SseSource()
    proxy, _ = simple_proxy(lambda req: eg.Reply(action="stream", stream=source))
    latencies = []
    try:
        with eg.Client(proxy.listen_port) as c:
            c.send(eg.build_request("GET", "/livestream/events", headers=[("Accept", "text/event-stream")]))
            head = c.reader.read_until(b"\r\n\r\n", timeout=5)
            assert head.startswith(b"HTTP/1.1 200"), head
            assert b"text/event-stream" in head.lower()
            for n in range(50):
                source.emit()
                # The next event is only written after this one arrived: no buffering can hide behind it.
                c.reader.read_until(b'data: {"n": %d}\n\n' % n, timeout=5)
                latencies.append(time.monotonic() - source.sent_at[n])
    finally:
        source.stop()
    assert statistics.median(latencies) < 0.1, f"median event latency {statistics.median(latencies):.3f}s"


def test_client_disconnect_closes_the_upstream_stream_within_a_second(simple_proxy):
    source = SseSource()
    proxy, _ = simple_proxy(lambda req: eg.Reply(action="stream", stream=source))
    try:
        c = eg.Client(proxy.listen_port)
        c.send(eg.build_request("GET", "/flags/stream"))
        c.reader.read_until(b"\r\n\r\n", timeout=5)
        source.emit()
        c.reader.read_until(b"data:", timeout=5)
        gone_at = time.monotonic()
        c.close()
        assert source.closed.wait(5), "upstream stream still open 5 s after the client left"
        assert source.closed_at - gone_at < 1.0, source.closed_at - gone_at
    finally:
        source.stop()


def test_stream_idle_timeout_closes_a_silent_event_stream(simple_proxy):
    source = SseSource()
    proxy, _ = simple_proxy(lambda req: eg.Reply(action="stream", stream=source),
                            timeouts={"stream_idle": eg.ms(500), "upstream_body_idle": eg.ms(500)})
    try:
        with eg.Client(proxy.listen_port, timeout=15) as c:
            c.send(eg.build_request("GET", "/events-idle"))
            c.reader.read_until(b"\r\n\r\n", timeout=5)
            start = time.monotonic()
            assert c.is_closed_by_peer(timeout=10), "silent stream not closed"
            assert time.monotonic() - start < 10
        assert source.closed.wait(5)
    finally:
        source.stop()


# ---- WebSocket ------------------------------------------------------------------------------------------------


@pytest.fixture
def ws_proxy(edgeguard):
    server = WebSocketEchoServer()
    port = eg.free_port()
    config = eg.basic_config(port, {"ws": [f"{eg.LOOPBACK}:{server.port}"]},
                             [{"name": "ws", "paths": ["/"], "upstream": "ws"}])
    edgeguard(config)
    yield port, server
    server.stop()


def test_websocket_echo_large_messages_ping_and_close_code(ws_proxy):
    port, server = ws_proxy

    async def client():
        async with websockets.connect(f"ws://{eg.LOOPBACK}:{port}/ws", max_size=4 * 1024 * 1024,
                                      open_timeout=10) as ws:
            await ws.send("hello")
            assert await asyncio.wait_for(ws.recv(), 5) == "hello"
            big = bytes(range(256)) * 4096  # 1 MiB
            await ws.send(big)
            assert await asyncio.wait_for(ws.recv(), 10) == big
            pong = await ws.ping()
            await asyncio.wait_for(pong, 5)
            await ws.close(code=4001, reason="done")

    asyncio.run(asyncio.wait_for(client(), 30))
    assert eg.wait_until(lambda: server.close_codes == [4001], 5), server.close_codes


def test_upgrade_refused_by_the_upstream_is_relayed_as_a_normal_response(simple_proxy):
    def reply(req: eg.RecordedRequest) -> eg.Reply:
        if req.path == "/not-ws":
            return eg.Reply(status=404, reason="Not Found", body=b"no websocket here")
        return eg.Reply(body=b"plain")

    proxy, up = simple_proxy(reply)
    with eg.Client(proxy.listen_port) as c:
        resp = c.request("GET", "/not-ws", headers=[("Connection", "Upgrade"), ("Upgrade", "websocket"),
                                                    ("Sec-WebSocket-Version", "13"),
                                                    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")])
        assert resp.status == 404 and resp.body == b"no websocket here"
        # Bytes after a refused upgrade are never tunnelled: the connection is closed or still speaks HTTP.
        if not c.is_closed_by_peer(timeout=0.5):
            assert c.request("GET", "/after").status == 200
