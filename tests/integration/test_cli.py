"""The command line as other servers have it: --config FILE and --config=FILE, EDGEGUARD_CONFIG, --help on every
command, a version report naming the commit and the libraries, a `check` that changes nothing on the machine
(a missing hash key file is reported with the command that creates it), and `keygen`."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess

import eg

PRIVACY = """version: 1
hash_key:
  id: h1
  file: secrets/key
  create_if_missing: true
profiles:
  events:
    rules:
      - id: identity-hash
        detectors: [email]
        paths: [distinct_id]
        action: hash
"""


def _write_config(tmp_path, privacy: str = PRIVACY) -> str:
    (tmp_path / "privacy.yaml").write_text(privacy)
    config = eg.basic_config(eg.free_port(), {"app": ["127.0.0.1:9"]},
                             [{"name": "all", "paths": ["/"], "upstream": "app", "privacy": "events"}])
    config["privacy"] = {"rules": "privacy.yaml"}
    path = tmp_path / "edgeguard.yaml"
    path.write_text(eg.dump_yaml(config))
    return str(path)


def _run(binary, *args, env=None, cwd=None):
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=30, env=env, cwd=cwd,
                          stdin=subprocess.DEVNULL)


def test_check_has_no_side_effects_and_names_keygen(edgeguard_bin, tmp_path):
    path = _write_config(tmp_path)
    r = _run(edgeguard_bin, "check", "--config", path)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "secrets").exists()  # neither the key file nor its directory
    key = tmp_path / "secrets" / "key"
    assert f"edgeguard keygen --out {key}" in r.stderr
    assert ", 1 warning" in r.stdout

    made = _run(edgeguard_bin, "keygen", "--out", str(key))
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}\n", key.read_text())
    again = _run(edgeguard_bin, "keygen", "--out", str(key))
    assert again.returncode == 1 and "already exists" in again.stderr
    r = _run(edgeguard_bin, "check", "--config", path)
    assert r.returncode == 0 and "keygen" not in r.stderr and "warning" not in r.stdout


def test_config_equals_form_and_environment_variable(edgeguard_bin, tmp_path):
    path = _write_config(tmp_path)
    assert _run(edgeguard_bin, "check", f"--config={path}").returncode == 0
    env = dict(os.environ, EDGEGUARD_CONFIG=path)
    r = _run(edgeguard_bin, "check", env=env)
    assert r.returncode == 0, r.stderr
    assert path in r.stdout
    env.pop("EDGEGUARD_CONFIG")
    r = _run(edgeguard_bin, "check", env=env)
    assert r.returncode == 2 and "EDGEGUARD_CONFIG" in r.stderr


def test_serve_reads_edgeguard_config(upstreams, edgeguard_bin, tmp_path):
    up = upstreams("app")
    port = eg.free_port()
    config = eg.basic_config(port, {"app": [up.address]}, [{"name": "all", "paths": ["/"], "upstream": "app"}])
    path = tmp_path / "edgeguard.yaml"
    path.write_text(eg.dump_yaml(config))
    proc = subprocess.Popen([edgeguard_bin, "serve"], env=dict(os.environ, EDGEGUARD_CONFIG=str(path)),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert eg.wait_until(lambda: _port_answers(port), 10.0)
        with eg.Client(port) as c:
            assert c.request("GET", "/x").status == 200
    finally:
        proc.terminate()
        proc.wait(10)


def _port_answers(port: int) -> bool:
    try:
        with eg.Client(port) as c:
            return c.request("GET", "/ready-probe").status == 200
    except OSError:
        return False


def test_help_on_every_command(edgeguard_bin):
    for command in ("serve", "check", "keygen", "version"):
        r = _run(edgeguard_bin, command, "--help")
        assert r.returncode == 0, (command, r.stderr)
        assert "usage: edgeguard <command>" in r.stdout
    r = _run(edgeguard_bin, "filter", "--help")
    assert r.returncode == 0 and "--profile" in (r.stdout + r.stderr)


def test_version_names_commit_and_libraries(edgeguard_bin):
    r = _run(edgeguard_bin, "version")
    assert r.returncode == 0
    first, *libs = r.stdout.splitlines()
    assert re.fullmatch(r"edgeguard \d+\.\d+\.\d+ \(commit ([0-9a-f]{7,40}|unknown)\)", first), first
    if shutil.which("git") and (eg.source_dir() / ".git").exists():
        # The commit is taken when the build is configured: it must be a commit of this repository (HEAD
        # itself only right after a fresh configure, as in CI).
        commit = re.search(r"commit ([0-9a-f]+)", first).group(1)
        known = subprocess.run(["git", "-C", str(eg.source_dir()), "cat-file", "-e", commit + "^{commit}"],
                               capture_output=True)
        assert known.returncode == 0, commit
    names = {line.split()[0] for line in libs}
    assert {"libevent", "OpenSSL", "simdjson", "RE2", "yaml-cpp", "nghttp2", "protobuf", "ICU"} <= names, names
    for line in libs:
        assert re.search(r"\d", line), line  # a version number, never "unknown"


def test_failing_sample_is_reported_once_quoting_it(edgeguard_bin, tmp_path):
    privacy = PRIVACY.replace("        action: hash\n", "        action: hash\n        must_match: [\"plain text\"]\n")
    privacy += "  web:\n    extends: events\n  mobile:\n    extends: events\n"
    path = _write_config(tmp_path, privacy)
    r = _run(edgeguard_bin, "check", "--config", path)
    assert r.returncode == 1
    assert r.stderr.count('must_match sample "plain text" does not match') == 1, r.stderr
