"""Baseline comparison: is the current run worse than the baseline, beyond noise?

Each metric is compared twice. Its headline value (the whole-run number a
reader sees) gives the change; its per-second samples (requests/s, p50, p99
... of each interval) give the significance, with a two-sided Mann–Whitney U
test, so a few noisy seconds cannot fail a build. A regression is a change
that is significant AND beyond `max_regression` in the bad direction.

Many metrics are tested at once (six per run, six per step), so the p-values
are adjusted with Holm's step-down method: the chance that any metric of two
equivalent runs shows as significant stays at `alpha`, however many steps.

Per-second samples of one run are not independent (a slow minute is slow for
many seconds), which makes the test over-eager; the bound is what keeps that
honest, so a regression needs both.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from surge.core._histogram import Histogram, HistogramDecodeError
from surge.report.numbers import (
    MIN_INTERVAL_S,
    error_rate,
    format_percent,
    format_rate,
    format_us,
    interval_lengths_s,
    merged_histogram,
)
from surge.report.steps import steps_of

ALPHA = 0.05                    # family-wise: the chance of any false alarm across all metrics
MIN_SAMPLES = 5                 # per side; fewer cannot show significance
LATENCY_PERCENTILES = ("50", "90", "99", "99.9")


# ---- the test -------------------------------------------------------------------------------
def mann_whitney_u(x, y) -> tuple[float, float]:
    """(U of x, two-sided p) by the normal approximation with tie and continuity corrections."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        return float("nan"), 1.0
    combined = np.concatenate([x, y])
    n = n1 + n2
    # Average ranks: equal values share the mean of the ranks they span.
    values, inverse, counts = np.unique(combined, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    mean_rank = upper - (counts - 1) / 2.0
    ranks = mean_rank[inverse]
    u1 = ranks[:n1].sum() - n1 * (n1 + 1) / 2.0
    mean_u = n1 * n2 / 2.0
    tie_term = float((counts.astype(float) ** 3 - counts).sum()) / (n * (n - 1)) if n > 1 else 0.0
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term)
    if variance <= 0:                       # every value equal: no evidence of a difference
        return float(u1), 1.0
    z = (abs(u1 - mean_u) - 0.5) / math.sqrt(variance)
    z = max(z, 0.0)
    return float(u1), math.erfc(z / math.sqrt(2.0))


# ---- what is compared -----------------------------------------------------------------------
@dataclass(frozen=True)
class MetricChange:
    """One metric of one scope (the whole run, or a step)."""
    scope: str                      # "run" or the step's name
    name: str                       # "requests/s", "p99", "error rate"
    kind: str                       # "rate", "latency", "fraction": how to print it
    higher_is_better: bool
    baseline: float | None
    current: float | None
    change: float | None            # (current - baseline) / baseline; inf when from 0 to more
    p_value: float | None           # Holm-adjusted; None: not enough per-second samples to test
    samples: tuple[int, int] = (0, 0)
    significant: bool = False
    regression: bool = False
    improvement: bool = False

    def formatted(self, value: float | None) -> str:
        if value is None:
            return "-"
        if self.kind == "latency":
            return format_us(value)
        if self.kind == "fraction":
            return format_percent(value, 3)
        return format_rate(value)


@dataclass(frozen=True)
class Comparison:
    metrics: list[MetricChange]
    max_regression: float
    alpha: float = ALPHA
    baseline_name: str = "baseline"
    current_name: str = "current"
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[MetricChange]:
        return [m for m in self.metrics if m.regression]

    @property
    def improvements(self) -> list[MetricChange]:
        return [m for m in self.metrics if m.improvement]

    @property
    def verdict(self) -> str:
        if self.regressions:
            return "regression"
        if self.improvements:
            return "improvement"
        return "no significant change"

    def render(self) -> str:
        return render_comparison(self)


def _samples_rate(points: list[dict]) -> list[float]:
    return [p.get("requests", 0) / n for p, n in zip(points, interval_lengths_s(points)) if n >= MIN_INTERVAL_S]


def _samples_error_rate(points: list[dict]) -> list[float]:
    return [error_rate(p.get("requests", 0), p.get("errors")) for p, n in zip(points, interval_lengths_s(points))
            if n >= MIN_INTERVAL_S]


