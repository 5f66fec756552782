"""Baseline comparison: is the current run worse than the baseline, beyond noise?

Each metric is compared twice. Its headline value (the whole-run number a
reader sees) gives the change; its per-interval samples (requests/s, p50, p99
... of each second) give the significance, with a two-sided Mann–Whitney U
test, so a few noisy seconds cannot fail a build. A regression is a change
that is significant AND beyond `max_regression` in the bad direction.

Steps are matched by name (`scenario/step` in plans, the stage's name in staged
URL runs), never by position; a step in only one run is listed as such. A plan
step's samples are its own seconds (the result's `step_timeseries`).

Many metrics are tested at once (six per run, six per step), so the p-values
are adjusted with Holm's step-down method: the chance that any metric of two
equivalent runs shows as significant stays at `alpha`, however many steps.
That has a price on short runs: n samples a side cannot give a p below a
floor whatever the change (0.012 for 5 and 5 distinct values: `smallest_p_of`),
and Holm asks the first of m metrics for p < alpha/m. A metric that cannot get
there even at best says "cannot test"; when none can, the comparison is
*inconclusive* (never "no significant change") and says how long a run would
do. A metric whose floor is not even below alpha (no errors on either side:
every sample 0) stays out of Holm's family, so it costs the others nothing.

Per-second samples of one run are not independent (a slow minute is slow for
many seconds): tested as if they were, two runs of the same configuration
differed "significantly" (bench/compare_pair.py). The rank sum's variance is
widened by the samples' own lag-1 correlation (significance.serial_inflation),
so n correlated samples count as fewer; and a regression needs the bound too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from surge.core._histogram import Histogram, HistogramDecodeError
from surge.report.numbers import MIN_INTERVAL_S, format_percent, format_rate, format_us, interval_lengths_s
from surge.report.significance import (holm_adjust, mann_whitney_u, samples_needed, serial_inflation, smallest_p,
                                      smallest_p_of)
from surge.report.steps import steps_of
from surge.result.failed import error_rate

__all__ = ["compare", "Comparison", "MetricChange", "mann_whitney_u", "holm_adjust", "smallest_p"]

ALPHA = 0.05                    # family-wise: the chance of any false alarm across all metrics
LATENCY_PERCENTILES = ("50", "90", "99", "99.9")
KIND = {"requests/s": ("rate", True), "error rate": ("fraction", False)}


# ---- what is compared -----------------------------------------------------------------------
@dataclass(frozen=True)
class MetricChange:
    """One metric of one scope (the whole run, or a step)."""
    scope: str                      # "run" or the step's name ("browse/search", "1: 0->2 over 1s")
    name: str                       # "requests/s", "p99", "error rate"
    kind: str                       # "rate", "latency", "fraction": how to print it
    higher_is_better: bool
    baseline: float | None
    current: float | None
    change: float | None            # (current - baseline) / baseline; inf when from 0 to more
    p_value: float | None           # Holm-adjusted; None when not tested
    samples: tuple[int, int] = (0, 0)
    interval_s: float = 1.0         # what one sample spans
    raw_p: float | None = None      # before Holm
    lowest_p: float | None = None   # the smallest raw p these pooled samples could give (smallest_p_of)
    floor_p: float | None = None    # the same, Holm-adjusted: the best this metric can do
    untested: str | None = None     # why no significance can be shown, in words
    constant: bool = False          # every sample of both runs the same value: nothing changed to test
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

    @property
    def label(self) -> str:
        return self.name if self.scope == "run" else f"{self.name} ({self.scope})"


@dataclass(frozen=True)
class Comparison:
    metrics: list[MetricChange]
    max_regression: float
    alpha: float = ALPHA
    baseline_name: str = "baseline"
    current_name: str = "current"
    notes: list[str] = field(default_factory=list)
    only_in_baseline: list[str] = field(default_factory=list)     # "step checkout/pay", "scenario checkout"
    only_in_current: list[str] = field(default_factory=list)
    tested: int = 0                 # metrics in Holm's family
    # (name, baseline, current) of connect / TLS handshake percentiles (µs) both runs
    # have: shown side by side, not tested (no per-second samples of them)
    connection_costs: list[tuple[str, float, float]] = field(default_factory=list)

    @property
    def regressions(self) -> list[MetricChange]:
        return [m for m in self.metrics if m.regression]

    @property
    def improvements(self) -> list[MetricChange]:
        return [m for m in self.metrics if m.improvement]

    @property
    def within_bound(self) -> list[MetricChange]:
        """Significant changes that are neither a regression nor an improvement."""
        return [m for m in self.metrics if m.significant and not (m.regression or m.improvement)]

    @property
    def untested(self) -> list[MetricChange]:
        return [m for m in self.metrics if m.untested]

    @property
    def testable(self) -> list[MetricChange]:
        """Metrics whose samples could have shown a significant change."""
        return [m for m in self.metrics if not m.untested and not m.constant]

    @property
    def inconclusive(self) -> bool:
        """No metric could have shown a significant change, whatever the data."""
        return bool(self.metrics) and not self.testable

    @property
    def verdict(self) -> str:
        if self.regressions:
            return "regression"
        if self.inconclusive:
            return "inconclusive"
        if self.improvements:
            return "improvement"
        if self.within_bound:
            return "change within bound"
        return "no significant change"

    def render(self) -> str:
        return render_comparison(self)


# ---- per-interval samples -------------------------------------------------------------------
@dataclass(frozen=True)
class Series:
    """A scope's per-interval points, shaped like timeseries points (t, requests,
    errors, failed, and pNN or an encoded `hdr`); None when the file has none."""
    points: list[dict] | None
    interval_s: float = 1.0
    missing: str = ""               # why points is None


def _point_percentiles(point: dict) -> dict[str, float] | None:
    """The point's own pNN keys where it has them all, else from its histogram."""
    keys = [f"p{pct}" for pct in LATENCY_PERCENTILES]
    if all(point.get(k) is not None for k in keys):
        return {k: float(point[k]) for k in keys}
    if isinstance(point.get("hdr"), str):
        try:
            hist = Histogram.decode(point["hdr"])
        except (HistogramDecodeError, ValueError):
            return None
        values = hist.values_at_percentiles([float(p) for p in LATENCY_PERCENTILES])
        return {k: float(v) for k, v in zip(keys, values)}
    return None


