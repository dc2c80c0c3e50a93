#!/usr/bin/env python3
"""What an ordinary HTTP/2 response body costs edgeguard per MiB: h2c GETs of a 1 MiB body from an HTTP/1.1
upstream in this process, one connection, `workers: 1`.

  instructions  callgrind on `edgeguard serve`, instrumentation on only while the bodies move
  cpu           the worker process's CPU time (utime + stime from /proc), no valgrind

    bench/h2_body_cost.py instructions --edgeguard build/edgeguard [--baseline OTHER] [--mib 16] [--rounds 2]
    bench/h2_body_cost.py cpu          --edgeguard build/edgeguard [--baseline OTHER] [--mib 256] [--rounds 4]

With --baseline the two binaries alternate (A B A B ...), so load from elsewhere falls on both alike.
Everything runs on 127.0.0.1 and is stopped here.
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
import eg  # noqa: E402
import h2_helpers as h2h  # noqa: E402
from compare import Proc  # noqa: E402

BODY = os.urandom(1 << 20)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(binary: str, mib: int, callgrind: bool, window: int = 0) -> float:
    up = eg.Upstream("app", lambda req: eg.Reply(body=BODY))
    tmp = tempfile.mkdtemp(prefix="h2body-")
    port = eg.free_port()
    cfg = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}],
                          workers=1)
    cfg["listeners"][0]["h2c"] = True
    # A baseline binary may count a fast reader's WINDOW_UPDATEs against the control-frame budget: raised for both.
    cfg["http2"] = {"control_frames": {"burst": 1000000, "rate": "1000000/s"}}
    conf = os.path.join(tmp, "edgeguard.yaml")
    Path(conf).write_text(eg.dump_yaml(cfg))
    out = os.path.join(tmp, "callgrind.out")
    prefix = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"] if callgrind else []
    proc = Proc("edgeguard", [binary, "serve", "--config", conf], port, prefix=prefix)
    try:
        client = h2h.H2Client(h2h.open_socket(port, timeout=120), scheme="http", window=window or None)
        if window:
            client.conn.increment_flow_control_window(window)
            client._flush()
        assert client.get("/warm").status == 200
        if callgrind:
            subprocess.run(["callgrind_control", "-i", "on", str(proc.p.pid)], check=True, capture_output=True)
        before = cpu_seconds(proc.p.pid)
        for i in range(mib):
            resp = client.get(f"/b{i}")
            assert resp.status == 200 and len(resp.body) == len(BODY), (resp.status, len(resp.body))
        used = cpu_seconds(proc.p.pid) - before
        if callgrind:
            subprocess.run(["callgrind_control", "-i", "off", str(proc.p.pid)], check=True, capture_output=True)
        client.close()
    finally:
        proc.stop()
        up.stop()
    if callgrind:
        return next(int(line.split()[1]) for line in open(out) if line.startswith("totals:")) / mib
    return used / mib


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["instructions", "cpu"])
    ap.add_argument("--edgeguard", required=True)
    ap.add_argument("--baseline")
    ap.add_argument("--mib", type=int)
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--window", type=int, default=0,
                    help="the client's stream and connection windows (default: python-h2's 65535)")
    args = ap.parse_args()
    callgrind = args.mode == "instructions"
    mib = args.mib or (16 if callgrind else 256)
    rounds = args.rounds or (2 if callgrind else 4)
    binaries = [("edgeguard", args.edgeguard)] + ([("baseline", args.baseline)] if args.baseline else [])
    results = {name: [] for name, _ in binaries}
    for r in range(rounds):
        for name, binary in binaries if r % 2 == 0 else reversed(binaries):
            value = run(binary, mib, callgrind, args.window)
            results[name].append(value)
            unit = f"{value / 1e6:.3f} M instructions" if callgrind else f"{value * 1e3:.2f} ms CPU"
            print(f"round {r} {name}: {unit} per MiB", flush=True)
    if args.baseline:
        ratios = [a / b for a, b in zip(results["edgeguard"], results["baseline"])]
        print("edgeguard / baseline per round: " + ", ".join(f"{x:.2f}" for x in ratios))


if __name__ == "__main__":
    main()
