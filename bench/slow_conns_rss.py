#!/usr/bin/env python3
"""Slow clients against edgeguard: memory, deadlines, and service to everyone else.

Opens --slowloris connections that send part of a request head and then one more header byte every
--interval seconds (never finishing it), and --slow-body connections that send a complete head announcing a
body and then one body byte every --interval seconds. Attackers come from 127.0.1.1..127.0.1.N (--sources), so
a per-IP connection limit like a hardened deployment's can stay on; a normal client on 127.0.0.1 sends a GET
every second throughout. Reports:
  - edgeguard's VmRSS/VmHWM (sampled twice a second) and its open connections at the peak;
  - when each slowloris connection was closed by edgeguard, measured from its first byte, against the
    client_header deadline (a total deadline, so trickling bytes must not extend it), and whether it got a 408;
  - whether slow bodies are still held at the end (they are never idle for client_body_idle, the policy);
  - every normal request's status and latency.
Everything it starts it stops.

    python3 bench/slow_conns_rss.py --edgeguard build/edgeguard
"""
from __future__ import annotations

import argparse
import os
import selectors
import socket
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rss_harness as h  # noqa: E402


def edgeguard_config(port: int, admin_port: int, upstream_port: int, workers: int, header_deadline: float,
                     body_idle: float, per_ip: int) -> str:
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
  max_connections_per_ip: {per_ip}
timeouts:
  client_header: {int(header_deadline * 1000)}ms
  client_body_idle: {int(body_idle * 1000)}ms
upstreams:
  app:
    servers: ["127.0.0.1:{upstream_port}"]
routes:
  - name: all
    paths: [/]
    upstream: app
