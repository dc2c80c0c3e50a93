"""LLM analytics through the real binary: /i/v0/ai multipart events and /i/v0/ai/batch JSON batches run the
`ai` profile of conf/privacy.yaml; planted personal data never reaches the recording upstream, clean bodies
arrive byte-identical, malformed multipart bodies are refused with 400 and nothing is forwarded."""

from __future__ import annotations

import gzip
import json

import pytest

import eg

RULES = eg.source_dir() / "conf" / "privacy.yaml"
FIXTURES = eg.source_dir() / "tests" / "fixtures" / "ai"
BOUNDARY = "----posthogAiBoundary7MA4YWxkTrZu0gW"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
# Every value planted in the fixtures, in the forms a detector or key rule must catch.
PLANTED = [b"ivan.petrov@example.ru", b"916", b"4111", "Иванов".encode(), b"phx_a1B2", b"203.0.113.77"]


@pytest.fixture
def ai_route(upstreams, edgeguard):
    capture_ai = upstreams("capture-ai")
    port = eg.free_port()
    routes = [{"name": "capture-ai", "paths": ["/i/v0/ai"], "upstream": "capture-ai", "privacy": "ai",
               "max_body": "28160KiB", "client_ip": "truncate"},
              {"name": "capture-ai-structure", "paths": ["/structure/i/v0/ai"], "upstream": "capture-ai",
               "privacy": "ai_structure_only", "strip_prefix": "/structure", "client_ip": "truncate"}]
    config = eg.basic_config(port, {"capture-ai": [capture_ai.address]}, routes,
                             extra={"privacy": {"rules": str(RULES)}})
    return edgeguard(config), capture_ai


def post(port: int, path: str, body: bytes, content_type: str = MULTIPART, extra=()):
    with eg.Client(port) as c:
        return c.request("POST", path, headers=[("Content-Type", content_type),
                                                ("Authorization", "Bearer phc_projectkey")] + list(extra), body=body)


def split_parts(body: bytes, boundary: str = BOUNDARY) -> dict[str, bytes]:
    parts = {}
    for chunk in body.split(b"--" + boundary.encode())[1:-1]:
        head, _, data = chunk[2:].partition(b"\r\n\r\n")
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode()
        parts[name] = data[:-2]
    return parts


def test_planted_generation_reaches_upstream_without_personal_data(ai_route):
    proc, upstream = ai_route
    body = (FIXTURES / "generation_planted.multipart").read_bytes()
    assert post(proc.listen_port, "/i/v0/ai/", body).status == 200
    (req,) = upstream.wait_requests(1)
    for value in PLANTED:
        assert value not in req.body, value
    assert req.header("Content-Type") == MULTIPART
    assert req.header("Content-Length") == str(len(req.body))
    parts = split_parts(req.body)
    assert list(parts) == ["event", "event.properties", "event.properties.$ai_input",
                           "event.properties.$ai_output_choices", "event.properties.$ai_output"]
    messages = json.loads(parts["event.properties.$ai_input"])
    assert messages[0] == {"role": "system", "content": "You are the support assistant of an online store. "
                                                        "Answer briefly."}
    assert "[redacted:email]" in messages[1]["content"] and "[redacted:card]" in messages[1]["content"]
    props = json.loads(parts["event.properties"])
    assert props["$ai_model"] == "gpt-4o-2024-08-06" and props["$ai_input_tokens"] == 412
    assert props["$ip"] == "203.0.113.0"
    assert json.loads(parts["event"])["distinct_id"].startswith("h1:")
    assert parts["event.properties.$ai_output"].startswith(b"Thanks! I found order 2024-000123.")


def test_gzip_multipart_is_inflated_inspected_and_forwarded_plain(ai_route):
    proc, upstream = ai_route
    body = (FIXTURES / "generation_planted.multipart").read_bytes()
    assert post(proc.listen_port, "/i/v0/ai", gzip.compress(body), extra=[("Content-Encoding", "gzip")]).status == 200
    (req,) = upstream.wait_requests(1)
    assert req.header("Content-Encoding") is None
    for value in PLANTED:
        assert value not in req.body, value
    assert len(split_parts(req.body)) == 5


def test_clean_generation_arrives_byte_identical(ai_route):
    proc, upstream = ai_route
    body = (FIXTURES / "generation_clean.multipart").read_bytes()
    gz = gzip.compress(body)
    assert post(proc.listen_port, "/i/v0/ai", body).status == 200
    assert post(proc.listen_port, "/i/v0/ai", gz, extra=[("Content-Encoding", "gzip")]).status == 200
    plain, compressed = upstream.wait_requests(2)
    assert plain.body == body and plain.header("Content-Type") == MULTIPART
    assert compressed.body == gz and compressed.header("Content-Encoding") == "gzip"


