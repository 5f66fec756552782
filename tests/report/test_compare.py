"""Baseline comparison: the Mann–Whitney U test, and the gate's error rates on seeded data."""
import itertools
import math

import numpy as np
import pytest

from surge.report.compare import compare, mann_whitney_u
from tests.report.synthetic import make_result


# ---- the test itself ------------------------------------------------------------------------
def u_by_counting(x, y):
    """U of x by its definition: pairs where x wins, ties counting one half."""
    return sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in x for b in y)


@pytest.mark.parametrize("seed", range(5))
def test_u_equals_its_definition_with_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 8, 15)          # few distinct values: many ties
    y = rng.integers(0, 10, 12)
    u, p = mann_whitney_u(x, y)
    assert u == u_by_counting(x, y)
    assert 0.0 <= p <= 1.0


def exact_p(x, y):
    """Two-sided p from every split of the pooled sample (the permutation distribution)."""
    pooled = list(x) + list(y)
    n1 = len(x)
    mean_u = len(x) * len(y) / 2
    observed = abs(u_by_counting(x, y) - mean_u)
    extreme = total = 0
    for chosen in itertools.combinations(range(len(pooled)), n1):
        a = [pooled[i] for i in chosen]
        b = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        total += 1
        extreme += abs(u_by_counting(a, b) - mean_u) >= observed - 1e-9
    return extreme / total


@pytest.mark.parametrize("x, y", [
    ([1.1, 2.3, 3.0, 4.8, 5.2, 6.1, 7.7], [3.3, 5.5, 6.6, 7.9, 8.1, 9.4, 9.9]),
    ([1, 2, 2, 3, 3, 3, 4], [2, 3, 4, 4, 5, 5, 6]),                  # with ties
    ([10, 11, 12, 13, 14, 15, 16], [1, 2, 3, 4, 5, 6, 7]),            # fully separated
])
def test_p_close_to_the_exact_permutation_p(x, y):
    _, p = mann_whitney_u(x, y)
    assert p == pytest.approx(exact_p(x, y), abs=0.02)


def test_identical_samples_are_not_significant():
    assert mann_whitney_u([5] * 10, [5] * 10)[1] == 1.0
    assert mann_whitney_u([1, 2, 3], [1, 2, 3])[1] > 0.5


def test_p_shrinks_with_separation():
    rng = np.random.default_rng(0)
    base = rng.normal(100, 5, 30)
    assert mann_whitney_u(base, base + 10)[1] < 1e-6
    assert mann_whitney_u(base, base + 0.1)[1] > 0.5


# ---- the gate on seeded runs ----------------------------------------------------------------
def seeded_run(seed, slowdown=1.0):
    """A 30-second closed-model run; each run also gets its own level (run-to-run drift ~1%)."""
    rng = np.random.default_rng(10_000 + seed)
    return make_result(30, seed=seed, model="closed", rate=3000 * rng.normal(1, 0.01),
                       median_us=2000 * rng.normal(1, 0.01), slowdown=slowdown, objectives=False)


def test_same_configuration_passes_the_gate_in_19_of_20():
    # Each seeded run has its own ~1% level, so a change within the 5% bound may
    # well be significant (and is said so); it must not be beyond the bound.
    verdicts = [compare(seeded_run(2 * s), seeded_run(2 * s + 1)).verdict for s in range(20)]
    assert sum(v in ("no significant change", "change within bound") for v in verdicts) >= 19, verdicts


def test_ten_percent_slower_target_is_caught_in_19_of_20():
    caught = 0
    for s in range(20):
        comparison = compare(seeded_run(2 * s), seeded_run(2 * s + 1, slowdown=1.10))
        caught += comparison.verdict == "regression"
    assert caught >= 19


def test_a_faster_target_is_an_improvement_not_a_regression():
    comparison = compare(seeded_run(1), seeded_run(2, slowdown=0.85))
    assert comparison.verdict == "improvement" and not comparison.regressions


def test_significant_but_within_the_bound_passes():
    comparison = compare(seeded_run(1), seeded_run(2, slowdown=1.03), max_regression=0.10)
    p50 = next(m for m in comparison.metrics if m.scope == "run" and m.name == "p50")
    assert p50.significant and not p50.regression
    assert comparison.verdict != "regression"


def test_errors_appearing_are_a_regression():
    baseline = make_result(20, seed=1, model="closed", error_every=0)
    current = make_result(20, seed=2, model="closed", error_every=1)
    for point in current["timeseries"]:
        point["errors"] = point["requests"] // 20               # 5% of attempts fail
    current["totals"]["errors"] = {"timeout": sum(p["errors"] for p in current["timeseries"])}
    comparison = compare(baseline, current)
    error_rate = next(m for m in comparison.metrics if m.scope == "run" and m.name == "error rate")
    assert error_rate.baseline == 0 and math.isinf(error_rate.change) and error_rate.regression


def test_too_few_seconds_cannot_fail_and_say_so():
    comparison = compare(make_result(3, seed=1, model="closed"), make_result(3, seed=2, model="closed", slowdown=2))
    assert not any(m.significant for m in comparison.metrics)
    assert comparison.verdict == "inconclusive"
    text = comparison.render()
    assert "INCONCLUSIVE: cannot test: 3 and 3 one-second samples" in text
    assert "no significant change" not in text


def test_steps_are_compared_by_name():
    comparison = compare(seeded_run(1), seeded_run(2, slowdown=1.2))
    scopes = {m.scope for m in comparison.metrics}
    assert scopes == {"run", "warm", "peak"}
    peak_p99 = next(m for m in comparison.metrics if m.scope == "peak" and m.name == "p99")
    assert peak_p99.regression


def test_rendering_shows_both_runs_and_the_change():
    baseline, current = seeded_run(1), seeded_run(2, slowdown=1.10)
    text = compare(baseline, current, baseline_name="base.json", current_name="cur.json").render()
    assert "base.json" in text and "cur.json" in text
    for name in ("requests/s", "p50", "p90", "p99", "p99.9", "error rate", "step warm", "step peak"):
        assert name in text
    assert "REGRESSION beyond 5%" in text
    from surge.report.numbers import format_rate
    assert format_rate(baseline['totals']['rps']) in text


def test_configuration_differences_are_noted():
    baseline, current = seeded_run(1), seeded_run(2)
    current["config"]["connections"] = 128
    assert "connections 64 -> 128" in compare(baseline, current).render()


def test_real_staged_runs_compare_per_step(surge_server):
    from tests.helpers import run_surge_together
    # Both runs at once, each against its own server: only the comparison's rows
    # (matched by stage) are asserted, not how the two runs' numbers differ.
    runs = run_surge_together(*[["run", surge_server().url, "--stages", "1s:2,1s:4", "-w", "1", "-q"]
                                for _ in range(2)])
    assert all(r.code == 0 for r in runs), [r.stderr for r in runs]
    comparison = compare(runs[0].result, runs[1].result)
    assert {m.scope for m in comparison.metrics} == {"run", "1: 0->2 over 1s", "2: 2->4 over 1s"}
    assert "step 2: 2->4 over 1s" in comparison.render()
