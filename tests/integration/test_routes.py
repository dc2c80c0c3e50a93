"""Every hobby route of the shipped conf/edgeguard.yaml reaches the right upstream with the path it expects.

The default config is used as shipped; only addresses are rewritten, as text (so the YAML edgeguard reads is the
YAML we ship): each upstream's server points at its own recording upstream on loopback, the listener and admin
addresses at free loopback ports, the access log is turned off and the privacy rules path made absolute.
Upstreams are identified by the compose service address the default config gives them ("capture:3000"), so the
test does not depend on how the config names them.
"""

from __future__ import annotations

import re

import eg
import pytest

DEFAULT_CONFIG = eg.source_dir() / "conf" / "edgeguard.yaml"

# What an SDK posts: routes with a privacy profile decode and filter it, every route must still reach its upstream.
SDK_EVENT = b'{"api_key":"phc_test","event":"pageview","distinct_id":"d1","properties":{"$current_url":"/"}}'
# /i/v0/ai takes one LLM analytics event as multipart/form-data (its profile refuses anything else).
AI_BOUNDARY = "routesTestBoundary"
AI_EVENT = (f'--{AI_BOUNDARY}\r\nContent-Disposition: form-data; name="event"\r\nContent-Type: application/json\r\n\r\n'
            '{"event":"$ai_generation","distinct_id":"d1","properties":{"$ai_model":"m"}}\r\n'
            f'--{AI_BOUNDARY}--\r\n').encode()


def sdk_body(target: str) -> tuple[bytes, str]:
    if target.split("?")[0] == "/i/v0/ai":
        return AI_EVENT, f"multipart/form-data; boundary={AI_BOUNDARY}"
    return SDK_EVENT, "application/json"

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
    ("/i/v1/metrics", "capture-metrics:4319", "/i/v1/metrics"),
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


def _substitute_once(text: str, pattern: str, replacement, what: str) -> str:
    new, n = re.subn(pattern, replacement, text, count=0, flags=re.MULTILINE)
    assert n == 1, f"expected exactly one {what} in {DEFAULT_CONFIG}, found {n}"
    return new


@pytest.fixture
def hobby(upstreams, edgeguard):
    """The default config on loopback; returns (listen port, {service address: eg.Upstream})."""
    if not DEFAULT_CONFIG.is_file():
        pytest.fail(f"{DEFAULT_CONFIG} is missing")
    text = DEFAULT_CONFIG.read_text()
    by_service: dict[str, eg.Upstream] = {}

    def point_at_loopback(m: re.Match) -> str:
        service = m.group(2).strip()
        assert "," not in service, f"hobby upstreams have one server each: {m.group(0)}"
        up = upstreams(service.split(":")[0])
        by_service[service] = up
        return f'{m.group(1)}"{up.address}"{m.group(3)}'

    text, n = re.subn(r"(servers:\s*\[)([^\]]+)(\])", point_at_loopback, text)
    assert n >= 9, f"found only {n} upstream server lists"
    port = eg.free_port()
    text = _substitute_once(text, r"^(\s*address:\s*)0\.0\.0\.0:80\s*$", rf'\g<1>"{eg.LOOPBACK}:{port}"',
                            "plain listener on 0.0.0.0:80")
    text = _substitute_once(text, r"^(\s*address:\s*)127\.0\.0\.1:9180\s*$",
                            rf'\g<1>"{eg.LOOPBACK}:{eg.free_port()}"', "admin address")
    text = _substitute_once(text, r"^(workers:\s*)\d+", r"\g<1>2", "workers")
    text = _substitute_once(text, r"^(\s+output:\s*)stdout\s*$", r'\g<1>"off"', "access log output")
    rules = re.search(r"^\s+rules:\s*(\S+)\s*$", text, re.MULTILINE)
    if rules and not rules.group(1).startswith("/"):
        text = text.replace(rules.group(0), rules.group(0).replace(rules.group(1),
                                                                   str(DEFAULT_CONFIG.parent / rules.group(1))))
    edgeguard(text, listen_port=port)
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
            body, content_type = sdk_body(target)
            resp = client.request("POST", target, host="posthog.example.com", body=body,
                                  headers=[("Content-Type", content_type)])
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