def test_batch_of_generations_is_filtered_as_json(ai_route):
    proc, upstream = ai_route
    body = (FIXTURES / "batch_planted.json").read_bytes()
    assert post(proc.listen_port, "/i/v0/ai/batch/", body, content_type="application/json").status == 200
    (req,) = upstream.wait_requests(1)
    for value in PLANTED[:4]:
        assert value not in req.body, value
    event = json.loads(req.body)["batch"][0]
    assert event["properties"]["$ai_model"] == "gpt-4o-2024-08-06"


def test_structure_only_profile_keeps_no_message_text(ai_route):
    proc, upstream = ai_route
    body = (FIXTURES / "generation_clean.multipart").read_bytes()
    assert post(proc.listen_port, "/structure/i/v0/ai", body).status == 200
    (req,) = upstream.wait_requests(1)
    parts = split_parts(req.body)
    assert b"warehouse" not in req.body and b"Where is my order" not in req.body
    assert json.loads(parts["event.properties.$ai_input"]) == "[redacted:ai-content]"
    assert parts["event.properties.$ai_output_choices"] == b"[redacted:ai-content]"
    props = json.loads(parts["event.properties"])
    assert props["$ai_tools"][0]["function"]["name"] == "lookup_order"
    assert props["$ai_output_tokens"] == 96 and props["$ai_total_cost_usd"] == 0.00207


def mp(*parts: tuple[str, str, bytes], boundary: str = BOUNDARY, tail: bytes = b"--\r\n") -> bytes:
    out = b""
    for name, ctype, data in parts:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\nContent-Type: {ctype}\r\n\r\n'.encode()
        out += data + b"\r\n"
    return out + f"--{boundary}".encode() + tail


EVENT = (b'{"event":"$ai_generation","distinct_id":"user_8812","uuid":"0192f6a1-7c5b-7a3e-9b2f-3d4c5e6f7a8b",'
         b'"properties":{"$ai_model":"gpt-4o"}}')
INPUT = json.dumps([{"role": "user", "content": "mail me at ivan.petrov@example.ru"}]).encode()
VALID = mp(("event", "application/json", EVENT), ("event.properties.$ai_input", "application/json", INPUT))

MALFORMED = {
    "truncated": VALID[: len(VALID) // 2],
    "missing close delimiter": VALID[: -len(b"--\r\n")] + b"\r\n",
    "wrong boundary": mp(("event", "application/json", EVENT), boundary="someOtherBoundary"),
    "preamble": b"hello\r\n" + VALID,
    "nested multipart": mp(("event", "application/json", EVENT),
                           ("event.properties.$ai_input", "multipart/mixed; boundary=inner",
                            b"--inner\r\n\r\n" + INPUT + b"\r\n--inner--")),
    "duplicated part name": mp(("event", "application/json", EVENT), ("event.properties.$ai_input", "application/json",
                                INPUT), ("event.properties.$ai_input", "text/plain", b"again")),
    "bare LF in headers": VALID.replace(b"Content-Type: application/json\r\n", b"Content-Type: application/json\n", 1),
    "event part over 32 KiB": mp(("event", "application/json",
                                  EVENT[:-2] + b',"pad":"' + b"x" * 33000 + b'"}}')),
    "first part is not the event": mp(("event.properties.$ai_input", "application/json", INPUT),
                                      ("event", "application/json", EVENT)),
    "blob that is not JSON": mp(("event", "application/json", EVENT),
                                ("event.properties.$ai_input", "application/json", INPUT + b'},"x":{"y":1')),
    "binary blob": mp(("event", "application/json", EVENT),
                      ("event.properties.$ai_input", "application/octet-stream", b"\xff\xfe\x00ivan.petrov@example.ru")),
    "unknown part": mp(("event", "application/json", EVENT), ("attachment", "text/plain", INPUT)),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_multipart_is_refused_and_nothing_forwarded(ai_route, case):
    proc, upstream = ai_route
    r = post(proc.listen_port, "/i/v0/ai", MALFORMED[case])
    assert r.status in (400, 413, 415), (case, r.status)
    doc = r.json()
    assert doc["status"] == r.status and doc["error"] and b"ivan" not in r.body
    assert upstream.snapshot() == []


def test_wrong_content_type_is_refused(ai_route):
    proc, upstream = ai_route
    r = post(proc.listen_port, "/i/v0/ai", VALID, content_type="application/json")
    assert r.status == 400
    r = post(proc.listen_port, "/i/v0/ai", VALID, content_type="multipart/form-data")
    assert r.status == 400
    assert upstream.snapshot() == []
