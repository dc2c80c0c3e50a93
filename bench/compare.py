#!/usr/bin/env python3
"""Side-by-side reverse-proxy comparison on one machine: edgeguard, nginx, HAProxy, Caddy, and the floor.

Every proxy forwards to the same loopback origin (an nginx instance answering small 200s). Workloads run
through each proxy interleaved in shuffled rounds, pinned (proxy on CPU 0; wrk and origin on CPU 1) and
unpinned. For each run we record req/s and p50/p99 latency (wrk), the proxy's CPU microseconds per request
(utime+stime of its whole process tree from /proc, and each of the two), and syscalls per request (perf tracepoint
raw_syscalls:sys_enter, when the kernel allows it); with --threads, each thread's context switches and CPU per
request (/proc/PID/task), which tells the event loop's wakeups from background threads' and from the scheduler's
preemptions. Absolute numbers drift a lot on shared VMs; the paired ratios edgeguard/peer within one round are what to read. Peer `haproxy-tcp` (HAProxy in `mode tcp`, one
upstream connection per client connection, no HTTP parsing) is the floor for moving these bytes through the
kernel: opt in with --proxies.

Everything started here is stopped here (process groups, temp dir removed).
"""
import argparse
import gzip
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

CLK_TCK = os.sysconf("SC_CLK_TCK")
HERE = os.path.dirname(os.path.abspath(__file__))
# How many distinct bodies the batch_fresh workloads send in turn.
FRESH_BATCHES = 256
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


