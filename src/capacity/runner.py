"""One capacity step: a `surge run` at one rate (or concurrency), watched each second.

A step is one run through surge's own run machinery (surge.run.session's
`run_observed`, the supervisor, the workers), of length warm-up + (1 + E)
step lengths, E the extensions allowed. `StepWatch`, an Observers, takes a
cumulative reading when the warm-up ends and judges the window since then:

- every second: a step stops now, a fail, when it cannot pass any more
  (slo.cannot_pass: more than 1 - p of all the requests it will have sent,
  extensions included, are already beyond the threshold), when the fraction
  beyond the threshold is significantly above 1 - p both in its window and
  in each of the last three seconds (slo.clearly_over: a sustained excess,
  not a scheduling pause), or when its corrected p50 has risen above a
  percentile SLO's threshold three seconds running (an overload: the queue
  grows without bound);
- at the end of each step length: pass or fail stop the run; inconclusive
  goes on into the next step length, and after the last one counts as a fail.

So an extension keeps the warm connections and the window grows, rather than
a fresh run re-warming. The run's stop is an abort with the reason, so the
step's full result says why it ended (`aborted_by`).
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field, replace

from surge.capacity import slo as slo_mod
from surge.capacity import stats
from surge.plan.load import LoadProfile
from surge.plan.units import NS_PER_S
from surge.plan.workload import LoadModel, Workload, default_max_connections, default_max_vus
from surge.run.session import Observers

OVERLOAD_SECONDS = 3
MIN_OVER = 20               # requests beyond an SLO before a fraction of them counts as evidence
SATURATED_CPU = 0.9         # surge.report.numbers.SATURATED_CPU_FRACTION
SENT_OF_DUE = 0.99


@dataclass
class StepOutcome:
    """What a step found: its verdict, why, and the run's full result."""
    rate: float                         # offered: req/s (open) or concurrency (closed)
    verdict: str                        # pass | fail | inconclusive (closed sweeps: "measured")
    deciding_slo: str | None
    reason: str                         # one line: what decided it
    slos: list[dict]                    # slo.judge() of each SLO on the window
    achieved_rate: float
    percentiles_us: dict                # "p50", "p95", "p99" of the window, corrected
    error_rate: float
    window_s: float
    guard: dict                         # {"ok", "sent_fraction", "dropped", "busiest_cpu", "problem"}
    extensions: int
    result: dict = field(repr=False, default_factory=dict)

    @property
    def generator_limited(self) -> bool:
        return not self.guard.get("ok", True)

    def as_dict(self) -> dict:
        return {"rate": self.rate, "achieved_rate": self.achieved_rate, "verdict": self.verdict,
                "deciding_slo": self.deciding_slo, "reason": self.reason, "slos": self.slos,
                "percentiles_us": self.percentiles_us, "error_rate": self.error_rate,
                "window_s": self.window_s, "extensions": self.extensions, "guard": self.guard,
                "result": self.result}


