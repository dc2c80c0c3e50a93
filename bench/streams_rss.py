#!/usr/bin/env python3
"""Idle WebSocket and SSE streams held through edgeguard, and its memory.

Starts a loopback upstream (one selectors loop in a child process: 101 + one text frame for a WebSocket
upgrade, an event stream with one event for GET /events), starts edgeguard on a config that allows the
connections (per-IP limit off, streams idle for up to 30 minutes), then opens WebSocket and SSE streams in
steps from two client processes (one per kind, so no process needs more than ~10,000 descriptors). Each stream
counts only once it is really established: 101 with the right Sec-WebSocket-Accept and the upstream's first
frame, or a 200 text/event-stream and its first event. After each step it reads edgeguard's VmRSS and VmHWM
from /proc/<pid>/status and prints a table. Everything it starts it stops.

Every stream costs edgeguard two descriptors (client + upstream). The largest stream count that fits under
edgeguard's nofile hard limit is used unless --per-kind says otherwise; the per-stream cost and an
extrapolation are printed so a count that did not fit can still be judged.

    python3 bench/streams_rss.py --edgeguard build/edgeguard
"""
from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import resource
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rss_harness as h  # noqa: E402

MIB = 1024 * 1024


def edgeguard_config(port: int, admin_port: int, upstream_port: int, workers: int) -> str:
    long = "{stream_idle: 30m, upstream_body_idle: 30m}"
    return f"""workers: {workers}
graceful_shutdown: 2s
listeners:
  - name: http
    address: 127.0.0.1:{port}
admin:
  address: 127.0.0.1:{admin_port}
access_log:
  output: "off"
limits:
  max_connections: 20000
  max_connections_per_ip: 0
upstreams:
  streams:
    servers: ["127.0.0.1:{upstream_port}"]
routes:
  - name: livestream
    paths: [/livestream]
    upstream: streams
    strip_prefix: /livestream
    timeouts: {long}
  - name: ws
    paths: [/]
    upstream: streams
    timeouts: {long}
"""


# ----------------------------------------------------------------------------------------------------------
# Client processes: one per kind, told over a pipe how many streams to hold.
# ----------------------------------------------------------------------------------------------------------


class _Pending:
    __slots__ = ("sock", "buf", "key", "sent")

    def __init__(self, sock, key):
        self.sock = sock
        self.buf = b""
        self.key = key
        self.sent = False


def _request(kind: str, n: int, key: bytes) -> bytes:
    if kind == "ws":
        return (b"GET /ws/%d HTTP/1.1\r\nHost: bench\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n" % (n, key))
    return b"GET /livestream/events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"


def _established(kind: str, p: _Pending) -> bool | None:
    """True once the stream is proven, None while incomplete; raises on a wrong answer."""
    end = p.buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head, body = p.buf[:end].lower(), p.buf[end + 4:]
    if kind == "ws":
        if not head.startswith(b"http/1.1 101"):
            raise ValueError(head[:80])
        if b"sec-websocket-accept: " + h.ws_accept(p.key).lower() not in head:
            raise ValueError(b"wrong Sec-WebSocket-Accept: " + head[:200])
        return True if body.startswith(h.WS_FIRST_FRAME) else None
    if not head.startswith(b"http/1.1 200") or b"text/event-stream" not in head:
        raise ValueError(head[:80])
    return True if h.SSE_FIRST_EVENT in body else None


def _client_main(kind: str, port: int, sources: list[str], pipe, window: int) -> None:
    h.raise_nofile()
    held: list[socket.socket] = []
    n = 0
    while True:
        cmd = pipe.recv()
        if cmd[0] == "open":
            target, deadline = cmd[1], time.monotonic() + cmd[2]
            sel = selectors.DefaultSelector()
            failures: list[str] = []
            inflight = 0
            while len(held) < target and time.monotonic() < deadline:
                while inflight < window and len(held) + inflight < target:
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.setblocking(False)
                    if len(sources) > 1:
                        s.bind((sources[n % len(sources)], 0))
                    key = base64.b64encode(os.urandom(16))
                    err = s.connect_ex(("127.0.0.1", port))
                    if err not in (0, 115):  # EINPROGRESS
                        failures.append(f"connect: {os.strerror(err)}")
                        s.close()
                        break
                    sel.register(s, selectors.EVENT_WRITE, _Pending(s, key))
                    inflight += 1
                    n += 1
                for skey, _ in sel.select(timeout=0.5):
                    p = skey.data
                    try:
                        if not p.sent:
                            err = p.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                            if err:
                                raise OSError(err, os.strerror(err))
                            p.sock.send(_request(kind, n, p.key))
                            p.sent = True
                            sel.modify(p.sock, selectors.EVENT_READ, p)
                            continue
                        data = p.sock.recv(4096)
                        if not data:
                            raise OSError("closed by edgeguard before the stream was established")
                        p.buf += data
                        if _established(kind, p):
                            sel.unregister(p.sock)
                            inflight -= 1
                            held.append(p.sock)
                    except (OSError, ValueError) as e:
                        sel.unregister(p.sock)
                        p.sock.close()
                        inflight -= 1
                        failures.append(repr(e)[:160])
                if len(failures) > 20:
                    break
            for skey in list(sel.get_map().values()):
                skey.fileobj.close()
            sel.close()
            pipe.send({"held": len(held), "failures": len(failures), "sample": failures[:3]})
        elif cmd[0] == "check":
            # A stream edgeguard has ended shows up readable with EOF (or a reset).
            sel = selectors.DefaultSelector()
            for s in held:
                sel.register(s, selectors.EVENT_READ)
            ended = 0
            for skey, _ in sel.select(timeout=0):
                try:
                    if skey.fileobj.recv(1, socket.MSG_PEEK) == b"":
                        ended += 1
                except BlockingIOError:
                    pass
                except OSError:
                    ended += 1
            sel.close()
            pipe.send({"held": len(held), "ended": ended})
        else:
            for s in held:
                s.close()
            pipe.send({"closed": len(held)})
            return


