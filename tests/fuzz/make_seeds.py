#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs into tests/fuzz/seeds/<target>/ (run it again after the conformance
cases or the shipped configs change; the output is committed so a fuzz run needs no Python).

Each target reads selector bytes before its payload (see the target's header comment); the seeds carry them:
  request_fuzz  b"\\x00\\x80" + raw request bytes of every tests/conformance/*.case (request side, default
                limits, split in the middle), plus hand-written upstream responses behind b"\\x01\\x80" / b"\\x09\\x80"
  config_fuzz   b"\\x00" + conf/edgeguard.yaml (proxy config loader), b"\\x01" + conf/privacy.yaml without its
                create_if_missing line (the fuzzer skips texts that could create key files), b"\\x01" +
                tests/fuzz/config/privacy.yaml (small, fast to load)
  filter_fuzz   a few bodies written here; the shared corpus is added by CMake when ../shared exists
  multipart_fuzz  mode byte + the tests/fixtures/ai multipart bodies with the boundary "B0und"
  otlp_fuzz     mode byte (signal, bit 8 = JSON) + the tests/fixtures/otlp exports
"""

from __future__ import annotations

import gzip
import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "tests" / "fuzz" / "seeds"
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from conformance_case import load_case  # noqa: E402  (the conformance runner's own reader)

RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nServer: t\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\ndata: 2\n\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\x81\x00",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"a\"\r\n\r\n",
    b"HTTP/1.1 502 Bad Gateway\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nContent-Length: 0\r\n\r\n",
]

FILTER_BODIES = [
    # (profile/ip byte, shape byte, body); shape picks path, type, encoding and query (filter_fuzz.cc)
    (0, 1, b'{"api_key":"phc_x","batch":[{"event":"$pageview","distinct_id":"ann@example.com",'
           b'"properties":{"$ip":"8.8.8.8","$current_url":"https://a.example/?email=ann@example.com&x=1",'
           b'"$set":{"email":"ann@example.com","phone":"+7 912 345-67-89"},"plan":"pro"}}]}'),
    (8, 0, b'{"event":"checkout","distinct_id":"u-1","properties":{"card":"4111 1111 1111 1111",'
           b'"iban":"DE89370400440532013000","inn":"500100732259","$ip":"203.0.113.9"}}'),
    (4, 4, b'{"distinct_id":"u-2","$set":{"name":"\xd0\x98\xd0\xb2\xd0\xb0\xd0\xbd \xd0\x98\xd0\xb2\xd0\xb0'
           b'\xd0\xbd\xd0\xbe\xd0\xb2\xd0\xb8\xd1\x87 \xd0\x9f\xd0\xb5\xd1\x82\xd1\x80\xd0\xbe\xd0\xb2"},'
           b'"properties":{"$screen_name":"Home","$app_version":"1.2.3","token":"ghp_0123456789abcdefghij0123456789abcdef"}}'),
    (2, 3, b'[{"event":"$snapshot","properties":{"$snapshot_data":[{"type":2,"data":{"node":{"type":3,'
           b'"textContent":"call +79123456789"}}},{"type":3,"data":{"source":0,"texts":[{"id":1,"value":"a@b.example"}]}}]}}]'),
    (1, 4, b'{"token":"phc_x","distinct_id":"u-3","person_properties":{"email":"x@y.example"},"groups":{}}'),
    (5, 1, b'{"batch":[{"event":"e","properties":{"key":"phx_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0uVw"}}]}'),
    # identifiers as JSON numbers and numbers glued to words
    (0, 1, b'{"api_key":"phc_x","batch":[{"event":"purchase","distinct_id":79161234567,"timestamp":1718031234566,'
           b'"properties":{"card":4111111111111111,"tax":500100732259,"n":[-79161234567,9161234567,1.5e10,20241128],'
           b'"note":"tel79161234567 card4111111111111111 k@a.co4111111111111111 9161234567,k@a.co build20241128"}}]}'),
]


def write(target: str, data: bytes) -> None:
    out = SEEDS / target
    out.mkdir(parents=True, exist_ok=True)
    (out / hashlib.sha1(data).hexdigest()).write_bytes(data)


def main() -> None:
    for target in ("request_fuzz", "config_fuzz", "filter_fuzz", "multipart_fuzz", "otlp_fuzz"):
        d = SEEDS / target
        if d.exists():
            for f in d.iterdir():
                f.unlink()
    for case in sorted((ROOT / "tests" / "conformance").glob("*.case")):
        write("request_fuzz", b"\x00\x80" + load_case(case).request)
    for response in RESPONSES:
        write("request_fuzz", b"\x01\x80" + response)
        write("request_fuzz", b"\x09\x80" + response)  # with the upstream closing after it
    write("config_fuzz", b"\x00" + (ROOT / "conf" / "edgeguard.yaml").read_bytes())
    rules = (ROOT / "conf" / "privacy.yaml").read_bytes()
    rules = b"\n".join(l for l in rules.split(b"\n") if b"create_if_missing" not in l)
    write("config_fuzz", b"\x01" + rules)
    write("config_fuzz", b"\x01" + (ROOT / "tests" / "fuzz" / "config" / "privacy.yaml").read_bytes())
    for pick, shape, body in FILTER_BODIES:
        write("filter_fuzz", bytes([pick, shape]) + body)
        # the same body gzip-compressed (shape bit 32: Content-Encoding: gzip)
        write("filter_fuzz", bytes([pick, shape | 32]) + gzip.compress(body, mtime=0))
    boundary = b"----posthogAiBoundary7MA4YWxkTrZu0gW"
    for name in ("generation_planted.multipart", "generation_clean.multipart"):
        body = (ROOT / "tests" / "fixtures" / "ai" / name).read_bytes().replace(boundary, b"B0und")
        write("multipart_fuzz", b"\x00" + body)
        write("multipart_fuzz", b"\x05" + body)  # gzip-wrapped, IP policy drop
    write("multipart_fuzz", b"\x01--B0und\r\nContent-Disposition: form-data; name=\"event\"\r\n\r\n"
                            b"{\"event\":\"$ai_span\",\"distinct_id\":\"a@b.co\"}\r\n--B0und--")
    otlp = ROOT / "tests" / "fixtures" / "otlp"
    for mode, kind in enumerate(("logs", "traces", "metrics")):
        write("otlp_fuzz", bytes([mode]) + (otlp / f"{kind}_planted.pb").read_bytes())
        write("otlp_fuzz", bytes([mode | 8]) + (otlp / f"{kind}_planted.json").read_bytes())
    write("otlp_fuzz", b"\x00" + (otlp / "logs_clean.pb").read_bytes())
    write("otlp_fuzz", b"\x08" + (otlp / "logs_clean.json").read_bytes())


if __name__ == "__main__":
    main()
