"""Optional TLS against the real binary: curl --cacert, openssl s_client and Python's ssl module.

Certificates are generated per test module with the openssl CLI (tests/tls/make_certs.sh). Every client has a
timeout; nothing here leaves 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

import eg

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None or shutil.which("curl") is None,
                                reason="needs the openssl and curl CLIs")

CLI_TIMEOUT = 20.0


def tls_listener(port: int, pki: Path, *, certs=("a", "b", "cn"), name: str = "https", min_version: str | None = None,
                 client_ca: str | None = None) -> dict:
    tls: dict = {"certificates": [{"cert": str(pki / f"{c}.pem"), "key": str(pki / f"{c}.key")} for c in certs]}
    if min_version:
        tls["min_version"] = min_version
    if client_ca:
        tls["client_ca"] = str(pki / f"{client_ca}.pem")
    return {"name": name, "address": f"{eg.LOOPBACK}:{port}", "tls": tls}


def handshake_failures_metric(proc) -> int:
    """edgeguard_tls_handshake_failures_total from the admin listener's /metrics."""
    host, port = proc.config["admin"]["address"].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
        resp = eg.read_response(eg.SocketReader(s))
    assert resp.status == 200
    for line in resp.body.decode().splitlines():
        if line.startswith("edgeguard_tls_handshake_failures_total "):
            return int(float(line.split()[1]))
    raise AssertionError("edgeguard_tls_handshake_failures_total missing from /metrics")


def start_tls_proxy(upstreams, edgeguard, pki: Path, **listener_kwargs):
    up = upstreams("app")
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    config["listeners"] = [tls_listener(port, pki, **listener_kwargs)]
    proc = edgeguard(config)
    assert_not_plain_http(port)
    return proc, up, port


