"""ACME HTTP-01 challenges answered from a webroot on a plain listener, before the HTTPS redirect and before
routing: what certbot --webroot and lego --http.webroot rely on. Only files inside the webroot's challenge
directory are ever served; every other path keeps being redirected.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import eg

TOKEN = "Xk3Tq9-vL_2mZpR8wYbN4cHdJ6eUaF0sGiK7oQ1tVxE"
KEY_AUTHORIZATION = TOKEN + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
SECRET = "secret-outside-the-webroot-7f3a"


def start(upstreams, edgeguard, tmp_path: Path, *, routes_upstream=True):
    webroot = tmp_path / "webroot"
    challenges = webroot / ".well-known" / "acme-challenge"
    challenges.mkdir(parents=True)
    (challenges / TOKEN).write_text(KEY_AUTHORIZATION)
    (tmp_path / "secret.txt").write_text(SECRET)
    (webroot / "secret.txt").write_text(SECRET)
    up = upstreams("app")
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    config["listeners"][0]["redirect_https_to"] = ":8443"
    config["listeners"][0]["acme_webroot"] = str(webroot)
    edgeguard(config)
    return port, up, challenges


def test_challenge_served_while_other_paths_redirect(upstreams, edgeguard, tmp_path):
    port, up, _ = start(upstreams, edgeguard, tmp_path)
    with eg.Client(port) as c:
        resp = c.request("GET", f"/.well-known/acme-challenge/{TOKEN}", host="posthog.example.com")
        assert resp.status == 200
        assert resp.body == KEY_AUTHORIZATION.encode()
        assert resp.header("content-type") == "text/plain"
        # Same keep-alive connection: a HEAD of it, then an ordinary path that is redirected.
        head = c.request("HEAD", f"/.well-known/acme-challenge/{TOKEN}", host="posthog.example.com")
        assert head.status == 200 and head.body == b""
        assert head.header("content-length") == str(len(KEY_AUTHORIZATION))
        other = c.request("GET", "/e/?ip=1", host="posthog.example.com")
        assert other.status == 308
        assert other.header("location") == "https://posthog.example.com:8443/e/?ip=1"
    assert up.snapshot() == []


def test_absent_challenge_is_a_404_json(upstreams, edgeguard, tmp_path):
    port, up, _ = start(upstreams, edgeguard, tmp_path)
    with eg.Client(port) as c:
        resp = c.request("GET", "/.well-known/acme-challenge/NoSuchToken_123", host="posthog.example.com")
    assert resp.status == 404
    assert resp.header("content-type") == "application/json"
    assert json.loads(resp.body)["status"] == 404
    assert up.snapshot() == []


def test_only_files_inside_the_challenge_directory_are_served(upstreams, edgeguard, tmp_path):
    port, up, challenges = start(upstreams, edgeguard, tmp_path)
    # A symbolic link out of the directory, a directory, and a file larger than any key authorization.
    os.symlink(tmp_path / "secret.txt", challenges / "linked")
    (challenges / "adir").mkdir()
    (challenges / "big").write_text("x" * 4096)
    attempts = [
        "/.well-known/acme-challenge/../../secret.txt",
        "/.well-known/acme-challenge/..%2F..%2Fsecret.txt",
        "/.well-known/acme-challenge/%2e%2e/%2e%2e/secret.txt",
        "/.well-known/acme-challenge/..%2fsecret.txt",
        "/.well-known/acme-challenge/secret.txt",
        "/.well-known/acme-challenge/linked",
        "/.well-known/acme-challenge/adir",
        "/.well-known/acme-challenge/big",
        "/.well-known/acme-challenge/",
        "/.well-known/acme-challenge/a%00b",
        "/.well-known/acme-challenge/%5c..%5csecret.txt",
    ]
    for target in attempts:
        with eg.Client(port) as c:
            c.send(f"GET {target} HTTP/1.1\r\nHost: posthog.example.com\r\nConnection: close\r\n\r\n".encode())
            raw = c.reader.read_to_eof()
        assert SECRET.encode() not in raw, target
        assert b"xxxx" not in raw, target
        status = int(raw.split(b" ", 2)[1])
        # Refused as not a challenge (404), malformed (400), or outside the challenge path altogether (308).
        assert status in (308, 400, 404), (target, raw[:200])
        if status == 404:
            assert b"application/json" in raw
    assert up.snapshot() == []


def test_challenge_needs_get(upstreams, edgeguard, tmp_path):
    port, up, _ = start(upstreams, edgeguard, tmp_path)
    with eg.Client(port) as c:
        resp = c.request("POST", f"/.well-known/acme-challenge/{TOKEN}", body=b"x", host="posthog.example.com")
    assert resp.status == 405
    assert KEY_AUTHORIZATION.encode() not in resp.body
    assert up.snapshot() == []


def test_check_refuses_a_missing_webroot(edgeguard_bin, tmp_path):
    config = eg.basic_config(eg.free_port(), {"app": ["127.0.0.1:9"]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    config["listeners"][0]["acme_webroot"] = str(tmp_path / "nowhere")
    path = tmp_path / "edgeguard.yaml"
    path.write_text(eg.dump_yaml(config))
    r = eg.run_cli(edgeguard_bin, "check", "--config", str(path))
    assert r.returncode != 0
    assert "acme_webroot" in r.stderr and "not a directory" in r.stderr
