"""Every SDK wire shape through the real binary on the shipped config.

Each shape is encoded exactly as an SDK sends it (posthog-js gzip `text/plain` with and without the
`compression=gzip-js` hint, base64 form including the `+`→space repair, sendBeacon's `compression=base64`,
posthog-js-lite lz64 form, legacy `GET /e/?data=`, mobile/server `Content-Encoding: gzip` batches, /flags v2 as
JSON, form and gzip, /engage, posthog-js replay with `cv: "2024-10"` partial compression, mobile replay
wireframes), with personal data planted in it, and sent through `edgeguard serve` running the shipped
conf/edgeguard.yaml + conf/privacy.yaml (only addresses rewritten) to recording upstreams. At the upstream the
body must decode under capture's (or feature-flags') own rules — `capture_decode.py`, written from WIRE.md §2/§3,
not from edgeguard's decoders — with every planted value gone in every encoding, the clean look-alikes and the
structure intact and the framing correct. Payloads come from fixtures written for this test and, when
../shared is present, from the real SDK bodies in ../shared/corpus.

Report mode runs the same rules with the profiles switched to `mode: report`: bodies are forwarded
byte-for-byte and the metrics endpoint counts what would have happened. Reject paths answer capture-style JSON
that never echoes the data.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import os
import re
import shutil
import subprocess
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

import capture_decode as cd
import eg
import promtext
from ops_helpers import admin_get

SOURCE = eg.source_dir()
DEFAULT_CONFIG = SOURCE / "conf" / "edgeguard.yaml"
RULES = SOURCE / "conf" / "privacy.yaml"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sdk_shapes"
SHARED = Path(os.environ.get("EDGEGUARD_SHARED_DIR", SOURCE.parent / "shared"))
CORPUS = SHARED / "corpus"
DUMP = "PostHog+hog-rs__capture__tests__requests_dump.jsonl."

CAPTURE = "capture:3000"
REPLAY = "replay-capture:3000"
FLAGS = "feature-flags:3001"

# --------------------------------------------------------------------------------------------------------------
# What is planted, what the shipped rules must turn it into, and the look-alikes they must leave alone.
# --------------------------------------------------------------------------------------------------------------

IDENTITY_EMAIL = "peter.mueller@example.net"  # as distinct_id: keyed hash (identity-hash)
SET_EMAIL = "anna.schmidt@example.org"  # $set.email: dropped (person-keys)
SET_NAME = "Anna Schmidt"  # $set.name: dropped (person-keys)
KEYED_PHONE = "+49 151 23456789"  # `phone` key: dropped (person-keys)
TEXT_EMAIL = "maria.rossi@example.com"  # inside free text: redacted (contact-data)
TEXT_PHONE = "+7 916 123-45-67"
CARD = "5555 5555 5555 4444"  # Luhn-valid (payment-data)
IBAN = "DE89 3704 0044 0532 0130 00"
CLIENT_IP = "81.2.69.142"  # properties.$ip: truncated by the route's client_ip policy
TEXT_IP = "81.2.69.160"  # a public IP in text: truncated (public-ip)
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

PLANTED_VALUES = [IDENTITY_EMAIL, SET_EMAIL, SET_NAME, KEYED_PHONE, TEXT_EMAIL, TEXT_PHONE, CARD, IBAN, CLIENT_IP,
                  TEXT_IP, PNG]

PLANTED_PROPS = {
    "phone": KEYED_PHONE,
    "note": f"please write to {TEXT_EMAIL} or call {TEXT_PHONE}",
    "payment_note": f"paid with {CARD} from {IBAN}",
    "$ip": CLIENT_IP,
    "login_from": f"last login from {TEXT_IP}",
}
EXPECTED_PROPS = {
    "note": "please write to [redacted:email] or call [redacted:phone]",
    "payment_note": "paid with [redacted:card] from [redacted:iban]",
    "$ip": "81.2.69.0",
    "login_from": "last login from 81.2.69.0",
}
# Each of these is a must_not_match sample of some rule in conf/privacy.yaml; they must arrive untouched.
CLEAN_PROPS = {
    "order_ref": "order 2024-000123",
    "asset": "logo@2x.png",
    "package": "@scope/pkg@1.2.3",
    "app_release": "1.418.10",
    "sent_ms": "1718036625123",
    "not_a_card": "4111 1111 1111 1112",
    "lan_host": "10.7.31.9",
    "company_inn": "7707083893",
    "when": "2024-06-10T14:23:45Z",
    "title": "Settings screen",
    "plan": "pro",
    "price": 49.9,
    "greeting": "Grüße aus Köln",
    # Five `~` hold an aligned 0x7e7e7e whatever the offset: its base64 is "fn5+", so every base64 of a
    # planted payload has a `+` for the form-repair case.
    "shortcut": "press ~~~~~ for the console",
}
# The keys the person-keys rule drops wherever they are (a subset of its regexes, enough for corpus payloads).
# The team's person properties listed in conf/privacy.yaml (events profile, inherited by flags).
LISTED_PERSON_PROPERTIES = {"plan", "tier", "company_size", "locale", "app_theme", "signup_source", "is_beta_tester",
                            "orders_count", "utm_source", "utm_medium", "utm_campaign"}
PERSON_KEY = re.compile(r"^(e[-_]?mail|phone|name|first[-_]?name|last[-_]?name|address|password)$", re.I)
HASHED = re.compile(r"^h1:[A-Za-z0-9_-]{43}$")


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _base64_cores(value: str) -> list[str]:
    """The parts of value's base64 that do not depend on where it starts (one per alignment)."""
    cores = []
    for shift in range(3):
        b64 = base64.b64encode(b"\0" * shift + value.encode()).decode().rstrip("=")
        cores.append(b64[4:-4])
    return [c for c in cores if len(c) >= 8]


def assert_no_planted(haystacks: list[str], values: list[str] = PLANTED_VALUES) -> None:
    """No planted value in any of the texts: as sent, with its spaces removed, percent-encoded or base64-encoded."""
    for text in haystacks:
        compact = _compact(text)
        for value in values:
            assert value not in text, f"planted {value!r} reached the upstream"
            assert _compact(value) not in compact, f"planted {value!r} reached the upstream (spacing changed)"
            assert urllib.parse.quote(value, safe="") not in text, f"planted {value!r} reached it percent-encoded"
            for core in _base64_cores(value):
                assert core not in text, f"planted {value!r} reached the upstream base64-encoded"


# --------------------------------------------------------------------------------------------------------------
# Planting.
# --------------------------------------------------------------------------------------------------------------


def document_events(doc: Any) -> list:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict) and isinstance(doc.get("batch"), list):
        return doc["batch"]
    return [doc]


def plant_event(ev: dict) -> None:
    props = ev.setdefault("properties", {})
    if "distinct_id" in props:
        props["distinct_id"] = IDENTITY_EMAIL
    if "distinct_id" in ev or "distinct_id" not in props:
        ev["distinct_id"] = IDENTITY_EMAIL
    props["$set"] = {**(props.get("$set") or {}), "email": SET_EMAIL, "name": SET_NAME, "plan": "pro"}
    if "event" not in ev:  # /engage: person properties at the top level
        ev["$set"] = {**(ev.get("$set") or {}), "email": SET_EMAIL, "name": SET_NAME, "plan": "pro"}
    props.update(PLANTED_PROPS)
    props.update(CLEAN_PROPS)


def plant_events(doc: Any) -> Any:
    doc = copy.deepcopy(doc)
    for ev in document_events(doc):
        plant_event(ev)
    return doc


