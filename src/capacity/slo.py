"""SLOs judged on a step's measured window, with their confidence intervals.

An SLO is an objective (`p99 < 50ms`, `error_rate < 0.1%`,
`p95{step=login} < 300ms`: surge.plan.objective's syntax). A window is what
a part of the result (totals, a step, a scenario) recorded between two
instants: the difference of two cumulative readings (`Reading`), so the
warm-up is left out without per-second histograms. Percentiles get the
order-statistic interval (surge.capacity.stats), error and check rates the
Wilson interval; the other metrics (mean, max, throughput, counts) are
compared as measured.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from surge.capacity import stats
from surge.core._histogram import Histogram, HistogramDecodeError
from surge.result.failed import attempts as attempts_of
from surge.result.failed import failed_count


@dataclass(frozen=True)
class Part:
    """One part's cumulative counts: latency buckets {low: (high, count)} and counters."""
    buckets: dict = field(default_factory=dict)
    requests: int = 0
    attempts: int = 0
    failed: int = 0
    checks: int = 0
    check_failures: int = 0

    def minus(self, earlier: "Part") -> "Part":
        buckets = {}
        for low, (high, count) in self.buckets.items():
            left = count - earlier.buckets.get(low, (high, 0))[1]
            if left > 0:
                buckets[low] = (high, left)
        return Part(buckets, self.requests - earlier.requests, self.attempts - earlier.attempts,
                    self.failed - earlier.failed, self.checks - earlier.checks,
                    self.check_failures - earlier.check_failures)


def _buckets(latency: dict | None) -> dict:
    if not latency or not isinstance(latency.get("hdr"), str):
        return {}
    try:
        histogram = Histogram.decode(latency["hdr"])
    except (HistogramDecodeError, ValueError):
        return {}
    return {low: (high, count) for low, high, count in histogram.iter_recorded()}


def part_of(objective, result: dict) -> Part | None:
    """The cumulative counts of what the objective reads (totals, or its step or
    scenario); None when the result has no such part."""
    if objective.step is not None:
        for step in result.get("steps", []):
            if step.get("step") == objective.step and objective.scenario in (None, step.get("scenario")):
                return Part(_buckets(step.get("latency")), int(step.get("requests", 0)), attempts_of(step),
                            failed_count(step), int(step.get("checks", 0)), int(step.get("check_failures", 0)))
        return None
    if objective.scenario is not None:
        for scenario in result.get("scenarios", []):
            if scenario.get("name") == objective.scenario:
                return Part(_buckets(scenario.get("latency")), int(scenario.get("requests", 0)),
                            attempts_of(scenario), failed_count(scenario), int(scenario.get("checks", 0)),
                            int(scenario.get("check_failures", 0)))
        return None
    totals = result["totals"]
    steps = result.get("steps", [])
    return Part(_buckets(result.get("latency")), int(totals.get("requests", 0)), attempts_of(totals),
                failed_count(totals), sum(int(s.get("checks", 0)) for s in steps),
                sum(int(s.get("check_failures", 0)) for s in steps))


class _Totals:
    """An objective-shaped key for the totals (no step, no scenario)."""
    step = scenario = None


TOTALS = _Totals()


@dataclass(frozen=True)
class Reading:
    """Every SLO's part, the totals, and the schedule counters, at one instant of a run."""
    parts: tuple                    # Part | None per SLO
    total: Part = field(default_factory=Part)
    due: int = 0
    dropped: int = 0
    at_s: float = 0.0

    @staticmethod
    def of(slos, result: dict, at_s: float) -> "Reading":
        totals = result.get("totals") or {}
        return Reading(tuple(part_of(o, result) for o in slos), part_of(TOTALS, result),
                       int(totals.get("due", 0) or 0), int(totals.get("dropped", 0) or 0), at_s)

    @staticmethod
    def empty(slos) -> "Reading":
        return Reading(tuple(Part() for _ in slos))

    def minus(self, earlier: "Reading") -> "Reading":
        parts = tuple(None if now is None else now.minus(before or Part())
                      for now, before in zip(self.parts, earlier.parts))
        return Reading(parts, self.total.minus(earlier.total), self.due - earlier.due,
                       self.dropped - earlier.dropped, self.at_s - earlier.at_s)


def sorted_buckets(part: Part) -> list[tuple[int, int, int]]:
    return [(low, high, count) for low, (high, count) in sorted(part.buckets.items())]


