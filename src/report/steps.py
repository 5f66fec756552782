"""Per-step numbers: the result's own `steps` when it has them, else derived from
the plan's stages (`config.stages`) and the time series.

A stage's numbers come from the seconds whose interval ends inside it; its
latency percentiles are exact when those seconds carry their histograms (`hdr`),
which every result from surge's open-model merge on does.
"""
from __future__ import annotations

from surge.report.numbers import interval_lengths_s, merged_histogram
from surge.result.failed import errors_total, failed_count
from surge.result.format import percentile_key

STEP_PERCENTILES = (50, 90, 95, 99, 99.9)
_EDGE_S = 0.01                  # an interval ending this close past a boundary belongs before it

def _stage_name(index: int, previous_target: float, stage: dict) -> str:
    start, end = previous_target, stage.get("target")
    shape = f"{start:g}" if start == end else f"{start:g}->{end:g}"
    return f"{index + 1}: {shape} over {stage.get('duration_s', 0):g}s"


def derived_steps(result: dict) -> list[dict]:
    """One row per configured stage, from the time series (empty without stages)."""
    cfg = result.get("config") or {}
    stages = cfg.get("stages")
    if not isinstance(stages, list) or not stages:
        return []
    points = result.get("timeseries") or []
    lengths = interval_lengths_s(points)
    unit = "req/s" if cfg.get("model") == "open" else "connections"
    rows, start_s, previous_target = [], 0.0, float(cfg.get("start") or 0.0)
    for i, stage in enumerate(stages):
        end_s = start_s + float(stage.get("duration_s") or 0.0)
        inside = [(p, n) for p, n in zip(points, lengths) if start_s + _EDGE_S < float(p["t"]) <= end_s + _EDGE_S]
        seconds = sum(n for _, n in inside)
        requests = sum(p.get("requests", 0) for p, _ in inside)
        row = {"name": _stage_name(i, previous_target, stage), "start_s": start_s, "end_s": end_s,
               f"target ({unit})": f"{previous_target:g}->{stage.get('target'):g}",
               "requests": requests, "rps": round(requests / seconds, 3) if seconds > 0 else None,
               "errors": sum(errors_total(p.get("errors")) for p, _ in inside),
               "failed": sum(failed_count(p) for p, _ in inside)}
        statuses: dict[str, int] = {}
        for p, _ in inside:
            for status, n in (p.get("statuses") or {}).items():
                statuses[status] = statuses.get(status, 0) + n
        if statuses:
            row["responses_by_status"] = dict(sorted(statuses.items()))
        if any("dropped" in p for p, _ in inside):
            row["dropped"] = sum(p.get("dropped", 0) for p, _ in inside)
        hist = merged_histogram([p for p, _ in inside])
        if hist is not None and hist.total_count:
            values = hist.values_at_percentiles(STEP_PERCENTILES)
            row["latency"] = {"count": hist.total_count,
                              "percentiles": {percentile_key(p): v for p, v in zip(STEP_PERCENTILES, values)},
                              "max": hist.max}
        rows.append(row)
        start_s, previous_target = end_s, float(stage.get("target") or 0.0)
    return rows


def steps_of(result: dict) -> list[dict]:
    """The per-step rows every report shows: the result's own, else derived from stages."""
    steps = result.get("steps")
    if isinstance(steps, list) and steps and all(isinstance(s, dict) for s in steps):
        return steps
    return derived_steps(result)