def plant_flags(doc: dict) -> dict:
    doc = copy.deepcopy(doc)
    doc["distinct_id"] = IDENTITY_EMAIL
    doc["$anon_distinct_id"] = IDENTITY_EMAIL
    doc["ip_address"] = CLIENT_IP
    doc["person_properties"] = {**(doc.get("person_properties") or {}), "email": SET_EMAIL, "phone": KEYED_PHONE,
                                "note": PLANTED_PROPS["note"], "plan": "pro", "$os": "Android", **CLEAN_PROPS}
    groups = doc.setdefault("group_properties", {})
    first_group = next(iter(groups), "company")
    groups[first_group] = {**(groups.get(first_group) or {}), "billing_note": PLANTED_PROPS["payment_note"]}
    return doc


def _web_nodes() -> list:
    return [
        {"type": 2, "id": 9001, "tagName": "p", "attributes": {}, "childNodes": [
            {"type": 3, "id": 9002, "textContent": f"Signed in as {TEXT_EMAIL}"}]},
        {"type": 2, "id": 9003, "tagName": "input", "attributes": {"type": "tel", "value": TEXT_PHONE},
         "childNodes": []},
        {"type": 2, "id": 9004, "tagName": "div", "attributes": {"title": f"card {CARD}"}, "childNodes": [
            {"type": 3, "id": 9005, "textContent": f"Last login from {TEXT_IP}"}]},
    ]


def _first_element_with_children(node: dict) -> Optional[dict]:
    if node.get("type") == 2 and isinstance(node.get("childNodes"), list):
        for child in node["childNodes"]:
            found = _first_element_with_children(child)
            if found is not None:
                return found
        return node
    for child in node.get("childNodes", []):
        found = _first_element_with_children(child)
        if found is not None:
            return found
    return None


def plant_web_replay(doc: Any) -> Any:
    """Personal data in a FullSnapshot's text nodes, input values and attributes, in Mutation texts, attributes
    and adds, in StyleSheetRule adds and in Input events; a FullSnapshot is added when the payload has none."""
    doc = copy.deepcopy(doc)
    for ev in document_events(doc):
        props = ev["properties"]
        if "distinct_id" in props:
            props["distinct_id"] = IDENTITY_EMAIL
        else:
            ev["distinct_id"] = IDENTITY_EMAIL
        props["$ip"] = CLIENT_IP
        items = props["$snapshot_data"]
        if not any(i.get("type") == 2 for i in items):
            items.insert(0, {"type": 2, "timestamp": items[0]["timestamp"], "data": {
                "node": {"type": 0, "id": 8000, "childNodes": [
                    {"type": 2, "id": 8001, "tagName": "body", "attributes": {}, "childNodes": []}]},
                "initialOffset": {"left": 0, "top": 0}}})
        for item in items:
            data = item.get("data")
            if item.get("type") == 2:
                _first_element_with_children(data["node"])["childNodes"].extend(_web_nodes())
            elif item.get("type") == 3 and data.get("source") == 0:
                data.setdefault("texts", []).append({"id": 9002, "value": f"Contact {TEXT_EMAIL}"})
                data.setdefault("attributes", []).append({"id": 9004, "attributes": {"title": f"IBAN {IBAN}"}})
                data.setdefault("adds", []).append({"parentId": 9001, "nextId": None, "node": {
                    "type": 3, "id": 9010, "textContent": f"Call {TEXT_PHONE}"}})
            elif item.get("type") == 3 and data.get("source") == 8:
                data.setdefault("adds", []).append({"rule": f'.contact::after{{content:"{TEXT_EMAIL}"}}', "index": 1})
            elif item.get("type") == 3 and data.get("source") == 5:
                data["text"] = TEXT_EMAIL
    return doc


def _plant_wireframes(wireframes: list) -> None:
    wireframes.extend([
        {"id": 9101, "type": "text", "x": 0, "y": 0, "width": 300, "height": 20, "text": f"Hello {TEXT_EMAIL}"},
        {"id": 9102, "type": "input", "inputType": "text", "x": 0, "y": 30, "width": 300, "height": 40,
         "value": TEXT_PHONE, "label": f"Card {CARD}"},
        {"id": 9103, "type": "image", "x": 0, "y": 80, "width": 1, "height": 1, "base64": PNG},
    ])


def _fill_images(wireframes: list) -> None:
    """Every image the payload already has gets real pixels."""
    for wf in wireframes:
        if "base64" in wf:
            wf["base64"] = PNG
        _fill_images(wf.get("childWireframes") or [])


def plant_mobile_replay(doc: Any) -> Any:
    doc = copy.deepcopy(doc)
    for ev in document_events(doc):
        props = ev["properties"]
        if "distinct_id" in ev:
            ev["distinct_id"] = IDENTITY_EMAIL
        if "distinct_id" in props:
            props["distinct_id"] = IDENTITY_EMAIL
        props["$ip"] = CLIENT_IP
        items = cd.snapshot_items(ev)
        planted = False
        for item in items:
            data = item.get("data")
            if isinstance(data, dict) and isinstance(data.get("wireframes"), list):
                _fill_images(data["wireframes"])
                _plant_wireframes(data["wireframes"])
                planted = True
            elif isinstance(data, dict) and "href" in data:
                data["href"] = f"{data['href']}?contact={urllib.parse.quote(TEXT_EMAIL, safe='@')}"
                planted = True
        assert planted, "no mobile snapshot item to plant into"
    return doc


# --------------------------------------------------------------------------------------------------------------
# Shapes: a JSON document -> the request an SDK would send.
# --------------------------------------------------------------------------------------------------------------


@dataclass
class WireRequest:
    method: str
    target: str
    headers: list
    body: bytes
    service: str
    decode: Callable = cd.decode_capture


