"""The container pieces that can be checked without a Docker engine: the runtime stage installs a package for
every shared library the built binary links, the entrypoint checks the config before serving, the compose
drop-in replaces the `proxy` service on the same ports with the conf mount, and the smoke test skips visibly
(exit 0) when `docker info` fails."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

import eg

ROOT = eg.source_dir()


def _runtime_stage() -> str:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"(?m)^FROM ", text)
    runtime = [s for s in stages if re.match(r"\S+ AS runtime\b", s)]
    assert len(runtime) == 1, "Dockerfile needs exactly one stage named runtime"
    assert stages[-1] is runtime[0], "the runtime stage must be the last (default) stage"
    return runtime[0]


def test_runtime_stage_installs_every_linked_library():
    binary = eg.default_binary()
    if binary is None or shutil.which("dpkg") is None or shutil.which("ldd") is None:
        pytest.skip("SKIP: needs the built binary, ldd and dpkg")
    if eg.binary_is_sanitized(binary):
        pytest.skip("SKIP: the image ships the plain build; a sanitizer build links its runtimes (and more)")
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30, check=True).stdout
    libs = [line.split("=>")[1].split()[0] for line in ldd.splitlines() if "=>" in line and "/" in line]
    packages = set()
    for lib in libs:
        real = os.path.realpath(lib)
        for candidate in (real, lib):
            r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True, timeout=30)
            if r.returncode == 0:
                packages.add(r.stdout.split(":")[0])
                break
        else:
            pytest.fail(f"{lib} belongs to no Debian package")
    # Present in every Debian base image (essential or required by apt itself).
    base = {"libc6", "libgcc-s1", "libstdc++6"}
    runtime = _runtime_stage()
    missing = sorted(p for p in packages - base if not re.search(rf"(?<![\w.-]){re.escape(p)}(?![\w.-])", runtime))
    assert not missing, f"runtime stage lacks packages for linked libraries: {missing}"


def test_runtime_stage_shape():
    runtime = _runtime_stage()
    for needle in ("USER edgeguard", "EXPOSE 80 443 9180", "STOPSIGNAL SIGTERM", "/readyz", "HEALTHCHECK",
                   "cap_net_bind_service", "COPY conf/ /etc/edgeguard/"):
        assert needle in runtime, needle
    code = "\n".join(line for line in runtime.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"[\w.+]+-dev\b", code), "no -dev packages in the runtime image"


def _fake_bin(tmp_path: Path, name: str, script: str) -> Path:
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    p = d / name
    p.write_text("#!/bin/sh\n" + script)
    p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return d


def test_entrypoint_checks_before_serving_and_stops_on_a_bad_config(tmp_path):
    entry = (ROOT / "docker" / "entrypoint.sh").read_text()
    calls = tmp_path / "calls"
    fake = tmp_path / "edgeguard"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n[ "$1" = check ] && exit "${{CHECK_RC:-0}}"\nexit 0\n')
    fake.chmod(0o755)
    script = tmp_path / "entrypoint.sh"
    script.write_text(entry.replace("/usr/local/bin/edgeguard", str(fake)))
    env = dict(os.environ, EDGEGUARD_CONFIG="/cfg/edgeguard.yaml")

    assert subprocess.run(["sh", str(script)], env=env, timeout=30).returncode == 0
    assert calls.read_text().splitlines() == ["check --config /cfg/edgeguard.yaml",
                                              "serve --config /cfg/edgeguard.yaml"]
    calls.unlink()
    r = subprocess.run(["sh", str(script), "serve"], env=dict(env, CHECK_RC="1"), timeout=30)
    assert r.returncode == 1
    assert calls.read_text().splitlines() == ["check --config /cfg/edgeguard.yaml"]  # never served
    calls.unlink()
    assert subprocess.run(["sh", str(script), "version"], env=env, timeout=30).returncode == 0
    assert calls.read_text().splitlines() == ["version"]


def test_compose_dropin_replaces_the_proxy_service():
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load((ROOT / "conf" / "docker-compose.edgeguard.yml").read_text())
    proxy = doc["services"]["proxy"]
    assert set(proxy["ports"]) == {"80:80", "443:443"}
    assert "./edgeguard/conf:/etc/edgeguard:ro" in proxy["volumes"]
    assert proxy["entrypoint"] == ["/usr/local/bin/edgeguard-entrypoint"]
    assert proxy["command"] == ["serve"]  # Caddy's inherited `-c '...'` must not reach our entrypoint
    assert proxy["stop_signal"] == "SIGTERM"
    assert "/readyz" in " ".join(proxy["healthcheck"]["test"])
    assert "EDGEGUARD_HASH_KEY" in proxy["environment"]


def test_smoke_script_skips_visibly_without_a_docker_engine(tmp_path):
    bindir = _fake_bin(tmp_path, "docker", "exit 1\n")  # `docker info` fails, as on this machine
    env = dict(os.environ, PATH=f"{bindir}:/usr/bin:/bin")
    r = subprocess.run(["bash", str(ROOT / "tests" / "docker" / "smoke.sh")], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("SKIP: "), r.stdout


def test_ci_wrapper_skips_visibly_when_it_cannot_start_an_engine(tmp_path):
    """Not root and no engine: ci_smoke.sh must neither fail CI nor pretend the image was tested."""
    bindir = _fake_bin(tmp_path, "docker", "exit 1\n")
    _fake_bin(tmp_path, "id", 'if [ "$1" = -u ]; then echo 1000; else echo uid=1000; fi\n')
    env = dict(os.environ, PATH=f"{bindir}:/usr/bin:/bin")
    r = subprocess.run(["bash", str(ROOT / "tests" / "docker" / "ci_smoke.sh")], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("SKIP: "), r.stdout
    assert "not root" in r.stdout


def test_image_builds_without_registry_access_beyond_the_base_image():
    """A `# syntax=` directive makes BuildKit pull a frontend image, which offline builders cannot; and a daemon
    without a default bridge (sandboxed CI) needs the build on the host network for apt."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert not re.search(r"(?im)^#\s*syntax\s*=", dockerfile)
    assert re.search(r"(?m)^ARG BASE_IMAGE=debian:bookworm$", dockerfile)
    smoke = (ROOT / "tests" / "docker" / "smoke.sh").read_text()
    builds = [line for line in smoke.splitlines() if line.lstrip().startswith("docker build")]
    assert len(builds) == 2 and all('--network "$BUILD_NETWORK"' in b for b in builds), builds


def test_shell_scripts_pass_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.skip("SKIP: shellcheck not installed")
    scripts = [ROOT / "tests" / "docker" / "smoke.sh", ROOT / "tests" / "docker" / "ci_smoke.sh",
               ROOT / "docker" / "entrypoint.sh"]
    r = subprocess.run(["shellcheck", *map(str, scripts)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout
