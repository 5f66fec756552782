"""CSV export: the time series (one row per interval), and the per-step table
next to it (`<stem>.steps.csv`) when the result has steps or its plan stages.

Nested values become columns: statuses {"200": n} -> status_200, errors by kind
-> errors_<kind>, per-worker samples -> worker<i>_cpu_percent, worker<i>_rss_kb,
a step's failed requests -> failed, failed_<reason> ("status 404" -> failed_status_404)
and error_rate (failed over attempts). Latencies carry their unit: p99_us,
latency_p99_us. Interval histograms (`hdr`) are left out: the HdrHistogram log
carries them; the connect and TLS handshake histograms of an interval that
opened connections become connect_p50_us, connect_p99_us, connect_max_us and
tls_handshake_p50_us, ... (their whole histograms are in the hlog, tagged).
"""
from __future__ import annotations

import csv
import os

from surge.core._histogram import Histogram, HistogramDecodeError
from surge.report.numbers import interval_lengths_s
from surge.report.steps import steps_of
from surge.result.failed import error_rate, failed_count

# Columns first in this order when present; any other key follows in first-seen order.
LEADING = ("t", "interval_s", "requests", "requests_per_s", "target", "due", "failed", "errors", "dropped",
           "p50_us", "p90_us", "p99_us", "max_us", "p50_uncorrected_us", "p99_uncorrected_us",
           "connections_opened")
SKIPPED = {"hdr", "hdr_uncorrected", "hdr_connect", "hdr_tls_handshake"}
# An interval's connection-cost histograms -> these columns (µs)
_COST_HISTOGRAMS = {"hdr_connect": "connect", "hdr_tls_handshake": "tls_handshake"}
_COST_PERCENTILES = (50, 99)
_PREFIX = {"statuses": "status", "errors": "errors"}
# Point keys that are latencies in µs (named with their unit in the CSV).
_LATENCY_KEYS = {"p50", "p75", "p90", "p95", "p99", "p99.9", "max", "min", "mean", "stdev",
                 "p50_uncorrected", "p99_uncorrected"}
_LATENCY_FIELDS = {"min", "max", "mean", "stdev"}        # of a step's latency summary (count is a count)


def _column(name: str) -> str:
    """A column name without spaces: 'status 404' -> 'status_404'."""
    return name.replace(" ", "_")


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
                row[f"{key}_us" if key in _LATENCY_KEYS else key] = value
        row.update(_cost_columns(point))
        rows.append(row)
    return rows


def _cost_columns(point: dict) -> dict:
    """connect_p50_us ... from the point's connect / handshake histograms (none when absent or unreadable)."""
    columns = {}
    for key, name in _COST_HISTOGRAMS.items():
        if not isinstance(point.get(key), str):
            continue
        try:
            hist = Histogram.decode(point[key])
        except (HistogramDecodeError, ValueError):
            continue
        for pct, value in zip(_COST_PERCENTILES, hist.values_at_percentiles(_COST_PERCENTILES)):
            columns[f"{name}_p{pct}_us"] = value
        columns[f"{name}_max_us"] = hist.max
    return columns


def step_rows(steps: list[dict]) -> list[dict]:
    """Flat rows for the per-step table: latency percentiles -> p50, p99, ..."""
    rows = []
    for step in steps:
        row = {}
        for key, value in step.items():
            if key in SKIPPED:
                continue
            if key == "failed" and isinstance(value, dict):
                row["failed"] = failed_count(step)
                row["error_rate"] = round(error_rate(step), 9)
                for reason, n in (value.get("by_reason") or {}).items():
                    row[f"failed_{_column(str(reason))}"] = n
            elif isinstance(value, dict):
                unit = "_us" if key.startswith("latency") else ""
                for sub, v in value.items():
                    if sub == "percentiles" and isinstance(v, dict):
                        for pct, pv in v.items():
                            row[f"{key}_p{pct}{unit}"] = pv
                    elif sub == "unit" or sub in SKIPPED or isinstance(v, (dict, list)):
                        continue            # the unit is in the column names
                    else:
                        row[f"{key}_{sub}{unit if sub in _LATENCY_FIELDS else ''}"] = v
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
    from surge.report.outputs import atomically
    columns = _columns(rows, leading)

    def write(temporary: str) -> None:
        with open(temporary, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, restval="", extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    atomically(path, write)


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
