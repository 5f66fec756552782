"""The search's bracket logic, driven by a fake step function (no server)."""
from dataclasses import dataclass, field

import pytest

from surge.capacity.search import SearchSettings, search, sweep


@dataclass
class FakeStep:
    rate: float
    verdict: str
    guard: dict = field(default_factory=lambda: {"ok": True})
    deciding_slo: str | None = None

    @property
    def generator_limited(self):
        return not self.guard["ok"]


def system(capacity, generator_limit=None, inconclusive_near=0.0):
    """Steps of a target that passes up to `capacity` and a generator that fails above `generator_limit`."""
    def step(rate):
        guard = {"ok": generator_limit is None or rate <= generator_limit, "cpu_saturated": False}
        if inconclusive_near and abs(rate - capacity) <= inconclusive_near:
            return FakeStep(rate, "inconclusive", guard, "p99 < 50ms")
        return FakeStep(rate, "pass" if rate <= capacity else "fail", guard,
                        None if rate <= capacity else "p99 < 50ms")
    return step


def test_grows_then_bisects_to_the_precision():
    outcome = search(system(2000), SearchSettings(start=100, growth=2, precision=0.02))
    rates = [s.rate for s in outcome.steps]
    assert rates[:6] == [100, 200, 400, 800, 1600, 3200]
    lo, hi = outcome.bracket
    assert outcome.limited_by == "slo" and outcome.max_rate == lo
    assert lo <= 2000 < hi and hi - lo <= 0.02 * lo
    assert outcome.deciding_slo == "p99 < 50ms"


def test_an_inconclusive_step_counts_as_a_fail():
    outcome = search(system(1000, inconclusive_near=30), SearchSettings(start=100, precision=0.01))
    assert outcome.max_rate < 970


def test_a_failing_first_step_is_failed_at_start():
    outcome = search(system(50), SearchSettings(start=100))
    assert outcome.failed_at_start and outcome.max_rate is None and len(outcome.steps) == 1


def test_the_generator_guard_failing_before_the_slo_ends_with_a_lower_bound():
    outcome = search(system(10_000, generator_limit=1000), SearchSettings(start=100))
    assert outcome.limited_by == "generator"
    assert outcome.max_rate == 800 and outcome.bracket == (800, None)


def test_a_saturated_client_is_blamed_even_when_the_slo_fails():
    def step(rate):
        saturated = rate >= 400
        return FakeStep(rate, "fail" if saturated else "pass", {"ok": not saturated, "cpu_saturated": saturated})
    outcome = search(step, SearchSettings(start=100))
    assert outcome.limited_by == "generator" and outcome.max_rate == 200


def test_the_cap_ends_the_search_as_range():
    outcome = search(system(10_000), SearchSettings(start=100, to=1000))
    assert [s.rate for s in outcome.steps] == [100, 200, 400, 800, 1000]
    assert outcome.limited_by == "range" and outcome.max_rate == 1000


def test_max_time_stops_the_search_with_the_bracket_so_far():
    now = [0.0]

    def step(rate):
        now[0] += 25.0
        return system(2000)(rate)
    outcome = search(step, SearchSettings(start=100, max_time_s=100, step_cost_s=25), clock=lambda: now[0])
    assert outcome.limited_by == "time" and len(outcome.steps) == 4 and outcome.max_rate == 800


def test_the_sweep_runs_each_concurrency_until_the_time_is_up():
    now = [0.0]

    def step(users):
        now[0] += 10.0
        return users
    assert sweep(step, [1, 2, 4, 8], max_time_s=25, step_cost_s=10, clock=lambda: now[0]) == ([1, 2], True)
    assert sweep(lambda n: n, [1, 2, 4], max_time_s=100, step_cost_s=10) == ([1, 2, 4], False)
