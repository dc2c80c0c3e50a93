"""A strict parser for the Prometheus text exposition format 0.0.4, for tests that scrape edgeguard.

Written from the format's grammar, independently of the C++ renderer: every line must be a HELP, a TYPE or a
sample; a family's TYPE comes before its samples and its lines are contiguous; label values use only the three
escapes; histograms are cumulative with a +Inf bucket equal to _count. Any violation raises ExpositionError.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Optional

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class ExpositionError(ValueError):
    pass


@dataclass
class Family:
    type: str = ""
    help: Optional[str] = None
    samples: list = field(default_factory=list)  # [(name, {labels}, value)]


def _parse_value(text: str) -> float:
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?)", text):
        raise ExpositionError(f"bad value {text!r}")
    return float(text)


def _parse_labels(text: str, i: int) -> tuple[dict, int]:
    labels: dict = {}
    assert text[i] == "{"
    i += 1
    while i < len(text) and text[i] != "}":
        m = re.compile(LABEL).match(text, i)
        if not m:
            raise ExpositionError(f"bad label name at {i}")
        key = m.group(0)
        if key.startswith("__"):
            raise ExpositionError(f"reserved label {key}")
        i = m.end()
        if text[i:i + 2] != '="':
            raise ExpositionError('expected ="')
        i += 2
        value = []
        while True:
            if i >= len(text):
                raise ExpositionError("unterminated label value")
            c = text[i]
            i += 1
            if c == '"':
                break
            if c == "\\":
                if i >= len(text):
                    raise ExpositionError("dangling escape")
                e = text[i]
                i += 1
                if e not in '\\"n':
                    raise ExpositionError(f"invalid escape \\{e}")
                value.append("\n" if e == "n" else e)
            else:
                value.append(c)
        if key in labels:
            raise ExpositionError(f"duplicate label {key}")
        labels[key] = "".join(value)
        if i < len(text) and text[i] == ",":
            i += 1
        elif i >= len(text) or text[i] != "}":
            raise ExpositionError("expected , or }")
    if i >= len(text):
        raise ExpositionError("unterminated label set")
    return labels, i + 1


def _belongs(sample: str, family: str, type_: str) -> bool:
    if type_ == "histogram":
        return sample in (family + "_bucket", family + "_sum", family + "_count")
    if type_ == "summary":
        return sample in (family, family + "_sum", family + "_count")
    return sample == family


def parse(text: str) -> dict[str, Family]:
    if text and not text.endswith("\n"):
        raise ExpositionError("no final newline")
    families: dict[str, Family] = {}
    current: Optional[str] = None
    closed: set = set()
    series: set = set()
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {n}: {line!r}"
        if not line:
            raise ExpositionError(f"empty line, {where}")
        if line.startswith("#"):
            m = re.fullmatch(rf"# (HELP|TYPE) ({NAME}) (.*)", line)
            if not m:
                raise ExpositionError(f"stray comment, {where}")
            kind, name, arg = m.groups()
            if name != current:
                if current is not None:
                    closed.add(current)
                if name in closed:
                    raise ExpositionError(f"family lines not contiguous, {where}")
                current = name
            fam = families.setdefault(name, Family())
            if kind == "HELP":
                if fam.help is not None:
                    raise ExpositionError(f"second HELP, {where}")
                if re.search(r"\\[^\\n]|\\$", arg):
                    raise ExpositionError(f"bad escape in HELP, {where}")
                fam.help = arg
            else:
                if fam.type:
                    raise ExpositionError(f"second TYPE, {where}")
                if fam.samples:
                    raise ExpositionError(f"TYPE after samples, {where}")
                if arg not in TYPES:
                    raise ExpositionError(f"unknown type, {where}")
                fam.type = arg
            continue
        m = re.compile(NAME).match(line)
        if not m:
            raise ExpositionError(f"bad metric name, {where}")
        name = m.group(0)
        i = m.end()
        labels: dict = {}
        if i < len(line) and line[i] == "{":
            labels, i = _parse_labels(line, i)
        rest = line[i:]
        if not rest.startswith(" ") or rest.startswith("  "):
            raise ExpositionError(f"expected one space before the value, {where}")
        parts = rest[1:].split(" ")
        if len(parts) > 2 or (len(parts) == 2 and not re.fullmatch(r"-?\d+", parts[1])):
            raise ExpositionError(f"bad value/timestamp, {where}")
        value = _parse_value(parts[0])
        if current is None or not families[current].type:
            raise ExpositionError(f"sample before its TYPE, {where}")
        fam = families[current]
        if not _belongs(name, current, fam.type):
            raise ExpositionError(f"sample outside family {current}, {where}")
        if fam.type == "counter" and (value < 0 or math.isnan(value)):
            raise ExpositionError(f"negative counter, {where}")
        key = (name, tuple(sorted(labels.items())))
        if key in series:
            raise ExpositionError(f"duplicate series, {where}")
        series.add(key)
        fam.samples.append((name, labels, value))
    for name, fam in families.items():
        if not fam.type:
            raise ExpositionError(f"{name}: HELP without TYPE")
    _check_histograms(families)
    return families


def _check_histograms(families: dict[str, Family]) -> None:
    for name, fam in families.items():
        if fam.type != "histogram":
            continue
        buckets: dict = {}
        counts: dict = {}
        sums: dict = {}
        for sname, labels, value in fam.samples:
            rest = dict(labels)
            if sname == name + "_bucket":
                if "le" not in rest:
                    raise ExpositionError(f"{name}: bucket without le")
                le = _parse_value(rest.pop("le"))
                buckets.setdefault(tuple(sorted(rest.items())), []).append((le, value))
            elif sname == name + "_count":
                counts[tuple(sorted(rest.items()))] = value
            else:
                sums[tuple(sorted(rest.items()))] = value
        for key, bs in buckets.items():
            prev_le, prev_v = -math.inf, 0.0
            for le, v in bs:
                if not le > prev_le:
                    raise ExpositionError(f"{name}: le not increasing")
                if v < prev_v:
                    raise ExpositionError(f"{name}: buckets not cumulative")
                prev_le, prev_v = le, v
            if not math.isinf(prev_le):
                raise ExpositionError(f"{name}: no +Inf bucket")
            if counts.get(key) != prev_v:
                raise ExpositionError(f"{name}: _count differs from the +Inf bucket")
            if key not in sums or sums[key] < 0:
                raise ExpositionError(f"{name}: missing or negative _sum")
        if set(counts) != set(buckets) or set(sums) != set(buckets):
            raise ExpositionError(f"{name}: _sum/_count without buckets")


def value(families: dict[str, Family], sample: str, family: Optional[str] = None, **want: str) -> Optional[float]:
    """The value of the one sample named `sample` whose labels include `want`; None when absent."""
    fam = families.get(family or sample)
    if fam is None:
        return None
    found = [v for (n, labels, v) in fam.samples
             if n == sample and all(labels.get(k) == w for k, w in want.items())]
    if len(found) > 1:
        raise ExpositionError(f"{sample} {want}: {len(found)} samples match")
    return found[0] if found else None
