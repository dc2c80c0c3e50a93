"""HTTP/2 abuse limits through the real binary: each flood is written frame by frame (struct + hpack, no client
library that would refuse to misbehave), and each must end with GOAWAY and the connection closed, with the
process's memory bounded.

Rapid Reset (CVE-2023-44487), refused streams, CONTINUATION floods (2024), SETTINGS/PING/PRIORITY and empty-DATA
floods, a closed flow-control window, an idle connection, oversized header lists and too many streams at once.
"""

from __future__ import annotations

import os
import shutil
import struct
import time
from pathlib import Path

import hpack
import pytest

import eg
import h2_helpers as h2h

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

# Peak RSS of a worker under these floods: the baseline process is ~20-30 MB; a leak per frame or per stream
# would go far beyond it with the frame counts used here.
RSS_LIMIT_KB = 160_000


def start(upstreams, edgeguard, pki: Path, http2: dict | None = None, timeouts: dict | None = None, handler=None):
    up = upstreams("app", handler) if handler else upstreams("app")
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}],
                             workers=1, timeouts=timeouts)
    config["listeners"][0]["tls"] = {"certificates": [{"cert": str(pki / "a.pem"), "key": str(pki / "a.key")}]}
    if http2:
        config["http2"] = http2
    return edgeguard(config), up, port


def raw_h2(port: int, pki: Path, settings: dict | None = None) -> h2h.RawConnection:
    raw = h2h.RawConnection(h2h.open_socket(port, ca=pki / "ca.pem"))
    raw.start(settings)
    return raw


def assert_goaway_and_closed(raw: h2h.RawConnection, code: int | None = h2h.ENHANCE_YOUR_CALM) -> list:
    frames = h2h.read_until_closed(raw)
    got = h2h.goaway_code(frames)
    assert got is not None, f"no GOAWAY; frames: {[f[0] for f in frames][:40]}"
    if code is not None:
        assert got == code, f"GOAWAY error {got:#x}, expected {code:#x}"
    assert raw.eof, "the connection stayed open after GOAWAY"
    return frames


def goaways(proc, reason: str) -> int:
    return int(h2h.metric(proc, "edgeguard_http2_goaways_total", {"reason": reason}))


def test_rapid_reset_is_cut_off_with_goaway(upstreams, edgeguard, pki):
    proc, up, port = start(upstreams, edgeguard, pki, http2={"stream_resets": {"burst": 50, "rate": "10/s"}})
    raw = raw_h2(port, pki)
    enc = hpack.Encoder()
    sent = 0
    for sid in range(1, 2001, 2):
        # HEADERS without END_STREAM (a request with a body to come), cancelled at once: what the attack sends.
        if not raw.send(h2h.headers_frame(sid, h2h.request_block("/x", "POST", encoder=enc), end_stream=False)
                        + h2h.rst_stream(sid)):
            break
        sent += 1
    assert_goaway_and_closed(raw)
    raw.close()
    # Far fewer requests than streams opened reached the upstream: the budget ended the connection.
    assert len(up.snapshot()) < 200
    assert goaways(proc, "stream_resets") >= 1
    eg.assert_rss_below(proc, RSS_LIMIT_KB, "after a rapid-reset flood")


def test_streams_over_the_concurrency_limit_end_the_connection(upstreams, edgeguard, pki):
    proc, up, port = start(upstreams, edgeguard, pki, http2={"max_concurrent_streams": 4})
    raw = raw_h2(port, pki)
    frames = raw.read_frames(timeout=2)
    settings = [f for f in frames if f[0] == h2h.SETTINGS and not f[1] & h2h.ACK]
    assert settings, "no server SETTINGS"
    values = {struct.unpack(">H", settings[0][3][i:i + 2])[0]: struct.unpack(">I", settings[0][3][i + 2:i + 6])[0]
              for i in range(0, len(settings[0][3]), 6)}
    assert values.get(0x3) == 4, values  # SETTINGS_MAX_CONCURRENT_STREAMS
    raw.send(h2h.settings_frame(ack=True))
    enc = hpack.Encoder()
    # Six streams that stay open (a body is announced and never sent) against an acknowledged limit of four:
    # nghttp2 treats the fifth as a connection error (RFC 9113 §5.1.2 allows no more than the limit).
    for sid in range(1, 13, 2):
        raw.send(h2h.headers_frame(sid, h2h.request_block("/slow", "POST", encoder=enc), end_stream=False))
    frames = assert_goaway_and_closed(raw, code=h2h.PROTOCOL_ERROR)
    last_stream = next(struct.unpack(">I", p[0:4])[0] & 0x7FFFFFFF for t, _, _, p in frames if t == h2h.GOAWAY)
    assert last_stream == 7, "the streams within the limit were taken, none after"
    raw.close()
    assert all(r.path == "/slow" for r in up.snapshot()) and len(up.snapshot()) <= 4
    assert goaways(proc, "protocol") >= 1


