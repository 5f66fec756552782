"""Objectives (thresholds) evaluated on a result: pass/fail with the measured value."""
from __future__ import annotations

from surge.core._histogram import Histogram, HistogramDecodeError


def _failed(part: dict) -> int:
    """Failed requests (transport errors and failed statuses, surge.run.merge's
    rule); transport errors only in result files older than that rule."""
    failed = part.get("failed")
    if isinstance(failed, dict):
        return failed["count"]
    errors = part.get("errors", 0)
    return sum(errors.values()) if isinstance(errors, dict) else errors


def _scope(objective, result: dict) -> dict | None:
    """The totals, or the step/scenario the objective filters on, in one shape:
    {"latency", "requests", "errors", "failed", "checks", "check_failures"}."""
    if objective.step is not None:
        for step in result.get("steps", []):
            if step["step"] == objective.step and objective.scenario in (None, step["scenario"]):
                return {"latency": step["latency"], "requests": step["requests"],
                        "errors": sum(step["errors"].values()), "failed": _failed(step), "checks": step["checks"],
                        "check_failures": step["check_failures"]}
        return None
    if objective.scenario is not None:
        for scenario in result.get("scenarios", []):
            if scenario["name"] == objective.scenario:
                return {**scenario, "failed": _failed(scenario)}
        return None
    totals = result["totals"]
    steps = result.get("steps", [])
    return {"latency": result["latency"], "requests": totals["requests"],
            "errors": sum(totals["errors"].values()), "failed": _failed(totals),
            "checks": sum(s["checks"] for s in steps), "check_failures": sum(s["check_failures"] for s in steps)}


def measure(objective, result: dict) -> float | None:
    """The objective's metric in its base unit (µs, fraction, req/s, count)."""
    scope = _scope(objective, result)
    if scope is None:
        return None
    metric = objective.metric
    latency = scope["latency"]
    if objective.percentile is not None:
        try:
            return float(Histogram.decode(latency["hdr"]).value_at_percentile(objective.percentile))
        except (HistogramDecodeError, KeyError):
            return None
    if metric in ("max", "min", "mean"):
        return float(latency[metric])
    if metric == "error_rate":       # failed requests over attempts (responses + transport errors)
        attempts = scope["requests"] + scope["errors"]
        return scope["failed"] / attempts if attempts else 0.0
    if metric == "check_rate":
        return 1.0 - scope["check_failures"] / scope["checks"] if scope["checks"] else 1.0
    if metric == "throughput":
        duration = result["totals"]["duration_s"]
        return scope["requests"] / duration if duration else 0.0
    if metric == "dropped":
        return float(result["totals"].get("dropped", 0))
    if metric == "requests":
        return float(scope["requests"])
    return None


def evaluate(objectives, result: dict) -> list[dict]:
    """[{"name", "passed", "value", "unit"}] in the plan's order."""
    out = []
    for objective in objectives:
        value = measure(objective, result)
        out.append({"name": objective.text, "passed": value is not None and objective.passes(value),
                    "value": value, "unit": objective.unit, "abort_on_fail": objective.abort_on_fail})
    return out