"""


class Slow:
    __slots__ = ("sock", "kind", "first_at", "next_at", "closed_at", "got", "pending", "sent")

    def __init__(self, sock, kind):
        self.sock, self.kind = sock, kind
        self.first_at = self.next_at = self.closed_at = 0.0
        self.got = b""
        self.pending = b""
        self.sent = 0


def open_slow(sel, port: int, kind: str, n: int, sources: list[str], conns: list, window: int = 512) -> list[str]:
    """Connects n clients (at most `window` handshakes in flight) and sends each its first bytes."""
    errors = []
    connecting = 0
    i = 0
    while i < n or connecting:
        while i < n and connecting < window:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.bind((sources[len(conns) % len(sources)], 0))
            err = s.connect_ex(("127.0.0.1", port))
            if err not in (0, 115):
                errors.append(os.strerror(err))
                s.close()
                i += 1
                continue
            c = Slow(s, kind)
            conns.append(c)
            sel.register(s, selectors.EVENT_WRITE, c)
            connecting += 1
            i += 1
        for key, _ in sel.select(timeout=0.2):
            c = key.data
            if c.first_at:
                read_from(c, sel)
                continue
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            connecting -= 1
            if err:
                errors.append(os.strerror(err))
                c.closed_at = time.monotonic()
                sel.unregister(c.sock)
                c.sock.close()
                continue
            if kind == "slowloris":
                first = b"GET /slowloris/%d HTTP/1.1\r\nHost: bench\r\nX-Pad: " % len(conns)
            else:
                first = b"POST /upload/%d HTTP/1.1\r\nHost: bench\r\nContent-Length: 1000000\r\n\r\n" % len(conns)
            c.first_at = time.monotonic()
            try:
                c.sock.send(first)
            except OSError as e:
                errors.append(str(e))
            sel.modify(c.sock, selectors.EVENT_READ, c)
    return errors


def read_from(c: Slow, sel) -> None:
    try:
        data = c.sock.recv(4096)
    except BlockingIOError:
        return
    except OSError:
        data = b""
    if data:
        c.got += data
        if b"\r\n\r\n" not in c.got:
            return
    # A full answer (edgeguard answers slow clients with 408 and closes) or the close itself.
    if not c.closed_at:
        c.closed_at = time.monotonic()
    if not data:
        sel.unregister(c.sock)
        c.sock.close()


def trickle(conns: list, interval: float, sel) -> None:
    now = time.monotonic()
    for c in conns:
        if c.closed_at or not c.first_at:
            continue
        if not c.next_at:
            c.next_at = c.first_at + interval
        if now >= c.next_at:
            c.next_at += interval
            try:
                c.sock.send(b"a")
                c.sent += 1
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                c.closed_at = now
                sel.unregister(c.sock)
                c.sock.close()


class Observer(threading.Thread):
    """Samples edgeguard's memory and connections and sends one normal GET per second from 127.0.0.1."""

    def __init__(self, proc: h.EdgeguardProc):
        super().__init__(daemon=True)
        self.proc = proc
        self.stop = threading.Event()
        self.samples = []  # (t, rss KiB, hwm KiB, active connections)
        self.normal = []  # (t, status or error, seconds)

    def run(self) -> None:
        next_request = time.monotonic()
        while not self.stop.wait(0.5):
            try:
                active = int(self.proc.metric("edgeguard_active_connections "))
            except OSError:
                active = -1
            self.samples.append((time.monotonic(), self.proc.kib("VmRSS"), self.proc.kib("VmHWM"), active))
            if time.monotonic() >= next_request:
                next_request += 1.0
                self.normal.append(self.normal_request())

    def normal_request(self):
        t0 = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", self.proc.listen_port), timeout=5) as s:
                s.sendall(b"GET /normal HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else repr(data[:40])
            if status == 200 and not data.endswith(b"ok"):
                status = "200 without the upstream's body"
        except OSError as e:
            status = repr(e)
        return (t0, status, time.monotonic() - t0)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edgeguard", required=True)
    ap.add_argument("--slowloris", type=int, default=5000)
    ap.add_argument("--slow-body", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=2.0, help="seconds between the bytes each slow client sends")
    ap.add_argument("--header-deadline", type=float, default=10.0, help="edgeguard timeouts.client_header (s)")
    ap.add_argument("--body-idle", type=float, default=60.0, help="edgeguard timeouts.client_body_idle (s)")
    ap.add_argument("--per-ip", type=int, default=256, help="limits.max_connections_per_ip")
    ap.add_argument("--sources", type=int, default=32, help="attackers use 127.0.1.1..127.0.1.N")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--slack", type=float, default=2.0,
                    help="a slowloris closed later than deadline + slack counts as late")
    args = ap.parse_args()
    need = args.slowloris + args.slow_body
    if need > args.per_ip * args.sources:
        print(f"note: {need} attackers over {args.sources} sources exceed the per-IP limit {args.per_ip}; "
              "expect refusals")

    h.raise_nofile()
    sources = [f"127.0.1.{i}" for i in range(1, args.sources + 1)]
    upstream = h.LoopbackUpstream()
    port, admin_port = h.free_port(), h.free_port()
    proc = None
    observer = None
    conns: list[Slow] = []
    sel = selectors.DefaultSelector()
    try:
        proc = h.EdgeguardProc(args.edgeguard, edgeguard_config(port, admin_port, upstream.port, args.workers,
                                                                args.header_deadline, args.body_idle, args.per_ip),
                               port, admin_port)
        time.sleep(1)
        base_rss = proc.kib("VmRSS")
        observer = Observer(proc)
        observer.start()
        t0 = time.monotonic()
        errors = open_slow(sel, port, "slow-body", args.slow_body, sources, conns)
        errors += open_slow(sel, port, "slowloris", args.slowloris, sources, conns)
        opened_in = time.monotonic() - t0
        # Run until every slowloris should have been closed, plus the slack and a few trickles more.
        end = max(c.first_at for c in conns if c.first_at) + args.header_deadline + args.slack + 2 * args.interval
        mid_counts = None
        while time.monotonic() < end:
            for key, _ in sel.select(timeout=0.05):
                read_from(key.data, sel)
            trickle(conns, args.interval, sel)
            if mid_counts is None and time.monotonic() - t0 > opened_in + 1:
                mid_counts = upstream.counts()
        up_end = upstream.counts()
        rss_end = proc.kib("VmRSS")
        observer.stop.set()
        observer.join(10)

        lor = [c for c in conns if c.kind == "slowloris"]
        body = [c for c in conns if c.kind == "slow-body"]
        lor_closed = [c for c in lor if c.closed_at and c.first_at]
        lifetimes = [c.closed_at - c.first_at for c in lor_closed]
        with_408 = sum(1 for c in lor_closed if c.got.startswith(b"HTTP/1.1 408"))
        early = sum(1 for t in lifetimes if t < args.header_deadline - 0.05)
        late = sum(1 for t in lifetimes if t > args.header_deadline + args.slack)
        trickled = statistics.median(c.sent for c in lor) if lor else 0
        body_open = sum(1 for c in body if not c.closed_at)
        body_408 = sum(1 for c in body if c.closed_at and c.got.startswith(b"HTTP/1.1 408"))
        peak = max(observer.samples, key=lambda s: s[1]) if observer.samples else (0, 0, 0, 0)
        max_active = max((s[3] for s in observer.samples), default=0)
        normal_bad = [n for n in observer.normal if n[1] != 200]

        print(f"edgeguard {args.edgeguard}: workers {args.workers}, client_header {args.header_deadline:g}s, "
              f"client_body_idle {args.body_idle:g}s, max_connections_per_ip {args.per_ip}, "
              f"{args.sources} attacker addresses, one byte every {args.interval:g}s")
        print(f"opened {len(conns)} slow connections in {opened_in:.1f}s ({len(errors)} connect errors"
              f"{', e.g. ' + errors[0] if errors else ''})")
        print()
        print("| measure | value |")
        print("|---|---|")
        print(f"| edgeguard RSS before | {base_rss / 1024:.1f} MiB |")
        print(f"| edgeguard peak VmRSS (sampled) / VmHWM | {peak[1] / 1024:.1f} MiB / {peak[2] / 1024:.1f} MiB |")
        print(f"| edgeguard open connections at most (gauge) | {max_active} |")
        print(f"| edgeguard RSS at the end | {rss_end / 1024:.1f} MiB |")
        print(f"| slowloris closed by edgeguard | {len(lor_closed)} of {len(lor)} ({with_408} with a 408) |")
        if lifetimes:
            print(f"| slowloris lifetime from first byte: min / median / p99 / max | {min(lifetimes):.2f} / "
                  f"{statistics.median(lifetimes):.2f} / {pct(lifetimes, 99):.2f} / {max(lifetimes):.2f} s |")
        print(f"| slowloris closed before the deadline / later than deadline + {args.slack:g}s | {early} / {late} |")
        print(f"| header bytes each slowloris trickled (median) | {trickled:.0f} |")
        print(f"| slow bodies still open at the end (client_body_idle {args.body_idle:g}s) | "
              f"{body_open} of {len(body)} ({len(body) - body_open} closed, {body_408} of them with a 408) |")
        print(f"| upstream: request bodies being received mid-run / at the end | "
              f"{(mid_counts or {}).get('body_waiting', '?')} / {up_end['body_waiting']} |")
        print(f"| normal GETs from 127.0.0.1 meanwhile: 200 / total, max latency | "
              f"{len(observer.normal) - len(normal_bad)} / {len(observer.normal)}, "
              f"{max((n[2] for n in observer.normal), default=0) * 1000:.0f} ms |")
        if normal_bad:
            print(f"failed normal requests: {normal_bad[:5]}")
        ok = (len(lor_closed) == len(lor) and with_408 == len(lor) and early == 0 and late == 0
              and not normal_bad and observer.normal and not errors)
        print("header deadline held for every slowloris, normal traffic served" if ok
              else "SOMETHING DID NOT HOLD (see above)")
        return 0 if ok else 1
    finally:
        if observer is not None:
            observer.stop.set()
        for c in conns:
            c.sock.close()
        sel.close()
        if proc is not None:
            proc.stop()
        upstream.stop()


if __name__ == "__main__":
    sys.exit(main())
