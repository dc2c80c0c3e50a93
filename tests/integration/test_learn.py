"""`edgeguard learn` through the real binary: a profile with `learn: true` observes a mixed stream of SDK
event shapes from a few hundred users with personal data planted in some properties; /privacy/observed
shows shapes and never a value below k-anonymity; the proposed allowlist profile has the structural
properties with the right types, leaves out what carried personal data, loads in `check` and, enforced,
forwards clean events unchanged; `--diff` names what it would drop; memory stays bounded under 100,000
distinct property keys."""

from __future__ import annotations

import json
import random
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import eg
import promtext
from ops_helpers import admin_get

RULES = eg.source_dir() / "conf" / "privacy.yaml"
TOKEN = "phc_Lr8vK3mQ9tZ2wX5nB7cJ4hD6gF1aS0eY2uI8oP3xN"
USERS = 300
PLANS = ["free", "pro", "team"]
VARIANTS = ["control", "test-a", "test-b"]


def learning_rules(tmp_path: Path, extra: str = "") -> Path:
    """conf/privacy.yaml with `learn: true` (and `extra`) on the events profile."""
    text = RULES.read_text()
    marker = "  events:\n    mode: enforce\n"
    assert marker in text
    path = tmp_path / "privacy.yaml"
    path.write_text(text.replace(marker, marker + "    learn: true\n" + extra, 1))
    return path


def proxy_config(port: int, capture: str, rules: Path, profile: str = "events", admin_port: int | None = None):
    routes = [{"name": "capture", "paths": ["/e", "/batch"], "upstream": "capture", "privacy": profile,
               "max_body": "4MiB", "client_ip": "truncate"}]
    return eg.basic_config(port, {"capture": [capture]}, routes, admin_port=admin_port,
                           extra={"privacy": {"rules": str(rules)}})


def planted(rng: random.Random, i: int) -> dict:
    """Personal data of user i, made for this test."""
    return {
        "contact": f"anna.k{i}@mailbox.example",
        "note": f"call me at +7 916 {100 + i % 900:03d}-{10 + i % 89:02d}-{20 + i % 79:02d}",
        "email": f"user{i}.b@post.example",
    }


def js_event(rng, i: int, personal: bool) -> dict:
    props = {"distinct_id": f"web-{i:04d}", "$lib": "web", "$lib_version": "1.200.0", "$os": "Mac OS X",
             "$browser": "Chrome", "$screen_width": 1440, "$session_id": str(uuid.UUID(int=rng.getrandbits(128))),
             "plan": PLANS[i % 3], "price": 9.5 + (i % 7), "coupon": f"cpn{i:05d}x"}
    if personal:
        p = planted(rng, i)
        props["contact"] = p["contact"]
    return {"event": "$pageview", "properties": props}


def mobile_event(rng, i: int, lib: str, personal: bool) -> dict:
    props = {"$lib": lib, "$app_version": f"2.{i % 4}.0", "$os": "Android" if lib.endswith("android") else "iOS",
             "$is_emulator": False, "$screen_width": 1080, "quantity": 1 + i % 5, "variant": VARIANTS[i % 3],
             "order_id": str(uuid.UUID(int=rng.getrandbits(128)))}
    if personal:
        p = planted(rng, i)
        props["note"] = p["note"]
        props["email"] = p["email"]
    return {"event": "order_placed", "distinct_id": f"{lib}-{i:04d}", "properties": props}


def stream(seed: int = 7):
    """(path, body) requests: posthog-js lists on /e/, mobile batches on /batch/; 1 in 10 users plants data."""
    rng = random.Random(seed)
    requests = []
    for start in range(0, USERS, 20):
        js, mobile = [], []
        for i in range(start, start + 20):
            personal = i % 10 == 3
            js.append(js_event(rng, i, personal))
            lib = "posthog-android" if i % 2 else "posthog-ios"
            mobile.append(mobile_event(rng, i, lib, personal))
        requests.append(("/e/", json.dumps(js).encode()))
        requests.append(("/batch/", json.dumps({"api_key": TOKEN, "batch": mobile}).encode()))
    return requests


def all_planted() -> list[str]:
    rng = random.Random(0)
    return [v for i in range(USERS) if i % 10 == 3 for v in planted(rng, i).values()]


def send(proc, path: str, body: bytes):
    with eg.Client(proc.listen_port) as c:
        r = c.request("POST", path, headers=[("Content-Type", "application/json")], body=body)
    assert r.status == 200, r.body
    return r