def _samples_percentile(points: list[dict], pct: str) -> list[float]:
    """Per-second values of a percentile: the point's own key, or its histogram."""
    key = f"p{pct}"
    values = []
    for point in points:
        if not point.get("requests"):
            continue                            # no responses, no latency
        if point.get(key) is not None:
            values.append(float(point[key]))
        elif isinstance(point.get("hdr"), str):
            try:
                values.append(float(Histogram.decode(point["hdr"]).value_at_percentile(float(pct))))
            except (HistogramDecodeError, ValueError):
                pass
    return values


def _points_between(points: list[dict], start_s, end_s) -> list[dict]:
    if start_s is None or end_s is None:
        return []
    return [p for p in points if start_s < float(p["t"]) <= end_s + 1e-9]


def _scope_numbers(scope: dict, points: list[dict]) -> dict:
    """Headline numbers and per-second samples of a run or of a step."""
    latency = scope.get("latency") or {}
    percentiles = latency.get("percentiles") or {}
    totals = scope.get("totals") or scope         # a step carries its numbers at the top
    requests = totals.get("requests")
    rps = totals.get("rps")
    if rps is None and points:
        seconds = sum(interval_lengths_s(points))
        rps = sum(p.get("requests", 0) for p in points) / seconds if seconds > 0 else None
    known_errors = requests is not None and "errors" in totals
    numbers = {"requests/s": (rps, _samples_rate(points)),
               "error rate": (error_rate(requests, totals["errors"]) if known_errors else None,
                              _samples_error_rate(points))}
    merged = None
    for pct in LATENCY_PERCENTILES:
        value = percentiles.get(pct)
        if value is None and points:
            merged = merged or merged_histogram(points)
            value = merged.value_at_percentile(float(pct)) if merged and merged.total_count else None
        numbers[f"p{pct}"] = (value, _samples_percentile(points, pct))
    return numbers

KIND = {"requests/s": ("rate", True), "error rate": ("fraction", False)}


def _change(baseline, current) -> float | None:
    if baseline is None or current is None:
        return None
    if baseline == 0:
        return 0.0 if current == 0 else math.inf
    return (current - baseline) / baseline


def _metric(scope: str, name: str, base: tuple, cur: tuple) -> MetricChange:
    """The change and the raw p-value; significance is decided over all metrics (_judge)."""
    kind, higher_is_better = KIND.get(name, ("latency", False))
    (base_value, base_samples), (cur_value, cur_samples) = base, cur
    change = _change(base_value, cur_value)
    p_value = None
    # Without both headline numbers there is no change to judge, whatever the samples say.
    if change is not None and len(base_samples) >= MIN_SAMPLES and len(cur_samples) >= MIN_SAMPLES:
        p_value = mann_whitney_u(base_samples, cur_samples)[1]
    return MetricChange(scope, name, kind, higher_is_better, base_value, cur_value, change, p_value,
                        (len(base_samples), len(cur_samples)))


