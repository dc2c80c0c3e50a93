"""A listen address belongs to one edgeguard: a second `edgeguard serve` on the same address (or on one another
program listens on) refuses to start with "address in use", instead of taking a share of the connections
through SO_REUSEPORT; the first instance keeps every connection."""

from __future__ import annotations

import socket
import subprocess

import eg


def _serve_expecting_failure(edgeguard_bin: str, config: dict, workdir) -> subprocess.CompletedProcess:
    path = workdir / "second.yaml"
    path.write_text(eg.dump_yaml(config))
    return subprocess.run([edgeguard_bin, "serve", "--config", str(path)], cwd=workdir, capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL)


def test_second_instance_on_the_same_address_refuses_to_start(upstreams, edgeguard, edgeguard_bin, tmp_path):
    up = upstreams("app")
    port = eg.free_port()
    routes = [{"name": "all", "paths": ["/"], "upstream": "app"}]
    edgeguard(eg.basic_config(port, {"app": [up.address]}, routes))

    second = _serve_expecting_failure(edgeguard_bin, eg.basic_config(port, {"app": [up.address]}, routes), tmp_path)
    assert second.returncode != 0
    assert f"address in use: another process already listens on {eg.LOOPBACK}:{port}" in second.stderr
    assert "edgeguard: ready" not in second.stderr

    # Every connection still reaches the first instance (the second never bound a share of the port).
    for i in range(20):
        with eg.Client(port) as c:
            assert c.request("GET", f"/n/{i}", headers=[("Connection", "close")]).status == 200
    assert len(up.snapshot()) == 20


def test_address_held_by_another_program_refuses_start(upstreams, edgeguard_bin, tmp_path):
    up = upstreams("app")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((eg.LOOPBACK, 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
        result = _serve_expecting_failure(edgeguard_bin, config, tmp_path)
    assert result.returncode != 0
    assert f"address in use: another process already listens on {eg.LOOPBACK}:{port}" in result.stderr
