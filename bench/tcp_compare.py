#!/usr/bin/env python3
"""TCP relay throughput: edgeguard's TCP listener against HAProxy `mode tcp`, in the same run.

Both relay 127.0.0.1 loopback traffic from `tcp_blast send` (1 and 64 connections, 64 KiB writes) to a
`tcp_blast sink`. Each proxy runs with one thread (edgeguard `workers: 1`, HAProxy `nbthread 1`), pinned to
CPU 0 while the load tool and sink share CPU 1 when the machine has two or more. Rounds are shuffled; each run
records GB/s (bytes the sender wrote / seconds) and the proxy's CPU seconds per GB (utime+stime from /proc).
Absolute numbers drift on shared VMs; read the ratios edgeguard/haproxy within a round.

Everything started here is stopped here.
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pinned(cmd, cpu, ncpu):
    return (["taskset", "-c", str(cpu)] + cmd) if ncpu >= 2 and shutil.which("taskset") else cmd


def start_edgeguard(binary, tmp, port, sink_port, ncpu):
    config = {
        "workers": 1,
        "listeners": [{"name": "http", "address": f"127.0.0.1:{free_port()}"}],
        "admin": {"address": f"127.0.0.1:{free_port()}"},
        "upstreams": {"sink": {"servers": [f"127.0.0.1:{sink_port}"]}},
        "routes": [],
        "access_log": {"output": "off"},
        "tcp": [{"name": "bench", "address": f"127.0.0.1:{port}", "upstream": "sink"}],
    }
    path = os.path.join(tmp, "edgeguard.yaml")
    with open(path, "w") as f:
        json.dump(config, f)  # JSON is YAML
    return subprocess.Popen(pinned([binary, "serve", "--config", path], 0, ncpu), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def start_haproxy(tmp, port, sink_port, ncpu):
    path = os.path.join(tmp, "haproxy.cfg")
    with open(path, "w") as f:
        f.write(f"""global
  nbthread 1
  maxconn 4000
defaults
  mode tcp
  timeout connect 3s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:{port}
  default_backend be
backend be
  server s 127.0.0.1:{sink_port}
""")
    return subprocess.Popen(pinned(["haproxy", "-f", path], 0, ncpu), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edgeguard", default=os.path.join(REPO, "build", "edgeguard"))
    ap.add_argument("--blast", default=os.path.join(REPO, "build", "bench", "tcp_blast"))
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", default="1,64")
    ap.add_argument("--write-bytes", type=int, default=64 * 1024)
    args = ap.parse_args()
    if not shutil.which("haproxy"):
        sys.exit("haproxy not found (apt-get install haproxy)")
    ncpu = os.cpu_count() or 1
    tmp = tempfile.mkdtemp(prefix="tcp-compare-")
    sink_port = free_port()
    sink = subprocess.Popen(pinned([args.blast, "sink", str(sink_port)], 1, ncpu), start_new_session=True)
    results = {}  # (proxy, connections) -> list of (GB/s, CPU s per GB)
    try:
        assert wait_port(sink_port), "sink did not start"
        for rnd in range(args.rounds):
            runs = [(p, int(c)) for p in ("edgeguard", "haproxy") for c in args.connections.split(",")]
            random.shuffle(runs)
            for proxy, conns in runs:
                port = free_port()
                proc = (start_edgeguard(args.edgeguard, tmp, port, sink_port, ncpu) if proxy == "edgeguard"
                        else start_haproxy(tmp, port, sink_port, ncpu))
                try:
                    assert wait_port(port), f"{proxy} did not start"
                    time.sleep(0.3)
                    # taskset execs the proxy, so the process started is the proxy itself.
                    cpu_before = cpu_seconds(proc.pid)
                    out = subprocess.run(pinned([args.blast, "send", str(port), str(conns), str(args.seconds),
                                                 str(args.write_bytes)], 1, ncpu),
                                         capture_output=True, text=True, timeout=args.seconds + 60)
                    cpu = cpu_seconds(proc.pid) - cpu_before
                    run = json.loads(out.stdout)
                    gb = run["bytes"] / 1e9
                    row = (gb / run["seconds"], cpu / gb if gb else float("inf"))
                    results.setdefault((proxy, conns), []).append(row)
                    print(f"round {rnd + 1} {proxy:9} {conns:3} conns: {row[0]:.3f} GB/s, {row[1]:.3f} CPU s/GB"
                          f"{'' if run['failures'] == 0 else ' (failures: %d)' % run['failures']}", flush=True)
                finally:
                    stop(proc)
        print("\nmedians (edgeguard / haproxy):")
        for conns in [int(c) for c in args.connections.split(",")]:
            eg = results[("edgeguard", conns)]
            ha = results[("haproxy", conns)]
            eg_gbs, ha_gbs = statistics.median(r[0] for r in eg), statistics.median(r[0] for r in ha)
            eg_cpu, ha_cpu = statistics.median(r[1] for r in eg), statistics.median(r[1] for r in ha)
            print(f"{conns:3} conns: edgeguard {eg_gbs:.3f} GB/s {eg_cpu:.3f} CPU s/GB | haproxy {ha_gbs:.3f} GB/s "
                  f"{ha_cpu:.3f} CPU s/GB | throughput {eg_gbs / ha_gbs:.2f}x, CPU per GB {eg_cpu / ha_cpu:.2f}x")
    finally:
        stop(sink)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
