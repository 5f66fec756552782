"""What the workers reported, and its exact merge into the result file's shape.

Histograms are merged by adding counts (never by averaging percentiles);
counters are cumulative per worker, so totals are sums of each worker's last
report and per-second figures are differences of consecutive reports.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import resource
import sys

from surge import __version__
from surge.core._engine import ERROR_KINDS
from surge.core._histogram import Histogram

NS_PER_S = 1_000_000_000
PERCENTILES = (50, 75, 90, 95, 99, 99.9, 99.99)
RESULT_FORMAT = 1           # bumped when the result file changes incompatibly


class WorkerRecord:
    """Everything one worker sent."""

    def __init__(self, index: int):
        self.index = index
        self.ready = None           # {"open_connections", "errors"} once connected
        self.ticks: dict[int, dict] = {}
        self.final: dict | None = None
        self.end_ns: int | None = None
        self.abandoned = 0
        self.failure: str | None = None
        self.finish_reason: str | None = None

    def add_tick(self, k: int, snapshot: dict) -> None:
        self.ticks[k] = snapshot

    def snapshots(self) -> list[dict]:
        """Every snapshot in order (ticks, then the final one)."""
        snaps = [self.ticks[k] for k in sorted(self.ticks)]
        return snaps + ([self.final] if self.final else [])

    def latest(self) -> dict | None:
        snaps = self.snapshots()
        return snaps[-1] if snaps else None


def _errors_total(snapshot: dict | None) -> int:
    return sum(snapshot["errors"].values()) if snapshot else 0


def latency_summary(hist: Histogram) -> dict:
    """min/mean/stdev/max, the percentile table and the encoded histogram (µs)."""
    values = hist.values_at_percentiles(PERCENTILES)
    return {
        "unit": "us",
        "count": hist.total_count,
        "min": hist.min,
        "mean": round(hist.mean, 3),
        "stdev": round(hist.stdev, 3),
        "max": hist.max,
        "percentiles": {_pct_key(p): v for p, v in zip(PERCENTILES, values)},
        "hdr": hist.encode(),
    }


def _pct_key(p: float) -> str:
    return str(int(p)) if p == int(p) else str(p)


def machine_info() -> dict:
    cpu_model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu_model": cpu_model, "cpus": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "platform": sys.platform}


class RunRecord:
    """The raw record of a run; `to_result()` makes the result file's dict."""

    def __init__(self, plan, workers: list[WorkerRecord]):
        self.plan = plan
        self.workers = workers
        self.start_ns: int | None = None
        self.interrupted = False
        self.started_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")

    # ---- merges -------------------------------------------------------------
    def total_histogram(self) -> Histogram:
        total = Histogram()
        for w in self.workers:
            for snap in w.snapshots():
                total.add_sparse(*snap["latency"])
        return total

    def duration_s(self) -> float:
        if self.start_ns is None:
            return 0.0
        ends = [w.end_ns for w in self.workers if w.end_ns]
        if not ends:                        # every worker died: up to its last tick
            ends = [self.start_ns + max(w.ticks, default=0) * NS_PER_S for w in self.workers]
        return max(0.0, (max(ends) - self.start_ns) / NS_PER_S)

    def totals(self) -> dict:
        requests = bytes_in = bytes_out = 0
        statuses: dict[int, int] = {}
        errors = {kind: 0 for kind in ERROR_KINDS}
        for w in self.workers:
            snap = w.latest()
            if not snap:
                continue
            requests += snap["completed"]
            bytes_in += snap["bytes_in"]
            bytes_out += snap["bytes_out"]
            for status, n in snap["statuses"].items():
                statuses[status] = statuses.get(status, 0) + n
            for kind, n in snap["errors"].items():
                errors[kind] += n
        duration = self.duration_s()
        return {
            "requests": requests,
            "duration_s": round(duration, 6),
            "rps": round(requests / duration, 3) if duration > 0 else 0.0,
            "bytes_in": bytes_in,
            "bytes_out": bytes_out,
            "responses_by_status": {str(s): statuses[s] for s in sorted(statuses)},
            "errors": errors,
            "in_flight_at_stop": sum(w.abandoned for w in self.workers),
        }

    def timeseries(self) -> list[dict]:
        """One point per second (t = end of the interval), the last one partial."""
        points = []
        last_k = max((max(w.ticks, default=0) for w in self.workers), default=0)
        previous = {w.index: None for w in self.workers}
        for k in range(1, last_k + 1):
            snaps = [(w, w.ticks.get(k)) for w in self.workers]
            points.append(self._point(float(k), snaps, previous))
        finals = [(w, w.final) for w in self.workers]
        duration = self.duration_s()
        if any(s for _, s in finals) and duration > last_k + 0.001:
            points.append(self._point(round(duration, 3), finals, previous))
        return points

    @staticmethod
    def _point(t: float, snaps, previous: dict) -> dict:
        hist = Histogram()
        errors = 0
        for w, snap in snaps:
            if snap is None:
                continue
            hist.add_sparse(*snap["latency"])
            errors += _errors_total(snap) - _errors_total(previous[w.index])
            previous[w.index] = snap
        p50, p99 = hist.values_at_percentiles((50, 99))
        return {"t": t, "requests": hist.total_count, "errors": errors, "p50": p50, "p99": p99,
                "max": hist.max}

    def resources(self) -> dict:
        workers = []
        for w in self.workers:
            snap = w.latest()
            if snap and "usage" in snap:
                workers.append({"index": w.index, **snap["usage"]})
        own = resource.getrusage(resource.RUSAGE_SELF)
        return {"workers": workers,
                "supervisor": {"user_s": own.ru_utime, "sys_s": own.ru_stime, "max_rss_kb": own.ru_maxrss}}

    def to_result(self) -> dict:
        """The result file (the contract every report reads)."""
        return {
            "surge_version": __version__,
            "result_format": RESULT_FORMAT,
            "started_at": self.started_at,
            "config": self.plan.describe(),
            "machine": machine_info(),
            "interrupted": self.interrupted,
            "totals": self.totals(),
            "latency": latency_summary(self.total_histogram()),
            "timeseries": self.timeseries(),
            "workers_failed": [{"index": w.index, "cause": w.failure} for w in self.workers if w.failure],
            "resources": self.resources(),
        }


def live_point(record: RunRecord, k: int) -> dict:
    """Second k from whatever workers have reported so far (live progress)."""
    previous = {w.index: w.ticks.get(k - 1) for w in record.workers}
    return RunRecord._point(float(k), [(w, w.ticks.get(k)) for w in record.workers], previous)
