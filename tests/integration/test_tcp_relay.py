"""TCP listeners relay bytes both ways through the real binary: echo, large transfers with bounded memory,
back-pressure towards a slow reader, half-close in both directions, resets passed on, refusing upstreams,
several servers, idle timeout, and an HTTP/2 prior-knowledge session (gRPC's transport) byte for byte."""

from __future__ import annotations

import socket
import time
import zlib

import h2.config
import h2.connection
import h2.events

import eg
import tcp_helpers as th

BUFFER = 64 * 1024


def start_relay(edgeguard, upstream_servers: list[str], workers: int = 2, **listener_extra):
    port = eg.free_port()
    config = th.tcp_config(eg.free_port(), {"svc": upstream_servers},
                           [th.tcp_listener("svc", port, "svc", **listener_extra)], workers=workers)
    return edgeguard(config), port


def test_echo_round_trips(tcp_upstreams, edgeguard):
    up = tcp_upstreams(th.echo)
    _, port = start_relay(edgeguard, [up.address])
    with th.connect(port) as sock:
        for message in (b"hello", b"x" * 100_000, bytes(range(256))):
            sock.sendall(message)
            got = bytearray()
            while len(got) < len(message):
                chunk = sock.recv(65536)
                assert chunk, "edgeguard closed mid-echo"
                got += chunk
            assert bytes(got) == message
        sock.shutdown(socket.SHUT_WR)
        assert th.read_to_eof(sock) == b""
    record = up.wait_records(1, "done")[0]
    assert record["received"] == b"hello" + b"x" * 100_000 + bytes(range(256))


def _sink(conn: socket.socket, record: dict) -> None:
    """Counts and checksums everything until EOF, then answers with both and closes."""
    total, crc = 0, 0
    while True:
        chunk = conn.recv(1 << 20)
        if not chunk:
            break
        total += len(chunk)
        crc = zlib.crc32(chunk, crc)
    conn.sendall(f"{total} {crc}".encode())
    record["total"] = total


def test_one_gib_upload_keeps_memory_within_two_buffers(tcp_upstreams, edgeguard):
    up = tcp_upstreams(_sink)
    proc, port = start_relay(edgeguard, [up.address], workers=1, buffer=BUFFER)
    block = bytes(range(256)) * 256  # 64 KiB
    total = 1 << 30
    crc = 0
    with th.connect(port, timeout=120) as sock:
        sent = 0
        while sent < total:
            sock.sendall(block)
            crc = zlib.crc32(block, crc)
            sent += len(block)
            if sent == 32 << 20:  # allocator and buffers warmed up: from here memory must not grow
                baseline = proc.status_kb("VmHWM")
        sock.shutdown(socket.SHUT_WR)
        answer = th.read_to_eof(sock)
    assert answer == f"{total} {crc}".encode()
    growth_kb = proc.status_kb("VmHWM") - baseline
    if not eg.binary_is_sanitized(proc.binary):  # sanitizer allocators keep freed memory in quarantine
        assert growth_kb < 2 * BUFFER // 1024, f"peak RSS grew {growth_kb} kB over 1 GiB"


def test_slow_reader_pauses_the_upstream_without_growing_memory(tcp_upstreams, edgeguard):
    total = 128 << 20
    progress = {"sent": 0}

    def blast(conn: socket.socket, record: dict) -> None:
        block = b"z" * 65536
        conn.settimeout(60)
        while progress["sent"] < total:
            conn.sendall(block)
            progress["sent"] += len(block)
        conn.shutdown(socket.SHUT_WR)
        record["sent"] = progress["sent"]

    up = tcp_upstreams(blast)
    proc, port = start_relay(edgeguard, [up.address], workers=1, buffer=BUFFER)
    with th.connect(port, timeout=60, rcvbuf=64 * 1024) as sock:
        received = len(sock.recv(65536))
        time.sleep(0.5)
        baseline = proc.status_kb("VmHWM")
        # Reading 4 KiB now and then: the upstream must be held back by edgeguard, not buffered by it.
        for _ in range(20):
            received += len(sock.recv(4096))
            time.sleep(0.05)
        stalled_at = progress["sent"]
        assert stalled_at < total // 4, f"upstream sent {stalled_at} bytes to a reader that took {received}"
        if not eg.binary_is_sanitized(proc.binary):
            assert proc.status_kb("VmHWM") - baseline < 2 * BUFFER // 1024
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            received += len(chunk)
    assert received == total
    up.wait_records(1, "sent")


def test_client_half_close_reaches_the_upstream_and_the_reply_still_arrives(tcp_upstreams, edgeguard):
    def reply_after_eof(conn: socket.socket, record: dict) -> None:
        data = th.read_to_eof(conn)
        record["received"] = data
        conn.sendall(b"got %d bytes" % len(data))

    up = tcp_upstreams(reply_after_eof)
    _, port = start_relay(edgeguard, [up.address])
    with th.connect(port) as sock:
        sock.sendall(b"a" * 300_000)
        sock.shutdown(socket.SHUT_WR)
        assert th.read_to_eof(sock) == b"got 300000 bytes"
    assert up.wait_records(1, "received")[0]["received"] == b"a" * 300_000


def test_upstream_half_close_reaches_the_client_which_can_still_send(tcp_upstreams, edgeguard):
    def greet_then_listen(conn: socket.socket, record: dict) -> None:
        conn.sendall(b"greeting")
        conn.shutdown(socket.SHUT_WR)
        record["received"] = th.read_to_eof(conn)

    up = tcp_upstreams(greet_then_listen)
    _, port = start_relay(edgeguard, [up.address])
    with th.connect(port) as sock:
        assert th.read_to_eof(sock) == b"greeting"  # the upstream's FIN arrived as our EOF
        sock.sendall(b"still talking")
        sock.shutdown(socket.SHUT_WR)
        assert up.wait_records(1, "received")[0]["received"] == b"still talking"


