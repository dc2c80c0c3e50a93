"""What PostHog's services would read from a request, written from WIRE.md §2 (capture) and §3 (feature-flags),
independently of edgeguard's C++ decoders, plus the encoders the SDKs use (fflate gzip, lz-string
compressToBase64, posthog-js `cv: "2024-10"` replay compression) so tests can build bodies exactly as sent.

A test that checks "the upstream received something capture can decode" calls `decode_capture()` /
`decode_flags()` on what the recording upstream saw; any deviation from capture's rules raises `DecodeError`.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import struct
import urllib.parse
import zlib
from dataclasses import dataclass, field
from typing import Any, Optional


class DecodeError(ValueError):
    """The bytes would be refused by the PostHog service (the message says which rule)."""


# --------------------------------------------------------------------------------------------------------------
# lz-string (pieroxy/lz-string 1.4/1.5), base64 variant: the LZW bit stream over UTF-16 code units.
# --------------------------------------------------------------------------------------------------------------

_LZ_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_LZ_B64_VALUE = {c: i for i, c in enumerate(_LZ_B64)}


def _utf16_units(text: str) -> list[str]:
    """JavaScript's view of a string: one element per UTF-16 code unit (surrogates kept as lone code points)."""
    raw = text.encode("utf-16-le", "surrogatepass")
    return [chr(int.from_bytes(raw[i:i + 2], "little")) for i in range(0, len(raw), 2)]


def _from_utf16_units(units: list[str]) -> str:
    raw = b"".join(ord(u).to_bytes(2, "little") for u in units)
    return raw.decode("utf-16-le", "surrogatepass")


class _BitWriter:
    def __init__(self, bits_per_char: int):
        self.bits_per_char = bits_per_char
        self.val = 0
        self.position = 0
        self.out: list[str] = []

    def put(self, value: int, nbits: int) -> None:
        """Writes nbits of value, least significant first (lz-string's order)."""
        for _ in range(nbits):
            self.val = (self.val << 1) | (value & 1)
            if self.position == self.bits_per_char - 1:
                self.position = 0
                self.out.append(_LZ_B64[self.val])
                self.val = 0
            else:
                self.position += 1
            value >>= 1

    def flush(self) -> None:
        while True:
            self.val <<= 1
            if self.position == self.bits_per_char - 1:
                self.out.append(_LZ_B64[self.val])
                return
            self.position += 1


def lz_compress_to_base64(text: str) -> str:
    """LZString.compressToBase64(text), bit for bit."""
    units = _utf16_units(text)
    w_out = _BitWriter(6)
    dictionary: dict[str, int] = {}
    to_create: set[str] = set()
    enlarge_in, dict_size, num_bits = 2, 3, 2
    w = ""

    def emit_w() -> None:
        nonlocal enlarge_in, num_bits
        if w in to_create:
            code = ord(w[0])
            if code < 256:
                w_out.put(0, num_bits)
                w_out.put(code, 8)
            else:
                w_out.put(1, num_bits)
                w_out.put(code, 16)
            enlarge_in -= 1
            if enlarge_in == 0:
                enlarge_in = 1 << num_bits
                num_bits += 1
            to_create.discard(w)
        else:
            w_out.put(dictionary[w], num_bits)
        enlarge_in -= 1
        if enlarge_in == 0:
            enlarge_in = 1 << num_bits
            num_bits += 1

    for c in units:
        if c not in dictionary:
            dictionary[c] = dict_size
            dict_size += 1
            to_create.add(c)
        wc = w + c
        if wc in dictionary:
            w = wc
            continue
        emit_w()
        dictionary[wc] = dict_size
        dict_size += 1
        w = c
    if w != "":
        emit_w()
    w_out.put(2, num_bits)
    w_out.flush()
    res = "".join(w_out.out)
    return res + "=" * ((4 - len(res) % 4) % 4)


