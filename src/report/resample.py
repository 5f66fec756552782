"""Fewer, wider time-series intervals, so a long run's charts fit the report's size bound.

Counts add. Latency percentiles are exact when every merged second carries its
histogram (`hdr`); otherwise a wide interval shows its worst second (the
maximum of the per-second values), and `exact` says which it was.
"""
from __future__ import annotations

import re
import statistics

from surge.core._histogram import Histogram
from surge.report.numbers import merged_histogram

# p50, p99.9, max, p99_uncorrected ...: per-interval latency figures (µs).
_LATENCY_KEY = re.compile(r"^(p\d+(?:\.\d+)?|max|min)(_uncorrected)?$")
_HDR_KEYS = {"hdr": "", "hdr_uncorrected": "_uncorrected"}
# Levels, not counts: a wide interval shows their mean (a target rate, a number of connections).
_LEVEL_KEYS = {"target", "active_connections"}


def is_latency_key(key: str) -> bool:
    return bool(_LATENCY_KEY.match(key))


def merge_points(points: list[dict]) -> tuple[dict, bool]:
    """One point standing for `points` (consecutive); True when its latencies are exact."""
    if len(points) == 1:
        return points[0], True
    merged: dict = {"t": points[-1]["t"]}
    exact = True
    latency_keys: set[str] = set()
    for point in points:
        for key, value in point.items():
            if key in ("t", "workers") or key in _HDR_KEYS:
                continue
            if key in _LEVEL_KEYS:
                levels = [p[key] for p in points if isinstance(p.get(key), (int, float))]
                merged[key] = round(statistics.fmean(levels), 3) if levels else None
            elif is_latency_key(key):
                latency_keys.add(key)
            elif isinstance(value, dict):
                into = merged.setdefault(key, {})
                for sub, n in value.items():
                    if isinstance(n, (int, float)):
                        into[sub] = into.get(sub, 0) + n
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                merged[key] = merged.get(key, 0) + value
    for hdr_key, suffix in _HDR_KEYS.items():
        keys = {k for k in latency_keys if k.endswith("_uncorrected") == bool(suffix)}
        if not keys:
            continue
        hist = merged_histogram(points, hdr_key)
        if hist is not None:
            merged[hdr_key] = hist.encode()
            for key in keys:
                name = key[:-len(suffix)] if suffix else key
                merged[key] = _from_histogram(hist, name)
        else:
            exact = False
            for key in keys:
                values = [p[key] for p in points if p.get(key) is not None]
                merged[key] = max(values) if values else None
    workers = _merge_workers(points)
    if workers:
        merged["workers"] = workers
    return merged, exact

def _from_histogram(hist: Histogram, name: str) -> int:
    if name == "max":
        return hist.max
    if name == "min":
        return hist.min
    return hist.value_at_percentile(float(name[1:]))


def _merge_workers(points: list[dict]) -> list[dict]:
    """CPU averages over the wide interval; memory keeps its peak."""
    by_index: dict[int, list[dict]] = {}
    for point in points:
        for sample in point.get("workers") or ():
            by_index.setdefault(sample.get("index", 0), []).append(sample)
    merged = []
    for index in sorted(by_index):
        samples = by_index[index]
        cpu = [s["cpu_percent"] for s in samples if s.get("cpu_percent") is not None]
        rss = [s["rss_kb"] for s in samples if s.get("rss_kb") is not None]
        merged.append({"index": index, "cpu_percent": statistics.fmean(cpu) if cpu else None,
                       "rss_kb": max(rss) if rss else None})
    return merged


def resample(timeseries: list[dict], seconds_per_point: int) -> tuple[list[dict], bool]:
    """Groups of `seconds_per_point` consecutive points merged; True when latencies stayed exact."""
    if seconds_per_point <= 1:
        return list(timeseries), True
    out, exact = [], True
    for start in range(0, len(timeseries), seconds_per_point):
        point, point_exact = merge_points(timeseries[start:start + seconds_per_point])
        out.append(point)
        exact = exact and point_exact
    return out, exact
