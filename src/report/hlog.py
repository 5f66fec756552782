"""HdrHistogram interval log (the `.hlog` format HdrHistogram's log readers and
HistogramLogAnalyzer read): comment header, StartTime/BaseTime, the legend,
then `start,length,max,histogram` per interval.

Timestamps are seconds relative to the run's start (BaseTime = StartTime).
Values are microseconds, so Interval_Max is written in milliseconds (max / 1000),
the unit these tools display. Uncorrected open-model histograms, when a point
has them, are written on lines tagged `Tag=uncorrected`, which readers keep
apart from the untagged (corrected) ones. New connections' costs get a tag
each: `Tag=connect` (TCP connect times) and `Tag=tls_handshake`, one line per
interval that opened connections.
"""
from __future__ import annotations

import datetime as _dt
import os
from typing import Iterable

from surge.core._histogram import Histogram

LOG_FORMAT_VERSION = "1.3"
LEGEND = '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"'
MAX_VALUE_UNIT_RATIO = 1000.0          # µs -> ms for the Interval_Max column
UNCORRECTED_TAG = "uncorrected"
# point key -> tag, and the run-level summary that stands in when points lack them
TAGGED = (("hdr_uncorrected", "latency_uncorrected", UNCORRECTED_TAG), ("hdr_connect", "connect", "connect"),
          ("hdr_tls_handshake", "tls_handshake", "tls_handshake"))


class HlogError(ValueError):
    """The result has no histogram to write."""


def _as_histogram(value) -> Histogram:
    return value if isinstance(value, Histogram) else Histogram.decode(value)


def _epoch_s(started_at: str | None) -> float:
    if not started_at:
        return 0.0
    try:
        stamp = _dt.datetime.fromisoformat(started_at)
    except ValueError:
        return 0.0
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=_dt.timezone.utc)
    return stamp.timestamp()


def intervals_from_result(result: dict) -> list[tuple[float, float, str, str | None]]:
    """(start_s, length_s, base64 histogram, tag) per interval.

    Each time-series point's own histogram when every point has one; otherwise a
    single interval spanning the run with the total histogram."""
    points = result.get("timeseries") or []
    if points and all(isinstance(p.get("hdr"), str) for p in points):
        intervals, start = [], 0.0
        for point in points:
            end = float(point["t"])
            intervals.append((start, end - start, point["hdr"], None))
            for key, _, tag in TAGGED:
                if isinstance(point.get(key), str):
                    intervals.append((start, end - start, point[key], tag))
            start = end
        return intervals
    hdr = (result.get("latency") or {}).get("hdr")
    if not isinstance(hdr, str):
        raise HlogError("the result has no latency histogram (latency.hdr) to write")
    duration = float((result.get("totals") or {}).get("duration_s") or 0.0)
    intervals = [(0.0, duration, hdr, None)]
    for _, summary, tag in TAGGED:
        whole = result.get(summary) if isinstance(result.get(summary), dict) else {}
        if isinstance(whole.get("hdr"), str) and (tag == UNCORRECTED_TAG or whole.get("count")):
            intervals.append((0.0, duration, whole["hdr"], tag))
    return intervals


def write_hlog(result_or_intervals, path: str | os.PathLike, start_epoch_s: float | None = None) -> int:
    """Write an HdrHistogram interval log; returns the number of intervals written.

    `result_or_intervals`: a result dict, or an iterable of (start_s, length_s,
    histogram) or (start_s, length_s, histogram, tag) where histogram is a surge
    Histogram or its base64 V2 text."""
    if isinstance(result_or_intervals, dict):
        intervals: Iterable = intervals_from_result(result_or_intervals)
        if start_epoch_s is None:       # the exact start instant when the result has it (run.started_at_unix_ns)
            exact_ns = (result_or_intervals.get("run") or {}).get("started_at_unix_ns")
            start_epoch_s = (exact_ns / 1e9 if isinstance(exact_ns, int) and not isinstance(exact_ns, bool)
                             else _epoch_s(result_or_intervals.get("started_at")))
        comment = f"surge {result_or_intervals.get('surge_version', '?')} latency, values in microseconds"
        if any(tag not in (None, UNCORRECTED_TAG) for *_, tag in intervals):
            comment += "; Tag=connect and Tag=tls_handshake: new connections' costs"
    else:
        intervals = result_or_intervals
        comment = "surge latency, values in microseconds"
    start_epoch_s = start_epoch_s or 0.0
    human = _dt.datetime.fromtimestamp(start_epoch_s, _dt.timezone.utc).strftime("%a %b %d %H:%M:%S UTC %Y")
    lines = [f"#[{comment}]",
             f"#[Histogram log format version {LOG_FORMAT_VERSION}]",
             f"#[StartTime: {start_epoch_s:.3f} (seconds since epoch), {human}]",
             f"#[BaseTime: {start_epoch_s:.3f} (seconds since epoch)]",
             LEGEND]
    count = 0
    for interval in intervals:
        start_s, length_s, hist_or_text = interval[:3]
        tag = interval[3] if len(interval) > 3 else None
        hist = _as_histogram(hist_or_text)
        text = hist_or_text if isinstance(hist_or_text, str) else hist.encode()
        prefix = f"Tag={tag}," if tag else ""
        lines.append(f"{prefix}{start_s:.3f},{length_s:.3f},{hist.max / MAX_VALUE_UNIT_RATIO:.3f},{text}")
        count += 1
    from surge.report.outputs import write_text_atomically
    write_text_atomically(path, "\n".join(lines) + "\n")
    return count