def test_continuation_flood_is_cut_off(upstreams, edgeguard, pki):
    proc, _, port = start(upstreams, edgeguard, pki, http2={"max_continuations": 4})
    raw = raw_h2(port, pki)
    block = h2h.request_block("/x")
    raw.send(h2h.headers_frame(1, block, end_stream=True, end_headers=False))
    filler = hpack.Encoder().encode([("x-filler", "a" * 100)])
    for _ in range(1000):
        if not raw.send(h2h.frame(h2h.CONTINUATION, 0, 1, filler)):
            break
    assert_goaway_and_closed(raw)
    raw.close()
    assert goaways(proc, "control_frames") >= 1
    eg.assert_rss_below(proc, RSS_LIMIT_KB, "after a CONTINUATION flood")


@pytest.mark.parametrize("kind", ["settings", "ping", "priority", "empty_data", "window_update"])
def test_control_frame_floods_are_cut_off(upstreams, edgeguard, pki, kind):
    proc, _, port = start(upstreams, edgeguard, pki, http2={"control_frames": {"burst": 100, "rate": "10/s"}})
    raw = raw_h2(port, pki)
    if kind == "empty_data":
        raw.send(h2h.headers_frame(1, h2h.request_block("/up", "POST"), end_stream=False))
    one = {
        "settings": h2h.settings_frame({0x4: 65535}),
        "ping": h2h.ping(),
        "priority": h2h.priority(3),
        "empty_data": h2h.frame(h2h.DATA, 0, 1, b""),
        "window_update": h2h.frame(h2h.WINDOW_UPDATE, 0, 0, struct.pack("!I", 1)),  # for no DATA received
    }[kind]
    for _ in range(100):
        if not raw.send(one * 50):
            break
    assert_goaway_and_closed(raw)
    raw.close()
    assert goaways(proc, "control_frames") >= 1
    eg.assert_rss_below(proc, RSS_LIMIT_KB, f"after a {kind} flood")


def test_a_fast_download_giving_its_window_back_is_not_a_flood(upstreams, edgeguard, pki):
    # python-h2 returns the window every 32 KiB, for the stream and for the connection: 256 WINDOW_UPDATEs for
    # these 4 MiB, far past the budget below. They acknowledge DATA edgeguard sent, so they are flow control.
    body = os.urandom(4 * 1024 * 1024)
    proc, _, port = start(upstreams, edgeguard, pki, http2={"control_frames": {"burst": 100, "rate": "10/s"}},
                          handler=lambda req: eg.Reply(body=body))
    client = h2h.H2Client(h2h.open_socket(port, ca=pki / "ca.pem"))
    for _ in range(2):
        resp = client.wait([client.request("GET", "/big")], timeout=60)[0]
        assert resp.status == 200
        assert bytes(resp.body) == body
    assert client.goaway is None
    client.close()
    assert goaways(proc, "control_frames") == 0


def test_oversized_header_list_is_answered_431(upstreams, edgeguard, pki):
    _, up, port = start(upstreams, edgeguard, pki, http2={"max_header_list_size": "4KiB"})
    client = h2h.H2Client(h2h.open_socket(port, ca=pki / "ca.pem"))
    resp = client.get("/x", headers=[(f"x-h{i}", "v" * 100) for i in range(60)])
    assert resp.status == 431
    assert b"too large" in resp.body
    # The connection stays usable for the next request.
    assert client.get("/y").status in (200, 503)
    client.close()
    assert all(r.path != "/x" for r in up.snapshot())


def test_a_closed_window_times_the_stream_out(upstreams, edgeguard, pki):
    proc, _, port = start(upstreams, edgeguard, pki, http2={"zero_window_timeout": eg.ms(500)})
    raw = raw_h2(port, pki, settings={0x4: 0})  # SETTINGS_INITIAL_WINDOW_SIZE = 0: no response DATA may flow
    raw.send(h2h.settings_frame(ack=True))
    raw.send(h2h.headers_frame(1, h2h.request_block("/no-such-route-needed")))
    deadline = time.monotonic() + eg.IO_TIMEOUT
    frames = []
    while time.monotonic() < deadline and not any(f[0] == h2h.RST_STREAM and f[2] == 1 for f in frames):
        frames += raw.read_frames(timeout=0.5)
    resets = [struct.unpack(">I", p)[0] for t, _, sid, p in frames if t == h2h.RST_STREAM and sid == 1]
    assert resets == [h2h.CANCEL], [f[0] for f in frames]
    assert any(f[0] == h2h.HEADERS and f[2] == 1 for f in frames), "the response head is not flow-controlled"
    assert not any(f[0] == h2h.DATA and f[2] == 1 and f[3] for f in frames)
    raw.close()
    eg.assert_rss_below(proc, RSS_LIMIT_KB, "after a stalled stream")


def test_an_idle_connection_gets_goaway_and_is_closed(upstreams, edgeguard, pki):
    proc, _, port = start(upstreams, edgeguard, pki, http2={"idle_timeout": eg.ms(400)})
    raw = raw_h2(port, pki)
    raw.send(h2h.settings_frame(ack=True))
    frames = assert_goaway_and_closed(raw, code=h2h.NO_ERROR)
    assert frames
    raw.close()
    assert goaways(proc, "idle") >= 1