def lz_decompress_from_base64(text: str) -> str:
    """LZString.decompressFromBase64(text); raises DecodeError where the JavaScript returns null or ""."""
    if text == "":
        raise DecodeError("lz64: empty input")
    try:
        values = [_LZ_B64_VALUE[c] for c in text]
    except KeyError as e:
        raise DecodeError(f"lz64: character {e} outside the base64 alphabet") from None
    reset = 32
    state = {"val": values[0], "position": reset, "index": 1}

    def read(nbits: int) -> int:
        bits, power = 0, 1
        for _ in range(nbits):
            resb = state["val"] & state["position"]
            state["position"] >>= 1
            if state["position"] == 0:
                state["position"] = reset
                idx = state["index"]
                state["val"] = values[idx] if idx < len(values) else 0
                state["index"] = idx + 1
            if resb:
                bits |= power
            power <<= 1
        return bits

    dictionary: list = [0, 1, 2]
    enlarge_in, dict_size, num_bits = 4, 4, 3
    first = read(2)
    if first == 0:
        c = chr(read(8))
    elif first == 1:
        c = chr(read(16))
    else:
        raise DecodeError("lz64: stream holds nothing")
    dictionary.append(c)
    w = c
    result = [c]
    while True:
        if state["index"] > len(values):
            raise DecodeError("lz64: stream ends without its end marker")
        code = read(num_bits)
        if code in (0, 1):
            dictionary.append(chr(read(8 if code == 0 else 16)))
            dict_size += 1
            code = dict_size - 1
            enlarge_in -= 1
        elif code == 2:
            return _from_utf16_units(list("".join(result)))
        if enlarge_in == 0:
            enlarge_in = 1 << num_bits
            num_bits += 1
        if code < len(dictionary) and code > 2:
            entry = dictionary[code]
        elif code == dict_size:
            entry = w + w[0]
        else:
            raise DecodeError("lz64: reference to an unknown dictionary entry")
        result.append(entry)
        dictionary.append(w + entry[0])
        dict_size += 1
        enlarge_in -= 1
        w = entry
        if enlarge_in == 0:
            enlarge_in = 1 << num_bits
            num_bits += 1


# --------------------------------------------------------------------------------------------------------------
# gzip as the SDKs write it, and posthog-js replay partial compression.
# --------------------------------------------------------------------------------------------------------------


def fflate_gzip(data: bytes) -> bytes:
    """gzip with fflate's header (mtime 0, no flags, XFL 0, OS 3): posthog-js's `1f8b 0800 00000000 0003`."""
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
    raw = deflater.compress(data) + deflater.flush()
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + raw + trailer


def gzip_latin1(value: Any) -> str:
    """posthog-js `strFromU8(gzipSync(strToU8(JSON.stringify(value))), true)`: gzip bytes as a latin-1 string."""
    return fflate_gzip(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()).decode("latin-1")


def gunzip_latin1(text: str) -> Any:
    """The inverse: each code point (<= U+00FF) is a byte; gunzip; JSON."""
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        raise DecodeError("compressed replay field has a code point above U+00FF") from None
    if raw[:2] != b"\x1f\x8b":
        raise DecodeError("compressed replay field is not gzip")
    try:
        return json.loads(gzip.decompress(raw).decode("utf-8"))
    except (OSError, EOFError, UnicodeDecodeError, ValueError) as e:
        raise DecodeError(f"compressed replay field does not inflate to JSON: {e}") from None


MUTATION_FIELDS = ("texts", "attributes", "removes", "adds")


# IncrementalSnapshot sources whose fields posthog-js compresses: Mutation (0) and StyleSheetRule (8).
COMPRESSED_SOURCE_FIELDS = {0: MUTATION_FIELDS, 8: ("adds", "removes")}


def compress_rrweb_event(item: dict) -> dict:
    """One rrweb event as posthog-js's `cv: "2024-10"` sends it: FullSnapshot `data`, Mutation `texts/attributes/
    removes/adds` and StyleSheetRule `adds/removes` become gzip-in-latin-1 strings."""
    out = dict(item)
    if item.get("type") == 2:
        out["data"] = gzip_latin1(item["data"])
        out["cv"] = "2024-10"
    elif item.get("type") == 3 and isinstance(item.get("data"), dict) and \
            item["data"].get("source") in COMPRESSED_SOURCE_FIELDS:
        data = dict(item["data"])
        for name in COMPRESSED_SOURCE_FIELDS[data["source"]]:
            if name in data:
                data[name] = gzip_latin1(data[name])
        out["data"] = data
        out["cv"] = "2024-10"
    return out


def expand_rrweb_event(item: dict) -> dict:
    """The reverse of compress_rrweb_event for any item marked cv "2024-10" (what the replay service reads)."""
    if not isinstance(item, dict) or item.get("cv") != "2024-10":
        return item
    out = dict(item)
    if isinstance(item.get("data"), str):
        out["data"] = gunzip_latin1(item["data"])
    elif isinstance(item.get("data"), dict):
        data = dict(item["data"])
        for name in MUTATION_FIELDS:
            if isinstance(data.get(name), str):
                data[name] = gunzip_latin1(data[name])
        out["data"] = data
    return out


def snapshot_items(event: dict) -> list:
    data = (event.get("properties") or {}).get("$snapshot_data")
    if data is None:
        return []
    return data if isinstance(data, list) else [data]


def expand_replay(events: list) -> list:
    """Events with every compressed replay field inflated, for searching and comparing."""
    out = []
    for ev in events:
        props = ev.get("properties") or {}
        if "$snapshot_data" not in props:
            out.append(ev)
            continue
        ev = dict(ev)
        props = dict(props)
        data = props["$snapshot_data"]
        props["$snapshot_data"] = ([expand_rrweb_event(i) for i in data] if isinstance(data, list)
                                   else expand_rrweb_event(data))
        ev["properties"] = props
        out.append(ev)
    return out


