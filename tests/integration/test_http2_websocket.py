"""WebSocket over HTTP/2 (RFC 8441 extended CONNECT) through the real binary: echo over TLS h2 and h2c, several
tunnels and ordinary requests on one connection, a large message both ways while the client keeps its window
shut, an upstream that refuses the upgrade or answers with the wrong Sec-WebSocket-Accept, RST_STREAM and
upstream closes in both directions, the idle timeout, malformed CONNECT requests, and WebSocket over HTTP/1.1 on
the same listener. Clients: python-h2 (extended CONNECT) and raw frames; upstreams: python3-websockets and raw
sockets, all on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import socket
import struct
import threading
import time
from pathlib import Path

import h2.events
import h2.settings
import pytest

import eg
import h2_helpers as h2h

websockets = pytest.importorskip("websockets", reason="python3-websockets is needed for the WebSocket tests")
from ws_upstream import WebSocketEchoServer  # noqa: E402  (after the importorskip)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_for(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


# ---- WebSocket frames, as a client writes them (masked) and a server sends them (unmasked) ----------------------


def ws_frame(payload: bytes, opcode: int = 0x2) -> bytes:
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    mask = os.urandom(4)
    if n == 0:
        return head + mask
    key = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return head + mask + masked


def ws_messages(buf: bytearray) -> list[tuple[int, bytes]]:
    """Complete unmasked frames at the front of `buf` (removed from it): (opcode, payload)."""
    out = []
    while len(buf) >= 2:
        n = buf[1] & 0x7F
        at = 2
        if n == 126:
            if len(buf) < 4:
                break
            n, at = struct.unpack(">H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, at = struct.unpack(">Q", buf[2:10])[0], 10
        if len(buf) < at + n:
            break
        out.append((buf[0] & 0x0F, bytes(buf[at:at + n])))
        del buf[:at + n]
    return out


# ---- Upstreams ---------------------------------------------------------------------------------------------------


class WebSocketServer(WebSocketEchoServer):
    """The echo upstream with up to 16 MiB messages and the `chat` subprotocol: /bye sends one message and
    closes, everything else echoes. Records each handshake's path and fields too."""

    def __init__(self):
        self.handshakes: list[tuple[str, dict]] = []
        self.echoing_large = threading.Event()  # it began sending back a message over 1 MiB
        super().__init__(max_size=16 * 1024 * 1024, subprotocols=["chat"])

    async def _handle(self, ws, path=None):
        self.handshakes.append((ws.path, {k.lower(): v for k, v in ws.request_headers.raw_items()}))
        if ws.path.startswith("/bye"):
            try:
                await ws.send(b"bye")
                await ws.close(1000)
            except websockets.ConnectionClosed:
                pass
            self.close_codes.append(ws.close_code)
        else:
            await self._echo(ws)

    async def _on_message(self, message) -> None:
        if len(message) > 1 << 20:
            self.echoing_large.set()


@pytest.fixture
def ws_server():
    server = WebSocketServer()
    yield server
    server.stop()


def raw_tunnel_upstream(upstreams, name: str, events: dict):
    """An eg.Upstream that answers the handshake with a correct 101 and then echoes raw bytes (no WebSocket
    framing: the tunnel carries bytes), recording when the client side reached EOF and any reset."""

    def serve(sock: socket.socket, key: str) -> None:
        sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept_for(key)}\r\n\r\n").encode())
        sock.settimeout(eg.IO_TIMEOUT)
        closed = False
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    events["eof"].set()
                    break
                if closed:
                    events["after_close"] = events.get("after_close", b"") + data
                    continue
                if data == b"close-now":
                    sock.sendall(b"last words")
                    sock.shutdown(socket.SHUT_WR)
                    closed = True
                    continue
                sock.sendall(data)
        except (ConnectionResetError, OSError):
            events["eof"].set()

    def handler(req: eg.RecordedRequest) -> eg.Reply:
        key = req.header("sec-websocket-key") or ""
        return eg.Reply(action="stream", stream=lambda sock: serve(sock, key))

    return upstreams(name, handler)