def _json(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _b64(doc: Any) -> str:
    return base64.b64encode(_json(doc)).decode()


FORM = ("Content-Type", "application/x-www-form-urlencoded")
TS = "1732665600123"


def gzip_js_hinted(doc):
    """posthog-js 1.78: fflate gzip as text/plain with ?compression=gzip-js (dump lines 5-13)."""
    return WireRequest("POST", f"/e/?compression=gzip-js&ip=1&_={TS}&ver=1.78.5", [("Content-Type", "text/plain")],
                       cd.fflate_gzip(_json(doc)), CAPTURE)


def gzip_js_unhinted(doc):
    """posthog-js current: the same gzip with no hint at all (PR #4100), to /i/v0/e/ per remote config."""
    return WireRequest("POST", "/i/v0/e/", [("Content-Type", "text/plain")], cd.fflate_gzip(_json(doc)), CAPTURE)


def base64_form(doc):
    """posthog-js 1.78 form: data=<urlencoded base64> (dump lines 2-4)."""
    body = "data=" + urllib.parse.quote(_b64(doc), safe="")
    return WireRequest("POST", f"/e/?ip=1&_={TS}&ver=1.78.5", [FORM], body.encode(), CAPTURE)


def base64_form_unescaped_plus(doc):
    """A form whose base64 `+` was not percent-encoded: URL decoding makes it a space; capture repairs it."""
    b64 = _b64(doc)
    assert "+" in b64, "the payload must have a `+` in its base64 for this case to test anything"
    return WireRequest("POST", f"/e/?ip=1&_={TS}&ver=1.78.5", [FORM], ("data=" + b64).encode(), CAPTURE)


def beacon_base64_form(doc):
    """posthog-js sendBeacon: ?compression=base64, CORS-simple form."""
    body = "data=" + urllib.parse.quote(_b64(doc), safe="")
    return WireRequest("POST", f"/e/?compression=base64&beacon=1&_={TS}&ver=1.418.10", [FORM], body.encode(), CAPTURE)


def lz64_form(doc):
    """posthog-js-lite legacy form mode: data=<encodeURIComponent(LZString.compressToBase64(json))>&compression=lz64."""
    lz = cd.lz_compress_to_base64(_json(doc).decode())
    body = "data=" + urllib.parse.quote(lz, safe="") + "&compression=lz64"
    return WireRequest("POST", f"/e/?ip=1&_={TS}&v=2.0.0", [FORM], body.encode(), CAPTURE)


def get_query_data(doc):
    """Legacy GET /e/?data=<base64>."""
    return WireRequest("GET", f"/e/?data={urllib.parse.quote(_b64(doc), safe='')}&ip=1&_={TS}", [], b"", CAPTURE)


def gzip_content_encoding_batch(doc):
    """Android/iOS (and posthog-node with CompressionStream): gzip with Content-Encoding, JSON charset type."""
    return WireRequest("POST", "/batch/", [("Content-Type", "application/json; charset=utf-8"),
                                           ("Content-Encoding", "gzip")], gzip.compress(_json(doc)), CAPTURE)


def json_batch(doc):
    """posthog-python / posthog-node without compression."""
    return WireRequest("POST", "/batch/", [("Content-Type", "application/json")], _json(doc), CAPTURE)


def engage_json(doc):
    return WireRequest("POST", "/engage/", [("Content-Type", "application/json")], _json(doc), CAPTURE)


def flags_json(doc):
    """iOS: POST /flags?v=2, uncompressed JSON."""
    return WireRequest("POST", "/flags?v=2", [("Content-Type", "application/json; charset=utf-8")], _json(doc),
                       FLAGS, cd.decode_flags)


def flags_base64_form(doc):
    """posthog-js: POST /flags/?v=2&config=true, default compression=base64 as a form."""
    body = "data=" + urllib.parse.quote(_b64(doc), safe="")
    return WireRequest("POST", f"/flags/?v=2&config=true&compression=base64&ver=1.418.10&_={TS}", [FORM],
                       body.encode(), FLAGS, cd.decode_flags)


def flags_gzip(doc):
    """Android: POST /flags/?v=2 gzip with Content-Encoding."""
    return WireRequest("POST", "/flags/?v=2", [("Content-Type", "application/json; charset=utf-8"),
                                               ("Content-Encoding", "gzip")], gzip.compress(_json(doc)), FLAGS,
                       cd.decode_flags)


def _cv_compress(doc):
    doc = copy.deepcopy(doc)
    for ev in document_events(doc):
        props = ev["properties"]
        props["$snapshot_data"] = [cd.compress_rrweb_event(i) for i in props["$snapshot_data"]]
    return doc


def replay_cv2024_hinted(doc):
    """posthog-js replay (fflate path): cv "2024-10" items, gzip text/plain, ?compression=gzip-js."""
    return WireRequest("POST", f"/s/?compression=gzip-js&ip=1&_={TS}&ver=1.418.10", [("Content-Type", "text/plain")],
                       cd.fflate_gzip(_json(_cv_compress(doc))), REPLAY)


def replay_cv2024_unhinted(doc):
    """posthog-js replay (CompressionStream path): the same with no hint."""
    return WireRequest("POST", "/s/", [("Content-Type", "text/plain")], cd.fflate_gzip(_json(_cv_compress(doc))),
                       REPLAY)


def replay_mobile(doc):
    """Android/iOS replay: gzip with Content-Encoding."""
    return WireRequest("POST", "/s/", [("Content-Type", "application/json; charset=utf-8"),
                                       ("Content-Encoding", "gzip")], gzip.compress(_json(doc)), REPLAY)


# --------------------------------------------------------------------------------------------------------------
# Sources: fixtures written for this test, and (when ../shared is present) real SDK bodies from the corpus.
# --------------------------------------------------------------------------------------------------------------


def fixture(name: str) -> Callable[[], Any]:
    return lambda: json.loads((FIXTURES / name).read_text())


def corpus(name: str, key: Optional[str] = None) -> Callable[[], Any]:
    def load():
        doc = json.loads((CORPUS / name).read_text())
        return doc[key] if key else doc

    load.needs_corpus = True
    return load


def corpus_form_fields(name: str) -> Callable[[], Any]:
    """The `data` of a posthog-js jest snapshot of a request (the JSON before the SDK encodes it)."""
    def load():
        return json.loads((CORPUS / "derived" / "jest-snapshots" / name).read_text())["data"]

    load.needs_corpus = True
    return load


# --------------------------------------------------------------------------------------------------------------
# Checks at the upstream.
# --------------------------------------------------------------------------------------------------------------


def _all_ids(value: Any, out: set) -> set:
    if isinstance(value, dict):
        if isinstance(value.get("id"), int):
            out.add(value["id"])
        for v in value.values():
            _all_ids(v, out)
    elif isinstance(value, list):
        for v in value:
            _all_ids(v, out)
    return out


def _has_key(value: Any, key: str) -> bool:
    if isinstance(value, dict):
        return key in value or any(_has_key(v, key) for v in value.values())
    if isinstance(value, list):
        return any(_has_key(v, key) for v in value)
    return False


def _distinct_ids(events: list) -> list:
    out = []
    for ev in events:
        for holder in (ev, ev.get("properties") or {}):
            if "distinct_id" in holder:
                out.append(holder["distinct_id"])
    return out


def _assert_identity_hashed(out_events: list) -> None:
    ids = _distinct_ids(out_events)
    assert ids and all(HASHED.match(str(i)) for i in ids), ids
    assert len(set(ids)) == 1, f"the same email must hash to the same id (joins survive): {ids}"


def check_events(original: list, forwarded: list, exact: bool) -> None:
    assert len(forwarded) == len(original)
    for o, f in zip(original, forwarded):
        for top in ("event", "uuid", "timestamp", "api_key", "token"):
            assert f.get(top) == o.get(top), top
        op, fp = o["properties"], f["properties"]
        for k, v in EXPECTED_PROPS.items():
            assert fp.get(k) == v, (k, fp.get(k))
        for k, v in CLEAN_PROPS.items():
            assert fp.get(k) == v, (k, fp.get(k))
        assert "phone" not in fp
        person_sets = [fp["$set"]] + ([f["$set"]] if "event" not in o else [])  # /engage: top-level $set too
        for person_set in person_sets:
            assert "email" not in person_set and "name" not in person_set and person_set["plan"] == "pro"
        planted_keys = set(PLANTED_PROPS) | set(CLEAN_PROPS) | {"$set", "distinct_id"}
        for k, v in op.items():
            if k in planted_keys or PERSON_KEY.match(k):
                continue
            assert k in fp, f"property {k!r} disappeared"
            if exact or isinstance(v, (bool, int, float)) or v is None:
                assert fp[k] == v, (k, v, fp[k])
    _assert_identity_hashed(forwarded)


def check_flags(original: list, forwarded: list, exact: bool) -> None:
    (o,), (f,) = original, forwarded
    assert HASHED.match(f["distinct_id"]), f["distinct_id"]
    assert f["$anon_distinct_id"] == f["distinct_id"], "the same email must hash to the same id"
    assert f["ip_address"] == EXPECTED_PROPS["$ip"]
    # Person and group properties are allowlist-first: PostHog's own `$` keys and the team's listed keys
    # (conf/privacy.yaml `person_properties`) arrive, everything else is dropped.
    pp = f["person_properties"]
    assert "email" not in pp and "phone" not in pp and "note" not in pp
    assert pp["plan"] == "pro" and pp["$os"] == "Android"
    for k in pp:
        assert k.startswith("$") or k in LISTED_PERSON_PROPERTIES, k
    for group, props in o["group_properties"].items():
        assert "billing_note" not in f["group_properties"][group]
        for k, v in props.items():
            if k in LISTED_PERSON_PROPERTIES:
                assert f["group_properties"][group][k] == v, (group, k)
    for k, v in o.items():
        if k in ("distinct_id", "$anon_distinct_id", "ip_address", "person_properties", "group_properties"):
            continue
        assert k in f, k
        if exact:
            assert f[k] == v, (k, v, f[k])


def _replay_common(original: list, forwarded: list) -> None:
    assert len(forwarded) == len(original)
    for o, f in zip(original, forwarded):
        assert f.get("event") == o.get("event")
        for k in ("$session_id", "$window_id", "$snapshot_source", "$lib"):
            assert f["properties"].get(k) == o["properties"].get(k), k
        assert f["properties"]["$ip"] == EXPECTED_PROPS["$ip"]
        oi, fi = cd.snapshot_items(o), cd.snapshot_items(f)
        assert len(fi) == len(oi)
        for a, b in zip(oi, fi):
            assert (b.get("type"), b.get("timestamp")) == (a.get("type"), a.get("timestamp"))
            assert _all_ids(b, set()) == _all_ids(a, set()), "rrweb node ids changed"
    _assert_identity_hashed(forwarded)


def check_web_replay(original: list, forwarded: list, exact: bool) -> None:
    _replay_common(original, forwarded)
    text = json.dumps(forwarded, ensure_ascii=False)
    for placeholder in ("[redacted:email]", "[redacted:phone]", "[redacted:card]", "[redacted:iban]", "81.2.69.0"):
        assert placeholder in text, placeholder
    if exact:
        for clean in ("Settings screen", "order 2024-000123", "skywalker", "Account settings", "Saved",
                      ".badge { color: red; }"):
            assert f'"{clean}"' in text, clean


def check_mobile_replay(original: list, forwarded: list, exact: bool) -> None:
    _replay_common(original, forwarded)
    assert not _has_key([cd.snapshot_items(e) for e in forwarded], "base64"), "replay images must be removed"
    text = json.dumps(forwarded, ensure_ascii=False)
    assert "[redacted:email]" in text
    if exact:
        for clean in ("Checkout", "Leave at the door", "Pay now", "Delivery note"):
            assert f'"{clean}"' in text, clean


@dataclass
class Case:
    id: str
    source: Callable[[], Any]
    plant: Callable[[Any], Any]
    shape: Callable[[Any], WireRequest]
    check: Callable[[list, list, bool], None]
    exact: bool = True  # fixtures: every unplanted value must arrive identical

    @property
    def needs_corpus(self) -> bool:
        return getattr(self.source, "needs_corpus", False)


def _events_cases(tag: str, src: Callable, shapes: list, exact: bool) -> list:
    return [Case(f"{s.__name__}-{tag}", src, plant_events, s, check_events, exact) for s in shapes]


# Corpus file name prefixes (PROVENANCE.md: <owner>+<repo>__<path with / as __>).
ANDROID = "PostHog+posthog-android__posthog-android__src__test__resources__json__snapshots__"
IOS = "PostHog+posthog-ios__PostHogTests__Resources__"
PYTHON = "PostHog+posthog-python__posthog__test__snapshots__"
RUST = "PostHog+posthog__rust__capture__tests__fixtures__"
JS_FLAGS = ("PostHog+posthog-js__packages__browser__src____tests______snapshots____featureflags.test.ts.snap.01."
            "featureflags-callFlagsEndpoint-via-reloadFeatureFlags-builds-a-representative-fl.json")

CASES = (
    _events_cases("fixture_legacy_array", fixture("posthog_js_legacy_events.json"), [gzip_js_hinted], True)
    + _events_cases("fixture_batch", fixture("posthog_js_batch.json"),
                    [gzip_js_unhinted, lz64_form, json_batch], True)
    + _events_cases("fixture_single", fixture("posthog_js_single_event.json"),
                    [base64_form, base64_form_unescaped_plus, beacon_base64_form, get_query_data], True)
    + _events_cases("fixture_mobile", fixture("mobile_batch.json"), [gzip_content_encoding_batch], True)
    + [Case("engage-fixture", fixture("engage.json"), plant_events, engage_json, check_events)]
    + [Case(f"{s.__name__}-fixture", fixture("flags_request.json"), plant_flags, s, check_flags)
       for s in (flags_json, flags_base64_form, flags_gzip)]
    + [Case(f"{s.__name__}-fixture", fixture("web_replay.json"), plant_web_replay, s, check_web_replay)
       for s in (replay_cv2024_hinted, replay_cv2024_unhinted)]
    + [Case("replay_mobile-fixture", fixture("mobile_replay.json"), plant_mobile_replay, replay_mobile,
            check_mobile_replay)]
    # The same shapes around real SDK payloads.
    + _events_cases("corpus_dump05", corpus(f"derived/{DUMP}line05.body.gz.decoded.json"), [gzip_js_hinted], False)
    + _events_cases("corpus_dump16", corpus(f"derived/{DUMP}line16.body.gz.decoded.json"), [gzip_js_unhinted], False)
    + _events_cases("corpus_dump02", corpus(f"derived/{DUMP}line02.body.form.decoded.json"),
                    [base64_form, base64_form_unescaped_plus, beacon_base64_form], False)
    + _events_cases("corpus_batch_events", corpus(f"{RUST}batch_events_payload.json"),
                    [lz64_form, gzip_js_unhinted], False)
    + _events_cases("corpus_single_event", corpus(f"{RUST}single_event_payload.json"), [get_query_data], False)
    + _events_cases("corpus_android", corpus(f"{ANDROID}batch-request.json", "body"),
                    [gzip_content_encoding_batch], False)
    + _events_cases("corpus_ios", corpus(f"{IOS}event-shapes-batch.json", "body"), [gzip_content_encoding_batch], False)
    + _events_cases("corpus_python", corpus(f"{PYTHON}legacy_event_family.json", "body"), [json_batch], False)
    + [Case("engage-corpus", corpus(f"{RUST}single_engage_event_payload.json"), plant_events, engage_json,
            check_events, False)]
    + [Case("flags_gzip-corpus_android", corpus(f"{ANDROID}flags-request.json", "body"), plant_flags, flags_gzip,
            check_flags, False),
       Case("flags_json-corpus_ios", corpus(f"{IOS}feature-flags-request.json", "body"), plant_flags, flags_json,
            check_flags, False),
       Case("flags_json-corpus_python", corpus(f"{PYTHON}flags_request.json", "body"), plant_flags, flags_json,
            check_flags, False),
       Case("flags_base64_form-corpus_posthog_js", corpus_form_fields(JS_FLAGS), plant_flags, flags_base64_form,
            check_flags, False)]
    + [Case("replay_cv2024_hinted-corpus", corpus(f"{RUST}single_replay_event_payload.json"), plant_web_replay,
            replay_cv2024_hinted, check_web_replay, False),
       Case("replay_mobile-corpus_android", corpus(f"{ANDROID}session-replay-request.json", "body"),
            plant_mobile_replay, replay_mobile, check_mobile_replay, False),
       Case("replay_mobile-corpus_ios", corpus(f"{IOS}session-replay-request.json", "body"), plant_mobile_replay,
            replay_mobile, check_mobile_replay, False)]
)


# --------------------------------------------------------------------------------------------------------------
# The shipped config on loopback, one process per module (starting one per case would cost most of the runtime).
# --------------------------------------------------------------------------------------------------------------


def _substitute_once(text: str, pattern: str, replacement: str, what: str) -> str:
    new, n = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert n == 1, f"expected exactly one {what} in {DEFAULT_CONFIG}, found {n}"
    return new


class HobbyProxy:
    """edgeguard on conf/edgeguard.yaml as shipped, with only addresses (and the rules path) rewritten."""

    def __init__(self, binary: str, workdir: Path, rules: Path):
        self.upstreams: dict[str, eg.Upstream] = {}
        text = DEFAULT_CONFIG.read_text()

        def point_at_loopback(m: re.Match) -> str:
            service = m.group(2).strip()
            up = eg.Upstream(service.split(":")[0])
            self.upstreams[service] = up
            return f'{m.group(1)}"{up.address}"{m.group(3)}'

        text = re.sub(r"(servers:\s*\[)([^\]]+)(\])", point_at_loopback, text)
        self.port = eg.free_port()
        self.admin_port = eg.free_port()
        text = _substitute_once(text, r"^(\s*address:\s*)0\.0\.0\.0:80\s*$", rf'\g<1>"{eg.LOOPBACK}:{self.port}"',
                                "plain listener")
        text = _substitute_once(text, r"^(\s*address:\s*)127\.0\.0\.1:9180\s*$",
                                rf'\g<1>"{eg.LOOPBACK}:{self.admin_port}"', "admin address")
        text = _substitute_once(text, r"^(workers:\s*)\d+", r"\g<1>2", "workers")
        text = _substitute_once(text, r"^(\s+output:\s*)stdout\s*$", r'\g<1>"off"', "access log output")
        text = _substitute_once(text, r"^(\s+rules:\s*)\S+\s*$", rf'\g<1>"{rules}"', "privacy rules path")
        self.proc = eg.Edgeguard(binary, text, workdir, listen_port=self.port)

    def __enter__(self) -> "HobbyProxy":
        try:
            self.proc.start()
        except BaseException:
            self._stop_upstreams()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.proc.stop()
        self._stop_upstreams()
        problems = self.proc.problems()
        if problems:
            pytest.fail("edgeguard was unhealthy:\n" + "\n".join(problems), pytrace=False)

    def _stop_upstreams(self) -> None:
        for up in self.upstreams.values():
            up.stop()

    def send(self, wire: WireRequest) -> tuple[eg.Response, Optional[eg.RecordedRequest]]:
        """Sends one request; returns edgeguard's answer and what the upstream recorded (None if nothing)."""
        for up in self.upstreams.values():
            up.reset()
        with eg.Client(self.port) as client:
            resp = client.request(wire.method, wire.target, headers=list(wire.headers),
                                  body=wire.body if wire.method != "GET" else None, host="posthog.example.com")
        if resp.status != 200:
            return resp, None
        (req,) = self.upstreams[wire.service].wait_requests(1)
        return resp, req

    def all_requests(self) -> list:
        return [r for up in self.upstreams.values() for r in up.snapshot()]

    def metrics(self) -> dict:
        resp = admin_get(self.admin_port, "/metrics")
        assert resp.status == 200, resp.status
        return promtext.parse(resp.body.decode())


def report_rules(workdir: Path) -> Path:
    """conf/privacy.yaml with every profile's `mode: enforce` switched to `mode: report` (nothing else changed)."""
    text, n = re.subn(r"^(\s+mode:\s*)enforce\b", r"\g<1>report", RULES.read_text(), flags=re.MULTILINE)
    assert n >= 1, "conf/privacy.yaml names no `mode: enforce` to switch"
    path = workdir / "privacy-report.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def hobby(edgeguard_bin, tmp_path_factory):
    # A shipped file: without it the feature under test is missing, never a reason to skip.
    assert DEFAULT_CONFIG.is_file() and RULES.is_file(), "conf/edgeguard.yaml or conf/privacy.yaml not present"
    with HobbyProxy(edgeguard_bin, tmp_path_factory.mktemp("enforce"), RULES) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def hobby_report(edgeguard_bin, tmp_path_factory):
    # A shipped file: without it the feature under test is missing, never a reason to skip.
    assert DEFAULT_CONFIG.is_file() and RULES.is_file(), "conf/edgeguard.yaml or conf/privacy.yaml not present"
    workdir = tmp_path_factory.mktemp("report")
    with HobbyProxy(edgeguard_bin, workdir, report_rules(workdir)) as proxy:
        yield proxy


def _require_corpus(needs: bool) -> None:
    if needs and not CORPUS.is_dir():
        pytest.skip(f"{CORPUS} not present (EDGEGUARD_SHARED_DIR)")


def _without_cv(events: list) -> list:
    """Inflated replay items minus the cv marker the SDK adds when it compresses them."""
    out = copy.deepcopy(events)
    for ev in out:
        for item in cd.snapshot_items(ev):
            item.pop("cv", None)
    return out


def _compressed_fields(events: list) -> list:
    """(item index, field) of every replay field carried as a gzip-in-latin-1 string."""
    out = []
    for ev in events:
        for n, item in enumerate(cd.snapshot_items(ev)):
            if not isinstance(item, dict) or item.get("cv") != "2024-10":
                continue
            if isinstance(item.get("data"), str):
                out.append((n, "data"))
            elif isinstance(item.get("data"), dict):
                out += [(n, f) for f in cd.MUTATION_FIELDS if isinstance(item["data"].get(f), str)]
    return out


def _query_pairs(target: str) -> list:
    return [p for p in target.partition("?")[2].split("&") if p]


def assert_rewritten_framing(wire: WireRequest, req: eg.RecordedRequest) -> None:
    """A rewritten body is plain JSON with a correct Content-Length; the query loses only data/compression."""
    assert req.method == wire.method and req.path == wire.target.partition("?")[0]
    assert not req.chunked
    assert req.header("Content-Length") == str(len(req.body))
    assert req.header("Content-Type") == "application/json"
    assert req.header("Content-Encoding") is None
    kept = [p for p in _query_pairs(wire.target) if not p.startswith(("data=", "compression="))]
    assert _query_pairs(req.target) == kept
    assert req.header("X-Forwarded-For") == "127.0.0.0"  # client_ip: truncate on every ingestion route


# --------------------------------------------------------------------------------------------------------------
# Tests.
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_planted_personal_data_is_gone_and_the_rest_decodes_intact(hobby, case: Case):
    _require_corpus(case.needs_corpus)
    original = case.plant(case.source())
    wire = case.shape(original)
    # The request as sent must itself be what the service reads (the encoders are right), planted data and all.
    sent = wire.decode(wire.method, wire.target, wire.headers, wire.body)
    assert _without_cv(cd.expand_replay(sent.events)) == document_events(original)
    sent_text = json.dumps(cd.expand_replay(sent.events), ensure_ascii=False)
    assert sum(v in sent_text for v in PLANTED_VALUES) >= 2, "planting put too little personal data in"

    resp, req = hobby.send(wire)
    assert resp.status == 200, resp.body
    assert_rewritten_framing(wire, req)
    got = wire.decode(req.method, req.target, req.headers, req.body)
    forwarded = cd.expand_replay(got.events)
    assert_no_planted([req.body.decode("latin-1"), urllib.parse.unquote(req.target), got.text,
                       json.dumps(forwarded, ensure_ascii=False)])
    # cv "2024-10" fields that were compressed stay compressed (rewritten ones are re-encoded in that form).
    assert _compressed_fields(got.events) == _compressed_fields(sent.events)
    case.check(document_events(original), forwarded, case.exact)


# Real SDK bytes, sent as captured: (id, file under corpus/, method, target, headers, service, PII they carry).
REAL_BODIES = [
    ("posthog_js_gzip_hinted_dump05", f"derived/{DUMP}line05.body.gz", "POST",
     "/e/?compression=gzip-js&ip=1&_=1694769305355&ver=1.78.5", [("Content-Type", "text/plain")], CAPTURE,
     ["xavier@posthog.com"]),
    ("posthog_js_gzip_unhinted_dump16", f"derived/{DUMP}line16.body.gz", "POST", "/e/?ip=1&_=1694769329412&ver=1.78.5",
     [("Content-Type", "text/plain")], CAPTURE, ["xavier@posthog.com"]),
    ("posthog_js_gzip_batch_synthetic", "derived/synthetic/gzip-js-text-plain__batch_events_payload.body.gz", "POST",
     "/e/", [("Content-Type", "text/plain")], CAPTURE, ["someone@example.com", "max@posthog.example.com"]),
    ("lz64_form_synthetic", "derived/synthetic/lz64-form__batch_events_payload.body", "POST",
     "/e/?ip=1&_=1751353200000&v=1.0.0", [FORM], CAPTURE, ["someone@example.com", "max@posthog.example.com"]),
    ("android_gzip_batch_synthetic", "derived/synthetic/gzip-content-encoding__android_batch.body.gz", "POST", "/batch",
     [("Content-Type", "application/json; charset=utf-8"), ("Content-Encoding", "gzip")], CAPTURE,
     ["person@example.com"]),
    ("replay_cv2024_synthetic", "derived/synthetic/replay-cv2024-10__single_replay_event_payload.json.gz", "POST",
     "/s/",
     [("Content-Type", "text/plain")], REPLAY, ["jane.doe@example.com"]),
]


@pytest.mark.parametrize("name,path,method,target,headers,service,pii", REAL_BODIES, ids=[r[0] for r in REAL_BODIES])
def test_real_sdk_bytes_lose_their_personal_data(hobby, name, path, method, target, headers, service, pii):
    _require_corpus(True)
    body = (CORPUS / path).read_bytes()
    wire = WireRequest(method, target, headers, body, service)
    sent = cd.decode_capture(method, target, headers, body)
    original = cd.expand_replay(sent.events)
    assert all(p in json.dumps(original, ensure_ascii=False) for p in pii), "corpus changed: PII not where expected"

    resp, req = hobby.send(wire)
    assert resp.status == 200, resp.body
    assert_rewritten_framing(wire, req)
    got = cd.decode_capture(req.method, req.target, req.headers, req.body)
    forwarded = cd.expand_replay(got.events)
    assert_no_planted([req.body.decode("latin-1"), got.text, json.dumps(forwarded, ensure_ascii=False)], pii)
    assert [e.get("event") for e in forwarded] == [e.get("event") for e in original]
    assert [e.get("uuid") for e in forwarded] == [e.get("uuid") for e in original]
    for o, f in zip(original, forwarded):
        assert len(cd.snapshot_items(f)) == len(cd.snapshot_items(o))


KNOWN_CORPUS_PII = ["xavier@posthog.com", "someone@example.com", "max@posthog.example.com", "person@example.com",
                    "jane.doe@example.com"]


def test_every_request_of_the_capture_dump_arrives_decodable_and_without_its_pii(hobby):
    """All posthog-js/node/batch-export requests of hog-rs's requests_dump.jsonl, as their SDKs sent them."""
    _require_corpus(True)
    index = json.loads((CORPUS / "derived" / "requests_dump.index.json").read_text())
    sent_count = 0
    for entry in index:
        body = (CORPUS / "derived" / entry["file"]).read_bytes()
        headers = [("Content-Type", entry["content_type"])]
        if entry["content_encoding"]:
            headers.append(("Content-Encoding", entry["content_encoding"]))
        wire = WireRequest("POST", entry["path"], headers, body, CAPTURE)
        try:
            original = cd.decode_capture(wire.method, wire.target, wire.headers, body)
        except cd.DecodeError:
            continue  # today's capture refuses it too (line 15: a gzip hint on a form body)
        pii = [p for p in KNOWN_CORPUS_PII if p in original.text]
        resp, req = hobby.send(wire)
        assert resp.status == 200, (entry["line"], resp.body)
        if req.body == body:
            assert not pii, (entry["line"], "forwarded unchanged with personal data in it")
            assert req.target == wire.target and req.header("Content-Type") == entry["content_type"]
        else:
            assert_rewritten_framing(wire, req)
        got = cd.decode_capture(req.method, req.target, req.headers, req.body)
        assert_no_planted([req.body.decode("latin-1"), got.text], pii)
        assert [e.get("event") for e in got.events] == [e.get("event") for e in original.events], entry["line"]
        assert [e.get("uuid") for e in got.events] == [e.get("uuid") for e in original.events], entry["line"]
        sent_count += 1
    assert sent_count >= 14, f"only {sent_count} dump requests were usable"


def test_the_lz_string_port_matches_the_reference_encoder():
    """The corpus lz64 bodies were made by lz-string 1.5.0 (npm): the Python port must give the same text."""
    _require_corpus(True)
    raw = (CORPUS / "derived/synthetic/lz64-raw__batch_events_payload.body").read_text()
    text = cd.lz_decompress_from_base64(raw)
    assert json.loads(text) == json.loads(
        (CORPUS / "PostHog+posthog__rust__capture__tests__fixtures__batch_events_payload.json").read_text())
    assert cd.lz_compress_to_base64(text) == raw
    for sample in ("a", "Grüße aus Köln", "emoji \U0001F600 needs a surrogate pair", "ab" * 500):
        assert cd.lz_decompress_from_base64(cd.lz_compress_to_base64(sample)) == sample


def test_clean_payloads_pass_byte_for_byte_in_their_original_encoding(hobby):
    """Nothing personal in it: the SDK's own bytes, headers and query reach capture untouched (gzip stays gzip)."""
    doc = json.loads((FIXTURES / "mobile_batch.json").read_text())
    for wire in (gzip_js_hinted(doc), lz64_form(doc), gzip_content_encoding_batch(doc), get_query_data(doc)):
        resp, req = hobby.send(wire)
        assert resp.status == 200, (wire.target, resp.body)
        assert req.target == wire.target
        assert req.body == wire.body
        for name in ("Content-Type", "Content-Encoding"):
            assert req.header(name) == dict(wire.headers).get(name), name


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_get_or_head_with_a_body_is_inspected_like_a_post(hobby, method):
    body = _json(_planted_batch())
    for up in hobby.upstreams.values():
        up.reset()
    with eg.Client(hobby.port) as client:
        resp = client.request(method, "/e/?ver=1.418.10", headers=[("Content-Type", "application/json")], body=body)
    forwarded = hobby.all_requests()
    assert resp.status == 200 or not forwarded
    for req in forwarded:
        assert_no_planted([(req.body or b"").decode("latin-1")])


def test_one_keep_alive_connection_carries_every_shape_in_turn_and_pipelined(hobby):
    """Per-request state (rewritten body, query, Content-Type, rejection) must not leak into the next request."""
    clean = json.loads((FIXTURES / "mobile_batch.json").read_text())
    planted = _planted_batch()
    flags = plant_flags(json.loads((FIXTURES / "flags_request.json").read_text()))
    replay = plant_web_replay(json.loads((FIXTURES / "web_replay.json").read_text()))
    # (request, expected: "rewritten" | "same" | "rejected")
    sequence = [(gzip_js_hinted(planted), "rewritten"), (lz64_form(clean), "same"),
                (get_query_data(planted), "rewritten"), (gzip_js_hinted(clean), "same"),
                (gzip_js_unhinted(_with_secret(planted)), "rejected"),
                (json_batch(clean), "same"), (flags_base64_form(flags), "rewritten"), (get_query_data(clean), "same"),
                (replay_cv2024_unhinted(replay), "rewritten"), (gzip_content_encoding_batch(clean), "same")]

    def check(wire: WireRequest, expected: str, resp: eg.Response, req: Optional[eg.RecordedRequest]) -> None:
        if expected == "rejected":
            assert resp.status == 422 and req is None, (wire.target, resp.status)
            return
        assert resp.status == 200, (wire.target, resp.status, resp.body)
        if expected == "same":
            assert (req.target, req.body) == (wire.target, wire.body)
            for name in ("Content-Type", "Content-Encoding"):
                assert req.header(name) == dict(wire.headers).get(name), (wire.target, name)
        else:
            assert_rewritten_framing(wire, req)
            got = wire.decode(req.method, req.target, req.headers, req.body)
            assert_no_planted([req.body.decode("latin-1"), json.dumps(cd.expand_replay(got.events))])

    with eg.Client(hobby.port) as client:
        for wire, expected in sequence:
            for up in hobby.upstreams.values():
                up.reset()
            resp = client.request(wire.method, wire.target, headers=list(wire.headers),
                                  body=wire.body if wire.method != "GET" else None)
            forwarded = hobby.all_requests() if resp.status == 200 else []
            if resp.status == 200 and not forwarded:
                forwarded = hobby.upstreams[wire.service].wait_requests(1)
            check(wire, expected, resp, forwarded[0] if forwarded else None)

    allowed = [(w, e) for (w, e) in sequence if e != "rejected"]  # a rejection may close a pipelined connection
    for up in hobby.upstreams.values():
        up.reset()
    with eg.Client(hobby.port) as client:
        client.send(b"".join(eg.build_request(w.method, w.target, list(w.headers),
                                              w.body if w.method != "GET" else None) for w, _ in allowed))
        responses = [client.read_response(w.method) for w, _ in allowed]
    by_service: dict = {}
    for w, _ in allowed:
        by_service.setdefault(w.service, []).append(w)
    recorded = {svc: hobby.upstreams[svc].wait_requests(len(ws)) for svc, ws in by_service.items()}
    cursor = {svc: 0 for svc in by_service}
    for (wire, expected), resp in zip(allowed, responses):
        req = recorded[wire.service][cursor[wire.service]]
        cursor[wire.service] += 1
        check(wire, expected, resp, req)


def test_curl_posts_a_gzip_batch_with_expect_100_continue(hobby, tmp_path):
    """A stock HTTP client: curl sends `Expect: 100-continue`; the buffering privacy stage must answer it itself."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl not installed")
    wire = gzip_js_hinted(_planted_batch())
    (tmp_path / "body").write_bytes(wire.body)
    for up in hobby.upstreams.values():
        up.reset()
    out = subprocess.run([curl, "-sS", "--max-time", "20", "-o", str(tmp_path / "answer"), "-w", "%{http_code}",
                          "-H", "Content-Type: text/plain", "-H", "Expect: 100-continue",
                          "--data-binary", f"@{tmp_path / 'body'}", f"http://{eg.LOOPBACK}:{hobby.port}{wire.target}"],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout == "200", (out.stdout, out.stderr)
    (req,) = hobby.upstreams[CAPTURE].wait_requests(1)
    assert_rewritten_framing(wire, req)
    assert req.header("Expect") is None
    got = cd.decode_capture(req.method, req.target, req.headers, req.body)
    assert_no_planted([req.body.decode("latin-1"), got.text])
    check_events(document_events(_planted_batch()), got.events, exact=True)


def test_enforce_mode_counts_verdicts_and_actions_on_the_metrics_endpoint(hobby):
    def delta(after: dict, before: dict, family: str, **labels: str) -> float:
        return _counter(after, family, **labels) - _counter(before, family, **labels)

    before = hobby.metrics()
    rewritten, _ = hobby.send(gzip_js_unhinted(_planted_batch()))
    rejected, _ = hobby.send(gzip_js_unhinted(_with_secret(_planted_batch())))
    corrupt, _ = hobby.send(WireRequest("POST", "/e/", [("Content-Type", "text/plain")],
                                        cd.fflate_gzip(_json(_planted_batch()))[:-40], CAPTURE))
    assert (rewritten.status, rejected.status, corrupt.status) == (200, 422, 400)
    after = hobby.metrics()
    requests = "edgeguard_privacy_requests_total"
    for verdict in ("rewritten", "rejected", "decode_failed"):
        assert delta(after, before, requests, profile="events", verdict=verdict) == 1, verdict
    assert delta(after, before, requests, profile="events", verdict="unchanged") == 0
    decisions = "edgeguard_privacy_decisions_total"
    events = len(_planted_batch()["batch"])
    # Per event of the rewritten batch: two contact-data spans (note), three person keys ($set.email, $set.name,
    # phone), one hashed distinct_id. The rejected batch may add hits of its own, hence "at least".
    assert delta(after, before, decisions, profile="events", rule="contact-data", action="redact") >= 2 * events
    assert delta(after, before, decisions, profile="events", rule="person-keys", action="drop") >= 3 * events
    assert delta(after, before, decisions, profile="events", rule="identity-hash", action="hash") >= events
    assert delta(after, before, decisions, profile="events", rule="secrets", action="reject") == 1


# --- report mode -------------------------------------------------------------------------------------------------


def _counter(families: dict, family: str, **labels: str) -> float:
    return promtext.value(families, family, **labels) or 0.0


def test_report_mode_forwards_every_shape_unchanged_and_counts(hobby_report):
    planted_events = [plant_events(json.loads((FIXTURES / n).read_text()))
                      for n in ("posthog_js_batch.json", "posthog_js_single_event.json", "mobile_batch.json")]
    for doc in planted_events:
        for ev in document_events(doc):
            del ev["properties"]["$ip"]  # the route's client_ip policy is not a rule: it applies in report mode too
    batch, single, mobile = planted_events
    flags = plant_flags(json.loads((FIXTURES / "flags_request.json").read_text()))
    del flags["ip_address"]
    replay = plant_web_replay(json.loads((FIXTURES / "web_replay.json").read_text()))
    for ev in replay:
        del ev["properties"]["$ip"]
    wires = [gzip_js_unhinted(batch), base64_form(single), lz64_form(batch), get_query_data(single),
             gzip_content_encoding_batch(mobile), flags_base64_form(flags), replay_cv2024_unhinted(replay)]
    profiles = {CAPTURE: "events", FLAGS: "flags", REPLAY: "replay"}

    before = hobby_report.metrics()
    for wire in wires:
        resp, req = hobby_report.send(wire)
        assert resp.status == 200, (wire.target, resp.body)
        assert req.target == wire.target, "report mode must not touch the query"
        assert req.body == wire.body, f"{wire.target}: report mode must forward the bytes unchanged"
        if wire.body:
            assert req.header("Content-Length") == str(len(wire.body))
        for name in ("Content-Type", "Content-Encoding"):
            assert req.header(name) == dict(wire.headers).get(name), name
    after = hobby_report.metrics()

    for profile in set(profiles.values()):
        sent = sum(1 for w in wires if profiles[w.service] == profile)
        family = "edgeguard_privacy_requests_total"
        delta = (_counter(after, family, profile=profile, verdict="unchanged")
                 - _counter(before, family, profile=profile, verdict="unchanged"))
        assert delta == sent, (profile, delta, sent)
        for verdict in ("rewritten", "rejected"):
            assert _counter(after, family, profile=profile, verdict=verdict) == \
                _counter(before, family, profile=profile, verdict=verdict), (profile, verdict)
    family = "edgeguard_privacy_decisions_total"
    for profile, rule in (("events", "contact-data"), ("events", "payment-data"), ("events", "person-keys"),
                          ("events", "identity-hash"), ("flags", "contact-data"), ("replay", "contact-data")):
        delta = _counter(after, family, profile=profile, rule=rule, action="report") - \
            _counter(before, family, profile=profile, rule=rule, action="report")
        assert delta > 0, f"{profile}/{rule}: report-mode hits not counted"
        for action in ("redact", "drop", "hash"):
            assert _counter(after, family, profile=profile, rule=rule, action=action) == \
                _counter(before, family, profile=profile, rule=rule, action=action), (profile, rule, action)


def test_report_mode_counts_a_would_be_rejection_and_forwards_it(hobby_report):
    doc = json.loads((FIXTURES / "posthog_js_batch.json").read_text())
    doc["batch"][0]["properties"]["debug"] = "key phx_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0uVw"
    wire = gzip_js_unhinted(doc)
    before = hobby_report.metrics()
    resp, req = hobby_report.send(wire)
    assert resp.status == 200
    assert req.body == wire.body
    after = hobby_report.metrics()
    family = "edgeguard_privacy_decisions_total"
    assert _counter(after, family, profile="events", rule="secrets", action="report") > \
        _counter(before, family, profile="events", rule="secrets", action="report")


def test_report_mode_still_applies_the_routes_client_ip_policy_to_ip(hobby_report):
    """client_ip is a route setting (edgeguard.yaml), not a rule: like X-Forwarded-For, $ip is truncated in report
    mode too, and only $ip changes."""
    doc = plant_events(json.loads((FIXTURES / "mobile_batch.json").read_text()))
    wire = json_batch(doc)
    resp, req = hobby_report.send(wire)
    assert resp.status == 200
    got = cd.decode_capture(req.method, req.target, req.headers, req.body)
    for o, f in zip(document_events(doc), got.events):
        assert f["properties"]["$ip"] == "81.2.69.0"
        f["properties"]["$ip"] = o["properties"]["$ip"]
        assert f == o
    assert req.header("X-Forwarded-For") == "127.0.0.0"


# --- reject paths -------------------------------------------------------------------------------------------------


def _planted_batch() -> dict:
    return plant_events(json.loads((FIXTURES / "posthog_js_batch.json").read_text()))


SECRET = "phx_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0uVw"


def _with_secret(doc: dict) -> dict:
    doc = copy.deepcopy(doc)
    doc["batch"][-1]["properties"]["debug"] = f"token {SECRET}"
    return doc


def _bad_cv_replay() -> WireRequest:
    doc = json.loads((FIXTURES / "web_replay.json").read_text())
    items = doc[0]["properties"]["$snapshot_data"]
    items[1] = {**items[1], "cv": "2024-10", "data": f"not gzip at all {TEXT_EMAIL}"}
    return WireRequest("POST", "/s/", [("Content-Type", "text/plain")], cd.fflate_gzip(_json(doc)), REPLAY)


def _bomb() -> bytes:
    inner = b'{"api_key":"phc_x","batch":[{"event":"e","distinct_id":"d","properties":{"pad":"' + \
        b" " * 8_000_000 + b'"}}]}'
    return cd.fflate_gzip(inner)


# (id, request builder, status, code) — every one must answer capture-style JSON and reach no upstream.
REJECTIONS = [
    ("secret_in_gzip_batch", lambda: gzip_js_unhinted(_with_secret(_planted_batch())), 422, "privacy_rule_rejected"),
    ("secret_in_lz64_form", lambda: lz64_form(_with_secret(_planted_batch())), 422, "privacy_rule_rejected"),
    ("secret_in_flags_form", lambda: flags_base64_form({**plant_flags(json.loads(
        (FIXTURES / "flags_request.json").read_text())), "note": SECRET}), 422, "privacy_rule_rejected"),
    ("corrupt_gzip", lambda: WireRequest("POST", "/e/", [("Content-Type", "text/plain")],
                                         cd.fflate_gzip(_json(_planted_batch()))[:-40] + b"\x00" * 8, CAPTURE),
     400, None),
    ("gzip_bomb", lambda: WireRequest("POST", "/e/", [("Content-Type", "text/plain")], _bomb(), CAPTURE), 413,
     "payload_too_large"),
    ("unsupported_content_encoding", lambda: WireRequest(
        "POST", "/batch/", [("Content-Type", "application/json"), ("Content-Encoding", "br")],
        _json(_planted_batch()), CAPTURE), 415, "unsupported_content_encoding"),
    ("lz64_garbage", lambda: WireRequest("POST", "/e/?compression=lz64", [FORM],
                                         b"data=" + urllib.parse.quote(_b64(_planted_batch())[:-7] + "!@#").encode(),
                                         CAPTURE), 400, None),
    ("form_without_data", lambda: WireRequest("POST", "/e/", [FORM],
                                              b"ver=1.2&note=" + urllib.parse.quote(TEXT_EMAIL).encode(), CAPTURE),
     400, None),
    ("get_data_not_json", lambda: WireRequest(
        "GET", "/e/?data=" + urllib.parse.quote(base64.b64encode(f"{{email: {SET_EMAIL}".encode()).decode(), safe=""),
        [], b"", CAPTURE), 400, None),
    ("replay_cv_field_not_gzip", _bad_cv_replay, 400, None),
    # A clean gzip member followed by a second one: a reader that stops after the first member would pass
    # what a multi-member reader then finds. Fail closed.
    ("gzip_second_member", lambda: WireRequest(
        "POST", "/e/", [("Content-Type", "text/plain")],
        cd.fflate_gzip(_json(json.loads((FIXTURES / "posthog_js_batch.json").read_text())))
        + cd.fflate_gzip(_json(_planted_batch())), CAPTURE), 400, None),
    # capture reads ?data= and ignores the body; a request with both is refused so no part goes unseen.
    ("query_data_and_body", lambda: WireRequest(
        "POST", "/e/?data=" + urllib.parse.quote(_b64(json.loads((FIXTURES / "posthog_js_single_event.json")
                                                                 .read_text())), safe=""),
        [("Content-Type", "application/json")], _json(_planted_batch()), CAPTURE), 400, None),
    ("flags_unsupported_content_type", lambda: WireRequest(
        "POST", "/flags/?v=2", [("Content-Type", "application/xml")], f"<email>{SET_EMAIL}</email>".encode(), FLAGS,
        cd.decode_flags), 400, None),
]


@pytest.mark.parametrize("build,status,code", [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS])
def test_rejections_answer_in_captures_style_without_echoing_data(hobby, build, status, code):
    wire = build()
    resp, req = hobby.send(wire)
    assert req is None and hobby.all_requests() == [], "a rejected body must never be forwarded"
    assert resp.status == status, (resp.status, resp.body)
    assert (resp.header("Content-Type") or "").startswith("application/json")
    doc = resp.json()
    assert doc["status"] == status and isinstance(doc["error"], str) and doc["error"]
    assert isinstance(doc["code"], str) and doc["code"]
    if code is not None:
        assert doc["code"] == code, doc
    if code == "privacy_rule_rejected":
        assert "secrets" in doc["error"], "the rejection names the rule id"
    assert_no_planted([resp.body.decode("latin-1")], PLANTED_VALUES + [SECRET])