def holm_adjust(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _judge(metrics: list[MetricChange], max_regression: float, alpha: float) -> list[MetricChange]:
    tested = [i for i, m in enumerate(metrics) if m.p_value is not None]
    adjusted = dict(zip(tested, holm_adjust([metrics[i].p_value for i in tested])))
    judged = []
    for i, m in enumerate(metrics):
        p_value = adjusted.get(i)
        significant = p_value is not None and p_value < alpha
        worse = m.change is not None and (-m.change if m.higher_is_better else m.change) > max_regression
        better = m.change is not None and (m.change if m.higher_is_better else -m.change) > max_regression
        judged.append(replace(m, p_value=p_value, significant=significant, regression=significant and worse,
                              improvement=significant and better))
    return judged


def _config_notes(baseline: dict, current: dict) -> list[str]:
    notes = []
    keys = ("url", "method", "model", "rate", "connections", "workers", "pipeline", "duration_s", "requests")
    base_cfg, cur_cfg = baseline.get("config", {}), current.get("config", {})
    differ = [f"{k} {base_cfg.get(k)} -> {cur_cfg.get(k)}" for k in keys if base_cfg.get(k) != cur_cfg.get(k)]
    if differ:
        notes.append("the runs' configurations differ: " + ", ".join(differ))
    for name, result in (("baseline", baseline), ("current", current)):
        if result.get("interrupted"):
            notes.append(f"the {name} run was interrupted")
        if result.get("workers_failed"):
            notes.append(f"a worker died in the {name} run")
    return notes


def compare(baseline: dict, current: dict, max_regression: float = 0.05, alpha: float = ALPHA,
            baseline_name: str = "baseline", current_name: str = "current") -> Comparison:
    """Compare two result dicts; `max_regression` is a fraction (0.05 = 5%)."""
    base_points, cur_points = baseline.get("timeseries") or [], current.get("timeseries") or []
    metrics = []
    base_numbers = _scope_numbers(baseline, base_points)
    cur_numbers = _scope_numbers(current, cur_points)
    for name in base_numbers:
        metrics.append(_metric("run", name, base_numbers[name], cur_numbers[name]))
    notes = _config_notes(baseline, current)
    base_steps = {s.get("name", str(i)): s for i, s in enumerate(steps_of(baseline))}
    for i, step in enumerate(steps_of(current)):
        name = step.get("name", str(i))
        if name not in base_steps:
            notes.append(f"step {name!r} is not in the baseline")
            continue
        base_step = base_steps[name]
        base_numbers = _scope_numbers(base_step, _points_between(base_points, base_step.get("start_s"),
                                                                 base_step.get("end_s")))
        cur_numbers = _scope_numbers(step, _points_between(cur_points, step.get("start_s"), step.get("end_s")))
        for metric in base_numbers:
            if base_numbers[metric][0] is None and cur_numbers[metric][0] is None:
                continue                    # neither step has this number
            metrics.append(_metric(name, metric, base_numbers[metric], cur_numbers[metric]))
    if any(m.p_value is None and m.baseline is not None for m in metrics):
        notes.append(f"'-' under p: fewer than {MIN_SAMPLES} per-second samples on a side, so no significance "
                     "(and no regression) can be shown for that metric")
    return Comparison(_judge(metrics, max_regression, alpha), max_regression, alpha, baseline_name, current_name,
                      notes)


# ---- text -----------------------------------------------------------------------------------
def _format_change(m: MetricChange) -> str:
    if m.change is None:
        return "-"
    if math.isinf(m.change):
        return "new"
    return f"{m.change * 100:+.1f}%"


def _format_p(p: float | None) -> str:
    if p is None:
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def render_comparison(c: Comparison) -> str:
    """Both runs side by side, the change, and whether it is significant."""
    header = f"  {'':<16}{'baseline':>14}{'current':>14}{'change':>10}{'p':>8}  verdict"
    lines = [f"surge compare: {c.baseline_name} (baseline) vs {c.current_name} (current)",
             f"  bound {c.max_regression * 100:g}% in the bad direction, significant at p < {c.alpha:g} "
             "(Mann-Whitney U on per-second samples, Holm-adjusted over all metrics)"]
    scope = None
    for m in c.metrics:
        if m.scope != scope:
            scope = m.scope
            lines.append("")
            lines.append("  whole run" if scope == "run" else f"  step {scope}")
            lines.append(header)
        if m.regression:
            verdict = "REGRESSION"
        elif m.improvement:
            verdict = "improvement"
        elif m.significant:
            verdict = "significant, within bound"
        elif m.p_value is None:
            verdict = "not tested"
        else:
            verdict = "no significant change"
        lines.append(f"  {m.name:<16}{m.formatted(m.baseline):>14}{m.formatted(m.current):>14}"
                     f"{_format_change(m):>10}{_format_p(m.p_value):>8}  {verdict}")
    lines.append("")
    for note in c.notes:
        lines.append(f"  note: {note}")
    if c.regressions:
        worst = ", ".join(f"{m.name}{'' if m.scope == 'run' else ' (' + m.scope + ')'} {_format_change(m)}"
                          for m in c.regressions)
        lines.append(f"  REGRESSION beyond {c.max_regression * 100:g}%: {worst}")
    elif c.improvements:
        lines.append("  improvement, no regression")
    else:
        lines.append("  no significant change")
    return "\n".join(lines)

