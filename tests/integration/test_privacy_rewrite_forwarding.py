"""Rewritten /batch bodies of realistic size through the real binary: fresh batches (every value new) in which
a few events carry an email and a phone number, sent one after another on one keep-alive connection, between
clean batches. The upstream must receive every event, with exactly the personal values taken out and every
other byte as sent; clean batches arrive byte-identical in their own encoding; both connections are reused
after a rewritten request, and a rewritten body retried on a fresh upstream connection is sent again whole."""

from __future__ import annotations

import gzip
import json
import random
import uuid

import pytest

import eg

RULES = eg.source_dir() / "conf" / "privacy.yaml"
EVENTS = 88          # a mobile SDK's batch: about 60 KB of JSON, 10 KB gzip'd
PERSONAL_EVERY = 40  # events 20, 60: two of 88


def fresh_event(rnd: random.Random, personal: bool) -> dict:
    """A posthog-android screen event with every identifier, time and number drawn anew."""
    session = str(uuid.UUID(int=rnd.getrandbits(128)))
    properties = {
        "$screen_name": rnd.choice(["Home", "Cart", "Checkout", "Product"]), "$session_id": session,
        "$os": "Android", "$os_version": "14", "$app_build": str(rnd.randrange(1000, 9999)),
        "$lib": "posthog-android", "$device_model": "Pixel 8", "$screen_width": 1080,
        "$network_wifi": rnd.random() < 0.5, "price": rnd.randrange(100, 9999) / 100,
        "order_ref": "ORD-%06d" % rnd.randrange(1000000),
    }
    if personal:
        who = rnd.choice(["olga.smirnova", "ivan.petrov", "anna.k"]) + str(rnd.randrange(100))
        properties["$set"] = {"email": f"{who}@example.ru", "plan": "pro"}
        properties["note"] = "call +7 916 %03d-%02d-%02d" % (rnd.randrange(1000), rnd.randrange(100),
                                                             rnd.randrange(100))
    return {"event": rnd.choice(["$screen", "button_tapped"]), "uuid": str(uuid.UUID(int=rnd.getrandbits(128))),
            "distinct_id": str(uuid.UUID(int=rnd.getrandbits(128))),
            "timestamp": "2026-11-27T10:%02d:%02d.%03dZ" % (rnd.randrange(60), rnd.randrange(60),
                                                             rnd.randrange(1000)),
            "properties": properties}


def fresh_batch(seed: int, with_personal: bool) -> tuple[bytes, bytes]:
    """(the JSON text sent, the text capture must receive): the email member leaves `$set` with its comma,
    the phone number inside `note` becomes the phone placeholder; nothing else changes."""
    rnd = random.Random(seed)
    events = [fresh_event(rnd, with_personal and i % PERSONAL_EVERY == PERSONAL_EVERY // 2) for i in range(EVENTS)]
    text = json.dumps({"api_key": "phc_public", "batch": events})
    expected = text
    for event in events:
        props = event["properties"]
        if "$set" in props:
            expected = expected.replace(f'"email": "{props["$set"]["email"]}", ', "", 1)
            expected = expected.replace(json.dumps(props["note"]), '"call [redacted:phone]"', 1)
    return text.encode(), expected.encode()


@pytest.fixture
def capture_route(upstreams, edgeguard):
    # A shipped file: without it the feature under test is missing, never a reason to skip.
    assert RULES.exists(), "conf/privacy.yaml not present"
    capture = upstreams("capture")
    port = eg.free_port()
    routes = [{"name": "capture", "paths": ["/batch"], "upstream": "capture", "privacy": "events",
               "max_body": "1MiB", "client_ip": "truncate"}]
    config = eg.basic_config(port, {"capture": [capture.address]}, routes, extra={"privacy": {"rules": str(RULES)}})
    return edgeguard(config), capture


@pytest.mark.parametrize("encoding", ["gzip", "plain"])
def test_fresh_batches_arrive_with_exactly_the_personal_values_redacted(capture_route, encoding):
    proc, capture = capture_route
    # Rewritten and clean batches in turn, so a clean one follows a rewrite on both reused connections.
    plan = [True, False, True, True, False, True]
    sent = []
    with eg.Client(proc.listen_port) as client:
        for n, with_personal in enumerate(plan):
            text, expected = fresh_batch(7000 + n, with_personal)
            assert (text != expected) == with_personal
            wire = gzip.compress(text, 6) if encoding == "gzip" else text
            headers = [("Content-Type", "text/plain")]
            if encoding == "gzip":
                headers.append(("Content-Encoding", "gzip"))
            r = client.request("POST", "/batch/", headers=headers, body=wire)
            assert r.status == 200, r.body
            sent.append((with_personal, wire, expected))
    received = capture.wait_requests(len(plan))
    assert len({req.conn_id for req in received}) == 1, "the upstream connection was not reused"
    for (with_personal, wire, expected), req in zip(sent, received):
        assert req.body is not None and not req.chunked
        assert req.header("Content-Length") == str(len(req.body))
        if with_personal:
            assert req.body == expected
            assert b"@example.ru" not in req.body and b"+7 916" not in req.body
            assert req.header("Content-Type") == "application/json"
            assert req.header("Content-Encoding") is None
        else:
            assert req.body == wire
            assert req.header("Content-Type") == "text/plain"
            assert req.header("Content-Encoding") == ("gzip" if encoding == "gzip" else None)
        assert len(json.loads(req.body if with_personal else expected)["batch"]) == EVENTS


def test_rewritten_batch_retried_on_a_fresh_connection_carries_the_same_bytes(upstreams, edgeguard):
    # The upstream answers the first request on each connection and silently closes on the second (a keep-alive
    # timeout race): the rewritten body, already sent once, is sent again whole on a new connection.
    capture = upstreams("capture",
                        lambda req: eg.Reply(action="close") if req.seq_on_conn > 0 else eg.Reply(body=b"ok"))
    port = eg.free_port()
    routes = [{"name": "capture", "paths": ["/batch"], "upstream": "capture", "privacy": "events", "max_body": "1MiB"}]
    proc = edgeguard(eg.basic_config(port, {"capture": [capture.address]}, routes, workers=1,
                                     extra={"privacy": {"rules": str(RULES)}}))
    clean, _ = fresh_batch(7100, False)
    text, expected = fresh_batch(7101, True)
    with eg.Client(proc.listen_port) as client:
        assert client.request("POST", "/batch/", headers=[("Content-Type", "text/plain")], body=clean).status == 200
        r = client.request("POST", "/batch/", headers=[("Content-Type", "text/plain"), ("Content-Encoding", "gzip")],
                           body=gzip.compress(text, 6))
        assert r.status == 200 and r.body == b"ok"
    first, sent, retried = capture.wait_requests(3)
    assert first.body == clean
    assert (sent.seq_on_conn, retried.seq_on_conn) == (1, 0)
    assert sent.body == expected and retried.body == expected
