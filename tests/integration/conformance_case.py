"""Reader for tests/conformance/*.case files (format described in tests/conformance/README.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

_REPEAT = re.compile(r"\$repeat\((\d+),([^()$]*)\)")  # innermost first
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|[rnt0\\])")
_SIMPLE_ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\x00", "\\": b"\\"}


class CaseFormatError(ValueError):
    pass


def unescape(text: str) -> bytes:
    """Escape sequences to bytes: \\r \\n \\t \\0 \\\\ \\xHH, and $repeat(N,text) for long inputs."""
    while True:
        expanded = _REPEAT.sub(lambda m: m.group(2) * int(m.group(1)), text)
        if expanded == text:
            break
        text = expanded
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(text):
        out += text[pos:m.start()].encode("latin-1")
        token = m.group(1)
        out += bytes([int(token[1:], 16)]) if token.startswith("x") else _SIMPLE_ESCAPES[token]
        pos = m.end()
    out += text[pos:].encode("latin-1")
    return bytes(out)


@dataclass
class ExpectedUpstreamRequest:
    method: str
    target: str
    headers: list  # [(lowercase name, value)] in order, end-to-end headers only
    body: bytes


@dataclass
class ConformanceCase:
    name: str
    description: str
    request: bytes
    statuses: list  # one entry per expected response; each entry a set of acceptable codes
    close: Optional[bool]  # True: edgeguard must close; False: the connection must serve another request
    upstream_mode: str  # "requests", "none" (not a byte), "no-complete-request"
    upstream: list = field(default_factory=list)


def _parse_upstream(lines: list[str], path: Path) -> tuple[str, list[ExpectedUpstreamRequest]]:
    content = [l for l in lines if l.strip() and not l.startswith("#")]
    if len(content) == 1 and content[0].strip() in ("none", "no-complete-request"):
        return content[0].strip(), []
    requests: list[ExpectedUpstreamRequest] = []
    current: Optional[ExpectedUpstreamRequest] = None
    for line in content:
        if line.strip() == "===":
            current = None
            continue
        if current is None:
            parts = line.split(" ")
            if len(parts) != 2:
                raise CaseFormatError(f"{path}: upstream request line must be 'METHOD TARGET': {line!r}")
            current = ExpectedUpstreamRequest(parts[0], unescape(parts[1]).decode("latin-1"), [], b"")
            requests.append(current)
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise CaseFormatError(f"{path}: bad upstream line {line!r}")
        if name == "body":
            current.body = unescape(value[1:] if value.startswith(" ") else value)
        else:
            current.headers.append((name.lower(), unescape(value.strip(" ")).decode("latin-1")))
    if not requests:
        raise CaseFormatError(f"{path}: empty upstream section")
    return "requests", requests


def load_case(path: Path) -> ConformanceCase:
    sections: dict[str, list[str]] = {}
    preamble: list[str] = []
    current: Optional[list[str]] = None
    for raw_line in path.read_text(encoding="utf-8").split("\n"):
        if raw_line.startswith("--- "):
            name = raw_line[4:].strip()
            if name in sections:
                raise CaseFormatError(f"{path}: duplicate section {name}")
            current = sections[name] = []
            continue
        (preamble if current is None else current).append(raw_line)
    for required in ("request", "expect", "upstream"):
        if required not in sections:
            raise CaseFormatError(f"{path}: missing '--- {required}' section")

    request_lines = sections["request"]
    while request_lines and request_lines[-1] == "":
        request_lines.pop()  # the file's final newline is not part of the request
    request = unescape("".join(request_lines))

    statuses: list = []
    close: Optional[bool] = None
    for line in sections["expect"]:
        if not line.strip() or line.startswith("#"):
            continue
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "status":
            statuses = [{int(code) for code in entry.split("|")} for entry in value.split(",")]
        elif key == "close":
            if value not in ("yes", "no"):
                raise CaseFormatError(f"{path}: close must be yes or no")
            close = value == "yes"
        else:
            raise CaseFormatError(f"{path}: unknown expect key {key!r}")
    if not statuses:
        raise CaseFormatError(f"{path}: expect needs a status")

    mode, upstream = _parse_upstream(sections["upstream"], path)
    description = " ".join(l.lstrip("# ").strip() for l in preamble if l.startswith("#"))
    return ConformanceCase(name=path.stem, description=description, request=request, statuses=statuses,
                           close=close, upstream_mode=mode, upstream=upstream)
