"""Seeded synthetic result dicts, shaped like `RunRecord.to_result()` (closed and
open model, per-interval histograms) plus keys still to come: per-worker samples
per point, statuses per point, objectives, steps and scenarios.

Latencies are drawn per second (log-normal), recorded into surge Histograms,
and every figure (per-second percentiles, totals, the total histogram) is
derived from those histograms, so the result is self-consistent."""
from __future__ import annotations

import numpy as np

from surge.core._histogram import Histogram
from surge.result import ERROR_KINDS, RESULT_FORMAT
from surge.run.merge import PERCENTILES, latency_summary


def _pct(hist: Histogram, p: float) -> int:
    return hist.value_at_percentile(p)


def make_result(seconds: int = 60, *, seed: int = 1, model: str = "open", rate: float = 2000.0,
                median_us: float = 2000.0, sigma: float = 0.5, throughput_noise: float = 0.03,
                slowdown: float = 1.0, workers: int = 2, per_interval_hdr: bool = True,
                per_point_workers: bool = True, statuses: bool = True, error_every: int = 7,
                objectives: bool = True, steps: bool = True, scenarios: bool = True) -> dict:
    """A self-consistent result of `seconds` whole seconds.

    `slowdown` > 1 makes the target slower: latencies times `slowdown`, and (closed
    model) throughput divided by it."""
    rng = np.random.default_rng(seed)
    total, total_uncorrected = Histogram(), Histogram()
    timeseries, per_second = [], []
    requests_total = errors_total = dropped_total = 0
    status_totals: dict[str, int] = {}
    errors_by_kind = {kind: 0 for kind in ERROR_KINDS}
    for k in range(1, seconds + 1):
        expected = rate if model == "open" else rate / slowdown
        n = max(1, int(rng.normal(expected, expected * throughput_noise)))
        sent_late_us = rng.exponential(50.0, n)                     # scheduler lag: corrected - uncorrected
        uncorrected = rng.lognormal(np.log(median_us * slowdown), sigma, n)
        corrected = uncorrected + sent_late_us
        second, second_uncorrected = Histogram(), Histogram()
        second.record_many(np.maximum(corrected, 1).astype(np.int64))
        second_uncorrected.record_many(np.maximum(uncorrected, 1).astype(np.int64))
        total.add(second)
        per_second.append(second)
        total_uncorrected.add(second_uncorrected)
        errors = 1 if error_every and k % error_every == 0 else 0
        dropped = int(rng.integers(0, 3)) if model == "open" else 0
        point = {"t": float(k), "requests": n, "errors": errors,
                 "p50": _pct(second, 50), "p90": _pct(second, 90), "p99": _pct(second, 99), "max": second.max}
        if statuses:
            not_found = int(rng.integers(0, 4))
            point["statuses"] = {"200": n - not_found, "404": not_found}
            for code, count in point["statuses"].items():
                status_totals[code] = status_totals.get(code, 0) + count
        else:
            status_totals["200"] = status_totals.get("200", 0) + n
        if model == "open":
            point.update({"target": float(rate), "due": n + dropped, "dropped": dropped,
                          "p50_uncorrected": _pct(second_uncorrected, 50),
                          "p99_uncorrected": _pct(second_uncorrected, 99)})
        if per_interval_hdr:
            point["hdr"] = second.encode()
        if per_point_workers:
            point["workers"] = [{"index": i, "cpu_percent": round(float(rng.uniform(40, 70)), 1),
                                 "rss_kb": 20_000 + 100 * k + 500 * i} for i in range(workers)]
        timeseries.append(point)
        requests_total += n
        errors_total += errors
        errors_by_kind["timeout"] += errors
        dropped_total += dropped

    duration_s = float(seconds)
    result = {
        "surge_version": "0.1.0",
        "result_format": RESULT_FORMAT,
        "started_at": "2026-01-02T03:04:05+00:00",
        "config": {"url": "http://127.0.0.1:8080/api?q=1", "method": "GET", "headers": ["X-Test: 1"],
                   "body_bytes": 0, "connections": 64, "workers": workers, "duration_s": duration_s,
                   "requests": None, "timeout_s": 5.0, "pipeline": 1, "model": model},
        "machine": {"cpu_model": "Synthetic CPU", "cpus": 8, "kernel": "6.1.0", "python": "3.11.7",
                    "platform": "linux"},
        "interrupted": False,
        "totals": {"requests": requests_total, "duration_s": duration_s,
                   "rps": round(requests_total / duration_s, 3), "bytes_in": requests_total * 180,
                   "bytes_out": requests_total * 90, "responses_by_status": status_totals,
                   "errors": errors_by_kind, "in_flight_at_stop": 3},
        "latency": latency_summary(total),
        "timeseries": timeseries,
        "workers_failed": [],
        "resources": {"workers": [{"index": i, "user_s": 0.3 * seconds, "sys_s": 0.2 * seconds,
                                   "max_rss_kb": 26_000 + i} for i in range(workers)],
                      "supervisor": {"user_s": 0.1, "sys_s": 0.05, "max_rss_kb": 30_000}},
    }
    if model == "open":
        result["config"].update({"stages": [], "start": rate, "rate": rate, "max_connections": 500,
                                 "peak_rate": rate})
        result["totals"].update({"due": requests_total + dropped_total, "dropped": dropped_total,
                                 "queued_at_stop": 0})
        result["latency_uncorrected"] = latency_summary(total_uncorrected)
    if objectives:
        p99 = result["latency"]["percentiles"]["99"]
        result["objectives"] = [
            {"name": "p99 < 10ms", "passed": p99 < 10_000, "value": p99, "unit": "us"},
            {"name": "error rate < 0.01%", "passed": False, "value": errors_total / requests_total,
             "unit": "fraction"},
        ]
    if steps:
        half = seconds // 2
        result["steps"] = [_step("warm", 0, half, timeseries, per_second),
                           _step("peak", half, seconds, timeseries, per_second)]
    if scenarios:
        result["scenarios"] = [
            {"name": "browse", "weight": 3, "requests": requests_total * 3 // 4,
             "latency": {"percentiles": {"50": result["latency"]["percentiles"]["50"],
                                         "99": result["latency"]["percentiles"]["99"]}}},
            {"name": "checkout", "weight": 1, "requests": requests_total // 4,
             "latency": {"percentiles": {"50": result["latency"]["percentiles"]["50"] * 2,
                                         "99": result["latency"]["percentiles"]["99"] * 2}}},
        ]
    return result