def _samples(series: Series) -> dict[str, list[float]] | None:
    """metric -> one value per interval (None without points). Rates and error
    rates skip a last interval too short to stand for a rate; latency skips
    intervals without responses; error rates skip intervals with no attempt."""
    if series.points is None:
        return None
    points = series.points
    whole = [(p, n) for p, n in zip(points, interval_lengths_s(points))
             if n >= MIN_INTERVAL_S * series.interval_s]
    out = {"requests/s": [p.get("requests", 0) / n for p, n in whole],
           "error rate": [error_rate(p) for p, _ in whole
                          if p.get("requests", 0) or p.get("errors") or p.get("failed")]}
    latency = [v for v in (_point_percentiles(p) for p in points if p.get("requests")) if v is not None]
    for pct in LATENCY_PERCENTILES:
        out[f"p{pct}"] = [v[f"p{pct}"] for v in latency]
    return out


def _points_between(points: list[dict], start_s, end_s) -> list[dict]:
    return [p for p in points if float(start_s) < float(p["t"]) <= float(end_s) + 1e-9]


def _run_series(result: dict) -> Series:
    points = result.get("timeseries")
    if not isinstance(points, list) or not points:
        return Series(None, missing="no per-second samples (timeseries)")
    return Series(points, 1.0)


# Metrics the sub-second samples carry (they have latency only: no errors).
FINE_METRICS = ("requests/s",) + tuple(f"p{p}" for p in LATENCY_PERCENTILES)


