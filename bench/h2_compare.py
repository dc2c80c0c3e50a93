#!/usr/bin/env python3
"""HTTP/2 side by side: h2load against edgeguard and nginx (`listen ... ssl http2`), same certificate, same
loopback origin (an nginx answering small 200s over HTTP/1.1, as in compare.py).

Workloads (the issue's): 100 streams in flight over 10 connections (h2load -c 10 -m 10), a small GET and a
10 KB POST. Rounds interleave the two proxies in shuffled order; each proxy runs one worker pinned to CPU 0,
h2load and the origin share CPU 1. Per run: req/s (h2load) and the proxy's CPU microseconds per request
(utime+stime of its process tree from /proc). Read the paired ratio edgeguard/nginx within a round; absolute
numbers drift on a shared machine.

    bench/h2_compare.py --edgeguard build/edgeguard [--baseline OTHER/edgeguard] [--requests 20000] [--rounds 5]

With --baseline a second edgeguard binary (a build of main) runs in the same shuffled rounds, with its own
configuration directory, and edgeguard/baseline is reported beside edgeguard/nginx.

Everything started here is stopped here; the temporary directory is removed.
"""
import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import Proc, cpu_seconds, free_port, origin_conf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

WORKLOADS = {
    "get": dict(path="/", post=False),
    "post10k": dict(path="/capture/", post=True),
}


def make_certs(tmp):
    subprocess.run(["bash", os.path.join(REPO, "tests", "tls", "make_certs.sh"), tmp], check=True,
                   capture_output=True, timeout=60)
    return os.path.join(tmp, "a.pem"), os.path.join(tmp, "a.key")


def nginx_h2_conf(tmp, port, origin, cert, key):
    return f"""daemon off; worker_processes 1; pid {tmp}/nginx-h2.pid; error_log {tmp}/nginx-h2.err warn;
worker_rlimit_nofile 65536;
events {{ worker_connections 30000; }}
http {{ access_log off; keepalive_requests 1000000; client_body_buffer_size 1m; client_max_body_size 50m;
  http2_max_concurrent_streams 100;
  upstream origin {{ server 127.0.0.1:{origin}; keepalive 128; }}
  server {{ listen 127.0.0.1:{port} ssl http2 backlog=4096;
    ssl_certificate {cert}; ssl_certificate_key {key}; ssl_protocols TLSv1.2 TLSv1.3;
    location / {{ proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host $host; proxy_set_header X-Forwarded-For $remote_addr;
      proxy_request_buffering on; proxy_buffering on; }} }} }}
"""


def edgeguard_h2_conf(port, origin, cert, key):
    return f"""workers: 1
listeners:
  - name: https
    address: 127.0.0.1:{port}
    tls:
      certificates: [{{cert: {cert}, key: {key}}}]
admin:
  address: 127.0.0.1:{free_port()}
access_log:
  output: "off"
upstreams:
  origin:
    servers: ["127.0.0.1:{origin}"]
    # 100 streams in flight need 100 upstream connections; nginx keeps 128 (`keepalive 128`).
    max_idle_per_worker: 128
routes:
  - name: all
    paths: [/]
    upstream: origin
"""