@pytest.fixture
def learning(upstreams, edgeguard, tmp_path):
    # A shipped file: without it the feature under test is missing, never a reason to skip.
    assert RULES.exists(), "conf/privacy.yaml not present"
    capture = upstreams("capture")
    rules = learning_rules(tmp_path)
    admin_port = eg.free_port()
    proc = edgeguard(proxy_config(eg.free_port(), capture.address, rules, admin_port=admin_port))
    return proc, capture, rules, admin_port


def learn(binary: str, *args: str) -> subprocess.CompletedProcess:
    return eg.run_cli(binary, "learn", *args)


def test_observation_and_proposal_from_a_mixed_stream(learning, edgeguard_bin, upstreams, edgeguard, tmp_path):
    proc, capture, rules, admin_port = learning
    requests = stream()
    for path, body in requests:
        send(proc, path, body)
    capture.wait_requests(len(requests))

    r = admin_get(admin_port, "/privacy/observed")
    assert r.status == 200
    observed_text = r.body.decode()
    observed = json.loads(observed_text)["profiles"]["events"]
    assert observed["events_total"] == 2 * USERS
    assert observed["events"] == {"$pageview": USERS, "order_placed": USERS}
    by_key = {(p["event"], p["key"]): p for p in observed["properties"]}
    lib = by_key[("order_placed", "$lib")]
    assert lib["types"] == ["string"] and lib["share"] == 1
    assert set(lib["enum"]["values"]) == {"posthog-android", "posthog-ios"} and lib["enum"]["other"] == 0
    assert by_key[("$pageview", "$screen_width")]["types"] == ["integer"]
    assert by_key[("$pageview", "price")]["types"] == ["float"]
    assert by_key[("order_placed", "$is_emulator")]["types"] == ["bool"]
    order_id = by_key[("order_placed", "order_id")]
    assert order_id["uuid"] == USERS and 200 <= order_id["distinct_estimate"] <= 400
    contact = by_key[("$pageview", "contact")]
    assert contact["detector_hits"].get("email") == USERS // 10
    assert by_key[("order_placed", "email")]["person_key"] == USERS // 10
    # Each coupon came from one client only: never a value, only its shape.
    coupon = by_key[("$pageview", "coupon")]
    assert coupon["enum"]["values"] == {} and coupon["enum"]["other"] == USERS
    for value in all_planted() + [f"cpn{i:05d}x" for i in range(USERS)]:
        assert value not in observed_text

    out = tmp_path / "proposed.yaml"
    result = learn(edgeguard_bin, "--admin", f"127.0.0.1:{admin_port}", "--profile", "events", "--rules",
                   str(rules), "--out", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert text.startswith(rules.read_text().split("\n  # OPTION")[0])  # the rules file, with the profile added
    proposal = text[text.index("\n  events-learnt:\n"):]
    expected = {
        '"$lib"': r'\{enum: \["posthog-android", "posthog-ios", "web"\]\}',
        '"$screen_width"': "integer",
        '"price"': "number",
        '"quantity"': "integer",
        '"$is_emulator"': "bool",
        '"order_id"': "uuid",
        '"$session_id"': "uuid",
        '"plan"': r'\{enum: \["free", "pro", "team"\]\}',
        '"variant"': r'\{enum: \["control", "test-a", "test-b"\]\}',
        '"coupon"': "string",
    }
    for key, type_re in expected.items():
        assert re.search(r"^          " + re.escape(key) + ": " + type_re + "$", proposal, re.M), (key, proposal)
    for key in ("contact", "note", "email"):
        assert re.search(r'^          # left out "' + key + '": ', proposal, re.M), (key, proposal)
        assert not re.search(r'^          "' + key + '":', proposal, re.M)
    assert "detector hits (email" in proposal and "a key rule names it" in proposal
    for value in all_planted() + [f"cpn{i:05d}x" for i in range(USERS)]:
        assert value not in text

    # `check` accepts the file as it is.
    check_config = proxy_config(eg.free_port(), capture.address, out, profile="events-learnt")
    config_path = tmp_path / "check.yaml"
    config_path.write_text(eg.dump_yaml(check_config))
    checked = eg.run_cli(edgeguard_bin, "check", "--config", str(config_path))
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # --diff names what the proposal drops, with its share of events.
    diff = learn(edgeguard_bin, "--admin", f"127.0.0.1:{admin_port}", "--profile", "events", "--diff", str(out))
    assert diff.returncode == 0, diff.stderr
    assert re.search(r'drop "contact" on 5% of events \(30\): not listed; detector hits: email 30', diff.stdout), \
        diff.stdout
    assert re.search(r'drop "note" on 5% of events \(30\)', diff.stdout)
    assert '"$lib"' not in diff.stdout and '"coupon"' not in diff.stdout

    # Enforced: clean events keep their structural properties, byte for byte; planted properties are dropped.
    enforce_capture = upstreams("capture-enforce")
    enforcing = edgeguard(proxy_config(eg.free_port(), enforce_capture.address, out, profile="events-learnt"),
                          name="enforce")
    rng = random.Random(99)
    clean = [mobile_event(rng, i, "posthog-android", False) for i in range(5)]
    body = json.dumps({"api_key": TOKEN, "batch": clean}).encode()
    send(enforcing, "/batch/", body)
    (req,) = enforce_capture.wait_requests(1)
    assert req.body == body
    dirty = [mobile_event(rng, 3, "posthog-ios", True)]
    send(enforcing, "/batch/", json.dumps({"api_key": TOKEN, "batch": dirty}).encode())
    req = enforce_capture.wait_requests(2)[1]
    forwarded = json.loads(req.body)["batch"][0]["properties"]
    assert "note" not in forwarded and "email" not in forwarded
    assert {k: forwarded[k] for k in ("$lib", "quantity", "variant", "order_id")} == \
        {k: dirty[0]["properties"][k] for k in ("$lib", "quantity", "variant", "order_id")}


def test_the_proposal_in_report_mode_forwards_unchanged_and_counts_what_it_would_drop(learning, edgeguard_bin,
                                                                                     upstreams, edgeguard, tmp_path):
    proc, capture, rules, admin_port = learning
    for path, body in stream():
        send(proc, path, body)
    out = tmp_path / "proposed.yaml"
    result = learn(edgeguard_bin, "--admin", f"127.0.0.1:{admin_port}", "--profile", "events", "--rules",
                   str(rules), "--out", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text().replace("\n  events-learnt:\n", "\n  events-learnt:\n    mode: report\n", 1)
    out.write_text(text)
    report_capture = upstreams("capture-report")
    report_admin = eg.free_port()
    reporting = edgeguard(proxy_config(eg.free_port(), report_capture.address, out, profile="events-learnt",
                                       admin_port=report_admin), name="report")

    def would_drop() -> float:
        families = promtext.parse(admin_get(report_admin, "/metrics").body.decode())
        return promtext.value(families, "edgeguard_privacy_decisions_total", profile="events-learnt",
                              rule="learnt-properties", action="report") or 0.0

    before = would_drop()
    rng = random.Random(5)
    event = mobile_event(rng, 1, "posthog-android", False)
    event["properties"]["new_in_app_v3"] = "tab-bar"
    body = json.dumps({"api_key": TOKEN, "batch": [event]}).encode()
    send(reporting, "/batch/", body)
    (req,) = report_capture.wait_requests(1)
    assert req.body == body
    assert would_drop() == before + 1


def test_a_low_rate_observes_a_share_of_the_events_and_the_proposal_stays_safe(upstreams, edgeguard,
                                                                              edgeguard_bin, tmp_path):
    """At `learn_events_per_second: 5` most of the stream is only counted; shares are over the observed
    events, and the proposal from that sample still lists structural properties and nothing personal."""
    capture = upstreams("capture")
    rate = 5
    rules = learning_rules(tmp_path, f"    learn_events_per_second: {rate}\n")
    admin_port = eg.free_port()
    proc = edgeguard(proxy_config(eg.free_port(), capture.address, rules, admin_port=admin_port))
    requests = stream()
    started = time.monotonic()
    for path, body in requests:
        send(proc, path, body)
    elapsed = time.monotonic() - started
    capture.wait_requests(len(requests))
    # What was forwarded does not depend on whether an event was observed: the same as without learning.
    plain_capture = upstreams("capture-plain")
    plain = edgeguard(proxy_config(eg.free_port(), plain_capture.address, RULES), name="plain")
    for path, body in requests[:4]:
        send(plain, path, body)
    assert [r.body for r in plain_capture.wait_requests(4)[:4]] == \
        [r.body for r in capture.wait_requests(4)[:4]]

    observed_text = admin_get(admin_port, "/privacy/observed").body.decode()
    root = json.loads(observed_text)
    observed = root["profiles"]["events"]
    workers = root["limits"]["workers"]
    assert observed["events_total"] == 2 * USERS
    assert observed["events"] == {"$pageview": USERS, "order_placed": USERS}
    # The first request found a full second's budget; afterwards at most `rate` a second per worker.
    assert rate <= observed["events_observed"] <= workers * rate * (2 + elapsed)
    assert observed["events_observed"] < 2 * USERS
    by_key = {(p["event"], p["key"]): p for p in observed["properties"]}
    # Every $pageview carries $screen_width: over the observed events its share is exactly 1.
    width = by_key[("$pageview", "$screen_width")]
    assert width["share"] == 1 and width["types"] == ["integer"]
    assert by_key[("$pageview", "$session_id")]["uuid"] == width["count"]
    for value in all_planted() + [f"cpn{i:05d}x" for i in range(USERS)]:
        assert value not in observed_text

    out = tmp_path / "proposed.yaml"
    result = learn(edgeguard_bin, "--admin", f"127.0.0.1:{admin_port}", "--profile", "events", "--rules",
                   str(rules), "--out", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    proposal = text[text.index("\n  events-learnt:\n"):]
    assert f"from {2 * USERS} events of profile `events` (properties observed on " in text
    assert re.search(r'^          "\$screen_width": integer$', proposal, re.M), proposal
    assert re.search(r'^          "\$session_id": uuid$', proposal, re.M), proposal
    for key in ("contact", "note", "email"):
        assert not re.search(r'^          "' + key + '":', proposal, re.M), (key, proposal)
    for value in all_planted() + [f"cpn{i:05d}x" for i in range(USERS)]:
        assert value not in text
    check_config = proxy_config(eg.free_port(), capture.address, out, profile="events-learnt")
    config_path = tmp_path / "check.yaml"
    config_path.write_text(eg.dump_yaml(check_config))
    checked = eg.run_cli(edgeguard_bin, "check", "--config", str(config_path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_observations_survive_a_reload(learning):
    proc, capture, rules, admin_port = learning
    path, body = stream()[0]
    send(proc, path, body)
    assert admin_get(admin_port, "/reload", method="POST").status == 200
    observed = json.loads(admin_get(admin_port, "/privacy/observed").body)
    assert observed["profiles"]["events"]["events_total"] == 20


def test_learn_fails_clearly_without_observations(upstreams, edgeguard, edgeguard_bin, tmp_path):
    capture = upstreams("capture")
    admin_port = eg.free_port()
    edgeguard(proxy_config(eg.free_port(), capture.address, RULES, admin_port=admin_port))
    result = learn(edgeguard_bin, "--admin", f"127.0.0.1:{admin_port}", "--profile", "events")
    assert result.returncode == 3
    assert "observed nothing" in result.stderr and "learn: true" in result.stderr
    unreachable = learn(edgeguard_bin, "--admin", f"127.0.0.1:{eg.free_port()}", "--profile", "events")
    assert unreachable.returncode == 3 and "cannot reach" in unreachable.stderr
    assert learn(edgeguard_bin, "--admin", "127.0.0.1:9180").returncode == 2
    bad_share = learn(edgeguard_bin, "--profile", "events", "--min-share", "2")
    assert bad_share.returncode == 2 and "--min-share" in bad_share.stderr
    helped = learn(edgeguard_bin, "--help")
    assert helped.returncode == 0 and "--min-share" in helped.stdout and "--diff" in helped.stdout


def test_memory_stays_under_the_cap_with_100000_distinct_keys(learning):
    proc, capture, rules, admin_port = learning
    keys_per_event = 1000
    for n in range(100):
        props = {f"k{n:03d}_{j:04d}": j for j in range(keys_per_event)}
        send(proc, "/batch/", json.dumps({"api_key": TOKEN, "batch": [{"event": "flood", "distinct_id": "d",
                                                                         "properties": props}]}).encode())
    capture.wait_requests(100)
    observed = json.loads(admin_get(admin_port, "/privacy/observed").body)
    events = observed["profiles"]["events"]
    cap = observed["limits"]["paths"] * observed["limits"]["workers"]
    assert events["paths"] <= cap
    assert events["paths"] + events["paths_overflow"] == 100 * keys_per_event
    assert events["paths_overflow"] >= 100 * keys_per_event - cap
    assert events["memory_bytes"] < 32 * 1024 * 1024
    eg.assert_rss_below(proc, 160 * 1024, "after 100,000 distinct property keys")