def _step(name: str, start_s: int, end_s: int, timeseries: list[dict], seconds: list[Histogram]) -> dict:
    """A step's numbers, its latency from the merged histograms of its seconds."""
    points = [p for p in timeseries if start_s < p["t"] <= end_s]
    hist = Histogram()
    for second in seconds[start_s:end_s]:
        hist.add(second)
    requests = sum(p["requests"] for p in points)
    return {"name": name, "start_s": float(start_s), "end_s": float(end_s), "requests": requests,
            "rps": round(requests / max(end_s - start_s, 1), 3),
            "latency": {"percentiles": {"50": _pct(hist, 50), "99": _pct(hist, 99)}}}


PERCENTILE_KEYS = [str(int(p)) if p == int(p) else str(p) for p in PERCENTILES]


def add_connection_costs(result: dict, *, seed: int = 5, tls: bool = True, verify: bool = True,
                         keepalive: bool = True, connect_median_us: float = 150.0,
                         handshake_median_us: float = 1500.0, tls_errors: dict | None = None) -> dict:
    """The result with issue 11's sections added, self-consistent like the rest:
    per second connections opened (all in the first second with keep-alive,
    one per request without) and their connect (and TLS handshake) times, the
    run's `connect` / `tls_handshake` from those seconds' histograms, and the
    `tls` section. Changes `result` in place and returns it."""
    rng = np.random.default_rng(seed)
    connect_total, handshake_total = Histogram(), Histogram()
    opened_total = 0
    for i, point in enumerate(result["timeseries"]):
        opened = point["requests"] if not keepalive else (result["config"]["connections"] if i == 0 else 0)
        point["connections_opened"] = opened
        opened_total += opened
        if not opened:
            continue
        connect, handshake = Histogram(), Histogram()
        connect.record_many(np.maximum(rng.lognormal(np.log(connect_median_us), 0.4, opened), 1).astype(np.int64))
        point["hdr_connect"] = connect.encode()
        connect_total.add(connect)
        if tls:
            handshake.record_many(
                np.maximum(rng.lognormal(np.log(handshake_median_us), 0.3, opened), 1).astype(np.int64))
            point["hdr_tls_handshake"] = handshake.encode()
            handshake_total.add(handshake)
    result["totals"]["connections_opened"] = opened_total
    result["connect"] = latency_summary(connect_total)
    if not keepalive:
        result["config"]["keepalive"] = False
    if tls:
        result["config"]["url"] = result["config"]["url"].replace("http://", "https://", 1)
        errors = dict(tls_errors if tls_errors is not None else {"certificate verify failed": 2, "alert 40": 1})
        resumed = opened_total * 3 // 4 if not keepalive else 0
        result["tls_handshake"] = latency_summary(handshake_total)
        result["tls"] = {"verify": verify, "protocol": "TLSv1.3", "cipher": "TLS_AES_128_GCM_SHA256",
                         "group": "X25519", "ktls": False, "resume": True,
                         "handshakes": {"full": opened_total - resumed, "resumed": resumed}, "errors": errors}
        result["totals"]["errors"]["tls"] = sum(errors.values())
    return result