def tree_pids(root):
    """root and all its descendants, from /proc."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids):
    """(user, system) CPU seconds of all threads of `pids`."""
    user = system = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        user += int(fields[11])    # utime
        system += int(fields[12])  # stime
    return user / CLK_TCK, system / CLK_TCK


def thread_switches(pids):
    """{thread name: [voluntary, involuntary context switches, CPU seconds]} summed over every thread of
    `pids` (/proc/PID/task/*): which threads wake, and how often the scheduler takes the CPU from them."""
    out = {}
    for p in pids:
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tids:
            try:
                with open(f"/proc/{p}/task/{t}/status") as f:
                    status = f.read()
                with open(f"/proc/{p}/task/{t}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            name = fields.get("Name", "?").strip()
            stat = st[st.rindex(")") + 2:].split()
            row = out.setdefault(name, [0, 0, 0.0])
            row[0] += int(fields.get("voluntary_ctxt_switches", "0"))
            row[1] += int(fields.get("nonvoluntary_ctxt_switches", "0"))
            row[2] += (int(stat[11]) + int(stat[12])) / CLK_TCK
    return out


def rss_kib(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def batch_event(rnd, personal=False):
    """One posthog-android event with fresh random ids, timestamp, build, price and order reference.
    `personal` adds an email in `$set` and a phone number in a free-text property, both drawn at random."""
    screens = ["Home", "Cart", "Checkout", "Settings", "Product", "Search"]
    sid = str(uuid.UUID(int=rnd.getrandbits(128)))
    event = {
        "event": rnd.choice(["$screen", "add_to_cart", "button_tapped", "$pageview"]),
        "distinct_id": str(uuid.UUID(int=rnd.getrandbits(128))),
        "timestamp": "2026-11-27T10:%02d:%02d.%03dZ" % (rnd.randrange(60), rnd.randrange(60), rnd.randrange(1000)),
        "uuid": str(uuid.UUID(int=rnd.getrandbits(128))),
        "properties": {
            "$screen_name": rnd.choice(screens), "$session_id": sid, "$device_id": sid,
            "$os": "Android", "$os_version": "14", "$app_version": "3.%d.%d" % (rnd.randrange(9), rnd.randrange(20)),
            "$app_build": str(rnd.randrange(1000, 9999)), "$lib": "posthog-android", "$lib_version": "3.8.1",
            "$device_manufacturer": "Google", "$device_model": "Pixel 8", "$locale": "en-US",
            "$screen_width": 1080, "$screen_height": 2400, "$network_wifi": True,
            "plan": rnd.choice(["free", "pro", "team"]), "price": rnd.randrange(100, 9999) / 100,
            "items": rnd.randrange(1, 9), "variant": rnd.choice(["control", "test"]),
            "order_ref": "ORD-%06d" % rnd.randrange(1000000),
        },
    }
    if personal:
        name = rnd.choice(["olga.smirnova", "ivan.petrov", "anna.k", "j.doe"]) + str(rnd.randrange(100))
        event["properties"]["$set"] = {"email": f"{name}@example.ru", "plan": "pro"}
        event["properties"]["note"] = "call +7 916 %03d-%02d-%02d" % (
            rnd.randrange(1000), rnd.randrange(100), rnd.randrange(100))
    return event


def batch_body(events):
    return gzip.compress(json.dumps({"api_key": "phc_benchmarkkey", "batch": events}).encode(), 6)


def make_batch_gzip(target=10 * 1024):
    """A realistic mobile batch: screen views and taps from one app, gzip'd to about `target` bytes."""
    rnd = random.Random(7)
    events = []
    while True:
        events.append(batch_event(rnd))
        body = batch_body(events)
        if len(body) >= target:
            return body


def make_fresh_batches(count, events, personal_every=0):
    """`count` batches of `events` events each, every value drawn anew (no two batches alike, so the
    filter's per-thread memos cannot answer for what an earlier request held). `personal_every` N > 0: every
    Nth event (from the 25th of each batch, 2% for N = 50) carries an email and a phone number."""
    bodies = []
    for k in range(count):
        rnd = random.Random(1000 + k + (500000 if personal_every else 0))
        bodies.append(batch_body([batch_event(rnd, personal_every > 0 and i % personal_every == 25)
                                  for i in range(events)]))
    return bodies


def raise_nofile():
    """Idle-connection runs need tens of thousands of descriptors; take what the hard limit allows."""
    import resource
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))  # root may raise the hard limit
    except (ValueError, OSError):
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Proc:
    def __init__(self, name, argv, port, env=None, cpus=None, prefix=None):
        """`prefix`: a command that runs the proxy (valgrind); it then gets longer to start and to stop."""
        self.name, self.port = name, port
        self.grace = 60 if prefix else 5
        argv = (prefix or []) + argv
        if cpus is not None:
            argv = ["taskset", "-c", cpus] + argv
        self.p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  env=env, start_new_session=True,
                                  preexec_fn=raise_nofile)
        if not wait_port(port, 120 if prefix else 10):
            err = self.p.stderr.read(4000).decode(errors="replace") if self.p.poll() is not None else ""
            self.stop()
            raise RuntimeError(f"{name} did not listen on {port}: {err}")

    def pids(self):
        return tree_pids(self.p.pid)

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
                self.p.wait(self.grace)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait(5)


def origin_conf(tmp, port):
    return f"""daemon off; worker_processes 1; pid {tmp}/origin.pid; error_log {tmp}/origin.err warn;
events {{ worker_connections 20000; }}
http {{ access_log off; keepalive_requests 1000000; client_body_buffer_size 1m; client_max_body_size 50m;
  server {{ listen 127.0.0.1:{port} backlog=4096 reuseport;
    location / {{ default_type application/json; return 200 '{{"status":1}}'; }} }} }}
"""


def nginx_conf(tmp, port, origin):
    return f"""daemon off; worker_processes 1; pid {tmp}/nginx.pid; error_log {tmp}/nginx.err warn;
worker_rlimit_nofile 65536;
events {{ worker_connections 30000; }}
http {{ access_log off; keepalive_requests 1000000; client_body_buffer_size 1m; client_max_body_size 50m;
  upstream origin {{ server 127.0.0.1:{origin}; keepalive 128; }}
  server {{ listen 127.0.0.1:{port} backlog=4096;
    location / {{ proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host $host; proxy_set_header X-Forwarded-For $remote_addr;
      proxy_request_buffering on; proxy_buffering on; }} }} }}
"""


# Under valgrind a process keeps a few descriptors for itself: HAProxy then gets a smaller connection limit.
def haproxy_limits(small):
    return "  maxconn 1900\n  ulimit-n 4000" if small else "  maxconn 9990\n  ulimit-n 20000"


def haproxy_conf(tmp, port, origin, small=False):
    return f"""global
  nbthread 1
{haproxy_limits(small)}
defaults
  mode http
  timeout connect 3s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  option forwardfor
  http-reuse always
frontend fe
  bind 127.0.0.1:{port}
  default_backend be
backend be
  server o 127.0.0.1:{origin} maxconn 1000
"""


def haproxy_tcp_conf(tmp, port, origin, small=False):
    return f"""global
  nbthread 1
{haproxy_limits(small)}
defaults
  mode tcp
  timeout connect 3s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:{port}
  default_backend be
backend be
  server o 127.0.0.1:{origin} maxconn 1000
"""


def caddy_conf(tmp, port, origin):
    return f"""{{
  admin off
  auto_https off
}}
http://127.0.0.1:{port} {{
  reverse_proxy 127.0.0.1:{origin}
}}
"""


def learning_rules(tmp):
    """conf/privacy.yaml with `learn: true` on the events profile (at its default rate)."""
    with open(os.path.join(REPO, "conf", "privacy.yaml")) as f:
        text = f.read()
    marker = "  events:\n    mode: enforce\n"
    assert marker in text
    path = os.path.join(tmp, "privacy-learning.yaml")
    with open(path, "w") as f:
        f.write(text.replace(marker, marker + "    learn: true\n", 1))
    return path


def edgeguard_conf(tmp, port, origin, filter_on):
    """filter_on: True (the shipped rules), False (no privacy profile), or "learn" (the rules learning)."""
    privacy = learning_rules(tmp) if filter_on == "learn" else os.path.join(REPO, "conf", "privacy.yaml")
    batch_route = (f"""  - name: batch
    paths: [/batch]
    upstream: origin
    max_body: 20MB
    client_ip: truncate
{"    privacy: events" if filter_on else "    privacy: none  # the same route uninspected, for the filter's cost"}
""")
    return f"""workers: 1
listeners:
  - name: http
    address: 127.0.0.1:{port}
admin:
  address: 127.0.0.1:{free_port()}
access_log:
  output: "off"
upstreams:
  origin:
    servers: ["127.0.0.1:{origin}"]
routes:
{batch_route}  - name: all
    paths: [/]
    upstream: origin
privacy:
  rules: {privacy}
"""


WORKLOADS = {
    # name: (connections, lua body or None, path)
    "get": dict(conns=64, path="/", lua=None),
    "post10k": dict(conns=64, path="/capture/", lua="post"),
    "batch_gzip": dict(conns=64, path="/batch/", lua="batch"),
    # FRESH_BATCHES bodies of the same size with every value drawn anew, sent in turn; `_personal`: 2% of the
    # events carry an email and a phone number, which the filter rewrites.
    "batch_fresh": dict(conns=64, path="/batch/", lua="batch_fresh"),
    "batch_fresh_personal": dict(conns=64, path="/batch/", lua="batch_fresh_personal"),
    "newconn": dict(conns=16, path="/", lua="close"),
}


def write_lua(tmp, kind):
    path = os.path.join(tmp, f"{kind}.lua")
    if kind == "post":
        body = json.dumps({"event": "bench", "distinct_id": "x", "properties": {"pad": "a" * 10100}})
        lua = ('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
               f"wrk.body = [[{body}]]\n")
    elif kind == "batch":
        bpath = os.path.join(tmp, "batch.gz")
        lua = ('wrk.method = "POST"\nwrk.headers["Content-Type"] = "text/plain"\n'
               f'local f = io.open("{bpath}", "rb")\nwrk.body = f:read("*all")\nf:close()\n')
    elif kind.startswith("batch_fresh"):
        # One request per body, prepared once; request() hands them out in turn.
        lua = ('wrk.method = "POST"\nwrk.headers["Content-Type"] = "text/plain"\n'
               "local reqs = {}\nlocal at = 0\n"
               "function init(args)\n"
               f"  for n = 0, {FRESH_BATCHES - 1} do\n"
               f'    local f = io.open(string.format("{tmp}/{kind}-%d.gz", n), "rb")\n'
               "    reqs[#reqs + 1] = wrk.format(nil, nil, nil, f:read(\"*all\"))\n"
               "    f:close()\n"
               "  end\n"
               "end\n"
               "function request()\n  at = at % #reqs + 1\n  return reqs[at]\nend\n")
    else:
        lua = 'wrk.headers["Connection"] = "close"\n'
    with open(path, "w") as f:
        f.write(lua)
    return path


def run_wrk(port, wl, seconds, cpus, tmp, threads=1):
    argv = []
    if cpus is not None:
        argv += ["taskset", "-c", cpus]
    argv += ["wrk", f"-t{threads}", f"-c{wl['conns']}", f"-d{seconds}s", "--latency"]
    if wl["lua"]:
        argv += ["-s", os.path.join(tmp, f"{wl['lua']}.lua")]
    argv.append(f"http://127.0.0.1:{port}{wl['path']}")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30).stdout
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: (.*)", out)

    def lat(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        v, u = float(m.group(1)), m.group(2)
        return v / 1000 if u == "us" else v if u == "ms" else v * 1000

    return dict(reqs=reqs, rps=rps, p50=lat(50), p99=lat(99),
                non2xx=int(non2xx.group(1)) if non2xx else 0, socket_errors=errs.group(1) if errs else "")


# Syscalls a proxy makes per request, counted by name with --by-name (the rest are summed as "other").
SYSCALL_NAMES = ("read", "readv", "recvfrom", "recvmsg", "write", "writev", "sendto", "sendmsg", "ioctl",
                 "epoll_wait", "epoll_ctl", "accept4", "close", "shutdown", "setsockopt", "getsockopt",
                 "socket", "connect", "futex", "madvise", "brk", "mmap", "munmap")


def perf_syscalls_start(pids, seconds, by_name=False):
    if not shutil.which("perf"):
        return None
    events = "raw_syscalls:sys_enter"
    if by_name:
        events += "".join(f",syscalls:sys_enter_{n}" for n in SYSCALL_NAMES)
    return subprocess.Popen(["perf", "stat", "-x,", "-e", events, "-p",
                             ",".join(map(str, pids)), "--", "sleep", str(seconds)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def perf_syscalls_end(p):
    """Returns (total syscalls, {name: count}) — the dict is empty without --by-name."""
    if p is None:
        return None, {}
    try:
        _, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        return None, {}
    total, by_name = None, {}
    for line in err.splitlines():
        parts = line.split(",")
        if len(parts) > 2 and parts[0].strip().isdigit():
            if parts[2] == "raw_syscalls:sys_enter":
                total = int(parts[0])
            elif parts[2].startswith("syscalls:sys_enter_"):
                by_name[parts[2][len("syscalls:sys_enter_"):]] = int(parts[0])
    if total is not None and by_name:
        by_name["other"] = max(total - sum(by_name.values()), 0)
    return total, by_name


def idle_connections(port, n):
    """Opens n keep-alive client connections, one answered GET each, and returns (sockets, all_ok)."""
    raise_nofile()
    socks = []
    req = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(req)
            socks.append(s)
        for s in socks:
            s.recv(4096)
        time.sleep(0.5)
        return socks, True
    except OSError:
        return socks, False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--edgeguard", required=True)
    ap.add_argument("--baseline", default="",
                    help="another edgeguard binary (e.g. the previous commit's) run as peer 'edgeguard-base' in "
                         "the same shuffled rounds, for paired before/after ratios")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--only", default="")
    ap.add_argument("--proxies", default="edgeguard,nginx,haproxy,caddy")
    ap.add_argument("--idle-conns", type=int, default=10000)
    ap.add_argument("--json", default="")
    ap.add_argument("--threads", action="store_true",
                    help="also report each proxy thread's context switches and CPU per request (/proc/PID/task)")
    ap.add_argument("--callgrind", action="store_true",
                    help="instead of timed rounds: user-space instructions per request of each proxy under "
                         "valgrind's callgrind (single-process proxies: edgeguard, haproxy, haproxy-tcp)")
    ap.add_argument("--callgrind-keep", default="",
                    help="with --callgrind: copy each run's callgrind output into this directory "
                         "(callgrind-<proxy>-<workload>-<round>.out), for callgrind_annotate")
    ap.add_argument("--by-name", action="store_true",
                    help="also count each proxy's syscalls per request by name (one perf tracepoint per name)")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="eg-compare-")
    procs = []
    results = []
    try:
        batch = make_batch_gzip()
        with open(os.path.join(tmp, "batch.gz"), "wb") as f:
            f.write(batch)
        events = len(json.loads(gzip.decompress(batch))["batch"])
        for kind, every in (("batch_fresh", 0), ("batch_fresh_personal", 50)):
            if args.only and kind not in args.only.split(","):
                continue
            for n, body in enumerate(make_fresh_batches(FRESH_BATCHES, events, every)):
                with open(os.path.join(tmp, f"{kind}-{n}.gz"), "wb") as f:
                    f.write(body)
        for k in ("post", "batch", "batch_fresh", "batch_fresh_personal", "close"):
            write_lua(tmp, k)
        oport = free_port()
        with open(f"{tmp}/origin.conf", "w") as f:
            f.write(origin_conf(tmp, oport))
        origin = Proc("origin", ["nginx", "-c", f"{tmp}/origin.conf", "-p", tmp], oport, cpus="1")
        procs.append(origin)

        def start(name, cpus, filter_on=True, prefix=None):
            port = free_port()
            if name in ("edgeguard", "edgeguard-base"):
                conf = f"{tmp}/eg-{port}.yaml"
                with open(conf, "w") as f:
                    f.write(edgeguard_conf(tmp, port, oport, filter_on))
                binary = args.baseline if name == "edgeguard-base" else args.edgeguard
                return Proc(name, [binary, "serve", "--config", conf], port, cpus=cpus, prefix=prefix)
            if name == "nginx":
                with open(f"{tmp}/nginx-{port}.conf", "w") as f:
                    f.write(nginx_conf(tmp, port, oport))
                return Proc(name, ["nginx", "-c", f"{tmp}/nginx-{port}.conf", "-p", tmp], port, cpus=cpus, prefix=prefix)
            if name == "haproxy":
                with open(f"{tmp}/haproxy-{port}.cfg", "w") as f:
                    f.write(haproxy_conf(tmp, port, oport, prefix is not None))
                return Proc(name, ["haproxy", "-db", "-f", f"{tmp}/haproxy-{port}.cfg"], port, cpus=cpus, prefix=prefix)
            if name == "haproxy-tcp":
                with open(f"{tmp}/haproxy-tcp-{port}.cfg", "w") as f:
                    f.write(haproxy_tcp_conf(tmp, port, oport, prefix is not None))
                return Proc(name, ["haproxy", "-db", "-f", f"{tmp}/haproxy-tcp-{port}.cfg"], port, cpus=cpus, prefix=prefix)
            if name == "caddy":
                with open(f"{tmp}/Caddyfile-{port}", "w") as f:
                    f.write(caddy_conf(tmp, port, oport))
                env = dict(os.environ, GOMAXPROCS="1", HOME=tmp, XDG_DATA_HOME=tmp, XDG_CONFIG_HOME=tmp)
                return Proc(name, ["caddy", "run", "--adapter", "caddyfile", "--config", f"{tmp}/Caddyfile-{port}"],
                            port, env=env, cpus=cpus, prefix=prefix)
            raise ValueError(name)

        program = {"edgeguard": args.edgeguard, "haproxy-tcp": "haproxy"}
        proxies = [p for p in args.proxies.split(",") if p and shutil.which(program.get(p, p))]
        workloads = [w for w in WORKLOADS if not args.only or w in args.only.split(",")]
        variants = [(p, True) for p in proxies]
        if args.baseline:
            variants.append(("edgeguard-base", True))
        if "edgeguard" in proxies and any(w.startswith("batch") for w in workloads):
            variants.append(("edgeguard-filter-off", False))
            variants.append(("edgeguard-learning", "learn"))
        if args.callgrind:
            callgrind_rounds(args, variants, workloads, start, procs, tmp)
            return
        rnd = random.Random()
        for rnd_i in range(args.rounds):
            for pinned in (True, False):
                order = variants[:]
                rnd.shuffle(order)
                for name, filter_on in order:
                    real = "edgeguard-base" if name == "edgeguard-base" else \
                        "edgeguard" if name.startswith("edgeguard") else name
                    proc = start(real, "0" if pinned else None, filter_on)
                    procs.append(proc)
                    try:
                        for wl_name in workloads:
                            if name in ("edgeguard-filter-off", "edgeguard-learning") and not wl_name.startswith("batch"):
                                continue
                            wl = WORKLOADS[wl_name]
                            run_wrk(proc.port, wl, 1, "1" if pinned else None, tmp)  # warm pools
                            pids = proc.pids()
                            cpu0 = cpu_seconds(pids)
                            sw0 = thread_switches(pids)
                            perf = perf_syscalls_start(pids, args.seconds, args.by_name)
                            r = run_wrk(proc.port, wl, args.seconds, "1" if pinned else None, tmp)
                            sysc, sysc_by_name = perf_syscalls_end(perf)
                            cpu1 = cpu_seconds(proc.pids())
                            sw1 = thread_switches(proc.pids())
                            user, system = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
                            per_req = 1e6 / max(r["reqs"], 1)
                            r.update(proxy=name, workload=wl_name, pinned=pinned, round=rnd_i,
                                     cpu_us_per_req=(user + system) * per_req,
                                     user_us_per_req=user * per_req, sys_us_per_req=system * per_req,
                                     syscalls_per_req=(sysc / r["reqs"]) if sysc and r["reqs"] else None,
                                     syscalls_by_name={k: v / r["reqs"] for k, v in sysc_by_name.items()}
                                     if r["reqs"] else {},
                                     threads={n: [(v[0] - sw0.get(n, v)[0]) * per_req / 1e6,
                                                  (v[1] - sw0.get(n, v)[1]) * per_req / 1e6,
                                                  (v[2] - sw0.get(n, v)[2]) * per_req]
                                              for n, v in sw1.items()})
                            results.append(r)
                            print(json.dumps(r), file=sys.stderr, flush=True)
                    finally:
                        proc.stop()
                        procs.remove(proc)
        # Peak RSS with idle keep-alive connections, one proxy at a time.
        rss = {}
        if args.idle_conns:
            for name in proxies:
                proc = start(name, None)
                procs.append(proc)
                socks = []
                try:
                    socks, ok = idle_connections(proc.port, args.idle_conns)
                    rss[name] = (rss_kib(proc.pids()), ok)
                finally:
                    for s in socks:
                        s.close()
                    proc.stop()
                    procs.remove(proc)
        report(results, rss, args)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(dict(results=results, rss=rss), f, indent=1)
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def callgrind_rounds(args, variants, workloads, start, procs, tmp):
    """User-space instructions per request, which the machine's load does not move: each proxy runs under
    callgrind with instrumentation off until a 1 s warm-up has filled its pools, then counts every
    instruction while wrk sends `--seconds` of requests on 16 connections. glibc copies of 8 KB and more
    use `rep movsb`, which callgrind counts once per byte: read POST figures with that in mind. For the /batch
    workloads a second table splits each filtered edgeguard's instructions per request: inflate, simdjson's
    stage 1, the detectors, the rest of the filter, and everything outside it."""
    print(f"# bench/compare.py --callgrind: rounds={args.rounds} seconds={args.seconds}")
    print("| workload | proxy | requests | instructions | instructions/request |")
    print("|---|---|---|---|---|")
    splits = []
    for rnd_i in range(args.rounds):
        for wl_name in workloads:
            wl = dict(WORKLOADS[wl_name], conns=16)
            for name, filter_on in variants:
                out = os.path.join(tmp, f"callgrind-{name}-{wl_name}.out")
                prefix = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
                real = "edgeguard-base" if name == "edgeguard-base" else \
                    "edgeguard" if name.startswith("edgeguard") else name
                proc = start(real, None, filter_on, prefix)
                procs.append(proc)
                try:
                    run_wrk(proc.port, wl, 1, None, tmp)
                    subprocess.run(["callgrind_control", "-i", "on", str(proc.p.pid)], capture_output=True, check=True)
                    r = run_wrk(proc.port, wl, args.seconds, None, tmp)
                    subprocess.run(["callgrind_control", "-i", "off", str(proc.p.pid)], capture_output=True, check=True)
                finally:
                    proc.stop()
                    procs.remove(proc)
                total = 0
                with open(out) as f:
                    for line in f:
                        m = re.match(r"(?:summary|totals): (\d+)", line)
                        if m:
                            total = int(m.group(1))
                print(f"| {wl_name} | {name} | {r['reqs']} | {total} | {total / max(r['reqs'], 1):.0f} |", flush=True)
                if args.callgrind_keep:
                    os.makedirs(args.callgrind_keep, exist_ok=True)
                    shutil.copy(out, os.path.join(args.callgrind_keep, f"callgrind-{name}-{wl_name}-{rnd_i}.out"))
                if wl_name.startswith("batch") and name.startswith("edgeguard") and filter_on is True:
                    splits.append((wl_name, name, r["reqs"], total, batch_split(out)))
    if splits:
        # Where a filtered /batch request's user-space instructions go, per request. wrk's count is off by up to
        # the 16 requests in flight when counting starts and stops; the filter's own call count is not (a call
        # is counted whole or not at all, but for one running at the toggle), so the split divides by it.
        print("\n| workload | proxy | filter calls | inflate | JSON stage 1 | detectors | rest of the filter (walk, "
              "rules, splice) | outside the filter (HTTP, forwarding) | total |")
        print("|---|---|---|---|---|---|---|---|---|")
        for wl_name, name, reqs, total, part in splits:
            n = max(part["calls"] or reqs, 1)
            rest = part["filter"] - part["inflate"] - part["stage1"] - part["detectors"]
            print(f"| {wl_name} | {name} | {part['calls']} | {part['inflate'] / n:.0f} | {part['stage1'] / n:.0f} | "
                  f"{part['detectors'] / n:.0f} | {rest / n:.0f} | {(total - part['filter']) / n:.0f} | "
                  f"{total / n:.0f} |")


# Inclusive instructions of the functions that split a filtered request (callgrind_annotate --inclusive).
BATCH_SPLIT = {
    "filter": "edgeguard::run_privacy_filter(",
    "inflate": "libdeflate_gzip_decompress_ex",
    "stage1": "dom_parser_implementation::stage1(",
    "detectors": "edgeguard::privacy::DetectorSet::scan(",
}


def batch_split(out):
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", out],
                          capture_output=True, text=True).stdout
    part = dict.fromkeys(BATCH_SPLIT, 0)
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S.*)", line)
        if not m:
            continue
        for key, fn in BATCH_SPLIT.items():
            if fn in m.group(2) and part[key] == 0:  # the first (largest) row naming it
                part[key] = int(m.group(1).replace(",", ""))
    part["calls"] = filter_calls(out)
    return part


def filter_calls(out):
    """How many times the filter ran while counting: the calls into it recorded in the callgrind file
    (`fn=`/`cfn=` name a function, compressed to `(id)` after its first mention; `calls=N` follows `cfn=`)."""
    ids, total, callee = set(), 0, False
    with open(out) as f:
        for line in f:
            m = re.match(r"c?fn=\((\d+)\)(.*)", line)
            if m and BATCH_SPLIT["filter"] in m.group(2):
                ids.add(m.group(1))
            if line.startswith("cfn="):
                callee = bool(m) and m.group(1) in ids
            elif line.startswith("calls=") and callee:
                total += int(line[6:].split()[0])
                callee = False
    return total


def report(results, rss, args):
    docker = subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True).returncode == 0
    print(f"# bench/compare.py: rounds={args.rounds} seconds={args.seconds} docker_running={docker}")
    print("| workload | pinned | proxy | req/s | p50 ms | p99 ms | CPU µs/req | user µs/req | system µs/req "
          "| syscalls/req | non-2xx |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    key = lambda r: (r["workload"], not r["pinned"], r["proxy"])
    groups = {}
    for r in results:
        groups.setdefault(key(r), []).append(r)
    med = lambda xs: statistics.median(xs) if xs else float("nan")
    for k in sorted(groups):
        rs = groups[k]
        sc = [r["syscalls_per_req"] for r in rs if r["syscalls_per_req"] is not None]
        print(f"| {k[0]} | {'yes' if not k[1] else 'no'} | {k[2]} | {med([r['rps'] for r in rs]):.0f} | "
              f"{med([r['p50'] for r in rs]):.3f} | {med([r['p99'] for r in rs]):.3f} | "
              f"{med([r['cpu_us_per_req'] for r in rs]):.1f} | {med([r['user_us_per_req'] for r in rs]):.1f} | "
              f"{med([r['sys_us_per_req'] for r in rs]):.1f} | {med(sc):.2f} | {sum(r['non2xx'] for r in rs)} |")
    # Paired ratios: within the same round and pin mode, edgeguard vs each peer.
    print("\n| workload | pinned | peer | edgeguard CPU/req ÷ peer (median of rounds) | user ÷ peer | system ÷ peer "
          "| edgeguard req/s ÷ peer |")
    print("|---|---|---|---|---|---|---|")
    by = {}
    for r in results:
        by[(r["workload"], r["pinned"], r["round"], r["proxy"])] = r
    for wl in sorted({r["workload"] for r in results}):
        for pinned in (True, False):
            peers = sorted({r["proxy"] for r in results if r["workload"] == wl and not r["proxy"].startswith("edgeguard")})
            if wl.startswith("batch"):
                peers += ["edgeguard-filter-off", "edgeguard-learning"]
            if args.baseline:
                peers.append("edgeguard-base")
            for peer in peers:
                cr, ur, sr, rr = [], [], [], []
                for rd in range(args.rounds):
                    a, b = by.get((wl, pinned, rd, "edgeguard")), by.get((wl, pinned, rd, peer))
                    if a and b and b["cpu_us_per_req"] > 0 and b["rps"] > 0:
                        cr.append(a["cpu_us_per_req"] / b["cpu_us_per_req"])
                        rr.append(a["rps"] / b["rps"])
                        if b["user_us_per_req"] > 0 and b["sys_us_per_req"] > 0:
                            ur.append(a["user_us_per_req"] / b["user_us_per_req"])
                            sr.append(a["sys_us_per_req"] / b["sys_us_per_req"])
                if cr:
                    print(f"| {wl} | {'yes' if pinned else 'no'} | {peer} | {med(cr):.2f} | {med(ur):.2f} | "
                          f"{med(sr):.2f} | {med(rr):.2f} |")
    if args.by_name:
        print("\n| workload | pinned | proxy | syscalls/req by name (median of rounds, >= 0.02 shown) |")
        print("|---|---|---|---|")
        for k in sorted(groups):
            names = {}
            for r in groups[k]:
                for name, v in r.get("syscalls_by_name", {}).items():
                    names.setdefault(name, []).append(v)
            shown = sorted(((med(v), n) for n, v in names.items() if med(v) >= 0.02), reverse=True)
            print(f"| {k[0]} | {'yes' if not k[1] else 'no'} | {k[2]} | "
                  + ", ".join(f"{n} {v:.2f}" for v, n in shown) + " |")
    if args.threads:
        print("\n| workload | pinned | proxy | per request, by thread (median of rounds): voluntary / involuntary "
              "context switches, CPU µs |")
        print("|---|---|---|---|")
        for k in sorted(groups):
            names = {}
            for r in groups[k]:
                for name, v in r.get("threads", {}).items():
                    names.setdefault(name, []).append(v)
            cells = []
            for name in sorted(names):
                vs = names[name]
                cells.append(f"{name} {med([v[0] for v in vs]):.4f} / {med([v[1] for v in vs]):.4f}, "
                             f"{med([v[2] for v in vs]):.2f}")
            print(f"| {k[0]} | {'yes' if not k[1] else 'no'} | {k[2]} | " + "; ".join(cells) + " |")
    if rss:
        print(f"\n| proxy | RSS with {args.idle_conns} idle keep-alive connections (MiB) | all connected |")
        print("|---|---|---|")
        for name, (kib, ok) in rss.items():
            print(f"| {name} | {kib / 1024:.1f} | {ok} |")


if __name__ == "__main__":
    main()
