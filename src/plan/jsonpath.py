"""The JSON path subset used by `extract: {VAR: {json: PATH}}`.

`$` is the whole document; then any number of `.name`, `[N]` (N may be
negative: from the end) and `['name']` / `["name"]` (names with any
characters but that quote).  Nothing else: no wildcards, filters or slices.
"""
from __future__ import annotations

import re

_DOT_NAME = re.compile(r"\.([A-Za-z0-9_$-]+)")
_INDEX = re.compile(r"\[\s*(-?\d{1,9})\s*\]")
_QUOTED = re.compile(r"""\[\s*(?:'([^']*)'|"([^"]*)")\s*\]""")
MISSING = object()


class JsonPathError(ValueError):
    """A path outside the supported subset; the message says where."""


def parse_json_path(text: str) -> tuple[str | int, ...]:
    """'$.items[0].id' -> ('items', 0, 'id').  Raises JsonPathError."""
    if not text.startswith("$"):
        raise JsonPathError(f"got {text!r}, a JSON path starts with $ like $.token or $.items[0].id")
    steps: list[str | int] = []
    pos = 1
    while pos < len(text):
        for pattern in (_DOT_NAME, _INDEX, _QUOTED):
            match = pattern.match(text, pos)
            if match:
                break
        else:
            raise JsonPathError(f"got {text!r}, at character {pos + 1} expected .name, [N] or ['name']")
        if pattern is _INDEX:
            steps.append(int(match.group(1)))
        elif pattern is _QUOTED:
            steps.append(match.group(1) if match.group(1) is not None else match.group(2))
        else:
            steps.append(match.group(1))
        pos = match.end()
    return tuple(steps)


def find(document, path: tuple[str | int, ...]):
    """The value at path in a decoded JSON document, or MISSING."""
    value = document
    for step in path:
        if isinstance(step, int) and isinstance(value, list):
            if not -len(value) <= step < len(value):
                return MISSING
            value = value[step]
        elif isinstance(step, str) and isinstance(value, dict) and step in value:
            value = value[step]
        else:
            return MISSING
    return value