def test_refusing_upstream_resets_the_client_and_counts_a_connect_error(edgeguard):
    dead = f"{eg.LOOPBACK}:{eg.free_port()}"
    proc, port = start_relay(edgeguard, [dead])
    # The reset can arrive before connect() returns (it then reports it) or after.
    try:
        sock = th.connect(port)
    except ConnectionResetError:
        pass
    else:
        with sock:
            assert th.outcome(sock) == "reset"
    assert eg.wait_until(lambda: th.metric(proc, "edgeguard_tcp_upstream_connect_errors_total", listener="svc") >= 1,
                         5.0)


def test_next_server_is_tried_when_one_refuses(tcp_upstreams, edgeguard):
    up = tcp_upstreams(th.echo)
    dead = f"{eg.LOOPBACK}:{eg.free_port()}"
    _, port = start_relay(edgeguard, [dead, up.address], workers=1)
    for i in range(4):  # round-robin starts at each server in turn; every connection must reach the live one
        assert th.echo_works(port, payload=b"try %d" % i)
    assert up.accepted == 4


def test_upstream_reset_reaches_the_client(tcp_upstreams, edgeguard):
    def read_then_reset(conn: socket.socket, record: dict) -> None:
        record["received"] = conn.recv(100)
        th.reset_close(conn)

    up = tcp_upstreams(read_then_reset)
    _, port = start_relay(edgeguard, [up.address])
    with th.connect(port) as sock:
        sock.sendall(b"boom")
        assert th.outcome(sock) == "reset"
    assert up.wait_records(1, "received")[0]["received"] == b"boom"


def test_client_reset_reaches_the_upstream(tcp_upstreams, edgeguard):
    def wait_for_end(conn: socket.socket, record: dict) -> None:
        record["first"] = conn.recv(100)
        try:
            record["end"] = "eof" if conn.recv(100) == b"" else "data"
        except ConnectionResetError:
            record["end"] = "reset"

    up = tcp_upstreams(wait_for_end)
    _, port = start_relay(edgeguard, [up.address])
    sock = th.connect(port)
    sock.sendall(b"hi")
    up.wait_records(1, "first")
    th.reset_close(sock)
    assert up.wait_records(1, "end")[0]["end"] == "reset"


def test_idle_connection_is_closed_on_both_sides(tcp_upstreams, edgeguard):
    def echo_then_wait(conn: socket.socket, record: dict) -> None:
        conn.sendall(conn.recv(100))
        record["end"] = "eof" if conn.recv(100) == b"" else "data"

    up = tcp_upstreams(echo_then_wait)
    _, port = start_relay(edgeguard, [up.address], timeouts={"idle": eg.ms(300)})
    with th.connect(port) as sock:
        sock.sendall(b"once")
        assert sock.recv(100) == b"once"
        assert th.outcome(sock) == "eof"  # no byte either way: edgeguard closed it
    assert up.wait_records(1, "end")[0]["end"] == "eof"


def test_http2_prior_knowledge_session_passes_byte_exact(tcp_upstreams, edgeguard):
    response_body = bytes(range(256)) * 200  # within the initial flow-control window

    def h2_server(conn: socket.socket, record: dict) -> None:
        server = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
        server.initiate_connection()
        sent = bytearray(server.data_to_send())
        conn.sendall(sent)
        received = bytearray()
        done = False
        while not done:
            data = conn.recv(65536)
            if not data:
                break
            received += data
            for event in server.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    record["headers"] = dict(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    record.setdefault("body", bytearray()).extend(event.data)
                    server.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    server.send_headers(event.stream_id, [(":status", "200"), ("content-type", "application/grpc")])
                    for at in range(0, len(response_body), 16384):  # the default largest frame
                        server.send_data(event.stream_id, response_body[at:at + 16384], end_stream=False)
                    server.send_headers(event.stream_id, [("grpc-status", "0")], end_stream=True)
                    done = True
            out = server.data_to_send()
            conn.sendall(out)
            sent += out
        # Whatever the client still sends (its acknowledgements) until it closes.
        received += th.read_to_eof(conn)
        record["sent"] = bytes(sent)
        record["received"] = bytes(received)

    up = tcp_upstreams(h2_server)
    _, port = start_relay(edgeguard, [up.address])
    client = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    sent = bytearray()
    received = bytearray()
    request_body = b"\x00\x00\x00\x00\x05hello" * 1000
    with th.connect(port) as sock:
        out = client.data_to_send()
        stream = client.get_next_available_stream_id()
        client.send_headers(stream, [(":method", "POST"), (":scheme", "http"), (":authority", "temporal:7233"),
                                     (":path", "/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo"),
                                     ("content-type", "application/grpc"), ("te", "trailers")])
        client.send_data(stream, request_body, end_stream=True)
        out += client.data_to_send()
        sock.sendall(out)
        sent += out
        body = bytearray()
        trailers = None
        while trailers is None:
            data = sock.recv(65536)
            assert data, "edgeguard closed the h2 session early"
            received += data
            for event in client.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    body += event.data
                    client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.TrailersReceived):
                    trailers = dict(event.headers)
            out = client.data_to_send()
            sock.sendall(out)
            sent += out
        sock.shutdown(socket.SHUT_WR)
        received += th.read_to_eof(sock)
    assert bytes(body) == response_body
    assert trailers[b"grpc-status"] == b"0"
    record = up.wait_records(1, "received")[0]
    assert bytes(record["body"]) == request_body
    assert record["received"] == bytes(sent)
    assert bytes(received) == record["sent"]
