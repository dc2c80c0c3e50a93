#!/usr/bin/env python3
"""How edgeguard scales across workers: CPU per request with `workers: 1` against `workers: N`.

The workers share no lock and no written cache line on the keep-alive request path (docs/architecture.md,
"Workers"), so a request should cost the same CPU whichever number of workers serve it. This runs the same
load through edgeguard started with each worker count, in shuffled paired rounds, unpinned, and reports
edgeguard's CPU microseconds per request (utime + stime of the process), req/s, syscalls per request and how
the CPU spread over the worker threads. On a machine with few cores the load generator and the origin cannot
get a share of their own while N workers run, so req/s per worker is not a fair figure there; CPU per request
is, as long as the workers are not idle-spinning (epoll_wait per request is reported to check).

Uses bench/compare.py's origin, edgeguard config, wrk and perf helpers.
"""
import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile

import compare as c


def worker_thread_cpu(pid):
    """CPU seconds per thread named like a worker (edgeguard names them "edgeguard-w<i>")."""
    out = {}
    task_dir = f"/proc/{pid}/task"
    for tid in os.listdir(task_dir):
        try:
            with open(f"{task_dir}/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"{task_dir}/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if name.startswith("edgeguard-w"):
            out[name] = (int(fields[11]) + int(fields[12])) / c.CLK_TCK
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--edgeguard", required=True)
    ap.add_argument("--workers", default="1,2", help="worker counts to compare; the first is the reference")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--only", default="get,post10k")
    ap.add_argument("--wrk-threads", type=int, default=2)
    args = ap.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    workloads = args.only.split(",")

    tmp = tempfile.mkdtemp(prefix="eg-scaling-")
    procs = []
    rows = []
    try:
        for k in ("post",):
            c.write_lua(tmp, k)
        oport = c.free_port()
        with open(f"{tmp}/origin.conf", "w") as f:
            # The origin gets one nginx worker per edgeguard worker, so it is not what limits N workers.
            f.write(c.origin_conf(tmp, oport).replace("worker_processes 1;", f"worker_processes {max(counts)};"))
        origin = c.Proc("origin", ["nginx", "-c", f"{tmp}/origin.conf", "-p", tmp], oport)
        procs.append(origin)
        rnd = random.Random()
        for r in range(args.rounds):
            order = counts[:]
            rnd.shuffle(order)
            for n in order:
                port = c.free_port()
                conf = f"{tmp}/eg-{port}.yaml"
                with open(conf, "w") as f:
                    f.write(c.edgeguard_conf(tmp, port, oport, False).replace("workers: 1\n", f"workers: {n}\n", 1))
                proc = c.Proc("edgeguard", [args.edgeguard, "serve", "--config", conf], port)
                procs.append(proc)
                try:
                    for wl_name in workloads:
                        wl = c.WORKLOADS[wl_name]
                        c.run_wrk(port, wl, 1, None, tmp, threads=args.wrk_threads)
                        pids = proc.pids()
                        cpu0 = sum(c.cpu_seconds(pids))
                        threads0 = worker_thread_cpu(proc.p.pid)
                        perf = c.perf_syscalls_start(pids, args.seconds, by_name=True)
                        res = c.run_wrk(port, wl, args.seconds, None, tmp, threads=args.wrk_threads)
                        sysc, by_name = c.perf_syscalls_end(perf)
                        cpu = sum(c.cpu_seconds(proc.pids())) - cpu0
                        threads1 = worker_thread_cpu(proc.p.pid)
                        split = sorted(threads1[t] - threads0.get(t, 0.0) for t in threads1)
                        reqs = max(res["reqs"], 1)
                        row = dict(round=r, workers=n, workload=wl_name, rps=res["rps"],
                                   cpu_us_per_req=cpu * 1e6 / reqs,
                                   syscalls_per_req=sysc / reqs if sysc else None,
                                   epoll_wait_per_req=by_name.get("epoll_wait", 0) / reqs if by_name else None,
                                   worker_cpu_split=[round(x, 2) for x in split], non2xx=res["non2xx"])
                        rows.append(row)
                        print(row, file=sys.stderr, flush=True)
                finally:
                    proc.stop()
                    procs.remove(proc)
        report(rows, counts, workloads)
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def report(rows, counts, workloads):
    ref = counts[0]
    print("| workload | workers | req/s (median) | CPU µs/req (median) | CPU/req ÷ workers: "
          f"{ref}, per round | syscalls/req | epoll_wait/req | worker CPU split (s, last round) |")
    print("|---|---|---|---|---|---|---|---|")
    for wl in workloads:
        for n in counts:
            mine = [x for x in rows if x["workload"] == wl and x["workers"] == n]
            if not mine:
                continue
            ratios = []
            for x in mine:
                base = [y for y in rows if y["workload"] == wl and y["workers"] == ref and y["round"] == x["round"]]
                if base:
                    ratios.append(x["cpu_us_per_req"] / base[0]["cpu_us_per_req"])
            sysc = [x["syscalls_per_req"] for x in mine if x["syscalls_per_req"] is not None]
            ew = [x["epoll_wait_per_req"] for x in mine if x["epoll_wait_per_req"] is not None]
            print(f"| {wl} | {n} | {statistics.median(x['rps'] for x in mine):.0f} | "
                  f"{statistics.median(x['cpu_us_per_req'] for x in mine):.1f} | "
                  f"{statistics.median(ratios):.2f} ({', '.join(f'{q:.2f}' for q in ratios)}) | "
                  f"{statistics.median(sysc):.2f} | " if sysc else "| — | ", end="")
            print(f"{statistics.median(ew):.2f} | {mine[-1]['worker_cpu_split']} |" if ew else "— | — |")


if __name__ == "__main__":
    main()