class StepWatch(Observers):
    """The per-second watcher of one step (an Observers for run_observed)."""

    def __init__(self, slos, confidence: float, rate: float, warmup_s: int, step_s: int, extensions: int,
                 judge: bool = True, progress=None):
        super().__init__(progress=None)
        self.slos, self.confidence, self.rate = list(slos), confidence, rate
        self.warmup_s, self.step_s, self.extensions, self.judging = warmup_s, step_s, extensions, judge
        self.base = slo_mod.Reading.empty(self.slos) if warmup_s == 0 else None
        self.p50s: list[int] = []
        self.decision: tuple[str, int | None, str] | None = None     # (verdict, slo index, reason)
        self.decided_on: slo_mod.Reading | None = None     # the window the decision was made on
        self.checkpoint = 1
        self.previous: slo_mod.Reading | None = None      # the last second's cumulative reading
        self.over_seconds: dict[int, int] = {}            # SLO index -> seconds running clearly beyond it
        self.verdict_so_far = "-"
        self.show = progress

    def on_tick(self, k: int, record) -> str | None:
        from surge.run.merge import live_point

        point = live_point(record, k)
        self.p50s.append(int(point.get("p50", 0) or 0))
        if self.show:
            self.show(k, self)
        if self.base is None and k >= self.warmup_s:
            self.base = slo_mod.Reading.of(self.slos, record.live_result(), float(k))
            self.previous = self.base
            return None
        if not self.judging or self.decision is not None:
            return None
        overloaded = self._overloaded()
        if overloaded is not None:
            self.decision = (stats.FAIL, overloaded, f"overloaded at {k}s: the corrected p50 rose above "
                                                     f"{self.slos[overloaded].text} {OVERLOAD_SECONDS}s running")
            return f"capacity step ended: {self.decision[2]}"
        if self.base is None:
            return None
        now = slo_mod.Reading.of(self.slos, record.live_result(), float(k))
        window = now.minus(self.base)
        second = now.minus(self.previous) if self.previous is not None else None
        self.previous = now
        self.decided_on = window
        # every request the step will have sent, its extensions included
        planned = self.rate * self.step_s * (1 + self.extensions)
        for index, objective in enumerate(self.slos):
            if slo_mod.cannot_pass(objective, window.parts[index], planned):
                self.decision = (stats.FAIL, index, f"cannot pass any more at {k}s ({objective.text})")
                return f"capacity step ended: {self.decision[2]}"
            ended = self._over_running(index, objective, window, second)
            if ended:
                self.decision = (stats.FAIL, index, f"{ended} at {k}s ({objective.text})")
                return f"capacity step ended: {self.decision[2]}"
        if k - self.warmup_s >= self.step_s * self.checkpoint:
            judged = [slo_mod.judge(o, p, window.at_s, self.confidence, window.dropped)
                      for o, p in zip(self.slos, window.parts)]
            verdict, index = stats.combine([j["verdict"] for j in judged])
            self.verdict_so_far = verdict
            if verdict != stats.INCONCLUSIVE:
                self.decision = (verdict, index, f"{verdict} after {window.at_s:.0f}s measured")
                return f"capacity step decided: {verdict}"
            if self.checkpoint > self.extensions:
                self.decision = (stats.INCONCLUSIVE, index,
                                 f"still inconclusive after {self.extensions} extensions: counted as a fail")
                return "capacity step decided: inconclusive"
            self.checkpoint += 1
        return None

    def _over_running(self, index: int, objective, window, second) -> str | None:
        """A sustained excess, not a pause: the window's fraction beyond the SLO
        is significantly above what it allows (the Wilson interval's lower end,
        at least MIN_OVER requests), and so was each of the last
        OVERLOAD_SECONDS seconds on its own. A scheduling pause puts its
        requests over the threshold in one or two seconds and then the
        seconds are clean again, so it never ends a step early (the verdict
        at the step's end weighs it with the rest)."""
        if second is None:
            return None
        runs = self.over_seconds.setdefault(index, 0)
        runs = runs + 1 if slo_mod.clearly_over(objective, second.parts[index], self.confidence, MIN_OVER) else 0
        self.over_seconds[index] = runs
        if runs >= OVERLOAD_SECONDS and slo_mod.clearly_over(objective, window.parts[index], self.confidence,
                                                              MIN_OVER):
            return f"significantly beyond it {runs}s running"
        return None

    def _overloaded(self) -> int | None:
        """The percentile SLO whose threshold the corrected p50 has exceeded, rising, for the last seconds."""
        recent = self.p50s[-OVERLOAD_SECONDS:]
        if len(recent) < OVERLOAD_SECONDS or any(b <= a for a, b in zip(recent, recent[1:])):
            return None
        for index, objective in enumerate(self.slos):
            if (objective.percentile is not None and objective.percentile >= 50 and not objective.filters
                    and objective.op in ("<", "<=") and not objective.passes(recent[0])):
                return index
        return None

    def finish(self, result: dict) -> None:
        pass

    def close(self) -> None:
        pass


# -- building each step's workload -------------------------------------------------

def open_step_workload(base: Workload, rate: float, duration_s: float, max_connections: int | None,
                       slos) -> Workload:
    """The base workload at a constant open-model rate for duration_s."""
    duration_ns = int(duration_s * NS_PER_S)
    profile = LoadProfile("open", float(rate), (), duration_ns)
    if _is_plan(base):
        users = max(base.load.users, default_max_vus(base.scenarios, rate))
    else:
        users = max_connections or url_connections(rate, slos)
    load = replace(base.load, users=users, profile=profile, duration_ns=duration_ns, requests=None)
    return replace(base, load=load)


def closed_step_workload(base: Workload, users: int, duration_s: float) -> Workload:
    duration_ns = int(duration_s * NS_PER_S)
    load = replace(base.load, users=users, profile=None, duration_ns=duration_ns, requests=None)
    return replace(base, load=load)


def _is_plan(workload: Workload) -> bool:
    from surge.plan.workload import PlanSource
    return isinstance(workload.source, PlanSource)


def url_connections(rate: float, slos) -> int:
    """Connections for an open step: enough for twice the slowest latency
    threshold at the rate (so the pool is not what limits a passing step),
    at least surge run's default (100 ms of latency)."""
    thresholds_s = [o.value / 1e6 for o in slos if o.unit == "us" and o.op in ("<", "<=")]
    wanted = math.ceil(rate * 2 * max(thresholds_s, default=0.0))
    return max(default_max_connections(rate), min(wanted, 10_000))


