"""The capacity search (open model) and the closed-model sweep, as drivers
over a step function, so the bracket logic is tested without a server.

Open model: steps at constant rates from `start`, multiplied by `growth`
while every SLO passes, then bisection between the highest pass and the
lowest fail until (fail - pass) <= precision * pass. An inconclusive step was
already extended by the runner and counts as a fail here. The search stops:

- "slo": bracketed to the precision (the answer: the highest passing rate);
- "generator": a step's generator guard failed while its SLOs did not:
  surge could not deliver the load, so the answer is a lower bound only;
- "range": the cap (`to`) passed;
- "time": --max-time left no room for another step (the bracket so far).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from surge.capacity.stats import PASS


@dataclass
class SearchSettings:
    start: float = 100.0
    growth: float = 2.0
    precision: float = 0.02
    to: float | None = None
    max_time_s: float = 600.0
    step_cost_s: float = 25.0           # warm-up + step: a step is not started without this much time left


@dataclass
class SearchOutcome:
    steps: list = field(default_factory=list)       # StepOutcome, in the order run
    max_rate: float | None = None                   # the highest passing rate (None: none passed)
    bracket: tuple[float, float | None] = (0.0, None)
    limited_by: str = "slo"                         # slo | generator | range | time
    deciding_slo: str | None = None                 # the SLO that failed first above max_rate
    failed_at_start: bool = False


def counts_as_pass(step) -> bool:
    return step.verdict == PASS


def search(run_step: Callable[[float], object], settings: SearchSettings,
           clock: Callable[[], float] = time.monotonic) -> SearchOutcome:
    """Drive run_step(rate) -> StepOutcome (with .verdict, .generator_limited,
    .deciding_slo) through the growth and bisection phases."""
    out = SearchOutcome()
    deadline = clock() + settings.max_time_s
    passed, failed = None, None
    rate = settings.start

    def time_left() -> bool:
        return deadline - clock() >= settings.step_cost_s or not out.steps

    def record(step) -> str:
        out.steps.append(step)
        # a guard that fails where the SLOs pass is the generator's limit; a
        # saturated client also makes a failing latency untrustworthy
        if step.generator_limited and (step.verdict == PASS or step.guard.get("cpu_saturated")):
            return "generator"
        return "pass" if step.verdict == PASS else "fail"

    # growth
    while True:
        if not time_left():
            out.limited_by = "time"
            break
        seen = record(run_step(rate))
        if seen == "generator":
            out.limited_by = "generator"
            break
        if seen == "pass":
            passed = rate
            if settings.to is not None and rate >= settings.to:
                out.limited_by = "range"
                break
            rate = rate * settings.growth
            if settings.to is not None:
                rate = min(rate, settings.to)
            continue
        failed = rate
        out.deciding_slo = out.steps[-1].deciding_slo
        break

    # bisection
    while out.limited_by == "slo" and passed is not None and failed is not None \
            and failed - passed > settings.precision * passed:
        if not time_left():
            out.limited_by = "time"
            break
        rate = round((passed + failed) / 2, 3)
        seen = record(run_step(rate))
        if seen == "generator":
            out.limited_by = "generator"
            break
        if seen == "pass":
            passed = rate
        else:
            failed = rate
            out.deciding_slo = out.steps[-1].deciding_slo

    out.failed_at_start = passed is None and out.limited_by in ("slo", "time") and failed is not None
    out.max_rate = passed
    if out.limited_by == "generator":
        # the guard failed at the last step: the target took at least the last passing rate
        out.bracket = (passed or 0.0, None)
    else:
        out.bracket = (passed or 0.0, failed)
    return out


def sweep(run_step: Callable[[int], object], concurrencies: list[int], max_time_s: float,
          step_cost_s: float, clock: Callable[[], float] = time.monotonic) -> tuple[list, bool]:
    """The closed-model sweep: run_step(N) for each N in order; (steps, cut short by --max-time)."""
    deadline = clock() + max_time_s
    steps = []
    for users in concurrencies:
        if steps and deadline - clock() < step_cost_s:
            return steps, True
        steps.append(run_step(users))
    return steps, False
