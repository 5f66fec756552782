"""Objectives (thresholds) evaluated on a result dict: pass/fail with the measured value.

A pure function of the result's shape, so it lives with the result: the run
layer calls it live on `RunRecord.live_result()` (abort_on_fail), the CLI on
the finished result (exit 3). Failed requests and the error rate are read by
surge.result.failed, the same rule every report uses.
"""
from __future__ import annotations

from surge.core._histogram import Histogram, HistogramDecodeError
from surge.result.failed import error_rate


def _scope(objective, result: dict) -> dict | None:
    """What the objective reads, in one shape: {"latency", "requests", "part",
    "checks", "check_failures"}, where "part" is the totals, or the step or
    scenario the objective filters on (its requests, errors and failed).
    A result file's `steps` may also hold stage rows (name, start_s, end_s),
    which have no step name and no checks."""
    if objective.step is not None:
        for step in result.get("steps", []):
            if step.get("step") == objective.step and objective.scenario in (None, step.get("scenario")):
                return {"latency": step["latency"], "requests": step["requests"], "part": step,
                        "checks": step["checks"], "check_failures": step["check_failures"]}
        return None
    if objective.scenario is not None:
        for scenario in result.get("scenarios", []):
            if scenario["name"] == objective.scenario:
                return {"latency": scenario["latency"], "requests": scenario["requests"], "part": scenario,
                        "checks": scenario.get("checks", 0), "check_failures": scenario.get("check_failures", 0)}
        return None
    totals = result["totals"]
    steps = result.get("steps", [])
    return {"latency": result["latency"], "requests": totals["requests"], "part": totals,
            "checks": sum(s.get("checks", 0) for s in steps),
            "check_failures": sum(s.get("check_failures", 0) for s in steps)}


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
        return error_rate(scope["part"])
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
    """[{"name", "passed", "value", "unit", "abort_on_fail"}] in the plan's order."""
    out = []
    for objective in objectives:
        value = measure(objective, result)
        out.append({"name": objective.text, "passed": value is not None and objective.passes(value),
                    "value": value, "unit": objective.unit, "abort_on_fail": objective.abort_on_fail})
    return out