# ---- edgeguard and the client -------------------------------------------------------------------------------------


def tls(pki: Path) -> dict:
    return {"certificates": [{"cert": str(pki / "a.pem"), "key": str(pki / "a.key")}]}


def start(edgeguard, upstreams_map: dict, routes: list, *, pki: Path | None = None, h2c: bool = False,
          access_log: Path | None = None, timeouts: dict | None = None):
    port = eg.free_port()
    config = eg.basic_config(port, {n: [a] for n, a in upstreams_map.items()}, routes, timeouts=timeouts)
    if pki is not None:
        config["listeners"][0]["tls"] = tls(pki)
    if h2c:
        config["listeners"][0]["h2c"] = True
    if access_log is not None:
        config["access_log"] = {"output": str(access_log)}
    return edgeguard(config), port


def connect(port: int, pki: Path | None, **kwargs) -> h2h.H2Client:
    if pki is None:
        return h2h.H2Client(h2h.open_socket(port), scheme="http", **kwargs)
    sock = h2h.open_socket(port, ca=pki / "ca.pem")
    assert sock.selected_alpn_protocol() == "h2"
    return h2h.H2Client(sock, **kwargs)


def wait_settings(client: h2h.H2Client) -> None:
    """Reads until the server's SETTINGS arrived (RFC 8441 §3: no :protocol before they did)."""
    if getattr(client, "settings_seen", False):
        return
    deadline = time.monotonic() + eg.IO_TIMEOUT
    while not any(isinstance(ev, h2.events.RemoteSettingsChanged) for ev in client.read_events(once=True)):
        assert time.monotonic() < deadline, "no SETTINGS from the server"
    client.settings_seen = True


def open_websocket(client: h2h.H2Client, path: str, extra: list | None = None, early: bytes = b"") -> int:
    """Sends an extended CONNECT (and `early` DATA right behind it, before any answer) and reads until its
    response head (or reset)."""
    wait_settings(client)
    sid = client.conn.get_next_available_stream_id()
    fields = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", client.scheme),
              (":authority", client.authority), (":path", path), ("sec-websocket-version", "13")] + (extra or [])
    client.conn.send_headers(sid, fields, end_stream=False)
    if early:
        client.conn.send_data(sid, early)
    client.responses[sid] = h2h.H2Response()
    client._flush()
    r = client.responses[sid]
    deadline = time.monotonic() + eg.IO_TIMEOUT
    while r.status == 0 and r.reset is None and not client.closed:
        client.read_events(timeout=max(0.05, deadline - time.monotonic()), once=True)
    return sid


def send(client: h2h.H2Client, sid: int, data: bytes, end: bool = False) -> None:
    client.send_body(sid, data, end=end)


def read_messages(client: h2h.H2Client, sid: int, count: int, buf: bytearray | None = None,
                  timeout: float = eg.IO_TIMEOUT) -> list[tuple[int, bytes]]:
    """Reads the stream's DATA until `count` WebSocket messages arrived."""
    buf = buf if buf is not None else bytearray()
    got: list = []
    r = client.responses[sid]
    deadline = time.monotonic() + timeout
    while True:
        buf += r.body
        r.body.clear()
        got += ws_messages(buf)
        if len(got) >= count or r.reset is not None or r.ended or client.closed:
            return got
        client.read_events(timeout=max(0.05, deadline - time.monotonic()), once=True)


def read_stream_end(client: h2h.H2Client, sid: int, timeout: float = eg.IO_TIMEOUT) -> h2h.H2Response:
    r = client.responses[sid]
    deadline = time.monotonic() + timeout
    while not r.ended and r.reset is None and not client.closed:
        client.read_events(timeout=max(0.05, deadline - time.monotonic()), once=True)
    return r


WS_ROUTES = [{"name": "ws", "paths": ["/ws", "/bye"], "upstream": "ws"}]


