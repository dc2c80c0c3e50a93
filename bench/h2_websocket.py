#!/usr/bin/env python3
"""WebSocket over HTTP/2 (RFC 8441) through edgeguard: what a tunnel costs.

  cost  callgrind instructions per MiB echoed through one tunnel, extended CONNECT over h2c against an
        HTTP/1.1 Upgrade tunnel on the same binary (edgeguard under valgrind, instrumentation on only while
        the bytes move; `workers: 1`).
  rss   VmRSS per idle tunnel: N extended CONNECT streams over N/100 h2c connections (100 streams each) to an
        upstream that answers 101 and stays silent.

    bench/h2_websocket.py cost --edgeguard build/edgeguard [--mib 16]
    bench/h2_websocket.py rss  --edgeguard build/edgeguard [--tunnels 2000]

The upstream is an asyncio server in this process (101 with the right Sec-WebSocket-Accept, then echo or
silence); clients are python-h2 and a raw socket. Everything runs on 127.0.0.1 and is stopped here.
"""
import argparse
import asyncio
import base64
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
import eg  # noqa: E402
import h2.events  # noqa: E402
import h2_helpers as h2h  # noqa: E402
from compare import Proc  # noqa: E402

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def start_upstream(echo: bool) -> int:
    box = {}

    async def handle(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key"))
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + base64.b64encode(hashlib.sha1(key + GUID).digest()) + b"\r\n\r\n")
        while data := await reader.read(1 << 16):
            if echo:
                writer.write(data)
                await writer.drain()
        writer.close()

    def run():
        loop = asyncio.new_event_loop()

        async def main():
            srv = await asyncio.start_server(handle, eg.LOOPBACK, 0, backlog=4096)
            box["port"] = srv.sockets[0].getsockname()[1]
            await asyncio.Event().wait()

        loop.run_until_complete(main())

    threading.Thread(target=run, daemon=True).start()
    while "port" not in box:
        time.sleep(0.01)
    return box["port"]


def config_file(tmp: str, port: int, upstream: int) -> str:
    cfg = eg.basic_config(port, {"ws": [f"{eg.LOOPBACK}:{upstream}"]},
                          [{"name": "ws", "paths": ["/"], "upstream": "ws"}], workers=1,
                          timeouts={"stream_idle": "30m"}, limits={"max_connections_per_ip": 0})
    cfg["listeners"][0]["h2c"] = True
    path = os.path.join(tmp, "edgeguard.yaml")
    Path(path).write_text(eg.dump_yaml(cfg))
    return path


def h2_client(port: int) -> h2h.H2Client:
    client = h2h.H2Client(h2h.open_socket(port, timeout=120), scheme="http")
    while not any(isinstance(ev, h2.events.RemoteSettingsChanged) for ev in client.read_events(once=True)):
        pass
    return client


def connect_stream(client: h2h.H2Client, path: str) -> int:
    sid = client.conn.get_next_available_stream_id()
    client.conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                                   (":authority", "a.test"), (":path", path), ("sec-websocket-version", "13")])
    client.responses[sid] = h2h.H2Response()
    return sid


def cost(args, proto: str) -> float:
    tmp = tempfile.mkdtemp(prefix="h2ws-")
    port = eg.free_port()
    conf = config_file(tmp, port, start_upstream(echo=True))
    out = os.path.join(tmp, "callgrind.out")
    proc = Proc("edgeguard", [args.edgeguard, "serve", "--config", conf], port,
                prefix=["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"])
    payload = os.urandom(1 << 20)
    total = args.mib << 20
    got = 0
    try:
        if proto == "h2":
            client = h2_client(port)
            sid = connect_stream(client, "/t")
            client._flush()
            while not client.responses[sid].status:
                client.read_events(timeout=120, once=True)
            assert client.responses[sid].status == 200
            subprocess.run(["callgrind_control", "-i", "on", str(proc.p.pid)], check=True, capture_output=True)
            for _ in range(args.mib):
                client.send_body(sid, payload, end=False, timeout=120)
            while got < total:
                client.read_events(timeout=120, once=True)
                got += len(client.responses[sid].body)
                client.responses[sid].body.clear()
        else:
            s = socket.create_connection((eg.LOOPBACK, port), timeout=120)
            s.sendall(b"GET /t HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(4096)
            assert b" 101 " in buf.split(b"\r\n")[0]
            got = len(buf.split(b"\r\n\r\n", 1)[1])
            subprocess.run(["callgrind_control", "-i", "on", str(proc.p.pid)], check=True, capture_output=True)
            done = {"got": got}

            def read():
                while done["got"] < total:
                    data = s.recv(1 << 20)
                    if not data:
                        break
                    done["got"] += len(data)

            reader = threading.Thread(target=read)
            reader.start()
            for _ in range(args.mib):
                s.sendall(payload)
            reader.join(120)
            got = done["got"]
        assert got >= total, f"echo incomplete: {got} of {total}"
        subprocess.run(["callgrind_control", "-i", "off", str(proc.p.pid)], check=True, capture_output=True)
    finally:
        proc.stop()
    return next(int(line.split()[1]) for line in open(out) if line.startswith("totals:")) / args.mib


def rss(args) -> None:
    tmp = tempfile.mkdtemp(prefix="h2ws-")
    port = eg.free_port()
    conf = config_file(tmp, port, start_upstream(echo=False))
    proc = Proc("edgeguard", [args.edgeguard, "serve", "--config", conf], port)
    status = f"/proc/{proc.p.pid}/status"

    def vmrss() -> int:
        return next(int(line.split()[1]) for line in open(status) if line.startswith("VmRSS:"))

    try:
        clients = [h2_client(port) for _ in range(args.tunnels // 100)]
        time.sleep(0.5)
        before = vmrss()
        for client in clients:
            sids = [connect_stream(client, f"/t/{i}") for i in range(100)]
            client._flush()
            deadline = time.monotonic() + 60
            while not all(client.responses[s].status for s in sids):
                assert time.monotonic() < deadline, "tunnels did not open"
                client.read_events(timeout=60, once=True)
            assert all(client.responses[s].status == 200 for s in sids)
        time.sleep(0.5)
        after = vmrss()
        n = len(clients) * 100
        print(f"{n} tunnels over {len(clients)} h2c connections: VmRSS {before} -> {after} kB, "
              f"{(after - before) / n:.2f} KiB per tunnel")
        for client in clients:
            client.close()
    finally:
        proc.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["cost", "rss"])
    ap.add_argument("--edgeguard", required=True)
    ap.add_argument("--mib", type=int, default=16)
    ap.add_argument("--tunnels", type=int, default=2000)
    args = ap.parse_args()
    if args.mode == "rss":
        rss(args)
        return
    h2_ir = cost(args, "h2")
    h1_ir = cost(args, "h1")
    print(f"instructions per MiB echoed (both directions): HTTP/2 {h2_ir / 1e6:.2f} M, "
          f"HTTP/1.1 {h1_ir / 1e6:.2f} M, ratio {h2_ir / h1_ir:.2f}x")


if __name__ == "__main__":
    main()
