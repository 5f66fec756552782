"""The capacity step's statistics against exact binomial sums and simulated data.

The quantile interval is distribution-free: its coverage is a binomial sum,
computed here exactly with fractions for small n, and checked on simulated
samples with known quantiles (recorded into surge's own HDR histogram, whose
bucketing may only widen the interval)."""
import math
from fractions import Fraction

import numpy as np
import pytest

from surge.capacity import stats
from surge.core._histogram import Histogram


def exact_cdf(n: int, p: Fraction, k: int) -> Fraction:
    return sum((math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k + 1)), Fraction(0))


@pytest.mark.parametrize("n, p", [(1, "1/2"), (7, "9/10"), (50, "99/100"), (300, "1/2"), (300, "999/1000")])
def test_binomial_cdf_matches_the_exact_sum(n, p):
    k0, cdf = stats.binomial_cdf(n, float(Fraction(p)))
    for i, value in enumerate(cdf):
        assert value == pytest.approx(float(exact_cdf(n, Fraction(p), k0 + i)), rel=1e-9, abs=1e-12)  # absolute: a CDF


@pytest.mark.parametrize("n, p, confidence", [(20, "1/2", 0.95), (100, "9/10", 0.95), (500, "99/100", 0.95),
                                              (400, "19/20", 0.90), (1000, "1/2", 0.99)])
def test_rank_interval_covers_exactly_and_is_the_tightest_equal_tailed_one(n, p, confidence):
    q = Fraction(p)
    lower, upper = stats.quantile_rank_interval(n, float(q), confidence)
    alpha_half = Fraction(1 - confidence).limit_denominator(1000) / 2
    assert 1 <= lower < upper <= n
    # each tail holds at most alpha/2: P(B <= l-1) <= alpha/2 and P(B >= u) <= alpha/2
    assert exact_cdf(n, q, lower - 1) <= alpha_half
    assert 1 - exact_cdf(n, q, upper - 1) <= alpha_half
    # one rank tighter on either side would break that
    assert exact_cdf(n, q, lower) > alpha_half
    assert 1 - exact_cdf(n, q, upper - 2) > alpha_half
    coverage = exact_cdf(n, q, upper - 1) - exact_cdf(n, q, lower - 1)
    assert coverage >= Fraction(confidence).limit_denominator(1000)
    assert stats.interval_coverage(n, float(q), lower, upper) == pytest.approx(float(coverage), abs=1e-12)


def test_too_few_samples_give_no_upper_end_so_a_percentile_slo_is_inconclusive():
    lower, upper = stats.quantile_rank_interval(100, 0.99, 0.95)
    assert upper == 101                        # no order statistic is above the p99 with 97.5%
    histogram = Histogram()
    histogram.record_many(np.full(100, 1000, dtype=np.int64))
    low, high = stats.quantile_interval(histogram, 0.99, 0.95)
    assert high is None and low is not None
    assert stats.verdict(lambda v: v < 50_000, low, high) == stats.INCONCLUSIVE


def _coverage(draw, true_quantile, p, n, seeds=1000, confidence=0.95):
    covered = 0
    for seed in range(seeds):
        sample = draw(np.random.default_rng(seed), n)
        histogram = Histogram()
        histogram.record_many(np.maximum(sample, 1).astype(np.int64))
        low, high = stats.quantile_interval(histogram, p, confidence)
        covered += low is not None and high is not None and low <= true_quantile <= high
    return covered / seeds


@pytest.mark.parametrize("name, draw, quantile, p, n", [
    ("exponential p99", lambda rng, n: rng.exponential(10_000, n), -math.log(0.01) * 10_000, 0.99, 2000),
    ("lognormal p50", lambda rng, n: rng.lognormal(8, 1, n), math.exp(8), 0.50, 500),
    ("lognormal p99.9", lambda rng, n: rng.lognormal(8, 1, n), math.exp(8 + 1 * 3.090232306167813), 0.999, 20000),
])
def test_coverage_on_simulated_data_with_known_quantiles_is_at_least_93_percent(name, draw, quantile, p, n):
    coverage = _coverage(draw, quantile, p, n)
    assert coverage >= 0.93, f"{name}: {coverage:.3f}"
    assert coverage <= 0.995, f"{name}: {coverage:.3f} (an interval this wide says little)"


def test_wilson_interval_matches_its_formula_and_known_values():
    low, high = stats.wilson_interval(0, 100, 0.95)
    assert low == 0.0 and high == pytest.approx(0.03699, abs=1e-4)
    low, high = stats.wilson_interval(10, 100, 0.95)
    assert (low, high) == (pytest.approx(0.05523, abs=1e-4), pytest.approx(0.17437, abs=1e-4))
    assert stats.wilson_interval(0, 0, 0.95) == (0.0, 1.0)


def test_wilson_interval_covers_a_known_error_rate():
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(1000):
        failed = int(rng.binomial(2000, 0.01))
        low, high = stats.wilson_interval(failed, 2000, 0.95)
        covered += low <= 0.01 <= high
    assert covered >= 930


@pytest.mark.parametrize("low, high, expected", [
    (10.0, 40.0, "pass"), (60.0, 90.0, "fail"), (40.0, 60.0, "inconclusive"),
    (None, 40.0, "pass"), (60.0, None, "fail"), (10.0, None, "inconclusive")])
def test_verdict_is_pass_when_the_interval_is_under_the_threshold_fail_when_over(low, high, expected):
    assert stats.verdict(lambda value: value < 50.0, low, high) == expected


def test_a_step_fails_on_any_failing_slo_and_passes_only_when_all_pass():
    assert stats.combine(["pass", "pass"]) == ("pass", None)
    assert stats.combine(["pass", "inconclusive", "fail"]) == ("fail", 2)
    assert stats.combine(["inconclusive", "pass"]) == ("inconclusive", 0)