def judge(objective, part: Part | None, window_s: float, confidence: float, dropped: int = 0) -> dict:
    """{"slo", "verdict", "low", "high", "value", "unit", "samples"} of one SLO on one window."""
    out = {"slo": objective.text, "unit": objective.unit, "low": None, "high": None, "value": None,
           "samples": 0}
    if part is None:
        return {**out, "verdict": stats.INCONCLUSIVE, "why": "the result has no such step or scenario"}
    buckets = sorted_buckets(part)
    n = sum(count for _, _, count in buckets)
    metric = objective.metric
    if objective.percentile is not None:
        p = objective.percentile / 100.0
        low, high = stats.quantile_interval_of_buckets(buckets, p, confidence)
        point = stats.quantile_value_of_buckets(buckets, p)
        return {**out, "verdict": stats.verdict(objective.passes, low, high), "low": low, "high": high,
                "value": point, "samples": n}
    if metric == "error_rate":
        low, high = stats.wilson_interval(part.failed, part.attempts, confidence)
        value = part.failed / part.attempts if part.attempts else None
        return {**out, "verdict": stats.verdict(objective.passes, low, high), "low": low, "high": high,
                "value": value, "samples": part.attempts}
    if metric == "check_rate":
        low_f, high_f = stats.wilson_interval(part.check_failures, part.checks, confidence)
        value = 1.0 - part.check_failures / part.checks if part.checks else None
        return {**out, "verdict": stats.verdict(objective.passes, 1.0 - high_f, 1.0 - low_f),
                "low": 1.0 - high_f, "high": 1.0 - low_f, "value": value, "samples": part.checks}
    value = float(dropped) if metric == "dropped" else _point_value(metric, buckets, n, part, window_s)
    if value is None:
        return {**out, "verdict": stats.INCONCLUSIVE, "samples": n}
    return {**out, "verdict": stats.PASS if objective.passes(value) else stats.FAIL, "value": value,
            "low": value, "high": value, "samples": n}


def _point_value(metric: str, buckets, n: int, part: Part, window_s: float) -> float | None:
    if metric in ("max", "min", "mean"):
        if not n:
            return None
        if metric == "max":
            return float(buckets[-1][1])
        if metric == "min":
            return float(buckets[0][0])
        return sum((low + high) / 2 * count for low, high, count in buckets) / n
    if metric == "throughput":
        return part.requests / window_s if window_s > 0 else None
    if metric == "requests":
        return float(part.requests)
    return None


def over_count(objective, part: Part | None) -> tuple[int, int] | None:
    """(requests beyond the SLO, requests) of an upper-bound SLO on a window:
    latencies over a percentile's threshold, or failed attempts of an error
    rate; None for other SLOs (or no such part)."""
    if part is None or objective.op not in ("<", "<="):
        return None
    if objective.percentile is not None:
        over = sum(count for low, (high, count) in part.buckets.items() if not objective.passes(low))
        return over, sum(count for high, count in part.buckets.values())
    if objective.metric == "error_rate":
        return part.failed, part.attempts
    return None


def allowed_fraction(objective) -> float:
    """The fraction of requests an upper-bound SLO lets be beyond it: 1 - p for
    a percentile, the rate itself for an error rate."""
    if objective.percentile is not None:
        return 1.0 - objective.percentile / 100.0
    return float(objective.value)


def cannot_pass(objective, part: Part | None, planned: float) -> bool:
    """Whether the step can no longer pass this SLO whatever comes next: more
    than the allowed fraction of every request the step will have sent
    (`planned`, its extensions included) is already beyond the SLO, so even if
    all the rest were fast the final point estimate, and with it the upper end
    of the interval, would be beyond it. Exact, no statistics needed."""
    counted = over_count(objective, part)
    if counted is None or planned <= 0:
        return False
    return counted[0] > allowed_fraction(objective) * planned


def clearly_over(objective, part: Part | None, confidence: float, min_count: int) -> bool:
    """Whether the fraction of the window's requests beyond the SLO is
    significantly above what it allows: at least min_count of them, and the
    lower end of the Wilson interval of that fraction above the allowed
    fraction (a scheduling pause's handful does not count)."""
    counted = over_count(objective, part)
    if counted is None:
        return False
    over, n = counted
    if over < min_count or n <= 0:
        return False
    low, _ = stats.wilson_interval(over, n, confidence)
    return low > allowed_fraction(objective)