# --------------------------------------------------------------------------------------------------------------
# capture's payload extraction and decompression (WIRE.md §2.2–2.4).
# --------------------------------------------------------------------------------------------------------------

_FORM_KEYS = re.compile(rb"(?:^|&)(?:data|_|ip|compression)=")
_B64_CHARS = re.compile(rb"[A-Za-z0-9+/=]*")
_B64_WITH_SPACES = re.compile(rb"[A-Za-z0-9+/= ]*")
LEGACY_PREFIXES = ("/e", "/capture", "/engage", "/track")


def looks_like_form(payload: bytes) -> bool:
    return _FORM_KEYS.search(payload[:128]) is not None


def looks_like_strict_base64(payload: bytes) -> bool:
    return len(payload) > 0 and len(payload) % 4 == 0 and _B64_CHARS.fullmatch(payload[:128]) is not None


def is_legacy_path(path: str) -> bool:
    return path in ("/e",) or path.startswith("/e/") or path.startswith("/e?") or \
        any(path.startswith(p) for p in LEGACY_PREFIXES[1:])


def parse_form(text: bytes) -> dict[str, bytes]:
    """serde_urlencoded: `+` is a space, %XX are bytes; the first occurrence of a key wins here (capture's
    struct takes one value; an SDK never sends two)."""
    out: dict[str, bytes] = {}
    for pair in text.split(b"&"):
        if not pair:
            continue
        name, _, value = pair.partition(b"=")
        key = urllib.parse.unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", "replace")
        out.setdefault(key, urllib.parse.unquote_to_bytes(value.replace(b"+", b" ")))
    return out


