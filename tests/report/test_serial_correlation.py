"""`surge compare` tests per-interval samples that are correlated in time (a slow
stretch of a run is slow for many seconds).  Counted as independent, two runs of
one configuration differ "significantly" far more often than alpha; the
variance widened by the samples' own lag-1 correlation brings that back near
alpha and keeps a real shift detectable.  Seeded series: the rates are fixed."""
import numpy as np
import pytest

from surge.report.significance import mann_whitney_u, serial_inflation, smallest_p_of

ALPHA = 0.05
PAIRS = 400


def ar1(rng, n: int, rho: float, shift: float = 0.0) -> np.ndarray:
    """An AR(1) series of unit variance: each sample rho times the last plus noise."""
    x = np.empty(n)
    x[0] = rng.normal()
    for t in range(1, n):
        x[t] = rho * x[t - 1] + np.sqrt(1 - rho * rho) * rng.normal()
    return x + shift


def false_alarm_rates(rho: float, n: int = 40) -> tuple[float, float]:
    """(share of same-distribution pairs called significant as if independent, ... widened)."""
    rng = np.random.default_rng(7)
    raw = widened = 0
    for _ in range(PAIRS):
        a, b = ar1(rng, n, rho), ar1(rng, n, rho)
        raw += mann_whitney_u(a, b)[1] < ALPHA
        widened += mann_whitney_u(a, b, serial_inflation(a, b))[1] < ALPHA
    return raw / PAIRS, widened / PAIRS


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_correlated_samples_of_one_configuration_rarely_differ(rho):
    raw, widened = false_alarm_rates(rho)
    assert raw > 4 * ALPHA                  # the defect: independence assumed
    assert widened <= 2 * ALPHA             # near alpha once widened (0.08 here for 40 a side)


def test_independent_samples_are_left_as_they_are():
    raw, widened = false_alarm_rates(0.0)
    assert raw <= 2 * ALPHA and widened <= raw
    rng = np.random.default_rng(3)
    assert serial_inflation(rng.normal(size=40), rng.normal(size=40)) < 1.5


def test_a_shift_between_runs_is_not_correlation():
    """Each side's ranks are taken about its own mean: two flat runs far apart are
    independent samples, and their difference is as significant as ever."""
    rng = np.random.default_rng(5)
    base, current = rng.normal(size=30), rng.normal(size=30) + 5.0
    factor = serial_inflation(base, current)
    assert factor < 1.5
    assert mann_whitney_u(base, current, factor)[1] < 1e-6


def test_a_real_shift_in_correlated_runs_is_still_found():
    rng = np.random.default_rng(11)
    found = sum(mann_whitney_u(a, b, serial_inflation(a, b))[1] < ALPHA
                for a, b in ((ar1(rng, 40, 0.5), ar1(rng, 40, 0.5, 1.5)) for _ in range(100)))
    assert found >= 80


def test_the_floor_uses_the_observed_inflation():
    """The sorted split bounds U; sorted values are 'correlated' by construction,
    so the floor takes the observed samples' factor instead of its own."""
    base, current = [1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]
    assert smallest_p_of(base, current, 4.0) > smallest_p_of(base, current)
    assert smallest_p_of(base, current, 4.0) == pytest.approx(mann_whitney_u(base, current, 4.0)[1])


def test_short_or_constant_samples_count_as_independent():
    assert serial_inflation([1, 2, 3, 4, 5, 6, 7, 8, 9], list(range(10, 19))) == 1.0    # 9 a side: too few
    assert serial_inflation([2.0] * 10, [2.0] * 10) == 1.0
