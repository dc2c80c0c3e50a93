"""OpenTelemetry and webhooks through the real binary: OTLP/HTTP logs, traces and metrics in JSON and protobuf
(gzip or not) run the `otel` profile; planted personal data never reaches the recording upstream, clean exports
arrive byte-identical, malformed protobuf and JSON are refused with 400 and nothing is forwarded. Webhooks are
inspected and never rewritten. /metrics counts verdicts per profile for these profiles."""

from __future__ import annotations

import gzip
import json
import subprocess

import pytest

import eg
import promtext
from ops_helpers import admin_get

RULES = eg.source_dir() / "conf" / "privacy.yaml"
FIXTURES = eg.source_dir() / "tests" / "fixtures" / "otlp"
PROTO_DIR = eg.source_dir() / "filters" / "otlp" / "proto"
PLANTED = [b"ivan.petrov@example.ru", b"4111 1111", b"916", b"81.2.69.160", b"eyJhbGciOiJIUzI1NiJ9", b"abc123",
           b"u_8812"]
PB = "application/x-protobuf"


@pytest.fixture
def otel_routes(upstreams, edgeguard):
    logs = upstreams("capture-logs")
    metrics = upstreams("capture-metrics")
    plugins = upstreams("plugins")
    ai = upstreams("capture-ai")
    port, admin = eg.free_port(), eg.free_port()
    routes = [{"name": "capture-ai", "paths": ["/i/v0/ai"], "upstream": "capture-ai", "privacy": "ai"},
              {"name": "capture-logs", "paths": ["/i/v1/logs", "/i/v1/traces"], "upstream": "capture-logs",
               "privacy": "otel", "max_body": "16MiB"},
              {"name": "capture-metrics", "paths": ["/i/v1/metrics"], "upstream": "capture-metrics",
               "privacy": "otel", "max_body": "16MiB"},
              {"name": "webhooks", "paths": ["/public/webhooks", "/public/m/"], "upstream": "plugins",
               "privacy": "public_webhooks", "max_body": "512KB"}]
    config = eg.basic_config(port, {"capture-logs": [logs.address], "capture-metrics": [metrics.address],
                                    "plugins": [plugins.address], "capture-ai": [ai.address]}, routes,
                             admin_port=admin, extra={"privacy": {"rules": str(RULES)}})
    proc = edgeguard(config)
    return proc, admin, {"logs": logs, "traces": logs, "metrics": metrics, "plugins": plugins, "ai": ai}


def post(port: int, path: str, body: bytes, content_type: str, extra=()):
    with eg.Client(port) as c:
        return c.request("POST", path, headers=[("Content-Type", content_type)] + list(extra), body=body)


def decode_pb(kind: str, body: bytes) -> str:
    proto, message = {"logs": ("logs.proto", "opentelemetry.proto.logs.v1.ExportLogsServiceRequest"),
                      "traces": ("trace.proto", "opentelemetry.proto.trace.v1.ExportTraceServiceRequest"),
                      "metrics": ("metrics.proto", "opentelemetry.proto.metrics.v1.ExportMetricsServiceRequest")}[kind]
    return subprocess.run(["protoc", f"--decode={message}", f"-I{PROTO_DIR}", proto], input=body,
                          capture_output=True, check=True).stdout.decode()


@pytest.mark.parametrize("kind", ["logs", "traces", "metrics"])
@pytest.mark.parametrize("encoding", ["json", "protobuf", "json+gzip", "protobuf+gzip"])
def test_planted_export_reaches_upstream_without_personal_data(otel_routes, kind, encoding):
    proc, _, ups = otel_routes
    body = (FIXTURES / f"{kind}_planted.{'pb' if encoding.startswith('protobuf') else 'json'}").read_bytes()
    content_type = PB if encoding.startswith("protobuf") else "application/json"
    extra = []
    if encoding.endswith("gzip"):
        body = gzip.compress(body)
        extra = [("Content-Encoding", "gzip")]
    assert post(proc.listen_port, f"/i/v1/{kind}", body, content_type, extra).status == 200
    (req,) = ups[kind].wait_requests(1)
    assert req.header("Content-Type") == content_type and req.header("Content-Encoding") is None
    text = decode_pb(kind, req.body) if content_type == PB else req.body.decode()
    for value in PLANTED:
        assert value.decode() not in text, value
    if content_type != PB:
        json.loads(req.body)
    if kind == "logs":
        assert "password reset sent to [redacted:email]" in text
        assert "81.2.69.0" in text                       # client.address truncated like $ip
        assert "checkout-api" in text and "2024-000123" in text
    if kind == "traces":
        assert "POST /api/checkout" in text and "[redacted:card] declined" in text


@pytest.mark.parametrize("suffix", ["json", "pb"])
def test_clean_export_arrives_byte_identical(otel_routes, suffix):
    proc, _, ups = otel_routes
    body = (FIXTURES / f"logs_clean.{suffix}").read_bytes()
    content_type = PB if suffix == "pb" else "application/json"
    assert post(proc.listen_port, "/i/v1/logs", body, content_type).status == 200
    gz = gzip.compress(body)
    assert post(proc.listen_port, "/i/v1/logs", gz, content_type, [("Content-Encoding", "gzip")]).status == 200
    plain, compressed = ups["logs"].wait_requests(2)
    assert plain.body == body and compressed.body == gz
    assert compressed.header("Content-Encoding") == "gzip"