# ---- Echo ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["tls", "h2c"])
def test_websocket_echo_over_h2(transport, ws_server, edgeguard, pki, tmp_path):
    log = tmp_path / "access.log"
    use_pki = pki if transport == "tls" else None
    proc, port = start(edgeguard, {"ws": ws_server.address}, WS_ROUTES, pki=use_pki, h2c=transport == "h2c",
                       access_log=log)
    client = connect(port, use_pki)
    sid = open_websocket(client, "/ws/room?x=1", [("sec-websocket-protocol", "chat, other"),
                                                  ("origin", "https://a.test")])
    assert client.conn.remote_settings[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] == 1
    r = client.responses[sid]
    assert r.status == 200, r
    assert r.header("sec-websocket-protocol") == "chat"
    assert r.header("sec-websocket-accept") is None and r.header("upgrade") is None
    send(client, sid, ws_frame(b"hello", opcode=0x1) + ws_frame(b"\x00\x01binary"))
    assert read_messages(client, sid, 2) == [(0x1, b"hello"), (0x2, b"\x00\x01binary")]
    assert h2h.metric(proc, "edgeguard_active_streams") == 1

    # The upstream saw an HTTP/1.1 handshake with edgeguard's own key.
    path, fields = ws_server.handshakes[0]
    assert path == "/ws/room?x=1"
    assert fields["upgrade"].lower() == "websocket" and "upgrade" in fields["connection"].lower()
    assert fields["sec-websocket-version"] == "13"
    assert len(base64.b64decode(fields["sec-websocket-key"])) == 16
    assert fields["sec-websocket-protocol"] == "chat, other"
    assert fields["origin"] == "https://a.test"
    assert fields["host"] == "a.test"

    # A close frame, answered, then END_STREAM both ways ends the stream cleanly.
    send(client, sid, ws_frame(struct.pack(">H", 1000), opcode=0x8))
    assert read_messages(client, sid, 1)[0][0] == 0x8
    client.conn.end_stream(sid)
    client._flush()
    assert read_stream_end(client, sid).ended
    assert eg.wait_until(lambda: ws_server.close_codes == [1000], eg.IO_TIMEOUT)
    assert eg.wait_until(lambda: h2h.metric(proc, "edgeguard_active_streams") == 0, eg.IO_TIMEOUT)
    assert eg.wait_until(lambda: log.exists() and log.read_text().strip() != "", eg.IO_TIMEOUT)
    line = json.loads(log.read_text().splitlines()[0])
    assert (line["proto"], line["method"], line["status"], line["route"]) == ("HTTP/2", "CONNECT", 200, "ws")
    client.close()


def test_several_websockets_and_requests_share_one_connection(ws_server, upstreams, edgeguard, pki):
    app = upstreams("app")
    _, port = start(edgeguard, {"ws": ws_server.address, "app": app.address},
                    WS_ROUTES + [{"name": "all", "paths": ["/"], "upstream": "app"}], pki=pki)
    client = connect(port, pki)
    sids = [open_websocket(client, f"/ws/{i}") for i in range(3)]
    assert all(client.responses[s].status == 200 for s in sids)
    gets = [client.request("GET", f"/page/{i}") for i in range(4)]
    for i, s in enumerate(sids):
        send(client, s, ws_frame(f"message {i}".encode()))
    for i, s in enumerate(sids):
        assert read_messages(client, s, 1) == [(0x2, f"message {i}".encode())]
    responses = client.wait(gets)
    assert [json.loads(r.body)["target"] for r in responses] == [f"/page/{i}" for i in range(4)]
    assert all(r.status == 200 for r in responses)
    # The tunnels are still open after the requests came and went.
    send(client, sids[1], ws_frame(b"again"))
    assert read_messages(client, sids[1], 1) == [(0x2, b"again")]
    client.close()


