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


def _stages() -> dict[str, tuple[str, str]]:
    """Dockerfile stages: name -> (the image or stage it starts FROM, its text)."""
    stages = {}
    for chunk in re.split(r"(?m)^FROM ", (ROOT / "Dockerfile").read_text())[1:]:
        m = re.match(r"(\S+) AS (\S+)", chunk)
        assert m, f"unnamed stage: FROM {chunk.splitlines()[0]}"
        stages[m.group(2)] = (m.group(1), chunk)
    return stages


def _runtime_stage() -> str:
    """The runtime stage's text with that of every stage it is built on (the libraries come from runtime-libs)."""
    stages = _stages()
    assert "runtime" in stages, "Dockerfile needs a stage named runtime"
    assert list(stages)[-1] == "runtime", "the runtime stage must be the last (default) stage"
    text, name = "", "runtime"
    while name in stages:
        parent, chunk = stages[name]
        text = chunk + text
        name = parent
    assert name == "${RUNTIME_BASE_IMAGE}", f"the runtime image starts from {name}, not the slim base"
    return text


def test_runtime_stage_installs_every_linked_library():
    binary = eg.default_binary()
    if binary is None or shutil.which("dpkg") is None or shutil.which("ldd") is None:
        pytest.skip("SKIP: needs the built binary, ldd and dpkg")
    # A sanitizer build links the same libraries plus the sanitizer runtimes, which the image never ships.
    sanitizer_runtime = re.compile(r"/lib(asan|ubsan|tsan|lsan)\.so")
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30, check=True).stdout
    libs = [line.split("=>")[1].split()[0] for line in ldd.splitlines() if "=>" in line and "/" in line]
    libs = [lib for lib in libs if not sanitizer_runtime.search(lib)]
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
                   "COPY conf/ /etc/edgeguard/", "COPY --from=build /out/edgeguard"):
        assert needle in runtime, needle
    # The binary binds :80 as a non-root user: the build stage gives the file the capability it carries along.
    assert re.search(r"setcap cap_net_bind_service=\+ep /out/edgeguard", _stages()["build"][1])
    # Users run the Release build, not a debug one; the runtime image carries no compiler or -dev package.
    assert "-DCMAKE_BUILD_TYPE=Release" in _stages()["build"][1]
    code = "\n".join(line for line in runtime.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"\b(g\+\+|gcc|cmake|[\w.-]+-dev)\b", code), "build tools in the runtime image"
    assert re.search(r"(?m)^ARG RUNTIME_BASE_IMAGE=debian:bookworm-slim$", (ROOT / "Dockerfile").read_text())
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
    """Not root and no engine: outside CI, ci_smoke.sh must neither fail nor pretend the image was tested; with
    CI=true the same situation fails, since CI is where the image must be proven."""
    bindir = _fake_bin(tmp_path, "docker", "exit 1\n")
    _fake_bin(tmp_path, "id", 'if [ "$1" = -u ]; then echo 1000; else echo uid=1000; fi\n')
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = f"{bindir}:/usr/bin:/bin"
    r = subprocess.run(["bash", str(ROOT / "tests" / "docker" / "ci_smoke.sh")], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("SKIP: "), r.stdout
    assert "not root" in r.stdout
    r = subprocess.run(["bash", str(ROOT / "tests" / "docker" / "ci_smoke.sh")], env=dict(env, CI="true"),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout
    assert r.stdout.startswith("FAIL - "), r.stdout
    assert "not root" in r.stdout


def test_image_builds_without_registry_access_beyond_the_base_image():
    """A `# syntax=` directive makes BuildKit pull a frontend image, which offline builders cannot; and a daemon
    without a default bridge (sandboxed CI) needs the build on the host network for apt."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert not re.search(r"(?im)^#\s*syntax\s*=", dockerfile)
    assert re.search(r"(?m)^ARG BASE_IMAGE=debian:bookworm$", dockerfile)
    smoke = (ROOT / "tests" / "docker" / "smoke.sh").read_text()
    builds = [line for line in smoke.splitlines() if line.lstrip().startswith("docker build")]
    assert len(builds) >= 2 and all('--network "$BUILD_NETWORK"' in b for b in builds), builds


def test_shell_scripts_pass_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.skip("SKIP: shellcheck not installed")
    scripts = [ROOT / "tests" / "docker" / "smoke.sh", ROOT / "tests" / "docker" / "ci_smoke.sh",
               ROOT / "docker" / "entrypoint.sh", ROOT / ".ci" / "run", *sorted((ROOT / "scripts").glob("*.sh")),
               ROOT / "tests" / "fixtures" / "lz64" / "make.sh"]
    r = subprocess.run(["shellcheck", *map(str, scripts)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout


def test_no_package_mirror_host_names_in_the_repository():
    """The mirror comes from the machine's apt sources (ci_smoke.sh, the docs' debootstrap line); a host name
    written into the repository would send every builder to one mirror, reachable or not."""
    mirror = re.compile(r"\b(?:[a-z0-9-]+\.)*(?:debian\.org|ubuntu\.com|debian\.net)\b", re.IGNORECASE)
    skip_dirs = {".git", "__pycache__", "node_modules"}
    hits = []
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT)
        if (rel.parts and (rel.parts[0].startswith("build") or skip_dirs & set(rel.parts))) or not path.is_file():
            continue
        try:
            text = path.read_text(errors="strict")
        except (UnicodeDecodeError, OSError):
            continue  # binary fixtures
        hits += [f"{rel}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}" for m in mirror.finditer(text)]
    assert not hits, "package mirror host names:\n" + "\n".join(hits)