def _varint(n: int) -> bytes:
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def _nested_kvlist(depth: int) -> bytes:
    # AnyValue{kvlist_value{values{key:"k" value:<deeper>}}} nested `depth` times.
    inner = b"\x0a\x01x"  # string_value "x"
    for _ in range(depth):
        kv = b"\x0a\x01k" + b"\x12" + _varint(len(inner)) + inner
        kvlist = b"\x0a" + _varint(len(kv)) + kv
        inner = b"\x32" + _varint(len(kvlist)) + kvlist
    record = b"\x2a" + _varint(len(inner)) + inner                     # LogRecord.body
    scope_logs = b"\x12" + _varint(len(record)) + record               # ScopeLogs.log_records
    resource_logs = b"\x12" + _varint(len(scope_logs)) + scope_logs    # ResourceLogs.scope_logs
    return b"\x0a" + _varint(len(resource_logs)) + resource_logs       # request.resource_logs


PLANTED_PB = (FIXTURES / "logs_planted.pb").read_bytes()
MALFORMED = {
    "truncated protobuf": (PB, PLANTED_PB[: len(PLANTED_PB) - 7]),
    "invalid wire type": (PB, b"\x0f" + PLANTED_PB),
    "length past the end": (PB, b"\x0a\xff\xff\x03" + PLANTED_PB[:20]),
    "nested too deep": (PB, _nested_kvlist(200)),
    "invalid UTF-8 in a string": (PB, b"\x0a\x0b\x12\x09\x12\x07\x2a\x05\x0a\x03\xff\xfeA"),
    "truncated JSON": ("application/json", (FIXTURES / "logs_planted.json").read_bytes()[:300]),
    "JSON that is not an export": ("application/json", b"[1, 2, 3]"),
    "JSON with an attribute that is not a list": ("application/json",
                                                  b'{"resourceLogs":[{"resource":{"attributes":{"user.email":"a@b.co"}}}]}'),
    "unknown content type": ("text/plain", b"user ivan.petrov@example.ru logged in"),
    "bad gzip": ("application/json", b"\x1f\x8b\x08\x00garbage"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_export_is_refused_and_nothing_forwarded(otel_routes, case):
    proc, _, ups = otel_routes
    content_type, body = MALFORMED[case]
    extra = [("Content-Encoding", "gzip")] if case == "bad gzip" else []
    r = post(proc.listen_port, "/i/v1/logs", body, content_type, extra)
    assert r.status in (400, 413, 415), (case, r.status)
    assert r.json()["status"] == r.status and b"ivan" not in r.body
    assert ups["logs"].snapshot() == []


def test_webhooks_are_inspected_never_rewritten(otel_routes):
    proc, _, ups = otel_routes
    stripe = json.dumps({"id": "evt_1NqK2vLmN0pQrStU", "type": "charge.succeeded",
                         "data": {"object": {"billing_details": {"email": "ivan.petrov@example.ru",
                                                                 "name": "Ivan Petrov"}}}}).encode()
    leaked = json.dumps({"id": "evt_2", "type": "debug", "data": {"card": "4111 1111 1111 1111"}}).encode()
    form = b"MessageSid=SM123&From=%2B79161234567&Body=hello"
    assert post(proc.listen_port, "/public/webhooks/stripe", stripe, "application/json").status == 200
    r = post(proc.listen_port, "/public/webhooks/debug", leaked, "application/json")
    assert r.status == 422 and r.json()["code"] == "privacy_rule_rejected"
    # A callback it cannot read is refused like any undecodable body on an inspected route.
    assert post(proc.listen_port, "/public/webhooks/twilio", form, "application/x-www-form-urlencoded").status == 400
    (received,) = ups["plugins"].wait_requests(1)
    assert received.body == stripe


def test_metrics_count_verdicts_for_the_new_profiles(otel_routes):
    proc, admin, _ = otel_routes
    assert post(proc.listen_port, "/i/v1/logs", (FIXTURES / "logs_planted.json").read_bytes(),
                "application/json").status == 200
    assert post(proc.listen_port, "/i/v1/logs", (FIXTURES / "logs_clean.pb").read_bytes(), PB).status == 200
    assert post(proc.listen_port, "/i/v1/logs", b"\x0f", PB).status == 400
    ai = (eg.source_dir() / "tests" / "fixtures" / "ai" / "generation_planted.multipart").read_bytes()
    assert post(proc.listen_port, "/i/v0/ai", ai,
                "multipart/form-data; boundary=----posthogAiBoundary7MA4YWxkTrZu0gW").status == 200
    assert post(proc.listen_port, "/public/webhooks/x", b'{"card":"4111 1111 1111 1111"}',
                "application/json").status == 422

    def counts():
        r = admin_get(admin, "/metrics")
        fams = promtext.parse(r.body.decode())
        get = lambda profile, verdict: promtext.value(fams, "edgeguard_privacy_requests_total", profile=profile,
                                                      verdict=verdict)
        return fams, get

    assert eg.wait_until(lambda: counts()[1]("public_webhooks", "rejected") == 1, eg.IO_TIMEOUT)
    fams, get = counts()
    assert get("otel", "rewritten") == 1 and get("otel", "unchanged") == 1 and get("otel", "decode_failed") == 1
    assert get("ai", "rewritten") == 1
    assert promtext.value(fams, "edgeguard_privacy_decisions_total", profile="otel", rule="otel-client-address",
                          action="truncate_ip") == 1
