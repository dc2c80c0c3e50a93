"""HTTP/2 over TLS where edgeguard drives the TLS connection itself (SSL_read/SSL_write on the socket, the write
event armed only while the socket is full): what such a transport can get wrong, through the real binary.

A client that closes while a large response is being written, a 50 MB response to a client that stops reading
its socket (memory stays bounded, nothing is lost when it reads again), a request body that arrives in many tiny
TLS records whose boundaries fall inside HTTP/2 frames, and bytes OpenSSL holds after a read that stopped at
the input limit.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import h2.settings
import pytest

import eg
import h2_helpers as h2h

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

BIG = 50 * 1024 * 1024
# Peak RSS while a 50 MB response waits for a client that does not read: the output is bounded by
# limits.buffer_per_direction per connection, so the process stays near its baseline (~20-30 MB).
RSS_LIMIT_KB = 64 * 1024


def start(upstreams, edgeguard, pki: Path, handler, **upstream_kwargs):
    up = upstreams("app", handler, **upstream_kwargs)
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}],
                             workers=1)
    config["listeners"][0]["tls"] = {"certificates": [{"cert": str(pki / "a.pem"), "key": str(pki / "a.key")}]}
    return edgeguard(config), up, port


def wide_open_client(port: int, pki: Path) -> h2h.H2Client:
    """A client whose windows never stop the server: only its socket (and edgeguard's own limit) can."""
    client = h2h.H2Client(h2h.open_socket(port, ca=pki / "ca.pem"), window=2**31 - 1)
    client.conn.increment_flow_control_window(2**31 - 1 - 65535)
    client._flush()
    return client


def big_body() -> bytes:
    block = hashlib.sha256(b"transport").digest() * 4096  # 128 KiB
    return block * (BIG // len(block))


def open_fds(proc) -> int:
    return len(os.listdir(f"/proc/{proc.pid}/fd"))


def test_a_client_that_closes_mid_write_leaves_nothing_behind(upstreams, edgeguard, pki):
    body = big_body()
    proc, _, port = start(upstreams, edgeguard, pki,
                          lambda req: eg.Reply(body=body if req.target == "/big" else b"small"))
    warm = h2h.H2Client(h2h.open_socket(port, ca=pki / "ca.pem"))
    assert warm.get("/warm").status == 200
    warm.close()
    time.sleep(0.2)
    baseline = open_fds(proc)

    for abrupt in (True, False):
        client = wide_open_client(port, pki)
        sid = client.request("GET", "/big")
        got = 0
        while got < 256 * 1024:
            client.read_events(timeout=10)
            got = len(client.responses[sid].body)
        if abrupt:  # RST instead of FIN: the next SSL_write fails with ECONNRESET/EPIPE
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()

    # Both connections (and the upstream connections whose responses were cut) are given back.
    deadline = time.monotonic() + 10
    while open_fds(proc) > baseline and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_fds(proc) <= baseline
    # The worker serves on.
    client = h2h.H2Client(h2h.open_socket(port, ca=pki / "ca.pem"))
    assert client.get("/after").body == b"small"
    client.close()


def test_a_large_response_to_a_client_that_stops_reading_stays_bounded_and_complete(upstreams, edgeguard, pki):
    body = big_body()
    proc, _, port = start(upstreams, edgeguard, pki, lambda req: eg.Reply(body=body))
    client = wide_open_client(port, pki)
    sid = client.request("GET", "/download")
    client.read_events(timeout=10, once=True)  # the response started
    # The client stops reading: its socket buffers fill, every SSL_write would block, and edgeguard must stop
    # reading the upstream instead of queueing 50 MB.
    time.sleep(1.5)
    eg.assert_rss_below(proc, RSS_LIMIT_KB, "while a 50 MB response waited for a client that did not read")
    resp = client.wait([sid], timeout=120)[0]
    client.close()
    assert resp.status == 200 and resp.ended
    assert len(resp.body) == len(body)
    assert hashlib.sha256(resp.body).digest() == hashlib.sha256(body).digest()
    eg.assert_rss_below(proc, RSS_LIMIT_KB, "after a 50 MB response to a slow client")


class TinyRecords:
    """A TLS socket whose every send leaves in records of a few bytes, so that frame headers, HPACK blocks and
    DATA payloads are split across TLS records at arbitrary points."""

    def __init__(self, sock, sizes=(1, 7, 9, 13, 100, 3, 250)):
        self._sock = sock
        self._sizes = sizes
        self._i = 0

    def sendall(self, data) -> None:
        view = memoryview(data)
        while view:
            n = self._sizes[self._i % len(self._sizes)]
            self._i += 1
            self._sock.sendall(view[:n])
            view = view[n:]

    def __getattr__(self, name):
        return getattr(self._sock, name)


def test_a_body_in_many_small_tls_records_arrives_whole(upstreams, edgeguard, pki):
    proc, up, port = start(upstreams, edgeguard, pki, lambda req: eg.Reply(body=req.body_sha256.encode()),
                           keep_body_limit=0)
    client = h2h.H2Client(TinyRecords(h2h.open_socket(port, ca=pki / "ca.pem")))
    bodies = [os.urandom(10_000), os.urandom(200_000), os.urandom(1)]
    for body in bodies:
        sid = client.request("POST", "/capture/", headers=[("content-length", str(len(body)))], body=body)
        resp = client.wait([sid], timeout=60)[0]
        assert resp.status == 200
        assert resp.body.decode() == hashlib.sha256(body).hexdigest()
    client.close()
    assert [r.body_length for r in up.wait_requests(3)] == [len(b) for b in bodies]


def test_records_held_by_openssl_are_read_when_the_input_drains(upstreams, edgeguard, pki):
    """An input limit of 4 KiB (limits.buffer_per_direction, also each stream's window) below a TLS record's
    16 KiB: reading stops inside a record, and with read-ahead several whole records sit in OpenSSL too. The
    socket will not signal them again, so they must be read once the input drained."""
    up = upstreams("app", lambda req: eg.Reply(body=req.body_sha256.encode()), keep_body_limit=0)
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}],
                             workers=1, extra={"limits": {"buffer_per_direction": 4096}})
    config["listeners"][0]["tls"] = {"certificates": [{"cert": str(pki / "a.pem"), "key": str(pki / "a.key")}]}
    edgeguard(config)
    client = h2h.H2Client(h2h.open_socket(port, ca=pki / "ca.pem"))
    assert client.get("/warm").status == 200  # the server's SETTINGS and connection window are known now
    # From here the client sends nothing after its one flight (no WINDOW_UPDATE for the small answers) that
    # could make the socket readable again.
    client.auto_ack = False
    bodies = [os.urandom(4096) for _ in range(24)]
    sids = []
    for i, body in enumerate(bodies):
        sid = client.conn.get_next_available_stream_id()
        client.conn.send_headers(sid, [(":method", "POST"), (":scheme", "https"), (":authority", "a.test"),
                                       (":path", f"/s{i}"), ("content-length", str(len(body)))])
        client.responses[sid] = h2h.H2Response()
        sids.append(sid)
        if i < len(bodies) - 3:
            client.conn.send_data(sid, body, end_stream=True)
    client._flush()  # ~90 KB in one write: 16 KiB records, each read in 4 KiB steps
    time.sleep(0.3)
    # The last three bodies in one 12 KiB record, after which the socket stays silent: reading stops after
    # its first 4 KiB with the rest decrypted inside OpenSSL.
    for sid, body in zip(sids[-3:], bodies[-3:]):
        client.conn.send_data(sid, body, end_stream=True)
    client._flush()
    resps = client.wait(sids, timeout=30)
    client.close()
    assert [r.status for r in resps] == [200] * len(bodies)
    assert [r.body.decode() for r in resps] == [hashlib.sha256(b).hexdigest() for b in bodies]
    assert len(up.wait_requests(len(bodies) + 1)) == len(bodies) + 1


def test_responses_larger_than_the_output_limit_flow_to_a_client_that_never_updates_its_window(
        upstreams, edgeguard, pki):
    """A client whose windows are wide open sends no WINDOW_UPDATE: only the socket taking bytes may wake the
    streams that stopped reading their upstreams for lack of output room, also when it takes them at once."""
    bodies = {f"/d{i}": hashlib.sha256(str(i).encode()).digest() * (4096 * (i + 1)) for i in range(6)}
    _, _, port = start(upstreams, edgeguard, pki, lambda req: eg.Reply(body=bodies[req.target]))
    client = wide_open_client(port, pki)
    for path, body in bodies.items():  # one at a time: no other stream's bytes wake the connection
        resp = client.get(path)
        assert resp.status == 200 and resp.ended, path
        assert bytes(resp.body) == body, path
    sids = {path: client.request("GET", path) for path in bodies}
    resps = client.wait(sids.values(), timeout=60)
    client.close()
    for (path, body), resp in zip(bodies.items(), resps):
        assert resp.status == 200 and resp.ended, path
        assert bytes(resp.body) == body, path


def test_a_key_update_mid_connection_is_answered_and_the_stream_after_it_served(upstreams, edgeguard, pki):
    """TLS 1.3 KeyUpdate asking for ours (`openssl s_client`'s K command): the request written under the new
    key is answered, under edgeguard's new key."""
    _, up, port = start(upstreams, edgeguard, pki, lambda req: eg.Reply(body=b"after-update"))
    proc = subprocess.Popen(["openssl", "s_client", "-connect", f"{eg.LOOPBACK}:{port}", "-alpn", "h2",
                             "-servername", "a.test", "-CAfile", str(pki / "ca.pem"), "-tls1_3"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # s_client reads its input in chunks and takes a chunk that starts with K as the command.
        for chunk in (h2h.PREFACE + h2h.settings_frame(), h2h.settings_frame(ack=True), b"K\n",
                      h2h.headers_frame(1, h2h.request_block("/after-update"))):
            proc.stdin.write(chunk)
            proc.stdin.flush()
            time.sleep(0.5)
        up.wait_requests(1)
        time.sleep(0.5)
        out, err = proc.communicate(timeout=10)  # EOF on its input ends s_client
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert b"KEYUPDATE" in out + err
    assert b"after-update" in out, err.decode(errors="replace")[-400:]
