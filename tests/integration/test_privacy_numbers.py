"""Identifiers sent as JSON numbers and numbers glued to a word, through the real binary on the shipped rules
(the two shapes that once slipped through): a posthog-js-style gzip batch, a mobile batch and a /flags body carrying a card,
phones, an INN and a SNILS as JSON integers and as `tel79161234567`-style strings arrive at the recording
upstream without any of them; the numbers events really carry (timestamps, prices, counts, screen sizes,
build numbers, exponent and fraction forms that are not integers) arrive byte-identical, and a batch made only of those is
forwarded untouched in its original encoding."""

from __future__ import annotations

import gzip
import json

import pytest

import eg

RULES = eg.source_dir() / "conf" / "privacy.yaml"

# Written as JSON text, not built with json.dumps, so the test controls every byte of the numbers.
NUMERIC_PII = ('"card":4111111111111111,"callback":79161234567,"mobile_nsn":9161234567,"tax":500100732259,'
               '"insurance":11223344595,"mir":2200700123456781,"list":[89161234567,5555555555554444]')
GLUED_PII = ('"note":"tel79161234567 card4111111111111111 inn500100732259 pay k@a.co4111111111111111",'
             '"chat":"call me: phone89161234567, thanks"')
PLANTED = ["4111111111111111", "79161234567", "9161234567", "500100732259", "11223344595", "2200700123456781",
           "89161234567", "5555555555554444", "k@a.co"]
# Member texts that must arrive exactly as sent.
CLEAN_MEMBERS = ['"$screen_width":1080', '"$screen_height":2400', '"$screen_density":2.625', '"$app_build":20241128',
                 '"ts_ms":1718031234566', '"ts_s":1718031234', '"$time":1718031234.566', '"price":4590.00',
                 '"count":3', '"big":4.111111111111111e14', '"not_a_card":4111111111111112',
                 '"company_inn":7707083893', '"order_id":2024000123', '"delta":-1080',
                 '"build_tag":"build20241128"', '"version":"v1.2.3"', '"model":"SM-G991B"',
                 '"hash":"9fceb02d0ae598e95dc970b74767f19372d61af8"', '"device":"a3f9c2e4b7d18f06"']
CLEAN = ",".join(CLEAN_MEMBERS)


def event(name: str, props: str) -> str:
    return ('{"event":"' + name + '","distinct_id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","timestamp":1718031234566,'
            '"properties":{' + props + '}}')


@pytest.fixture
def proxy(upstreams, edgeguard):
    # A shipped file: without it the feature under test is missing, never a reason to skip.
    assert RULES.exists(), "conf/privacy.yaml not present"
    capture = upstreams("capture")
    flags = upstreams("flags")
    port = eg.free_port()
    routes = [
        {"name": "capture", "paths": ["/e", "/batch", "/i/v0/e"], "upstream": "capture", "privacy": "events",
         "max_body": "1MiB"},
        {"name": "flags", "paths": ["/flags"], "upstream": "flags", "privacy": "flags", "max_body": "1MiB"},
    ]
    config = eg.basic_config(port, {"capture": [capture.address], "flags": [flags.address]}, routes,
                             extra={"privacy": {"rules": str(RULES)}})
    return edgeguard(config), capture, flags


def post(proc: eg.Edgeguard, target: str, body: bytes, headers: list) -> eg.Response:
    with eg.Client(proc.listen_port) as c:
        return c.request("POST", target, headers=headers, body=body)


def assert_clean_of_planted(body: bytes) -> str:
    text = body.decode()
    json.loads(text)  # what capture would parse
    for planted in PLANTED:
        assert planted not in text, f"{planted} reached the upstream: {text}"
    for member in CLEAN_MEMBERS:
        assert member in text, f"{member} did not arrive byte-identical: {text}"
    return text


@pytest.mark.parametrize("encoding", ["gzip-js", "content-encoding-gzip", "plain"])
def test_numeric_and_glued_identifiers_never_reach_capture(proxy, encoding):
    proc, capture, _ = proxy
    batch = ('{"api_key":"phc_public","batch":[' + event("purchase", NUMERIC_PII + "," + CLEAN) + "," +
             event("$screen", GLUED_PII + "," + CLEAN) + '],"sent_at":"2024-06-10T14:23:45.123Z"}').encode()
    if encoding == "gzip-js":  # posthog-js: gzip as text/plain with the query hint
        r = post(proc, "/batch/?compression=gzip-js&ver=1.200.0", gzip.compress(batch),
                 [("Content-Type", "text/plain")])
    elif encoding == "content-encoding-gzip":  # mobile SDKs
        r = post(proc, "/batch/", gzip.compress(batch),
                 [("Content-Type", "application/json"), ("Content-Encoding", "gzip")])
    else:
        r = post(proc, "/i/v0/e/", batch, [("Content-Type", "application/json")])
    assert r.status == 200, r.body
    (req,) = capture.wait_requests(1)
    assert req.header("Content-Type") == "application/json" and req.header("Content-Encoding") is None
    text = assert_clean_of_planted(req.body)
    forwarded = json.loads(text)["batch"]
    props = forwarded[0]["properties"]
    # Each numeric identifier became a string naming what it was; nothing else moved.
    assert props["card"] == "[redacted:card]" and props["mir"] == "[redacted:card]"
    assert props["callback"] == props["mobile_nsn"] == "[redacted:phone]"
    assert props["tax"] == "[redacted:inn]" and props["insurance"] == "[redacted:snils]"
    assert props["list"] == ["[redacted:phone]", "[redacted:card]"]
    assert forwarded[1]["properties"]["note"] == (
        "tel[redacted:phone] card[redacted:card] inn[redacted:inn] pay [redacted:email][redacted:card]")
    assert forwarded[1]["properties"]["chat"] == "call me: phone[redacted:phone], thanks"
    assert forwarded[0]["timestamp"] == 1718031234566


def test_a_numeric_identity_on_flags_is_hashed_and_numeric_person_properties_never_arrive(proxy):
    # Person properties are allowlist-first (unlisted keys dropped); the clean members sit beside them.
    proc, _, flags = proxy
    body = ('{"api_key":"phc_public","distinct_id":79161234567,"person_properties":{' + NUMERIC_PII + "}," + CLEAN +
            "}").encode()
    r = post(proc, "/flags/?v=2", body, [("Content-Type", "application/json")])
    assert r.status == 200, r.body
    (req,) = flags.wait_requests(1)
    text = assert_clean_of_planted(req.body)
    assert json.loads(text)["distinct_id"].startswith("h1:")


def test_a_batch_of_ordinary_numbers_is_forwarded_byte_identical_in_its_encoding(proxy):
    proc, capture, _ = proxy
    batch = ('{"api_key":"phc_public","batch":[' + event("$screen", CLEAN) + "," + event("app_opened", CLEAN) +
             "]}").encode()
    wire = gzip.compress(batch)
    r = post(proc, "/batch/", wire, [("Content-Type", "application/json"), ("Content-Encoding", "gzip")])
    assert r.status == 200, r.body
    (req,) = capture.wait_requests(1)
    assert req.body == wire
    assert req.header("Content-Encoding") == "gzip"