# -- running one step --------------------------------------------------------------

def run_step(workload: Workload, slos, confidence: float, rate: float, warmup_s: int, step_s: int,
             extensions: int, judge: bool = True, progress=None) -> StepOutcome:
    """Run one step and judge it (RunError from the supervisor passes through)."""
    from surge.run.session import run_observed

    watch = StepWatch(slos, confidence, rate, warmup_s, step_s, extensions, judge=judge, progress=progress)
    result, interrupted = run_observed(workload, watch)
    if interrupted:
        raise KeyboardInterrupt
    return outcome_of(result, watch, rate)


def outcome_of(result: dict, watch: StepWatch, rate: float) -> StepOutcome:
    """The step's verdict (the watcher's, else judged on the final result) and numbers."""
    slos = watch.slos
    duration_s = float(result["totals"].get("duration_s", 0.0))
    base = watch.base if watch.base is not None else slo_mod.Reading.empty(slos)
    window = slo_mod.Reading.of(slos, result, duration_s).minus(base)
    if watch.decision is not None and watch.decided_on is not None:
        window = watch.decided_on       # the numbers shown are those the verdict was made on
    judged = [slo_mod.judge(o, p, window.at_s, watch.confidence, window.dropped) for o, p in zip(slos, window.parts)]
    if watch.decision is not None:
        verdict, index, reason = watch.decision
    elif watch.judging:
        verdict, index = stats.combine([j["verdict"] for j in judged])
        reason = f"{verdict} after {window.at_s:.0f}s measured"
        if verdict == stats.INCONCLUSIVE:
            reason += " (the run ended before a decision): counted as a fail"
    else:
        verdict, index, reason = "measured", None, f"{window.at_s:.0f}s measured"
    totals_part = window.total
    buckets = slo_mod.sorted_buckets(totals_part)
    percentiles = {name: stats.quantile_value_of_buckets(buckets, q)
                   for name, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))}
    window_s = max(window.at_s, 1e-9)
    errors = totals_part.failed / totals_part.attempts if totals_part.attempts else 0.0
    return StepOutcome(rate=rate, verdict=verdict, deciding_slo=slos[index].text if index is not None else None,
                       reason=reason, slos=judged, achieved_rate=totals_part.requests / window_s,
                       percentiles_us=percentiles, error_rate=errors, window_s=window.at_s,
                       guard=guard(result, window, watch.warmup_s, open_model=watch.judging),
                       extensions=watch.checkpoint - 1, result=result)


def guard(result: dict, window: slo_mod.Reading, warmup_s: int, open_model: bool = True) -> dict:
    """Did surge deliver the load? sent >= 99% of due, nothing dropped for lack
    of a connection, no worker's CPU saturated (median of its measured seconds)."""
    from surge.report.numbers import client_cpu_by_worker

    points = [p for p in result.get("timeseries") or [] if p.get("t", 0) > warmup_s]
    cpu = client_cpu_by_worker({"timeseries": points})
    busiest = max(cpu.values(), default=0.0)
    queued = int(result["totals"].get("queued_at_stop", 0) or 0)
    due = window.due
    sent_fraction = (due - window.dropped - queued) / due if due > 0 else 1.0
    problems = []
    if busiest >= SATURATED_CPU:
        problems.append(f"a client worker's CPU was saturated ({busiest * 100:.0f}% of a core)")
    if open_model and window.dropped > 0:
        problems.append(f"{window.dropped:,} requests dropped for lack of a free connection")
    if open_model and sent_fraction < SENT_OF_DUE:
        problems.append(f"sent {sent_fraction * 100:.1f}% of the requests due (at least {SENT_OF_DUE * 100:.0f}%)")
    return {"ok": not problems, "sent_fraction": sent_fraction, "dropped": window.dropped,
            "busiest_cpu": busiest, "cpu_saturated": busiest >= SATURATED_CPU,
            "problem": "; ".join(problems) or None}


def progress_printer(stream=sys.stderr, label: str = "", total_s: float = 0.0, deadline: float | None = None):
    """A live line per second on a terminal (step, rate, second, running verdict, time left)."""
    if not stream.isatty():
        return None

    def show(k: int, watch: StepWatch) -> None:
        left = f", {max(0.0, deadline - time.monotonic()) / 60:.1f} min left" if deadline else ""
        stream.write(f"\r  {label}: {k}s/{total_s:.0f}s, verdict so far {watch.verdict_so_far}{left}   ")
        stream.flush()

    return show