def _fine_series(result: dict) -> Series | None:
    """The result's sub-second samples (`samples`: timeseries-shaped points from
    surge.run.merge.sub_second_samples), their interval the usual point length."""
    points = result.get("samples")
    if not isinstance(points, list) or len(points) < 2 or not all(
            isinstance(p, dict) and isinstance(p.get("t"), (int, float)) for p in points):
        return None
    lengths = sorted(interval_lengths_s(points))
    interval_s = round(lengths[len(lengths) // 2], 6)
    return Series(points, interval_s) if interval_s > 0 else None


def _run_fine(baseline: dict, current: dict) -> tuple[Series, Series] | None:
    """Both runs' sub-second samples, when both have them at the same interval."""
    fine = _fine_series(baseline), _fine_series(current)
    if fine[0] is None or fine[1] is None or fine[0].interval_s != fine[1].interval_s:
        return None
    return fine


def _step_series(result: dict, step: dict) -> Series:
    """A plan step's own seconds (`step_timeseries`), or a stage's window of the run's."""
    if step.get("scenario") is not None and step.get("step") is not None:
        for entry in result.get("step_timeseries") or ():
            if isinstance(entry, dict) and (entry.get("scenario"), entry.get("step")) == (step["scenario"], step["step"]):
                return Series(entry.get("points") or [], 1.0)
        return Series(None, missing="no per-step per-second samples (the file has no step_timeseries: "
                                    "written by a surge before per-step samples)")
    if step.get("start_s") is not None and step.get("end_s") is not None and result.get("timeseries"):
        return Series(_points_between(result["timeseries"], step["start_s"], step["end_s"]), 1.0)
    return Series(None, missing="no per-second samples for this step (no time range, no step_timeseries)")


# ---- headline numbers -----------------------------------------------------------------------
def _headline(part: dict, latency: dict | None, duration_s: float | None, series: Series) -> dict:
    """metric -> the whole-scope value a reader sees (None when unknown)."""
    requests = part.get("requests")
    rps = part.get("rps")
    if rps is None and series.points:
        seconds = sum(interval_lengths_s(series.points))
        rps = sum(p.get("requests", 0) for p in series.points) / seconds if seconds > 0 else None
    if rps is None and isinstance(requests, (int, float)) and duration_s:
        rps = requests / duration_s             # a plan step runs for the whole run
    numbers = {"requests/s": rps,
               "error rate": (error_rate(part) if requests is not None and ("errors" in part or "failed" in part)
                              else None)}
    percentiles = (latency or {}).get("percentiles") or {}
    for pct in LATENCY_PERCENTILES:
        numbers[f"p{pct}"] = percentiles.get(pct)
    return numbers


def _change(baseline, current) -> float | None:
    if baseline is None or current is None:
        return None
    if baseline == 0:
        return 0.0 if current == 0 else math.inf
    return (current - baseline) / baseline


def _metric(scope: str, name: str, values: tuple, samples: tuple, series: tuple[Series, Series]) -> MetricChange:
    """The change and the raw p-value; significance is decided over all metrics (_judge)."""
    kind, higher_is_better = KIND.get(name, ("latency", False))
    base_value, cur_value = values
    change = _change(base_value, cur_value)
    base_samples = samples[0].get(name, []) if samples[0] is not None else None
    cur_samples = samples[1].get(name, []) if samples[1] is not None else None
    counts = (len(base_samples or ()), len(cur_samples or ()))
    untested = raw_p = lowest_p = None
    constant = False
    if change is None:
        untested = f"not tested: no value in the {'baseline' if base_value is None else 'current run'}"
    elif base_samples is None or cur_samples is None:
        untested = "not tested: " + (series[0] if base_samples is None else series[1]).missing + \
                   f" in the {'baseline' if base_samples is None else 'current run'}"
    elif not base_samples or not cur_samples:
        untested = f"not tested: no samples in the {'baseline' if not base_samples else 'current run'}"
    else:
        inflation = serial_inflation(base_samples, cur_samples)
        raw_p = mann_whitney_u(base_samples, cur_samples, inflation)[1]
        lowest_p = smallest_p_of(base_samples, cur_samples, inflation)
        constant = len(set(base_samples) | set(cur_samples)) == 1
    interval = series[0].interval_s if series[0].points is not None else series[1].interval_s
    return MetricChange(scope, name, kind, higher_is_better, base_value, cur_value, change, None, counts,
                        interval, raw_p, lowest_p, untested=untested, constant=constant)


def _judge(metrics: list[MetricChange], max_regression: float, alpha: float) -> tuple[list[MetricChange], int]:
    """Holm over the metrics that can be tested; each also gets the best adjusted p
    its samples allow (every p at its floor: Holm is monotone, so no split does better)."""
    candidates = [i for i, m in enumerate(metrics) if m.raw_p is not None]
    floors = {i: metrics[i].lowest_p for i in candidates}
    # A metric whose floor is not below alpha can never be rejected: leaving it out
    # of the family spends none of the others' alpha on it.
    family = [i for i in candidates if floors[i] < alpha]
    best = dict(zip(family, holm_adjust([floors[i] for i in family])))
    adjusted = dict(zip(family, holm_adjust([metrics[i].raw_p for i in family])))
    judged = []
    for i, m in enumerate(metrics):
        untested, p_value = m.untested, adjusted.get(i)
        n1, n2 = m.samples
        if m.constant:
            pass                                # nothing varied: "no change", not "cannot test"
        elif i in candidates and i not in family:
            untested = f"cannot test: {n1} and {n2} samples reach p >= {floors[i]:.2g} at best"
        elif i in family and best[i] >= alpha:
            untested = f"cannot test: p >= {best[i]:.2g} at best"
        significant = untested is None and p_value is not None and p_value < alpha
        worse = m.change is not None and (-m.change if m.higher_is_better else m.change) > max_regression
        better = m.change is not None and (m.change if m.higher_is_better else -m.change) > max_regression
        judged.append(replace(m, p_value=p_value, floor_p=best.get(i, floors.get(i)), untested=untested,
                              significant=significant, regression=significant and worse,
                              improvement=significant and better))
    return judged, len(family)


# ---- matching steps and scenarios by name ---------------------------------------------------
def _step_key(step: dict, index: int) -> str:
    if step.get("scenario") is not None and step.get("step") is not None:
        return f"{step['scenario']}/{step['step']}"
    if step.get("name") is not None:
        return str(step["name"])
    return f"#{index + 1}"


def _named_steps(result: dict) -> dict[str, dict]:
    """Steps by name, in the file's order (a repeated name gets ' #2', ' #3')."""
    named: dict[str, dict] = {}
    for i, step in enumerate(steps_of(result)):
        key, k = _step_key(step, i), 2
        while key in named:
            key, k = f"{_step_key(step, i)} #{k}", k + 1
        named[key] = step
    return named


def _scenario_names(result: dict) -> list[str]:
    return [str(s["name"]) for s in result.get("scenarios") or () if isinstance(s, dict) and "name" in s]


def _config_notes(baseline: dict, current: dict) -> list[str]:
    notes = []
    keys = ("url", "method", "model", "rate", "connections", "workers", "pipeline", "duration_s", "requests")
    base_cfg, cur_cfg = baseline.get("config", {}), current.get("config", {})
    differ = [f"{k} {base_cfg.get(k)} -> {cur_cfg.get(k)}" for k in keys if base_cfg.get(k) != cur_cfg.get(k)]
    keepalive = ["on" if cfg.get("keepalive", True) else "off" for cfg in (base_cfg, cur_cfg)]
    if keepalive[0] != keepalive[1]:        # written only when off: every latency then includes a handshake
        differ.append(f"keep-alive {keepalive[0]} -> {keepalive[1]}")
    if differ:
        notes.append("the runs' configurations differ: " + ", ".join(differ))
    for name, result in (("baseline", baseline), ("current", current)):
        if result.get("interrupted"):
            notes.append(f"the {name} run was interrupted")
        if result.get("workers_failed"):
            notes.append(f"a worker died in the {name} run")
    return notes


def _scope_metrics(scope: str, parts: tuple[tuple, tuple], skip_unknown: bool,
                   fine: tuple[Series, Series] | None = None) -> list[MetricChange]:
    """parts: ((part, latency, duration_s, series) of the baseline, ... of the current);
    `fine`: sub-second samples of both, used for the metrics they carry."""
    series = (parts[0][3], parts[1][3])
    headlines = [_headline(*p) for p in parts]
    samples = [_samples(s) for s in series]
    fine_samples = [_samples(s) for s in fine] if fine else None
    metrics = []
    for name in headlines[0]:
        values = (headlines[0][name], headlines[1][name])
        if skip_unknown and values == (None, None):
            continue                            # neither step has this number
        if fine_samples and name in FINE_METRICS:
            metrics.append(_metric(scope, name, values, (fine_samples[0], fine_samples[1]), fine))
        else:
            metrics.append(_metric(scope, name, values, (samples[0], samples[1]), series))
    return metrics


def compare(baseline: dict, current: dict, max_regression: float = 0.05, alpha: float = ALPHA,
            baseline_name: str = "baseline", current_name: str = "current") -> Comparison:
    """Compare two result dicts; `max_regression` is a fraction (0.05 = 5%)."""
    rule_notes = []
    if _has_failed(baseline) != _has_failed(current):
        # One file predates the failed-request rule (status >= 400 fails): counting
        # HTTP statuses on one side only would show a change no run made.
        baseline, current = _without_failed(baseline), _without_failed(current)
        rule_notes.append("one run predates the failed-request rule (status >= 400 counts as failed): "
                          "error rate compares transport errors only")

    def run_part(result):
        totals = result.get("totals") or {}
        return totals, result.get("latency"), totals.get("duration_s"), _run_series(result)

    metrics = _scope_metrics("run", (run_part(baseline), run_part(current)), skip_unknown=False,
                             fine=_run_fine(baseline, current))
    base_steps, cur_steps = _named_steps(baseline), _named_steps(current)
    for name, step in cur_steps.items():
        if name not in base_steps:
            continue
        parts = tuple((s, s.get("latency"), (r.get("totals") or {}).get("duration_s"), _step_series(r, s))
                      for r, s in ((baseline, base_steps[name]), (current, step)))
        metrics += _scope_metrics(name, parts, skip_unknown=True)
    only_base = [f"step {n}" for n in base_steps if n not in cur_steps]
    only_cur = [f"step {n}" for n in cur_steps if n not in base_steps]
    base_scn, cur_scn = _scenario_names(baseline), _scenario_names(current)
    only_base += [f"scenario {n}" for n in base_scn if n not in cur_scn]
    only_cur += [f"scenario {n}" for n in cur_scn if n not in base_scn]
    judged, tested = _judge(metrics, max_regression, alpha)
    return Comparison(judged, max_regression, alpha, baseline_name, current_name,
                      rule_notes + _config_notes(baseline, current), only_base, only_cur, tested,
                      connection_costs(baseline, current))


COST_SUMMARIES = (("connect", "connect"), ("tls_handshake", "handshake"))
COST_PERCENTILES = ("50", "99")


def connection_costs(baseline: dict, current: dict) -> list[tuple[str, float, float]]:
    """Connect and TLS handshake p50/p99 of both runs, where both measured them
    (files before issue 11 have neither; plain http has no handshake)."""
    rows = []
    for key, label in COST_SUMMARIES:
        sides = [r.get(key) if isinstance(r.get(key), dict) else {} for r in (baseline, current)]
        if not all(side.get("count") and isinstance(side.get("percentiles"), dict) for side in sides):
            continue
        for pct in COST_PERCENTILES:
            values = [side["percentiles"].get(pct) for side in sides]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                rows.append((f"{label} p{pct}", values[0], values[1]))
    return rows


def _has_failed(result: dict) -> bool:
    return isinstance((result.get("totals") or {}).get("failed"), dict)


def _without_failed(result: dict) -> dict:
    """The result with every `failed` count removed, so error rates fall back to
    transport errors (surge.result.failed.error_rate's rule for files without it)."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("failed", "error_rate")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return strip(result)


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


def _interval_words(interval_s: float) -> str:
    return "one-second" if interval_s == 1.0 else f"{interval_s * 1000:g} ms"


def _row_verdict(m: MetricChange) -> str:
    if m.regression:
        return "REGRESSION"
    if m.improvement:
        return "improvement"
    if m.significant:
        return "significant, within bound"
    if m.untested:
        return m.untested
    if m.constant:
        return "no change (every sample equal)"
    return "no significant change"


def inconclusive_reason(c: Comparison) -> str:
    """Why no metric could show significance, with the run length that could."""
    sized = [m for m in c.metrics if m.lowest_p is not None]
    if not sized:
        return c.metrics[0].untested if c.metrics else "nothing to compare"
    best = min(sized, key=lambda m: (m.lowest_p, -sum(m.samples)))
    n1, n2 = best.samples
    family = c.tested or len(sized)
    raw_floor = best.lowest_p
    needed = samples_needed(family, c.alpha)
    longer = (f"; runs of >= {math.ceil(needed * best.interval_s):g} s each could (a clear change; "
              "a small one needs longer)" if needed else "")
    return (f"cannot test: {n1} and {n2} {_interval_words(best.interval_s)} samples can reach p >= {raw_floor:.2g}, "
            f"{family} metric{'s' if family != 1 else ''} need p < {c.alpha / family:.2g}{longer}")


def _listed(metrics: list[MetricChange], at_most: int = 4) -> str:
    shown = ", ".join(f"{m.label} {_format_change(m)}" for m in metrics[:at_most])
    return shown + (f" and {len(metrics) - at_most} more" if len(metrics) > at_most else "")


def final_line(c: Comparison) -> str:
    """The one-line verdict; it never says more or less than the rows do."""
    bound = f"{c.max_regression * 100:g}%"
    if c.regressions:
        return f"REGRESSION beyond {bound}: " + _listed(c.regressions, len(c.regressions))
    if c.inconclusive:
        return "INCONCLUSIVE: " + inconclusive_reason(c)
    parts = []
    if c.improvements:
        parts.append(f"improvement beyond {bound}: " + _listed(c.improvements))
    if c.within_bound:
        parts.append(f"significant within the {bound} bound: " + _listed(c.within_bound))
    if parts:
        parts.insert(0, f"no regression beyond {bound}")
    else:
        parts.append("no significant change" if not c.untested
                     else f"no significant change in the {len(c.testable)} metrics that could be tested")
    if c.untested:
        parts.append(f"{len(c.untested)} of {len(c.metrics)} metrics could not be tested (see rows)")
    return "; ".join(parts)


def render_comparison(c: Comparison) -> str:
    """Both runs side by side, the change, and whether it is significant."""
    header = f"  {'':<16}{'baseline':>14}{'current':>14}{'change':>10}{'n':>11}{'p':>8}  verdict"
    intervals = sorted({m.interval_s for m in c.metrics if m.samples != (0, 0)}, reverse=True) or [1.0]
    lines = [f"surge compare: {c.baseline_name} (baseline) vs {c.current_name} (current)",
             f"  bound {c.max_regression * 100:g}% in the bad direction, significant at p < {c.alpha:g} "
             f"(Mann-Whitney U on {' / '.join(_interval_words(i) for i in intervals)} samples, "
             f"widened for their serial correlation, Holm-adjusted over {c.tested} metric{'s' if c.tested != 1 else ''})"]
    scope = None
    for m in c.metrics:
        if m.scope != scope:
            scope = m.scope
            lines.append("")
            lines.append("  whole run" if scope == "run" else f"  step {scope}")
            lines.append(header)
        n = f"{m.samples[0]}/{m.samples[1]}"
        lines.append(f"  {m.name:<16}{m.formatted(m.baseline):>14}{m.formatted(m.current):>14}"
                     f"{_format_change(m):>10}{n:>11}{_format_p(m.p_value):>8}  {_row_verdict(m)}")
    lines.append("")
    if c.connection_costs:
        lines.append("  new connections (whole-run percentiles, shown beside each other: outside the gate)")
        for name, base, cur in c.connection_costs:
            change = _change(base, cur)
            shown = "-" if change is None else ("new" if math.isinf(change) else f"{change * 100:+.1f}%")
            lines.append(f"  {name:<16}{format_us(base):>14}{format_us(cur):>14}{shown:>10}")
        lines.append("")
    if c.only_in_baseline:
        lines.append(f"  only in the baseline (not compared): {', '.join(c.only_in_baseline)}")
    if c.only_in_current:
        lines.append(f"  only in the current run (not compared): {', '.join(c.only_in_current)}")
    for note in c.notes:
        lines.append(f"  note: {note}")
    lines.append(f"  {final_line(c)}")
    return "\n".join(lines)