def test_large_message_both_ways_while_the_client_keeps_its_window_shut(ws_server, edgeguard, pki):
    proc, port = start(edgeguard, {"ws": ws_server.address}, WS_ROUTES, pki=pki)
    client = connect(port, pki)
    sid = open_websocket(client, "/ws")
    assert client.responses[sid].status == 200
    hwm_before = proc.status_kb("VmHWM")
    message = os.urandom(8 * 1024 * 1024)
    wire = memoryview(ws_frame(message))
    client.auto_ack = False  # the echo piles up at edgeguard, which must stop reading the upstream
    r = client.responses[sid]
    shut_until = None
    deadline = time.monotonic() + 60
    buf = bytearray()
    got: list = []
    while not got:
        assert time.monotonic() < deadline, f"echo incomplete: sent {len(wire)} left, got {len(buf)}"
        assert r.reset is None and not client.closed
        room = min(client.conn.local_flow_control_window(sid), client.conn.max_outbound_frame_size)
        if wire and room > 0:
            n = min(room, len(wire))
            client.conn.send_data(sid, wire[:n].tobytes())
            wire = wire[n:]
            client._flush()
            continue
        if shut_until is None and ws_server.echoing_large.is_set():
            shut_until = time.monotonic() + 1.5  # the upstream is sending the echo: let it press
        if not client.auto_ack and shut_until is not None and time.monotonic() >= shut_until:
            # Window opened at last: what was held back arrives whole.
            assert len(r.body) + len(buf) <= 65535, "more than the client's window was sent"
            unacked = len(r.body) + len(buf)
            client.auto_ack = True
            if unacked:
                client.conn.acknowledge_received_data(unacked, sid)
                client._flush()
        try:
            client.read_events(timeout=0.1, once=True)
        except socket.timeout:
            pass
        buf += r.body
        r.body.clear()
        got = ws_messages(buf)
    assert got == [(0x2, message)], "the echo arrived complete and in order"
    eg.assert_rss_below(proc, hwm_before + 6 * 1024, "after an 8 MiB echo held back by a shut window")
    client.close()


def test_a_slow_upstream_stops_the_client_by_its_window_and_nothing_is_lost(upstreams, edgeguard, pki):
    go = threading.Event()
    received = {"bytes": 0, "sha": hashlib.sha256(), "eof": threading.Event()}

    def slow_reader(sock: socket.socket, key: str) -> None:
        sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept_for(key)}\r\n\r\n").encode())
        go.wait(60)  # reads nothing until the client is stuck
        sock.settimeout(eg.IO_TIMEOUT)
        while data := sock.recv(1 << 20):
            received["bytes"] += len(data)
            received["sha"].update(data)
        received["eof"].set()

    up = upstreams("ws", lambda req: eg.Reply(action="stream",
                                              stream=lambda sock: slow_reader(sock, req.header("sec-websocket-key"))))
    proc, port = start(edgeguard, {"ws": up.address}, WS_ROUTES, pki=pki)
    client = connect(port, pki)
    sid = open_websocket(client, "/ws")
    assert client.responses[sid].status == 200
    hwm_before = proc.status_kb("VmHWM")
    payload = os.urandom(32 * 1024 * 1024)
    view = memoryview(payload)
    stalled_since = None
    deadline = time.monotonic() + 90
    while view:
        assert time.monotonic() < deadline and client.responses[sid].reset is None
        room = min(client.conn.local_flow_control_window(sid), client.conn.max_outbound_frame_size)
        if room > 0:
            n = min(room, len(view))
            client.conn.send_data(sid, view[:n].tobytes())
            view = view[n:]
            client._flush()
            stalled_since = None
            continue
        if not go.is_set():
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > 1.0:
                # The upstream read nothing, so the client is held by its window well short of the payload
                # (what it got out sits in kernel socket buffers and edgeguard's bounded ones).
                assert len(view) > 8 * 1024 * 1024, f"only {len(view)} bytes left: the window kept opening"
                go.set()
        try:
            client.read_events(timeout=0.1, once=True)
        except socket.timeout:
            pass
    held_back = go.is_set()
    go.set()
    assert held_back, "the whole payload was taken while the upstream read nothing"
    client.conn.end_stream(sid)
    client._flush()
    assert received["eof"].wait(60), "the client's END_STREAM reached the upstream as EOF"
    assert received["bytes"] == len(payload)
    assert received["sha"].hexdigest() == hashlib.sha256(payload).hexdigest(), "nothing lost or reordered"
    eg.assert_rss_below(proc, hwm_before + 6 * 1024, "after 32 MiB to an upstream that stopped reading")
    client.close()


