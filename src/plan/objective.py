"""Parsing objectives: `METRIC[{scenario=NAME,step=NAME}] OP VALUE`.

`p95 < 2s`, `error_rate < 1%`, `throughput >= 500/s`, `p99{step=login} < 500ms`,
`dropped == 0`.  Values are converted to the metric's base unit: µs for
latencies, a fraction for rates, requests/s for throughput, a count otherwise.
Whether the named scenarios and steps exist is the validator's business.
"""
from __future__ import annotations

import math
import re

from surge.plan.plan import (
    COUNT_METRICS,
    LATENCY_METRICS,
    OPERATORS,
    RATE_METRICS,
    THROUGHPUT_METRICS,
    Objective,
)
from surge.plan.units import UnitError, parse_duration_ns
from surge.plan.errors import closest

METRICS_HELP = ("p50..p99.99 (any pNN.N), max, min, mean, error_rate, check_rate, throughput, "
                "dropped, requests")
SYNTAX_HELP = "METRIC[{scenario=NAME,step=NAME}] OP VALUE like 'p95 < 2s'"
FILTER_KEYS = ("scenario", "step")
_ALL_METRICS = ("p50", "p90", "p95", "p99") + LATENCY_METRICS + RATE_METRICS + THROUGHPUT_METRICS + COUNT_METRICS
_SHAPE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(?:\{([^{}]*)\})?\s*(=>|=<|[<>=!]=?)\s*(.*?)\s*\Z", re.DOTALL)
_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d{1,6})?|100)\Z")
_NUMBER = r"\d+(?:\.\d+)?|\.\d+"
_RATE = re.compile(rf"^({_NUMBER})\s*(%?)\Z")
_THROUGHPUT = re.compile(rf"^({_NUMBER})\s*([kKmM]?)\s*(/\s*s)?\Z")
_COUNT = re.compile(r"^(\d{1,15})\s*([kKmM]?)\Z")


class ObjectiveError(ValueError):
    """An objective that does not parse; the message says what is allowed."""


def parse_objective(text: str, abort_on_fail: bool = False, grace_ns: int = 0) -> Objective:
    """'p95 < 2s' -> Objective.  Raises ObjectiveError."""
    match = _SHAPE.match(text)
    if not match or not match.group(4):
        raise ObjectiveError(f"expected {SYNTAX_HELP}")
    metric, filter_text, op, value_text = match.groups()
    metric = _metric(metric)
    filters = _filters(filter_text) if filter_text is not None else ()
    if op not in OPERATORS:
        raise ObjectiveError(f"unknown comparison {op!r}, allowed: <, <=, >, >=, ==")
    value = _value(metric, value_text)
    return Objective(metric, filters, op, value, text.strip(), abort_on_fail, grace_ns)


def _metric(name: str) -> str:
    if name.startswith("p") and name[1:2].isdigit():
        if not _PERCENTILE.match(name) or not 0 < float(name[1:]) < 100:
            raise ObjectiveError(f"percentile {name!r} is out of range, allowed: p0.1 .. p99.999 "
                                 f"(use max for the largest)")
        return name
    if name in _ALL_METRICS:
        return name
    close = closest(name, _ALL_METRICS)
    hint = f", did you mean {close!r}?" if close else f", allowed: {METRICS_HELP}"
    raise ObjectiveError(f"unknown metric {name!r}{hint}")


def _filters(text: str) -> tuple[tuple[str, str], ...]:
    found: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = (piece.strip() for piece in item.partition("="))
        if not sep or not key or not value:
            raise ObjectiveError(f"filter {item.strip()!r}: expected {{scenario=NAME}}, {{step=NAME}} "
                                 f"or {{scenario=NAME,step=NAME}}")
        if key not in FILTER_KEYS:
            raise ObjectiveError(f"unknown filter {key!r}, allowed: scenario, step")
        if key in found:
            raise ObjectiveError(f"filter {key!r} is given twice")
        found[key] = value
    return tuple((key, found[key]) for key in FILTER_KEYS if key in found)


def _value(metric: str, text: str) -> float:
    if metric in RATE_METRICS:
        match = _RATE.match(text)
        if not match:
            raise ObjectiveError(f"{metric} needs a rate like 1% or 0.01, got {text!r}")
        value = float(match.group(1)) / (100 if match.group(2) else 1)
        if value > 1:
            raise ObjectiveError(f"{metric} is between 0% and 100%, got {text!r}")
        return value
    if metric in THROUGHPUT_METRICS:
        match = _THROUGHPUT.match(text)
        if not match:
            raise ObjectiveError(f"{metric} needs requests per second like 500/s or 2k/s, got {text!r}")
        return _finite(float(match.group(1)) * {"": 1, "k": 1e3, "m": 1e6}[match.group(2).lower()], text)
    if metric in COUNT_METRICS:
        match = _COUNT.match(text)
        if not match:
            raise ObjectiveError(f"{metric} needs a whole number like 0 or 1000, got {text!r}")
        return _finite(float(int(match.group(1)) * {"": 1, "k": 1000, "m": 1_000_000}[match.group(2).lower()]),
                       text)
    try:
        return parse_duration_ns(text) / 1_000
    except (UnitError, OverflowError):
        raise ObjectiveError(f"{metric} needs a duration like 500ms or 2s, got {text!r}") from None


def _finite(value: float, text: str) -> float:
    if not math.isfinite(value):
        raise ObjectiveError(f"got {text!r}, too large")
    return value
