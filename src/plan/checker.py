"""Collecting plan problems: typed reads of a Document's fields that record a
one-line problem (`FILE:LINE FIELD.PATH: what was found, what is allowed`)
instead of raising, so validation goes on and reports everything at once."""
from __future__ import annotations

import datetime
import math
from typing import Mapping

from surge.plan.loader import Document, FieldPath, format_problem
from surge.plan.units import UnitError, parse_duration_ns
from surge.plan.errors import closest

ZERO_DURATIONS = ("0", "0s", "0ms", "0us", "0ns", "0m", "0h")


def show(value) -> str:
    """A found value as a message shows it: strings quoted (and shortened), else its kind."""
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (null)"
    if isinstance(value, (int, float)):
        text = repr(value)
        return text if len(text) <= 30 else text[:27] + "..."
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (datetime.date, datetime.time)):
        return f"a date/time ({value.isoformat()})"
    if isinstance(value, (bytes, bytearray)):
        return "binary data"
    return f"a {type(value).__name__}"


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Checker:
    """The problems found so far in one Document, and typed field readers."""

    def __init__(self, document: Document, environ: Mapping[str, str], plan_dir: str):
        self.document = document
        self.environ = environ
        self.plan_dir = plan_dir
        self._problems: list[tuple[int, int, str]] = [(line, n, text) for n, (line, text)
                                                      in enumerate(document.problems)]

    @property
    def problems(self) -> list[str]:
        """Every problem, in the order of the lines they name."""
        return [text for _, _, text in sorted(self._problems)]

    @property
    def count(self) -> int:
        return len(self._problems)

    def problem(self, path: FieldPath, message: str) -> None:
        path = tuple(path)
        if any(path[:n] in self.document.unreadable for n in range(len(path) + 1)):
            return          # the reader already said why this value is missing
        line = self.document.line_of(path)
        self._problems.append((line or 0, len(self._problems),
                               format_problem(self.document.filename, line, path, message)))

    # ---- typed readers: each returns the value, or None after recording a problem ----

    def mapping(self, path: FieldPath, value, expected: str = "a mapping") -> dict | None:
        if isinstance(value, dict):
            return value
        self.problem(path, f"expected {expected}, got {show(value)}")
        return None

    def sequence(self, path: FieldPath, value, expected: str, allow_empty: bool = False) -> list | None:
        if not isinstance(value, list):
            self.problem(path, f"expected {expected}, got {show(value)}")
            return None
        if not value and not allow_empty:
            self.problem(path, f"is empty; expected {expected}")
            return None
        return value

    def keys(self, path: FieldPath, mapping: dict, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
        """A problem for each unknown key (with a did-you-mean) and each missing required one."""
        for key in mapping:
            if key not in allowed:
                close = closest(key, allowed)
                hint = f"did you mean {close!r}?" if close else f"allowed: {', '.join(allowed)}"
                self.problem(path + (key,), f"unknown key, {hint}")
        for key in required:
            if key not in mapping:
                self.problem(path, f"missing required key {key!r}")

    def string(self, path: FieldPath, value, expected: str = "a string") -> str | None:
        if isinstance(value, str):
            return value
        self.problem(path, f"expected {expected}, got {show(value)}")
        return None

    def choice(self, path: FieldPath, value, allowed: tuple[str, ...]) -> str | None:
        if isinstance(value, str) and value in allowed:
            return value
        close = closest(value, allowed) if isinstance(value, str) else None
        hint = f", did you mean {close!r}?" if close else ""
        self.problem(path, f"got {show(value)}, allowed: {', '.join(allowed)}{hint}")
        return None

    def number(self, path: FieldPath, value, minimum: float = 0.0, inclusive: bool = True,
               whole: bool = False) -> float | None:
        """A finite number >= minimum (> minimum unless inclusive); whole: an integer."""
        bound = f"{'>=' if inclusive else '>'} {minimum:g}"
        kind = "a whole number" if whole else "a number"
        if not is_number(value):
            self.problem(path, f"expected {kind} {bound}, got {show(value)}")
            return None
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            self.problem(path, f"expected a finite number {bound}, got {show(value)}")
            return None
        if whole and number != int(number):
            self.problem(path, f"expected {kind} {bound}, got {show(value)}")
            return None
        if number < minimum or (number == minimum and not inclusive):
            self.problem(path, f"must be {bound}, got {show(value)}")
            return None
        return number

    def duration_ns(self, path: FieldPath, value, allow_zero: bool = False) -> int | None:
        """A duration ('500ms', '10s', '1m30s'); allow_zero: '0s' (or 0) gives 0."""
        if allow_zero and (value == 0 and is_number(value) or isinstance(value, str) and value.strip() in ZERO_DURATIONS):
            return 0
        if not isinstance(value, str):
            self.problem(path, f"expected a duration like 500ms, 10s or 1m30s, got {show(value)}")
            return None
        try:
            return parse_duration_ns(value)
        except UnitError as exc:
            self.problem(path, str(exc))
        except OverflowError:
            self.problem(path, f"got {show(value)}, too long")
        return None

    def boolean(self, path: FieldPath, value) -> bool | None:
        if isinstance(value, bool):
            return value
        self.problem(path, f"expected true or false, got {show(value)}")
        return None
