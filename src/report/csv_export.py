"""CSV export: the time series (one row per interval), and the per-step table
next to it (`<stem>.steps.csv`) when the result has steps or its plan stages.

Nested values become columns: statuses {"200": n} -> status_200, errors by kind
-> errors_<kind>, per-worker samples -> worker<i>_cpu_percent, worker<i>_rss_kb.
Interval histograms (`hdr`) are left out: the HdrHistogram log carries them.
"""
from __future__ import annotations

import csv
import os

from surge.report.numbers import interval_lengths_s
from surge.report.steps import steps_of

# Columns first in this order when present; any other key follows in first-seen order.
LEADING = ("t", "interval_s", "requests", "requests_per_s", "target", "due", "errors", "dropped",
           "p50", "p90", "p99", "max", "p50_uncorrected", "p99_uncorrected")
SKIPPED = {"hdr", "hdr_uncorrected"}
_PREFIX = {"statuses": "status", "errors": "errors"}


def timeseries_rows(timeseries: list[dict]) -> list[dict]:
    """Flat rows for the time series, with the interval length and rate added."""
    rows = []
    for point, length in zip(timeseries, interval_lengths_s(timeseries)):
        row = {"t": point["t"], "interval_s": round(length, 6)}
        if "requests" in point:
            row["requests_per_s"] = round(point["requests"] / length, 3) if length > 0 else ""
        for key, value in point.items():
            if key in SKIPPED or key == "t":
                continue
            if key == "workers" and isinstance(value, list):
                for sample in value:
                    index = sample.get("index", 0)
                    for field, v in sample.items():
                        if field != "index":
                            row[f"worker{index}_{field}"] = v
            elif isinstance(value, dict):
                prefix = _PREFIX.get(key, key)
                for sub, v in value.items():
                    row[f"{prefix}_{sub}"] = v
                if key == "errors":
                    row["errors"] = sum(v for v in value.values() if isinstance(v, (int, float)))
            elif not isinstance(value, list):
                row[key] = value
        rows.append(row)
    return rows


def step_rows(steps: list[dict]) -> list[dict]:
    """Flat rows for the per-step table: latency percentiles -> p50, p99, ..."""
    rows = []
    for step in steps:
        row = {}
        for key, value in step.items():
            if key in SKIPPED:
                continue
            if isinstance(value, dict):
                for sub, v in value.items():
                    if sub == "percentiles" and isinstance(v, dict):
                        for pct, pv in v.items():
                            row[f"{key}_p{pct}"] = pv
                    elif sub not in SKIPPED and not isinstance(v, (dict, list)):
                        row[f"{key}_{sub}"] = v
            elif not isinstance(value, list):
                row[key] = value
        rows.append(row)
    return rows


def _columns(rows: list[dict], leading=()) -> list[str]:
    seen = [c for c in leading if any(c in r for r in rows)]
    for row in rows:
        seen.extend(c for c in row if c not in seen)
    return seen


def _write(rows: list[dict], path: str, leading=()) -> None:
    columns = _columns(rows, leading)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def steps_path(path: str | os.PathLike) -> str:
    """run.csv -> run.steps.csv (next to it)."""
    root, ext = os.path.splitext(os.fspath(path))
    return f"{root}.steps{ext or '.csv'}"


def write_csv(result: dict, path: str | os.PathLike) -> list[str]:
    """Write the time series CSV (and the per-step CSV when there are steps); returns the paths."""
    path = os.fspath(path)
    _write(timeseries_rows(result.get("timeseries") or []), path, LEADING)
    written = [path]
    steps = steps_of(result)
    if steps:
        _write(step_rows(steps), steps_path(path), ("name",))
        written.append(steps_path(path))
    return written