def assert_not_plain_http(port: int) -> None:
    """Fails when a listener configured with tls serves plain HTTP: every test behind it would prove nothing."""
    with socket.create_connection((eg.LOOPBACK, port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        try:
            data = s.recv(200)
        except (socket.timeout, ConnectionResetError):
            return
    assert not (data.startswith(b"HTTP/1.1 ") and not data.startswith(b"HTTP/1.1 400 ")), \
        f"the TLS listener answered a plaintext request as plain HTTP: {data[:60]!r}"


def client_context(pki: Path, *, cert: str | None = None, alpn=("http/1.1",), max_version=None,
                   min_version=None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if max_version:
        ctx.maximum_version = max_version
    if min_version:
        ctx.minimum_version = min_version
    return ctx


def tls_connect(port: int, ctx: ssl.SSLContext, server_name: str | None = "a.test", session=None) -> ssl.SSLSocket:
    raw = socket.create_connection((eg.LOOPBACK, port), timeout=eg.IO_TIMEOUT)
    try:
        return ctx.wrap_socket(raw, server_hostname=server_name, session=session)
    except Exception:
        raw.close()
        raise


def https_get(sock: ssl.SSLSocket, target: str = "/x", host: str = "a.test") -> eg.Response:
    sock.sendall(eg.build_request("GET", target, host=host))
    return eg.read_response(eg.SocketReader(sock))


def peer_cn(sock: ssl.SSLSocket) -> str:
    subject = dict(x[0] for x in sock.getpeercert()["subject"])
    return subject["commonName"]


def peer_serial(sock: ssl.SSLSocket) -> str:
    return sock.getpeercert()["serialNumber"]


def s_client(port: int, pki: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    cmd = ["openssl", "s_client", "-connect", f"{eg.LOOPBACK}:{port}", "-CAfile", str(pki / "ca.pem"), *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=CLI_TIMEOUT)


# --------------------------------------------------------------------------------------------------------------


def test_curl_https_request_reaches_the_upstream_as_https(upstreams, edgeguard, pki):
    _, up, port = start_tls_proxy(upstreams, edgeguard, pki)
    out = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", str(pki / "ca.pem"),
                          "--resolve", f"a.test:{port}:127.0.0.1", "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
                          f"https://a.test:{port}/hello"], capture_output=True, text=True, timeout=CLI_TIMEOUT)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "200 2", "curl offers h2 first, and the listener speaks it"
    req = up.wait_requests(1)[0]
    assert req.path == "/hello"
    assert req.header("x-forwarded-proto") == "https"


def test_tls12_and_tls13_accepted_tls11_refused(upstreams, edgeguard, pki):
    _, _, port = start_tls_proxy(upstreams, edgeguard, pki)
    for flag, version in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        r = s_client(port, pki, flag, "-servername", "a.test", "-brief")
        assert r.returncode == 0, r.stderr
        assert f"Protocol version: {version}" in r.stderr.decode(), r.stderr
    old = s_client(port, pki, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-servername", "a.test")
    assert old.returncode != 0
    assert b"Cipher is (NONE)" in old.stdout or b"alert" in old.stderr, old.stderr


def test_min_version_13_refuses_tls12(upstreams, edgeguard, pki):
    _, _, port = start_tls_proxy(upstreams, edgeguard, pki, min_version="1.3")
    with pytest.raises(ssl.SSLError):
        tls_connect(port, client_context(pki, max_version=ssl.TLSVersion.TLSv1_2)).close()
    with tls_connect(port, client_context(pki)) as s:
        assert s.version() == "TLSv1.3"


def test_alpn_selects_h2_or_http11_and_refuses_neither(upstreams, edgeguard, pki):
    _, _, port = start_tls_proxy(upstreams, edgeguard, pki)
    with tls_connect(port, client_context(pki, alpn=("h2", "http/1.1"))) as s:
        assert s.selected_alpn_protocol() == "h2"
    with tls_connect(port, client_context(pki, alpn=("http/1.1",))) as s:
        assert s.selected_alpn_protocol() == "http/1.1"
        assert https_get(s).status == 200
    with pytest.raises(ssl.SSLError):
        tls_connect(port, client_context(pki, alpn=("spdy/3.1",))).close()
    r = s_client(port, pki, "-alpn", "http/1.1", "-servername", "a.test")
    assert b"ALPN protocol: http/1.1" in r.stdout, r.stdout


def test_sni_selects_exact_wildcard_and_cn_certificates(upstreams, edgeguard, pki):
    _, _, port = start_tls_proxy(upstreams, edgeguard, pki)
    with tls_connect(port, client_context(pki), "a.test") as s:
        assert peer_cn(s) == "a.test"
    with tls_connect(port, client_context(pki), "api.b.test") as s:
        assert peer_cn(s) == "b.test"
        assert https_get(s, host="api.b.test").status == 200
    ctx = client_context(pki)
    ctx.check_hostname = False  # cn.test has no SAN: modern clients refuse the name, but SNI still selects it
    with tls_connect(port, ctx, "cn.test") as s:
        assert peer_cn(s) == "cn.test"
    r = s_client(port, pki, "-servername", "unknown.example")
    assert b"subject=CN = a.test" in r.stdout, r.stdout


def test_session_resumption_with_s_client(upstreams, edgeguard, pki, tmp_path):
    _, _, port = start_tls_proxy(upstreams, edgeguard, pki)
    for flag in ("-tls1_2", "-tls1_3"):
        sess = tmp_path / f"session{flag}.pem"
        # -ign_eof: read until the server closes, so the TLS 1.3 tickets (sent after the handshake) arrive
        # before s_client exits; without it s_client may quit at stdin EOF and write no session.
        first = s_client(port, pki, flag, "-servername", "a.test", "-sess_out", str(sess), "-ign_eof",
                         stdin=b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        assert sess.stat().st_size > 0, first.stderr
        assert b"\nNew, " in first.stdout
        second = s_client(port, pki, flag, "-servername", "a.test", "-sess_in", str(sess))
        assert b"\nReused, " in second.stdout, second.stdout


def test_mtls_accepts_the_cas_clients_and_refuses_others(upstreams, edgeguard, pki):
    proc, up, port = start_tls_proxy(upstreams, edgeguard, pki, client_ca="ca")
    with tls_connect(port, client_context(pki, cert="client")) as s:
        assert https_get(s).status == 200

    def refused(cert):
        try:
            with tls_connect(port, client_context(pki, cert=cert)) as s:
                # TLS 1.3: the server's verdict on the client certificate arrives after the client's Finished.
                s.sendall(eg.build_request("GET", "/", host="a.test"))
                return s.recv(100) == b""
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return True

    before = handshake_failures_metric(proc)
    assert refused(None)
    assert refused("rogue")
    assert eg.wait_until(lambda: handshake_failures_metric(proc) >= before + 2, 5)
    base = ["curl", "-sS", "--max-time", "10", "--cacert", str(pki / "ca.pem"), "--resolve",
            f"a.test:{port}:127.0.0.1", "-o", "/dev/null", "-w", "%{http_code}"]
    ok = subprocess.run(base + ["--cert", str(pki / "client.pem"), "--key", str(pki / "client.key"),
                                f"https://a.test:{port}/"], capture_output=True, text=True, timeout=CLI_TIMEOUT)
    assert ok.stdout == "200", ok.stderr
    no_cert = subprocess.run(base + [f"https://a.test:{port}/"], capture_output=True, text=True, timeout=CLI_TIMEOUT)
    assert no_cert.returncode != 0
    assert len(up.snapshot()) == 2, "refused clients never reach the upstream"


def test_certificate_rotation_on_sighup_keeps_keepalive_connections(upstreams, edgeguard, pki, tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    for ext in ("pem", "key"):
        shutil.copy(pki / f"a.{ext}", live / f"a.{ext}")
    up = upstreams("app")
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    config["listeners"] = [{"name": "https", "address": f"{eg.LOOPBACK}:{port}",
                            "tls": {"certificates": [{"cert": str(live / "a.pem"), "key": str(live / "a.key")}]}}]
    proc = edgeguard(config)
    assert_not_plain_http(port)
    old_serial = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", str(pki / "a.pem")],
                                capture_output=True, text=True).stdout.strip().split("=")[1]
    new_serial = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", str(pki / "a2.pem")],
                                capture_output=True, text=True).stdout.strip().split("=")[1]

    kept = tls_connect(port, client_context(pki))
    try:
        assert peer_serial(kept) == old_serial
        assert https_get(kept, "/before").status == 200
        for ext in ("pem", "key"):  # replace both files, as certbot's deploy hook would
            shutil.copy(pki / f"a2.{ext}", live / f"a.{ext}.tmp")
            os.replace(live / f"a.{ext}.tmp", live / f"a.{ext}")
        proc.signal(signal.SIGHUP)
        assert eg.wait_until(lambda: "config reloaded" in proc.stderr(), 10), proc.stderr()

        with tls_connect(port, client_context(pki)) as fresh:
            assert peer_serial(fresh) == new_serial
            assert https_get(fresh, "/fresh").status == 200
        # The connection opened before the reload is still up and still serves requests.
        assert https_get(kept, "/after").status == 200
        assert peer_serial(kept) == old_serial
    finally:
        kept.close()
    paths = [r.path for r in up.snapshot()]
    assert paths == ["/before", "/fresh", "/after"]


def test_broken_certificate_on_sighup_keeps_serving_the_old_one(upstreams, edgeguard, pki, tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    for ext in ("pem", "key"):
        shutil.copy(pki / f"a.{ext}", live / f"a.{ext}")
    up = upstreams("app")
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    config["listeners"] = [{"name": "https", "address": f"{eg.LOOPBACK}:{port}",
                            "tls": {"certificates": [{"cert": str(live / "a.pem"), "key": str(live / "a.key")}]}}]
    proc = edgeguard(config)
    assert_not_plain_http(port)
    shutil.copy(pki / "b.key", live / "a.key")  # a key that does not match the certificate
    proc.signal(signal.SIGHUP)
    # The refusal is logged once the new files were read and rejected: only then does the check below mean the
    # old certificate survived rather than that the reload had not run yet.
    assert eg.wait_until(lambda: "reload failed, keeping the running config" in proc.stderr(), 10), proc.stderr()
    with tls_connect(port, client_context(pki)) as s:
        assert peer_cn(s) == "a.test"
        assert https_get(s).status == 200
    assert proc.proc.poll() is None


def test_connection_close_ends_with_close_notify(upstreams, edgeguard, pki):
    """A response with Connection: close ends with a TLS close_notify, not a bare TCP FIN ("unexpected eof")."""
    _, _, port = start_tls_proxy(upstreams, edgeguard, pki)
    r = s_client(port, pki, "-servername", "a.test", "-ign_eof",
                 stdin=b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
    assert b"HTTP/1.1 200" in r.stdout
    assert b"unexpected eof" not in r.stderr, r.stderr
    assert r.returncode == 0, r.stderr


def test_plain_http_to_the_tls_port_gets_400_or_a_clean_close_never_a_hang(upstreams, edgeguard, pki):
    proc, up, port = start_tls_proxy(upstreams, edgeguard, pki)
    with socket.create_connection((eg.LOOPBACK, port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        s.settimeout(5)  # a hang fails here instead of blocking the suite
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
    assert data == b"" or data.startswith(b"HTTP/1.1 400 "), data
    assert up.snapshot() == []
    assert eg.wait_until(lambda: handshake_failures_metric(proc) >= 1, 5), "the failure is counted"
    # Logged without secrets: the reason, never request bytes.
    assert eg.wait_until(lambda: "tls handshake failed" in proc.stderr(), 5)
    assert "Host: a.test" not in proc.stderr()


def test_check_reports_missing_and_mismatched_certificate_files(edgeguard_bin, pki, tmp_path):
    def check(cert: str, key: str) -> subprocess.CompletedProcess:
        config = eg.basic_config(eg.free_port(), {"app": ["127.0.0.1:9"]}, [{"name": "all", "paths": ["/"],
                                                                              "upstream": "app"}])
        config["listeners"][0]["tls"] = {"certificates": [{"cert": cert, "key": key}]}
        path = tmp_path / "check.yaml"
        path.write_text(eg.dump_yaml(config))
        return eg.run_cli(edgeguard_bin, "check", "--config", str(path))

    good = check(str(pki / "a.pem"), str(pki / "a.key"))
    assert good.returncode == 0, good.stderr
    missing = check(str(pki / "missing.pem"), str(pki / "a.key"))
    assert missing.returncode != 0
    assert "missing.pem" in missing.stderr
    mismatched = check(str(pki / "a.pem"), str(pki / "b.key"))
    assert mismatched.returncode != 0, "check accepted a certificate with another certificate's key"
    assert "does not match" in mismatched.stderr, mismatched.stderr


def test_redirect_listener_answers_308_to_https(upstreams, edgeguard, pki):
    up = upstreams("app")
    https_port = eg.free_port()
    http_port = eg.free_port()
    config = eg.basic_config(http_port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    config["listeners"] = [{"name": "http", "address": f"{eg.LOOPBACK}:{http_port}",
                            "redirect_https_to": f":{https_port}"},
                           tls_listener(https_port, pki)]
    edgeguard(config)
    with eg.Client(http_port) as c:
        resp = c.request("GET", "/e/?ip=1", host=f"a.test:{http_port}")
    assert resp.status == 308, (resp.status, resp.body)
    assert resp.header("location") == f"https://a.test:{https_port}/e/?ip=1"
    assert up.snapshot() == []


class TlsUpstream:
    """A minimal HTTPS origin on loopback: answers every request 200 "ok" (keep-alive), records paths and SNI."""

    def __init__(self, pki: Path, cert: str = "a"):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
        self.ctx.sni_callback = self._record_sni
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((eg.LOOPBACK, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.address = f"{eg.LOOPBACK}:{self.sock.getsockname()[1]}"
        self.paths: list[str] = []
        self.server_names: list = []
        self.handshake_errors = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept_loop, daemon=True)]
        self._threads[0].start()

    def _record_sni(self, ssl_sock, server_name, ctx):
        self.server_names.append(server_name)

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                raw, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(raw,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, raw: socket.socket):
        raw.settimeout(eg.IO_TIMEOUT)
        try:
            conn = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshake_errors += 1
            raw.close()
            return
        reader = eg.SocketReader(conn)
        try:
            while not self._stop.is_set():
                head = reader.read_until(b"\r\n\r\n")
                start, _ = eg.parse_head(head)
                self.paths.append(start.split(" ")[1])
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except (eg.PeerClosed, OSError, ValueError):
            pass
        finally:
            conn.close()

    def stop(self):
        self._stop.set()
        self.sock.close()
        for t in self._threads:
            t.join(timeout=5)


@pytest.fixture
def tls_upstream(pki):
    started = []

    def make(cert: str = "a") -> TlsUpstream:
        up = TlsUpstream(pki, cert)
        started.append(up)
        return up

    yield make
    for up in started:
        up.stop()


def start_proxy_to_tls_upstream(edgeguard, edgeguard_bin, tmp_path, upstream: TlsUpstream, tls: dict):
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [upstream.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    config["upstreams"]["app"]["tls"] = tls
    probe = tmp_path / f"probe-{port}.yaml"
    probe.write_text(eg.dump_yaml(config))
    check = eg.run_cli(edgeguard_bin, "check", "--config", str(probe))
    assert check.returncode == 0, check.stderr
    edgeguard(config)
    return port


def test_tls_upstream_verified_by_ca_and_name(edgeguard, edgeguard_bin, tmp_path, tls_upstream, pki):
    up = tls_upstream()
    port = start_proxy_to_tls_upstream(edgeguard, edgeguard_bin, tmp_path, up, {"ca_file": str(pki / "ca.pem"), "server_name": "a.test"})
    with eg.Client(port) as c:
        for i in range(3):  # the pooled TLS connection is reused
            resp = c.request("GET", f"/up{i}")
            assert resp.status == 200, resp.body
            assert resp.body == b"ok"
    assert up.paths == ["/up0", "/up1", "/up2"]
    assert up.server_names and up.server_names[0] == "a.test"


def test_tls_upstream_with_unknown_ca_or_wrong_name_is_a_502(edgeguard, edgeguard_bin, tmp_path, tls_upstream,
                                                             pki):
    up = tls_upstream()
    port = start_proxy_to_tls_upstream(edgeguard, edgeguard_bin, tmp_path, up, {"ca_file": str(pki / "other-ca.pem"), "server_name": "a.test"})
    with eg.Client(port) as c:
        assert c.request("GET", "/x").status == 502
    up2 = tls_upstream()
    port2 = start_proxy_to_tls_upstream(edgeguard, edgeguard_bin, tmp_path, up2, {"ca_file": str(pki / "ca.pem"), "server_name": "evil.test"})
    with eg.Client(port2) as c:
        assert c.request("GET", "/x").status == 502
    assert up.paths == [] and up2.paths == [], "no request bytes go to an unverified upstream"