class StreamClients:
    def __init__(self, kind: str, port: int, sources: list[str], window: int = 256):
        ctx = multiprocessing.get_context("fork")
        self.kind = kind
        self.pipe, child = ctx.Pipe()
        self.proc = ctx.Process(target=_client_main, args=(kind, port, sources, child, window), daemon=True)
        self.proc.start()

    def ask(self, *cmd, timeout: float = 120.0) -> dict:
        self.pipe.send(cmd)
        if not self.pipe.poll(timeout):
            raise RuntimeError(f"{self.kind} clients did not answer {cmd[0]}")
        return self.pipe.recv()

    def stop(self) -> None:
        if self.proc.is_alive():
            try:
                self.ask("close", timeout=30)
            except (RuntimeError, OSError, EOFError):
                pass
            self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edgeguard", required=True, help="path to the edgeguard binary")
    ap.add_argument("--per-kind", type=int, default=0,
                    help="WebSocket streams and as many SSE streams; 0 = the most edgeguard's nofile limit allows")
    ap.add_argument("--steps", default="0.1,0.5,1",
                    help="fractions of --per-kind at which memory is read (comma-separated)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sources", type=int, default=1, help="spread clients over 127.0.0.1..127.0.0.N")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds to wait before reading memory")
    args = ap.parse_args()

    h.raise_nofile()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    # Two descriptors per stream in edgeguard (client + upstream), plus listeners, epoll, eventfds, logs.
    fit = (hard - 200) // 4
    per_kind = args.per_kind or fit
    if per_kind > fit:
        print(f"note: {per_kind} per kind needs {4 * per_kind} descriptors in edgeguard, hard limit is {hard}; "
              f"expect refusals past ~{fit} per kind")
    steps = sorted({max(1, round(per_kind * float(f))) for f in args.steps.split(",")})
    sources = [f"127.0.0.{i}" for i in range(1, args.sources + 1)]

    upstream = h.LoopbackUpstream()
    port, admin_port = h.free_port(), h.free_port()
    started = []
    try:
        proc = h.EdgeguardProc(args.edgeguard, edgeguard_config(port, admin_port, upstream.port, args.workers),
                               port, admin_port)
        started.append(proc)
        ws = StreamClients("ws", port, sources)
        started.append(ws)
        sse = StreamClients("sse", port, sources)
        started.append(sse)
        time.sleep(args.settle)
        base_rss = proc.kib("VmRSS")
        print(f"edgeguard {args.edgeguard}: workers {args.workers}, nofile limit {proc.nofile_limit()}, "
              f"idle RSS {base_rss / 1024:.1f} MiB")
        rows = []
        for target in steps:
            t0 = time.monotonic()
            ws.pipe.send(("open", target, 120))
            sse.pipe.send(("open", target, 120))
            results = {}
            for c in (ws, sse):
                if not c.pipe.poll(180):
                    raise RuntimeError(f"{c.kind} clients did not finish opening")
                results[c.kind] = c.pipe.recv()
            took = time.monotonic() - t0
            for kind, r in results.items():
                if r["failures"]:
                    print(f"  {kind}: {r['failures']} streams failed, e.g. {r['sample']}")
            time.sleep(args.settle)
            checks = {c.kind: c.ask("check") for c in (ws, sse)}
            up = upstream.counts()
            rss, hwm = proc.kib("VmRSS"), proc.kib("VmHWM")
            streams = results["ws"]["held"] + results["sse"]["held"]
            rows.append(dict(ws=results["ws"]["held"], sse=results["sse"]["held"], streams=streams,
                             ended=checks["ws"]["ended"] + checks["sse"]["ended"],
                             up_ws=up["ws"], up_sse=up["sse"],
                             active=int(proc.metric("edgeguard_active_connections ")),
                             fds=h.open_fds(proc.pid), rss=rss, hwm=hwm, took=took))
        print()
        print("| WebSocket | SSE | streams | ended by then | upstream sees (ws/sse) | edgeguard active conns "
              "| edgeguard fds | VmRSS MiB | VmHWM MiB | (RSS - idle) / stream |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            per = (r["rss"] - base_rss) * 1024 / r["streams"] if r["streams"] else 0
            print(f"| {r['ws']} | {r['sse']} | {r['streams']} | {r['ended']} | {r['up_ws']}/{r['up_sse']} "
                  f"| {r['active']} | {r['fds']} | {r['rss'] / 1024:.1f} | {r['hwm'] / 1024:.1f} "
                  f"| {per / 1024:.2f} KiB |")
        last = rows[-1]
        if last["streams"]:
            per = (last["rss"] - base_rss) * 1024 / last["streams"]
            for n in (10_000, 20_000):
                print(f"extrapolated: {n} streams ~ {(base_rss * 1024 + per * n) / MIB:.1f} MiB "
                      f"(idle {base_rss / 1024:.1f} MiB + {per / 1024:.2f} KiB x {n})")
        ok = all(r["ended"] == 0 and r["streams"] == 2 * s for r, s in zip(rows, steps))
        print("all streams established and still open at every step" if ok else "SOME STREAMS FAILED OR ENDED")
        return 0 if ok else 1
    finally:
        for p in reversed(started):
            p.stop()
        upstream.stop()


if __name__ == "__main__":
    sys.exit(main())
