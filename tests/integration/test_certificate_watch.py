"""Certificate files that renew themselves: a changed pair on disk is loaded without a signal within the watch
interval, a broken pair is refused (the old one kept, the refusal logged), each certificate's notAfter is on
/metrics, and `check` warns about a certificate that expires within 14 days and refuses an expired one.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

import eg
import promtext
from ops_helpers import admin_get

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

WATCH_MS = 200
SWAP_TIMEOUT = 15.0


def install(pki: Path, live: Path, cert: str, key: str) -> None:
    """Replaces live/cert.pem and live/key.pem the way certbot's deploy does: new files renamed into place."""
    for src, dst in ((pki / f"{cert}.pem", live / "cert.pem"), (pki / f"{key}.key", live / "key.pem")):
        tmp = dst.with_suffix(".tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)


def der_of(pem: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.read_text())


def client_context(pki: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    return ctx


def served_certificate(port: int, pki: Path) -> bytes:
    with socket.create_connection((eg.LOOPBACK, port), timeout=5) as raw:
        with client_context(pki).wrap_socket(raw, server_hostname="a.test") as s:
            return s.getpeercert(binary_form=True)


def get_over(s: ssl.SSLSocket) -> int:
    s.sendall(b"GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n")
    return eg.read_response(eg.SocketReader(s)).status


def start(upstreams, edgeguard, pki: Path, tmp_path: Path):
    live = tmp_path / "live"
    live.mkdir()
    install(pki, live, "a", "a")
    up = upstreams("app")
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    config["listeners"] = [{"name": "https", "address": f"{eg.LOOPBACK}:{port}",
                            "tls": {"certificates": [{"cert": str(live / "cert.pem"), "key": str(live / "key.pem")}],
                                    "watch_interval": eg.ms(WATCH_MS)}}]
    proc = edgeguard(config)
    return proc, port, live


def test_replaced_pair_is_served_to_new_handshakes_open_connections_unaffected(upstreams, edgeguard, pki, tmp_path):
    proc, port, live = start(upstreams, edgeguard, pki, tmp_path)
    assert served_certificate(port, pki) == der_of(pki / "a.pem")
    raw = socket.create_connection((eg.LOOPBACK, port), timeout=5)
    opened = client_context(pki).wrap_socket(raw, server_hostname="a.test")
    try:
        assert get_over(opened) == 200
        install(pki, live, "a2", "a2")
        assert eg.wait_until(lambda: served_certificate(port, pki) == der_of(pki / "a2.pem"), SWAP_TIMEOUT), \
            proc.stderr()
        # The connection accepted before the swap keeps its session and keeps being served.
        assert opened.getpeercert(binary_form=True) == der_of(pki / "a.pem")
        assert get_over(opened) == 200
    finally:
        opened.close()
    assert "certificates reloaded from changed files" in proc.stderr()


def test_broken_pair_is_refused_and_the_loaded_one_kept(upstreams, edgeguard, pki, tmp_path):
    proc, port, live = start(upstreams, edgeguard, pki, tmp_path)
    # A certificate with another certificate's key (what a half-finished renewal looks like).
    install(pki, live, "a2", "a")
    assert eg.wait_until(lambda: "certificate reload refused" in proc.stderr(), SWAP_TIMEOUT), proc.stderr()
    assert "does not match" in proc.stderr()
    assert served_certificate(port, pki) == der_of(pki / "a.pem")
    # A truncated certificate file: refused the same way.
    (live / "cert.pem").write_text((pki / "a2.pem").read_text()[:100])
    assert eg.wait_until(lambda: proc.stderr().count("certificate reload refused") >= 2, SWAP_TIMEOUT), proc.stderr()
    assert served_certificate(port, pki) == der_of(pki / "a.pem")
    # The renewal completes: the good pair is picked up.
    install(pki, live, "a2", "a2")
    assert eg.wait_until(lambda: served_certificate(port, pki) == der_of(pki / "a2.pem"), SWAP_TIMEOUT), \
        proc.stderr()


def not_after_seconds(pem: Path) -> int:
    out = subprocess.run(["openssl", "x509", "-in", str(pem), "-noout", "-enddate"], check=True,
                         capture_output=True, text=True, timeout=20).stdout
    return int(ssl.cert_time_to_seconds(out.strip().split("=", 1)[1]))


def expiry_metric(proc, cert_path: Path):
    port = int(proc.config["admin"]["address"].rsplit(":", 1)[1])
    resp = admin_get(port, "/metrics")
    assert resp.status == 200
    families = promtext.parse(resp.body.decode())
    return promtext.value(families, "edgeguard_tls_certificate_expiry_timestamp_seconds",
                          listener="https", certificate=str(cert_path))


def test_expiry_metric_is_the_certificates_not_after(upstreams, edgeguard, pki, tmp_path):
    proc, port, live = start(upstreams, edgeguard, pki, tmp_path)
    assert expiry_metric(proc, live / "cert.pem") == not_after_seconds(pki / "a.pem")
    # A renewed certificate with a later notAfter moves the gauge.
    dated = tmp_path / "dated"
    now = datetime.datetime.now(datetime.timezone.utc)
    later = now + datetime.timedelta(days=60)
    subprocess.run(["bash", str(eg.source_dir() / "tests" / "tls" / "make_dated_cert.sh"), str(dated), "later",
                    (now - datetime.timedelta(days=1)).strftime("%Y%m%d%H%M%SZ"), later.strftime("%Y%m%d%H%M%SZ")],
                   check=True, timeout=60, capture_output=True)
    for src, dst in ((dated / "later.pem", live / "cert.pem"), (dated / "later.key", live / "key.pem")):
        shutil.copyfile(src, dst.with_suffix(".tmp"))
        os.replace(dst.with_suffix(".tmp"), dst)
    want = not_after_seconds(dated / "later.pem")
    assert eg.wait_until(lambda: expiry_metric(proc, live / "cert.pem") == want, SWAP_TIMEOUT), proc.stderr()


def dated_cert(tmp_path: Path, name: str, start: datetime.datetime, end: datetime.datetime) -> Path:
    subprocess.run(["bash", str(eg.source_dir() / "tests" / "tls" / "make_dated_cert.sh"), str(tmp_path), name,
                    start.strftime("%Y%m%d%H%M%SZ"), end.strftime("%Y%m%d%H%M%SZ")],
                   check=True, timeout=60, capture_output=True)
    return tmp_path / name


def check_with_cert(edgeguard_bin, tmp_path: Path, stem: Path) -> subprocess.CompletedProcess:
    config = eg.basic_config(eg.free_port(), {"app": ["127.0.0.1:9"]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    config["listeners"][0]["name"] = "https"
    config["listeners"][0]["tls"] = {"certificates": [{"cert": f"{stem}.pem", "key": f"{stem}.key"}]}
    path = tmp_path / f"{stem.name}.yaml"
    path.write_text(eg.dump_yaml(config))
    return eg.run_cli(edgeguard_bin, "check", "--config", str(path))


def test_check_warns_about_a_certificate_expiring_in_ten_days(edgeguard_bin, tmp_path):
    now = datetime.datetime.now(datetime.timezone.utc)
    soon = dated_cert(tmp_path, "soon", now - datetime.timedelta(days=80), now + datetime.timedelta(days=10))
    r = check_with_cert(edgeguard_bin, tmp_path, soon)
    assert r.returncode == 0, r.stderr
    # Ten days less the seconds the test took: whole days, rounded either way by the clock's second boundary.
    assert re.search(r"warning: .*soon\.pem expires in (9|10) days", r.stderr), r.stderr
    # Thirty days left: nothing to warn about.
    fine = dated_cert(tmp_path, "fine", now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))
    r = check_with_cert(edgeguard_bin, tmp_path, fine)
    assert r.returncode == 0 and "expires" not in r.stderr, r.stderr


def test_check_refuses_an_expired_certificate_serve_still_starts(edgeguard_bin, upstreams, edgeguard, tmp_path):
    now = datetime.datetime.now(datetime.timezone.utc)
    old = dated_cert(tmp_path, "old", now - datetime.timedelta(days=120), now - datetime.timedelta(days=30))
    r = check_with_cert(edgeguard_bin, tmp_path, old)
    assert r.returncode == 1
    assert "old.pem has expired" in r.stderr and "warning:" not in r.stderr.split("old.pem has expired")[0].splitlines()[-1]
    # serve keeps running with it (warning only), so its plain listener can still answer the ACME challenge.
    up = upstreams("app")
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    config["listeners"] = [{"name": "https", "address": f"{eg.LOOPBACK}:{port}",
                            "tls": {"certificates": [{"cert": f"{old}.pem", "key": f"{old}.key"}]}}]
    proc = edgeguard(config)
    assert "old.pem has expired" in proc.stderr()