def _hint(value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    v = value.lower()
    if v in ("gzip", "gzip-js"):
        return "gzip"
    if v in ("lz64", "lz-string"):
        return "lz64"
    if v in ("base64", "b64"):
        return "base64"
    return None


def _header_hint(value: Optional[str]) -> Optional[str]:
    # Exact match in the header (WIRE.md §2.2 step 4).
    return {"gzip": "gzip", "gzip-js": "gzip", "lz64": "lz64", "lz-string": "lz64", "base64": "base64",
            "b64": "base64"}.get(value or "")


def _b64decode_strict(data: bytes) -> Optional[bytes]:
    try:
        return base64.b64decode(data, validate=True)
    except (ValueError, TypeError):
        return None


@dataclass
class Decoded:
    """What capture read: the JSON document, its events, and the steps that got there."""

    document: Any
    events: list
    steps: list = field(default_factory=list)
    text: str = ""


def _header(headers: list, name: str) -> Optional[str]:
    for n, v in headers:
        if n.lower() == name.lower():
            return v
    return None


def _strict_json(text: str) -> Any:
    def no_constants(name: str):
        raise DecodeError(f"JSON constant {name} is not JSON")

    try:
        return json.loads(text, parse_constant=no_constants)
    except json.JSONDecodeError as e:
        raise DecodeError(f"invalid JSON: {e}") from None


def decode_capture_payload(method: str, target: str, headers: list, body: bytes) -> tuple[str, list]:
    """The decoded text capture would parse, and the steps taken (WIRE.md §2.2–2.3)."""
    path, _, query = target.partition("?")
    q = parse_form(query.encode("latin-1"))
    steps = []
    if q.get("data"):
        payload = q["data"]
        steps.append("query")
    else:
        payload = body or b""
        if not payload:
            raise DecodeError("request missing data payload")
    if not looks_like_form(payload) and looks_like_strict_base64(payload):
        decoded = _b64decode_strict(payload)
        if decoded is not None:
            payload = decoded
            steps.append("base64")
    form_hint = None
    if _header(headers, "content-type") == "application/x-www-form-urlencoded":
        if not looks_like_form(payload):
            raise DecodeError("expected form data in POST request payload")
        form = parse_form(payload)
        data = form.get("data")
        if not data:
            raise DecodeError("form has no data")
        if b" " in data and _B64_WITH_SPACES.fullmatch(data):
            data = data.replace(b" ", b"+")  # URL-decoding turned `+` into a space
            steps.append("plus-repair")
        form_hint = _hint(form["compression"].decode("latin-1")) if "compression" in form else None
        payload = data
        steps.append("form")
    hint = _hint(q["compression"].decode("latin-1")) if "compression" in q else None
    hint = hint or form_hint or _header_hint(_header(headers, "content-encoding"))
    if hint == "gzip" or payload[:3] == b"\x1f\x8b\x08":
        try:
            payload = gzip.decompress(payload)
        except (OSError, EOFError, zlib.error) as e:
            raise DecodeError(f"invalid GZIP data: {e}") from None
        steps.append("gzip")
    elif hint == "lz64":
        payload = lz_decompress_from_base64(payload.decode("latin-1")).encode("utf-8", "surrogatepass")
        steps.append("lz64")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("payload is not UTF-8") from None
    if is_legacy_path(path) and looks_like_strict_base64(payload):
        decoded = _b64decode_strict(payload)
        if decoded is not None:
            try:
                text = decoded.decode("utf-8")
            except UnicodeDecodeError:
                raise DecodeError("legacy base64 unwrap is not UTF-8") from None
            steps.append("base64")
    return text, steps


def capture_events(document: Any, path: str) -> list:
    """The events of a decoded document under capture's accepted shapes (WIRE.md §2.4, §2.9)."""
    if isinstance(document, list):
        events = document
    elif isinstance(document, dict) and isinstance(document.get("batch"), list):
        if not (document.get("api_key") or document.get("token")):
            raise DecodeError("batch without api_key/token")
        events = document["batch"]
    elif isinstance(document, dict):
        events = [document]
    else:
        raise DecodeError("JSON root is neither an event, a batch nor an array")
    if not events:
        raise DecodeError("request holds no event")
    engage = path.startswith("/engage")
    replay = path == "/s" or path.startswith("/s/")
    for ev in events:
        if not isinstance(ev, dict):
            raise DecodeError("event is not an object")
        if "event" not in ev and not engage:
            raise DecodeError("non-engage request missing event name attribute")
        if "event" in ev and not isinstance(ev["event"], str):
            raise DecodeError("event name is not a string")
        props = ev.get("properties", {})
        if not isinstance(props, dict):
            raise DecodeError("properties is not an object")
        did = ev.get("distinct_id", ev.get("$distinct_id", props.get("distinct_id")))
        if did is None or did == "":
            raise DecodeError("missing distinct_id")
        if replay and "$snapshot_data" not in props:
            raise DecodeError("missing_snapshot_data")
    if replay:
        sid = events[0].get("properties", {}).get("$session_id")
        if not isinstance(sid, str) or not re.fullmatch(r"[A-Za-z0-9-]{1,70}", sid):
            raise DecodeError("missing or invalid $session_id")
        for ev in events:
            for item in snapshot_items(ev):
                expand_rrweb_event(item)  # raises if a compressed field does not inflate
    return events


def decode_capture(method: str, target: str, headers: list, body: bytes) -> Decoded:
    text, steps = decode_capture_payload(method, target, headers, body)
    document = _strict_json(text)
    return Decoded(document=document, events=capture_events(document, target.partition("?")[0]), steps=steps,
                   text=text)


# --------------------------------------------------------------------------------------------------------------
# feature-flags' body decoding (WIRE.md §3).
# --------------------------------------------------------------------------------------------------------------


def _flags_base64(raw: bytes) -> Optional[bytes]:
    text = urllib.parse.unquote_to_bytes(raw)
    if text.startswith(b"data="):
        text = text[5:]
    text = text.replace(b" ", b"")
    text += b"=" * ((4 - len(text) % 4) % 4)
    return _b64decode_strict(text)


def decode_flags(method: str, target: str, headers: list, body: bytes) -> Decoded:
    ctype = (_header(headers, "content-type") or "").split(";")[0].strip().lower()
    query = parse_form(target.partition("?")[2].encode("latin-1"))
    steps = []
    if ctype == "application/x-www-form-urlencoded":
        raw = _flags_base64(body)
        if raw is None:
            raise DecodeError("flags form body is not base64")
        text = raw.decode("utf-8", "replace")
        steps.append("form+base64")
    elif ctype in ("", "application/json", "text/plain"):
        raw = body
        gz = query.get("compression") == b"gzip" or "gzip" in (_header(headers, "content-encoding") or "") \
            or raw[:2] == b"\x1f\x8b"
        if gz:
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error) as e:
                raise DecodeError(f"invalid gzip: {e}") from None
            steps.append("gzip")
        text = raw.decode("utf-8", "replace")
        try:
            document = json.loads(text)
            return Decoded(document=document, events=[document], steps=steps, text=text)
        except json.JSONDecodeError:
            fallback = _flags_base64(raw)
            if fallback is None:
                raise DecodeError("flags body is neither JSON nor base64") from None
            text = fallback.decode("utf-8", "replace")
            steps.append("base64")
    else:
        raise DecodeError(f"unsupported Content-Type {ctype!r} for flags")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        raise DecodeError(f"invalid flags JSON: {e}") from None
    if not isinstance(document, dict):
        raise DecodeError("flags body is not an object")
    return Decoded(document=document, events=[document], steps=steps, text=text)
