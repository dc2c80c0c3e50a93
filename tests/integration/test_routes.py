"""Every hobby route of the shipped conf/edgeguard.yaml reaches the right upstream with the path it expects.

The default config is loaded as shipped; only addresses are rewritten: each upstream's servers point at its own
recording upstream on loopback, the first plain listener at a free loopback port, other listeners are dropped.
Upstreams are identified by the compose service address the default config gives them ("capture:3000"), so the
test does not depend on how the config names them.
"""

from __future__ import annotations

from pathlib import Path

import eg
import pytest

yaml = pytest.importorskip("yaml", reason="python3-yaml is needed to read the shipped config")

DEFAULT_CONFIG = eg.source_dir() / "conf" / "edgeguard.yaml"

# request target -> (compose service the hobby Caddyfile sends it to, target that service must receive)
HOBBY_ROUTES = [
    ("/e", "capture:3000", "/e"),
    ("/e/", "capture:3000", "/e/"),
    ("/e/x?ver=1.2", "capture:3000", "/e/x?ver=1.2"),
    ("/i/v0/e/", "capture:3000", "/i/v0/e/"),
    ("/i/v0", "capture:3000", "/i/v0"),
    ("/i/v0/aix", "capture:3000", "/i/v0/aix"),
    ("/i/v0/ai", "capture-ai:3000", "/i/v0/ai"),
    ("/i/v0/ai/otel", "capture-ai:3000", "/i/v0/ai/otel"),
    ("/batch", "capture:3000", "/batch"),
    ("/batch/", "capture:3000", "/batch/"),
    ("/capture/", "capture:3000", "/capture/"),
    ("/track/?ip=1", "capture:3000", "/track/?ip=1"),
    ("/engage/", "capture:3000", "/engage/"),
    ("/s", "replay-capture:3000", "/s"),
    ("/s/", "replay-capture:3000", "/s/"),
    ("/s/?compression=gzip-js", "replay-capture:3000", "/s/?compression=gzip-js"),
    ("/flags/?v=2", "feature-flags:3001", "/flags/?v=2"),
    ("/flags", "feature-flags:3001", "/flags"),
    ("/decide/", "feature-flags:3001", "/decide/"),
    ("/livestream/events", "livestream:8080", "/events"),
    ("/livestream/events?teamId=1", "livestream:8080", "/events?teamId=1"),
    ("/livestream", "livestream:8080", "/"),
    ("/public/webhooks/x", "plugins:6738", "/public/webhooks/x"),
    ("/public/webhooks", "plugins:6738", "/public/webhooks"),
    ("/public/m/x", "plugins:6738", "/public/m/x"),
    ("/i/v1/logs", "capture-logs:4318", "/i/v1/logs"),
    ("/i/v1/logs?token=t", "capture-logs:4318", "/i/v1/logs?token=t"),
    ("/i/v1/traces", "capture-logs:4318", "/i/v1/traces"),
    ("/posthog/x", "objectstorage:19000", "/posthog/x"),
    ("/posthog", "objectstorage:19000", "/posthog"),
    # Segment-aware: these share a prefix with a capture route but belong to the web app.
    ("/events", "web:8000", "/events"),
    ("/settings", "web:8000", "/settings"),
    ("/sessions", "web:8000", "/sessions"),
    ("/flagsx", "web:8000", "/flagsx"),
    ("/batches", "web:8000", "/batches"),
    ("/public/mx", "web:8000", "/public/mx"),
    ("/", "web:8000", "/"),
    ("/api/projects/1/", "web:8000", "/api/projects/1/"),
    ("/static/app.js", "web:8000", "/static/app.js"),
    # Normalized before matching: an encoded or dotted path cannot slip past (or into) a route.
    ("/%65", "capture:3000", "/e"),
    ("/%65/", "capture:3000", "/e/"),
    ("/e/../settings", "web:8000", "/settings"),
    ("//e/", "capture:3000", "/e/"),
    ("/x/../s/", "replay-capture:3000", "/s/"),
]


def _rewrite_paths_relative_to(node, base: Path):
    """Makes file references in the config absolute, since the rewritten copy lives in a temp dir."""
    if isinstance(node, dict):
        return {k: _rewrite_paths_relative_to(v, base) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_paths_relative_to(v, base) for v in node]
    if isinstance(node, str) and not node.startswith("/") and (base / node).is_file():
        return str(base / node)
    return node


@pytest.fixture
def hobby(upstreams, edgeguard):
    """The default config on loopback; returns (listen port, {service address: eg.Upstream})."""
    if not DEFAULT_CONFIG.is_file():
        pytest.fail(f"{DEFAULT_CONFIG} is missing")
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config = _rewrite_paths_relative_to(config, DEFAULT_CONFIG.parent)
    by_service: dict[str, eg.Upstream] = {}
    for name, spec in config["upstreams"].items():
        servers = spec["servers"]
        assert len(servers) == 1, f"upstream {name}: hobby routes have one server each"
        up = upstreams(name)
        by_service[servers[0]] = up
        spec["servers"] = [up.address]
    port = eg.free_port()
    plain = [l for l in config["listeners"] if not l.get("tls") and not l.get("redirect_https_to")]
    assert plain, "the default config needs a plain HTTP listener"
    listener = dict(plain[0])
    listener["address"] = f"{eg.LOOPBACK}:{port}"
    config["listeners"] = [listener]
    config["admin"] = dict(config.get("admin") or {}, address=f"{eg.LOOPBACK}:{eg.free_port()}")
    config["workers"] = 2
    config["access_log"] = dict(config.get("access_log") or {}, output="off")
    edgeguard(config)
    return port, by_service


def test_default_config_names_every_hobby_service(hobby):
    _, by_service = hobby
    wanted = {service for (_, service, _) in HOBBY_ROUTES}
    assert wanted <= set(by_service), sorted(wanted - set(by_service))


def test_every_hobby_route_reaches_its_upstream_with_the_expected_path(hobby):
    port, by_service = hobby
    wrong = []
    with eg.Client(port) as client:
        for target, service, upstream_target in HOBBY_ROUTES:
            for up in by_service.values():
                up.reset()
            resp = client.request("GET", target, host="posthog.example.com")
            if resp.status != 200:
                wrong.append((target, f"status {resp.status}", resp.body[:200]))
                continue
            got = resp.json()
            if got != {"upstream": by_service[service].name, "target": upstream_target}:
                wrong.append((target, f"want {service} {upstream_target}", got))
                continue
            (req,) = by_service[service].wait_requests(1)
            assert req.header("host") == "posthog.example.com"
    assert wrong == [], "\n".join(map(str, wrong))


def test_livestream_keeps_authorization_and_query(hobby):
    port, by_service = hobby
    with eg.Client(port) as client:
        resp = client.request("GET", "/livestream/events?teamId=2", headers=[("Authorization", "Bearer tok")])
    assert resp.status == 200
    (req,) = by_service["livestream:8080"].wait_requests(1)
    assert req.target == "/events?teamId=2"
    assert req.header("authorization") == "Bearer tok"