# ---- The upstream's answer -------------------------------------------------------------------------------------


def test_upstream_refusing_the_upgrade_passes_its_status_through(upstreams, edgeguard, pki):
    up = upstreams("ws", lambda req: eg.Reply(status=403, reason="Forbidden", body=b"no websocket for you"))
    _, port = start(edgeguard, {"ws": up.address}, WS_ROUTES, pki=pki)
    client = connect(port, pki)
    sid = open_websocket(client, "/ws")
    r = read_stream_end(client, sid)
    assert r.status == 403 and bytes(r.body) == b"no websocket for you"
    req = up.wait_requests(1)[0]
    assert req.method == "GET" and req.header("upgrade") == "websocket"
    # The client's side is ended for it (RST_STREAM NO_ERROR): no stream is left open.
    deadline = time.monotonic() + eg.IO_TIMEOUT
    while r.reset is None and time.monotonic() < deadline:
        client.read_events(timeout=max(0.05, deadline - time.monotonic()), once=True)
    assert r.reset == h2h.NO_ERROR
    assert client.get("/ws/plain").status == 403, "the connection carries on"
    client.close()


def test_a_101_with_the_wrong_accept_key_is_a_502_and_nothing_is_tunnelled(upstreams, edgeguard, pki):
    seen = bytearray()

    def wrong_accept(sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept_for("dGhlIHNhbXBsZSBub25jZQ==").encode() + b"\r\n\r\n"
                     b"tunnel bytes that must not reach the client")
        sock.settimeout(2.0)
        try:
            while data := sock.recv(65536):
                seen.extend(data)
        except OSError:
            pass

    up = upstreams("ws", lambda req: eg.Reply(action="stream", stream=wrong_accept))
    _, port = start(edgeguard, {"ws": up.address}, WS_ROUTES, pki=pki)
    client = connect(port, pki)
    sid = open_websocket(client, "/ws", early=b"early client bytes")
    r = read_stream_end(client, sid)
    assert r.status == 502
    assert b"tunnel bytes" not in bytes(r.body)
    assert json.loads(bytes(r.body))["status"] == 502
    assert up.wait_closed(1), "the upstream connection is closed, never reused"
    assert seen == b"", "nothing the client sent reached the upstream"
    client.close()


def test_client_rst_stream_closes_the_upstream_socket(upstreams, edgeguard, pki):
    events = {"eof": threading.Event()}
    up = raw_tunnel_upstream(upstreams, "ws", events)
    proc, port = start(edgeguard, {"ws": up.address}, WS_ROUTES, pki=pki)
    client = connect(port, pki)
    sid = open_websocket(client, "/ws")
    assert client.responses[sid].status == 200
    send(client, sid, b"raw bytes both ways")
    deadline = time.monotonic() + eg.IO_TIMEOUT
    while bytes(client.responses[sid].body) != b"raw bytes both ways":
        assert time.monotonic() < deadline
        client.read_events(timeout=1.0, once=True)
    client.conn.reset_stream(sid, error_code=h2h.CANCEL)
    client._flush()
    assert events["eof"].wait(eg.IO_TIMEOUT), "the upstream socket was closed"
    assert eg.wait_until(lambda: h2h.metric(proc, "edgeguard_active_streams") == 0, eg.IO_TIMEOUT)
    assert client.get("/ws/after").status != 0, "the connection carries on"
    client.close()


def test_half_closes_pass_both_ways_and_end_the_stream(upstreams, edgeguard, pki):
    events = {"eof": threading.Event()}
    up = raw_tunnel_upstream(upstreams, "ws", events)
    _, port = start(edgeguard, {"ws": up.address}, WS_ROUTES, pki=pki)
    client = connect(port, pki)
    sid = open_websocket(client, "/ws")
    # The upstream half-closes: its last bytes and then END_STREAM reach the client...
    send(client, sid, b"close-now")
    r = read_stream_end(client, sid)
    assert r.ended and r.reset is None and bytes(r.body) == b"last words"
    # ...and the client can still send until its own END_STREAM, which the upstream reads as EOF. Both in one
    # frame: the stream closes at once, and the bytes still reach the upstream before its FIN.
    client.conn.send_data(sid, b"after", end_stream=True)
    client._flush()
    assert events["eof"].wait(eg.IO_TIMEOUT)
    assert events.get("after_close") == b"after"
    client.close()


def test_upstream_close_ends_the_stream(ws_server, edgeguard, pki):
    proc, port = start(edgeguard, {"ws": ws_server.address}, WS_ROUTES, pki=pki)
    client = connect(port, pki)
    sid = open_websocket(client, "/bye")
    assert client.responses[sid].status == 200
    assert read_messages(client, sid, 2) == [(0x2, b"bye"), (0x8, struct.pack(">H", 1000))]
    # The close handshake's answer; the upstream then closes its socket, which ends the stream.
    send(client, sid, ws_frame(struct.pack(">H", 1000), opcode=0x8))
    r = read_stream_end(client, sid)
    assert r.ended and r.reset is None
    # Half-closed from the upstream's side; the client's END_STREAM closes the stream and the tunnel.
    assert h2h.metric(proc, "edgeguard_active_streams") == 1
    client.conn.end_stream(sid)
    client._flush()
    assert eg.wait_until(lambda: h2h.metric(proc, "edgeguard_active_streams") == 0, eg.IO_TIMEOUT)
    client.close()


def test_idle_tunnel_is_reset_after_stream_idle(ws_server, edgeguard, pki):
    routes = [dict(WS_ROUTES[0], timeouts={"stream_idle": eg.ms(800)})]
    _, port = start(edgeguard, {"ws": ws_server.address}, routes, pki=pki)
    client = connect(port, pki)
    sid = open_websocket(client, "/ws")
    send(client, sid, ws_frame(b"one"))
    assert read_messages(client, sid, 1) == [(0x2, b"one")]
    r = read_stream_end(client, sid, timeout=10)
    assert r.reset == h2h.CANCEL
    assert eg.wait_until(lambda: len(ws_server.close_codes) == 1, eg.IO_TIMEOUT), "the upstream was closed"
    client.close()


# ---- Malformed CONNECT -------------------------------------------------------------------------------------------


def raw_connect(port: int, pki: Path, fields: list) -> tuple[list, int]:
    """Sends one HEADERS block as given (no validation) and returns the frames answered on stream 1."""
    raw = h2h.RawConnection(h2h.open_socket(port, ca=pki / "ca.pem"))
    raw.start()
    enc = h2h.hpack.Encoder()
    raw.send(h2h.settings_frame(ack=True) + h2h.headers_frame(1, enc.encode(fields), end_stream=False))
    frames = []
    deadline = time.monotonic() + eg.IO_TIMEOUT
    while time.monotonic() < deadline and not any(f[2] == 1 and f[0] in (h2h.RST_STREAM, h2h.HEADERS)
                                                  for f in frames):
        frames += raw.read_frames(timeout=0.2)
    raw.close()
    return [f for f in frames if f[2] == 1], len(frames)


def status_of(frames) -> int | None:
    dec = h2h.hpack.Decoder()
    for ftype, _, _, payload in frames:
        if ftype == h2h.HEADERS:
            return int(dict(dec.decode(payload))[":status"])
    return None