def run_h2load(port, wl, requests, body_file):
    argv = ["taskset", "-c", "1", "h2load", "-n", str(requests), "-c", "10", "-m", "10", "-t", "1"]
    if wl["post"]:
        argv += ["-d", body_file, "-H", "content-type: application/json"]
    argv.append(f"https://127.0.0.1:{port}{wl['path']}")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600).stdout
    rps = float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out).group(1))
    ok = int(re.search(r"(\d+) succeeded", out).group(1))
    status = re.search(r"status codes: (\d+) 2xx", out)
    if status is None or int(status.group(1)) != requests:
        raise RuntimeError(f"not every request succeeded:\n{out}")
    return rps, ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edgeguard", default=os.path.join(REPO, "build", "edgeguard"))
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--baseline", help="another edgeguard binary measured in the same rounds")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", help="write the raw runs here")
    args = ap.parse_args()
    for tool in ("h2load", "nginx", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (scripts/setup.sh installs nghttp2-client and nginx)")
    tmp = tempfile.mkdtemp(prefix="h2-compare-")
    procs = []
    try:
        cert, key = make_certs(os.path.join(tmp, "pki"))
        body_file = os.path.join(tmp, "post.json")
        with open(body_file, "w") as f:
            f.write('{"event":"bench","distinct_id":"x","properties":{"pad":"' + "a" * 10180 + '"}}')
        oport = free_port()
        with open(f"{tmp}/origin.conf", "w") as f:
            f.write(origin_conf(tmp, oport))
        procs.append(Proc("origin", ["nginx", "-c", f"{tmp}/origin.conf", "-p", tmp], oport, cpus="1"))
        nport, eport = free_port(), free_port()
        with open(f"{tmp}/nginx-h2.conf", "w") as f:
            f.write(nginx_h2_conf(tmp, nport, oport, cert, key))
        with open(f"{tmp}/edgeguard.yaml", "w") as f:
            f.write(edgeguard_h2_conf(eport, oport, cert, key))
        proxies = {
            "nginx": Proc("nginx", ["nginx", "-c", f"{tmp}/nginx-h2.conf", "-p", tmp], nport, cpus="0"),
            "edgeguard": Proc("edgeguard", [args.edgeguard, "serve", "--config", f"{tmp}/edgeguard.yaml"], eport,
                              cpus="0"),
        }
        if args.baseline:
            bport = free_port()
            with open(f"{tmp}/baseline.yaml", "w") as f:
                f.write(edgeguard_h2_conf(bport, oport, cert, key))
            proxies["baseline"] = Proc("baseline", [args.baseline, "serve", "--config", f"{tmp}/baseline.yaml"],
                                       bport, cpus="0")
        procs += proxies.values()
        runs = []
        for wl_name, wl in WORKLOADS.items():
            for name, p in proxies.items():  # warm-up: TLS sessions, pools, page cache
                run_h2load(p.port, wl, min(2000, args.requests), body_file)
            for rnd in range(args.rounds):
                order = list(proxies)
                random.shuffle(order)
                for name in order:
                    p = proxies[name]
                    cpu0 = sum(cpu_seconds(p.pids()))
                    rps, ok = run_h2load(p.port, wl, args.requests, body_file)
                    cpu = sum(cpu_seconds(p.pids())) - cpu0
                    runs.append(dict(workload=wl_name, proxy=name, round=rnd, rps=rps,
                                     cpu_us_per_req=cpu * 1e6 / ok))
                    time.sleep(0.2)
        report(runs)
        if args.json:
            import json
            with open(args.json, "w") as f:
                json.dump(runs, f, indent=1)
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def report(runs):
    proxies = [p for p in ("edgeguard", "baseline", "nginx") if any(r["proxy"] == p for r in runs)]
    print(f"{'workload':10} {'proxy':10} {'req/s (median)':>15} {'CPU us/req (median)':>20}")
    for wl in WORKLOADS:
        for proxy in proxies:
            rs = [r for r in runs if r["workload"] == wl and r["proxy"] == proxy]
            print(f"{wl:10} {proxy:10} {statistics.median(r['rps'] for r in rs):15.0f} "
                  f"{statistics.median(r['cpu_us_per_req'] for r in rs):20.1f}")
        pairs = [("edgeguard", "nginx")] + [(p, q) for p, q in (("baseline", "nginx"), ("edgeguard", "baseline"))
                                            if p in proxies and q in proxies]
        for a, b in pairs:
            ratios_cpu, ratios_rps = [], []
            for rnd in sorted({r["round"] for r in runs if r["workload"] == wl}):
                x = next(r for r in runs if r["workload"] == wl and r["round"] == rnd and r["proxy"] == a)
                y = next(r for r in runs if r["workload"] == wl and r["round"] == rnd and r["proxy"] == b)
                ratios_cpu.append(x["cpu_us_per_req"] / y["cpu_us_per_req"])
                ratios_rps.append(x["rps"] / y["rps"])
            print(f"{wl:10} {a}/{b} paired: CPU per request {statistics.median(ratios_cpu):.2f}x "
                  f"(rounds {', '.join(f'{v:.2f}' for v in ratios_cpu)}), req/s {statistics.median(ratios_rps):.2f}x")


if __name__ == "__main__":
    main()
