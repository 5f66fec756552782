"""Parsing of the human units used on the command line and in plans.

Every parser raises `UnitError` with a message that says what was found and
what is allowed; callers add the name of the argument.
"""
from __future__ import annotations

import re

NS_PER_S = 1_000_000_000

NS_PER_UNIT = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
               "m": 60_000_000_000, "h": 3_600_000_000_000}
COUNT_SUFFIX = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}
SIZE_SUFFIX = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024 ** 2, "mb": 1024 ** 2,
               "mib": 1024 ** 2, "g": 1024 ** 3, "gb": 1024 ** 3, "gib": 1024 ** 3}

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_NUMBER_SUFFIX = re.compile(r"^(\d+(?:\.\d+)?)([a-zA-Z]*)$")


class UnitError(ValueError):
    """A value that does not parse; the message says what is allowed."""


def parse_duration_ns(text: str) -> int:
    """'500ms', '10s', '2m', '1h', '1m30s' -> nanoseconds (> 0)."""
    s = str(text).strip()
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m:
            break
        total += float(m.group(1)) * NS_PER_UNIT[m.group(2)]
        pos = m.end()
    if not s or pos != len(s):
        unit_missing = " (a number needs its unit)" if re.fullmatch(r"\d+(\.\d+)?", s) else ""
        raise UnitError(f"got {text!r}, expected a duration like 500ms, 10s, 2m, 1h or 1m30s{unit_missing}")
    if total <= 0:
        raise UnitError(f"got {text!r}, must be greater than 0")
    return int(round(total))


def parse_count(text: str) -> int:
    """'10000', '10k', '1M' -> integer (> 0)."""
    m = _NUMBER_SUFFIX.match(str(text).strip())
    if not m or m.group(2).lower() not in COUNT_SUFFIX:
        raise UnitError(f"got {text!r}, expected a count like 1000, 10k or 1M")
    value = float(m.group(1)) * COUNT_SUFFIX[m.group(2).lower()]
    if value != int(value) or value <= 0:
        raise UnitError(f"got {text!r}, must be a whole number greater than 0")
    return int(value)


def parse_size_bytes(text: str) -> int:
    """'0', '512', '4k', '1MiB' -> bytes (>= 0; k/m/g are powers of 1024)."""
    m = _NUMBER_SUFFIX.match(str(text).strip())
    if not m or m.group(2).lower() not in SIZE_SUFFIX:
        raise UnitError(f"got {text!r}, expected a size like 0, 512, 4k or 1MiB")
    value = float(m.group(1)) * SIZE_SUFFIX[m.group(2).lower()]
    if value != int(value):
        raise UnitError(f"got {text!r}, must be a whole number of bytes")
    return int(value)