def rst_code(frames) -> int | None:
    for ftype, _, _, payload in frames:
        if ftype == h2h.RST_STREAM:
            return struct.unpack(">I", payload)[0]
    return None


def test_malformed_extended_connect_is_refused_and_nothing_forwarded(ws_server, edgeguard, pki, tmp_path):
    log = tmp_path / "access.log"
    _, port = start(edgeguard, {"ws": ws_server.address}, WS_ROUTES, pki=pki, access_log=log)
    base = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":authority", "a.test"),
            (":path", "/ws")]

    def without(name):
        return [f for f in base if f[0] != name]

    # RFC 8441 §4: :scheme and :path are required; nghttp2 resets the stream as malformed (PROTOCOL_ERROR).
    for fields in (without(":path"), without(":scheme"), without(":authority")):
        frames, _ = raw_connect(port, pki, fields)
        assert rst_code(frames) == h2h.PROTOCOL_ERROR, fields
    # :protocol on another method is malformed too.
    frames, _ = raw_connect(port, pki, [(":method", "GET")] + base[1:])
    assert rst_code(frames) == h2h.PROTOCOL_ERROR
    # A protocol no route carries, and a plain CONNECT (edgeguard is no forward proxy), are answered.
    frames, _ = raw_connect(port, pki, [(f[0], "connect-udp" if f[0] == ":protocol" else f[1]) for f in base])
    assert status_of(frames) == 501
    frames, _ = raw_connect(port, pki, [(":method", "CONNECT"), (":authority", "a.test:443")])
    assert status_of(frames) == 405
    assert ws_server.handshakes == [], "nothing reached the upstream"
    assert eg.wait_until(lambda: log.exists() and log.read_text().count("\n") >= 6, eg.IO_TIMEOUT)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(line["status"] for line in lines) == [400, 400, 400, 400, 405, 501], lines
    assert all("malformed request" in line["error"] for line in lines if line["status"] == 400), lines


def test_an_invalid_enable_connect_protocol_setting_ends_the_connection(ws_server, edgeguard, pki):
    _, port = start(edgeguard, {"ws": ws_server.address}, WS_ROUTES, pki=pki)
    raw = h2h.RawConnection(h2h.open_socket(port, ca=pki / "ca.pem"))
    raw.start({0x8: 2})  # RFC 8441 §3: the value is 0 or 1
    frames = h2h.read_until_closed(raw)
    raw.close()
    assert h2h.goaway_code(frames) == h2h.PROTOCOL_ERROR


def test_redirect_listener_does_not_offer_websocket(edgeguard, pki, ws_server):
    port = eg.free_port()
    config = eg.basic_config(port, {"ws": [ws_server.address]}, WS_ROUTES)
    config["listeners"][0].update({"h2c": True, "redirect_https_to": ":443"})
    edgeguard(config)
    client = connect(port, None)
    wait_settings(client)
    assert client.conn.remote_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL) in (None, 0)
    client.close()


# ---- HTTP/1.1 beside it ------------------------------------------------------------------------------------------


def test_websocket_over_http11_still_works_on_the_same_listener(ws_server, edgeguard):
    _, port = start(edgeguard, {"ws": ws_server.address}, WS_ROUTES, h2c=True)
    client = connect(port, None)
    sid = open_websocket(client, "/ws")
    assert client.responses[sid].status == 200

    async def over_http11():
        async with websockets.connect(f"ws://{eg.LOOPBACK}:{port}/ws/h1", open_timeout=eg.IO_TIMEOUT) as ws:
            await ws.send(b"over HTTP/1.1")
            return await asyncio.wait_for(ws.recv(), eg.IO_TIMEOUT)

    assert asyncio.run(over_http11()) == b"over HTTP/1.1"
    send(client, sid, ws_frame(b"over HTTP/2"))
    assert read_messages(client, sid, 1) == [(0x2, b"over HTTP/2")]
    client.close()
