"""Fresh personal data through the real binary, on the proxy path and through `edgeguard filter`: person
properties under unlisted keys, keys spelt to dodge the rules, values encoded inside strings, dotted phones
and cards, integers written as floats, EAN-13 barcodes, NaN in /flags bodies, personal data used as keys
(never in the audit) and `Content-Encoding: lz64`. Values are made for these tests; look-alikes must arrive
byte-identical."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess

import pytest

import eg
from capture_decode import lz_compress_to_base64

RULES = eg.source_dir() / "conf" / "privacy.yaml"
BIN = os.environ.get("EDGEGUARD_BIN", "")
TOKEN = "phc_Tq7kC2wXbV9mN4rL8sJ6hG3fD1aZ5yE0uI2oP7cB3xM"


def batch(properties: dict, **top) -> dict:
    event = {"event": "$identify", "distinct_id": "0193a1f2-6b7c-7d8e-9f01-23456789abcd", **top,
             "properties": properties}
    return {"api_key": TOKEN, "batch": [event]}


@pytest.fixture
def proxy(upstreams, edgeguard):
    # A shipped file: without it the feature under test is missing, never a reason to skip.
    assert RULES.exists(), "conf/privacy.yaml not present"
    capture = upstreams("capture")
    flags = upstreams("feature-flags")
    web = upstreams("web")
    port = eg.free_port()
    routes = [
        {"name": "capture", "paths": ["/e", "/batch"], "upstream": "capture", "privacy": "events",
         "max_body": "1MiB", "client_ip": "truncate"},
        {"name": "flags", "paths": ["/flags"], "upstream": "flags", "privacy": "flags", "max_body": "1MiB"},
        {"name": "web", "paths": ["/"], "upstream": "web"},
    ]
    config = eg.basic_config(port, {"capture": [capture.address], "flags": [flags.address], "web": [web.address]},
                             routes, extra={"privacy": {"rules": str(RULES)}})
    return edgeguard(config), capture, flags


def post(proc, path: str, body: bytes, headers: list[tuple[str, str]]):
    with eg.Client(proc.listen_port) as c:
        return c.request("POST", path, headers=headers, body=body)


def test_person_properties_under_unlisted_and_disguised_keys_never_reach_capture(proxy):
    proc, capture, _ = proxy
    body = batch({"$set": {"display_name": "Olga S.", "first name": "Olga", "n\u0430me": "Olga", "plan": "pro",
                           "$os": "Android"},
                  "$group_set": {"user_name": "olga_s"}, "userPassword": "Tr0ub4dor&3"},
                 **{"$set_once": {"username": "olga_s", "$initial_referrer": "https://ya.ru/"}})
    r = post(proc, "/batch/", gzip.compress(json.dumps(body).encode()),
             [("Content-Type", "application/json"), ("Content-Encoding", "gzip")])
    assert r.status == 200
    (req,) = capture.wait_requests(1)
    text = req.body.decode()
    for leaked in ("Olga", "olga_s", "Tr0ub4dor"):
        assert leaked not in text
    event = json.loads(req.body)["batch"][0]
    assert event["properties"]["$set"] == {"plan": "pro", "$os": "Android"}
    assert event["$set_once"] == {"$initial_referrer": "https://ya.ru/"}


def test_encoded_values_are_scanned_as_what_they_decode_to(proxy):
    proc, capture, _ = proxy
    state = base64.urlsafe_b64encode(json.dumps({"return_to": "/cart", "login_hint": "p.sidorov@corp.example"})
                                     .encode()).decode().rstrip("=")
    props = {
        "ref": base64.b64encode(b"olga.smirnova@mail.example.ru").decode(),
        "$current_url": f"https://shop.example/oauth/callback?state={state}&lang=ru",
        "back": "https://shop.example/r?contact=m.ivanova%2540inbox.example",
        "payload": json.dumps({"user": {"contact": "k.orlova\u0040mail.example"}, "theme": "dark"},
                              ensure_ascii=True).replace("@", "\\u0040"),
    }
    r = post(proc, "/e/", json.dumps(batch(props)).encode(), [("Content-Type", "application/json")])
    assert r.status == 200
    (req,) = capture.wait_requests(1)
    text = req.body.decode()
    for leaked in ("olga.smirnova", state, "m.ivanova", "k.orlova", "sidorov"):
        assert leaked not in text
    out = json.loads(req.body)["batch"][0]["properties"]
    assert out["ref"] == "[redacted:email]"
    assert out["$current_url"].endswith("&lang=ru")
    assert json.loads(out["payload"])["theme"] == "dark"


def test_separators_floats_and_barcodes(proxy):
    proc, capture, _ = proxy
    planted = b'{"api_key":"%s","batch":[{"event":"order","distinct_id":"u-7","properties":{' \
              b'"comment":"call 8.926.418.53.07","pay":"4532.0126.6473.7826","alt":"5186 8830-0596 1234",' \
              b'"card":4532012664737826.0,"whatsapp":7.9264185307E10}}]}' % TOKEN.encode()
    r = post(proc, "/batch/", planted, [("Content-Type", "application/json")])
    assert r.status == 200
    (req,) = capture.wait_requests(1)
    props = json.loads(req.body)["batch"][0]["properties"]
    assert props == {"comment": "call [redacted:phone]", "pay": "[redacted:card]", "alt": "[redacted:card]",
                     "card": "[redacted:card]", "whatsapp": "[redacted:phone]"}
    capture.reset()
    clean = b'{"api_key":"%s","batch":[{"event":"product_viewed","distinct_id":"u-7","properties":{' \
            b'"barcode":"4600112813541","ean":4609062288638,"sku":"4609778885602","price":1299.0,' \
            b'"app_version":"4.12.0.4120031","density":2.625,"has_phone":true,"phone_model":"Pixel 8"}}]}' \
            % TOKEN.encode()
    r = post(proc, "/batch/", clean, [("Content-Type", "application/json")])
    assert r.status == 200
    (req,) = capture.wait_requests(1)
    assert req.body == clean


def test_flags_with_nan_is_forwarded_unchanged_and_filtered_when_it_carries_personal_data(proxy):
    proc, _, flags = proxy
    clean = (b'{"api_key":"%s","distinct_id":"u-5521","person_properties":{"plan":"pro","$geoip_latitude":NaN,'
             b'"$geoip_longitude":-Infinity},"flag_keys_to_evaluate":["beta"]}' % TOKEN.encode())
    r = post(proc, "/flags/?v=2", clean, [("Content-Type", "application/json")])
    assert r.status == 200
    (req,) = flags.wait_requests(1)
    assert req.body == clean
    flags.reset()
    personal = (b'{"api_key":"%s","distinct_id":"u-5521","person_properties":{"$geoip_latitude":NaN,'
                b'"first name":"Olga","plan":"pro"},"group_properties":{"company":{"display_name":"Olga"}}}'
                % TOKEN.encode())
    r = post(proc, "/flags/?v=2", personal, [("Content-Type", "application/json")])
    assert r.status == 200
    (req,) = flags.wait_requests(1)
    assert b"Olga" not in req.body
    assert b'"$geoip_latitude":NaN' in req.body


def test_lz64_content_encoding_header_is_decoded(proxy):
    proc, capture, _ = proxy
    body = lz_compress_to_base64(json.dumps(batch({"note": "write to o.petrova@mail.example"}))).encode()
    r = post(proc, "/e/", body, [("Content-Type", "text/plain"), ("Content-Encoding", "lz64")])
    assert r.status == 200
    (req,) = capture.wait_requests(1)
    assert b"o.petrova" not in req.body
    assert json.loads(req.body)["batch"][0]["properties"]["note"] == "write to [redacted:email]"


def run_cli(body: bytes, *args: str):
    env = dict(os.environ, EDGEGUARD_HASH_KEY="cli-test-key-0123456789abcdef")
    return subprocess.run([BIN, "filter", "--rules", str(RULES), *args], input=body, capture_output=True,
                          env=env, timeout=60)


@pytest.mark.skipif(not BIN or not os.path.exists(BIN), reason="EDGEGUARD_BIN not built")
def test_cli_explain_never_prints_personal_data_used_as_keys():
    body = json.dumps(batch({"saved_cards": {"4532012664737826": {"exp": "12/29"}},
                             "by_phone": {"79264185307": 1}, "ibans": {"DE20370400442045543072": True}})).encode()
    r = run_cli(body, "--profile", "events", "--explain")
    assert r.returncode == 1, r.stderr
    explain = r.stderr.decode()
    assert "batch[*].properties.saved_cards.*" in explain
    for data in ("4532012664737826", "79264185307", "DE20370400442045543072"):
        assert data not in explain
        assert data not in r.stdout.decode()


@pytest.mark.skipif(not BIN or not os.path.exists(BIN), reason="EDGEGUARD_BIN not built")
def test_cli_flags_profile_accepts_nan_and_events_refuses_it():
    body = b'{"api_key":"phc_x","distinct_id":"u-1","person_properties":{"$geoip_latitude":NaN}}'
    r = run_cli(body, "--profile", "flags", "--path", "/flags/")
    assert r.returncode == 0, r.stderr
    assert r.stdout == body
    r = run_cli(body, "--profile", "events")
    assert r.returncode == 4
    assert json.loads(r.stdout)["status"] == 400
