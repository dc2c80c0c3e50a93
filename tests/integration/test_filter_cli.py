"""`edgeguard filter` through the real binary: output bytes, exit codes and the --explain audit."""
import gzip
import json
import os
import subprocess

import pytest

BIN = os.environ.get("EDGEGUARD_BIN", "")
SRC = os.environ.get("EDGEGUARD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
RULES = os.path.join(SRC, "conf", "privacy.yaml")
FIXTURES = os.path.join(SRC, "tests", "fixtures", "privacy")

if not BIN or not os.path.exists(BIN):
    pytest.skip("EDGEGUARD_BIN not built", allow_module_level=True)


def run_filter(body: bytes, *args: str, rules: str = RULES):
    env = dict(os.environ, EDGEGUARD_HASH_KEY="cli-test-key-0123456789abcdef")
    return subprocess.run([BIN, "filter", "--rules", rules, *args], input=body, capture_output=True,
                          env=env, timeout=60)


def read(name: str) -> bytes:
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def test_clean_body_is_printed_byte_identical_with_exit_0():
    body = read("clean_batch.json")
    r = run_filter(body, "--profile", "events")
    assert r.returncode == 0, r.stderr
    assert r.stdout == body


def test_personal_data_is_removed_with_exit_1_and_explained():
    r = run_filter(read("planted_batch.json"), "--profile", "events", "--explain", "--ip-policy", "truncate")
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)
    text = r.stdout.decode()
    for gone in ("olga", "4111 1111 1111 1111", "81.23.45.67"):
        assert gone not in text
    assert out["batch"][1]["distinct_id"].startswith("h1:")
    explain = r.stderr.decode()
    assert "verdict: rewritten" in explain
    assert "person-keys\tbatch[*].properties.$set.email\tdrop\t1" in explain
    assert "olga" not in explain  # the audit never carries values


def test_gzip_with_hint_comes_out_as_plain_json_and_query_loses_the_hint():
    body = gzip.compress(b'[{"event":"e","distinct_id":"u1","properties":{"note":"mail me: a.b@example.org"}}]')
    r = run_filter(body, "--profile", "events", "--content-type", "text/plain", "--path", "/e/",
                   "--query", "compression=gzip-js&ver=1.78.5", "--explain")
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)[0]["properties"]["note"] == "mail me: [redacted:email]"
    assert "query: ver=1.78.5" in r.stderr.decode()


def test_rejection_prints_capture_style_json_with_exit_4():
    r = run_filter(b'{"event":"e","properties":{"k":"phx_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0uVw"}}',
                   "--profile", "events")
    assert r.returncode == 4
    out = json.loads(r.stdout)
    assert out["status"] == 422 and out["code"] == "privacy_rule_rejected" and out["rule_ids"] == ["secrets"]
    assert "phx_" not in r.stdout.decode()


def test_invalid_json_is_rejected_400():
    r = run_filter(b'{"event":', "--profile", "events")
    assert r.returncode == 4
    assert json.loads(r.stdout)["status"] == 400


def test_usage_and_rules_errors_exit_2(tmp_path):
    assert run_filter(b"{}", "--profile").returncode == 2
    assert run_filter(b"{}", "--profile", "nope").returncode == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("profiles:\n  events:\n    rules:\n      - {id: x, detectors: [email], acton: redact}\n")
    r = run_filter(b"{}", "--profile", "events", rules=str(bad))
    assert r.returncode == 2
    assert f"{bad}:4:" in r.stderr.decode()


def test_explain_names_the_detector_or_key_pattern_that_matched():
    body = b'[{"event":"e","distinct_id":"u1","properties":{"note":"mail me: a.b@example.org","email":"x"}}]'
    r = run_filter(body, "--profile", "events", "--explain")
    assert r.returncode == 1, r.stderr
    rows = [line.strip().split("\t") for line in r.stderr.decode().splitlines() if "\t" in line]
    matched = {row[0]: row[4] for row in rows}
    # A value found by a detector names the detector; a key rule names the path pattern from the rules file.
    assert any(m == "detector:email" for m in matched.values()), rows
    assert matched["person-keys"].startswith("key:**./^(e[-_]?mail|"), rows
    # The audit never carries the data it matched.
    assert "a.b@example.org" not in r.stderr.decode() and "mail me" not in r.stderr.decode()
