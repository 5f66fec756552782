"""The statistics behind `surge compare`: the Mann–Whitney U test, Holm's
step-down adjustment, how much serial correlation widens the test's variance,
and how small a p-value given sample sizes can reach at all (the gate's power
floor), so a comparison that cannot show significance says so instead of
reading as "no significant change"."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


# Above this lag-1 correlation the variance factor (1 + r) / (1 - r) explodes on
# estimates from a few dozen samples; 0.9 already counts 19 samples as one.
MAX_SERIAL_CORRELATION = 0.9
# Fewer samples a side than this say next to nothing about their correlation
# (the estimate's spread is about 1/sqrt(n), its bias correction (1 + 3r)/n):
# such short runs are left to the power floor, which already calls them inconclusive.
MIN_SAMPLES_FOR_CORRELATION = 10


def _average_ranks(combined: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each value's average rank, the tie counts): equal values share the mean of the ranks they span."""
    _values, inverse, counts = np.unique(combined, return_inverse=True, return_counts=True)
    mean_rank = np.cumsum(counts) - (counts - 1) / 2.0
    return mean_rank[inverse], counts


def _lag1(ranks: np.ndarray) -> tuple[float, float]:
    """(sum of lag-1 products, sum of squares) of one side's ranks about their own mean."""
    centred = ranks - ranks.mean()
    return float((centred[:-1] * centred[1:]).sum()), float((centred * centred).sum())


def serial_inflation(x, y) -> float:
    """How much the rank sum's variance grows because each side's samples, in time
    order, are correlated with their neighbours (a slow stretch of a run is slow
    for many seconds): (1 + r) / (1 - r) for the pooled lag-1 correlation r of the
    ranks, each side about its own mean (a shift between the runs is not
    correlation).  That is the variance factor of a mean of an AR(1) series; the
    test then counts n / factor effective samples a side.  1.0 (independent)
    when r <= 0 or a side has fewer than MIN_SAMPLES_FOR_CORRELATION samples."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) < MIN_SAMPLES_FOR_CORRELATION or len(y) < MIN_SAMPLES_FOR_CORRELATION:
        return 1.0
    ranks, _counts = _average_ranks(np.concatenate([x, y]))
    lag_x, square_x = _lag1(ranks[:len(x)])
    lag_y, square_y = _lag1(ranks[len(x):])
    if square_x + square_y == 0:
        return 1.0
    r = (lag_x + lag_y) / (square_x + square_y)
    # The lag-1 estimate about a sample's own mean falls short of the true
    # correlation by about (1 + 3r) / n (Marriott and Pope, 1954): added back, or
    # a few dozen samples keep a false-alarm rate of twice alpha.
    r = min(MAX_SERIAL_CORRELATION, r + (1.0 + 3.0 * r) / ((len(x) + len(y)) / 2.0))
    return 1.0 if r <= 0 else (1.0 + r) / (1.0 - r)


def mann_whitney_u(x, y, inflation: float = 1.0) -> tuple[float, float]:
    """(U of x, two-sided p) by the normal approximation with tie and continuity
    corrections; `inflation` (serial_inflation) widens the variance for samples
    that are not independent."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        return float("nan"), 1.0
    combined = np.concatenate([x, y])
    n = n1 + n2
    ranks, counts = _average_ranks(combined)
    u1 = ranks[:n1].sum() - n1 * (n1 + 1) / 2.0
    mean_u = n1 * n2 / 2.0
    tie_term = float((counts.astype(float) ** 3 - counts).sum()) / (n * (n - 1)) if n > 1 else 0.0
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term) * inflation
    if variance <= 0:                       # every value equal: no evidence of a difference
        return float(u1), 1.0
    z = (abs(u1 - mean_u) - 0.5) / math.sqrt(variance)
    z = max(z, 0.0)
    return float(u1), math.erfc(z / math.sqrt(2.0))


def smallest_p_of(x, y, inflation: float = 1.0) -> float:
    """The smallest two-sided p `mann_whitney_u` could give for these pooled values
    split into sides of len(x) and len(y): the variance depends only on the pooled
    values' ties, so p is smallest where U is farthest from its mean, which is the
    sorted split (the n1 smallest on one side, or the n1 largest). Under the null
    the pooled values say nothing about the difference, so a test that cannot get
    below alpha even then can be left out of Holm's family without spending alpha.
    tests/report/test_gate_power.py checks this against every split of small samples.
    `inflation` is the observed samples' (serial_inflation): the sorted split is a
    bound on U, not a series whose correlation means anything."""
    pooled = sorted([float(v) for v in x] + [float(v) for v in y])
    n1 = len(x)
    if n1 == 0 or len(y) == 0:
        return 1.0
    return min(mann_whitney_u(pooled[:n1], pooled[n1:], inflation)[1],
               mann_whitney_u(pooled[-n1:], pooled[:-n1], inflation)[1])


@lru_cache(maxsize=4096)
def smallest_p(n1: int, n2: int) -> float:
    """The smallest p for n1 and n2 distinct values (no ties, fully separated):
    what per-interval rates and latencies, which hardly ever tie, can reach."""
    if n1 < 1 or n2 < 1:
        return 1.0
    return mann_whitney_u(list(range(n1)), list(range(n1, n1 + n2)))[1]


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


def samples_needed(metrics: int, alpha: float, limit: int = 100_000) -> int | None:
    """The fewest distinct samples per side (equal sizes) for which the smallest
    p, Holm-adjusted as the first of `metrics` tests, is below `alpha`: a floor
    only (a change whose samples overlap needs more); None past `limit`."""
    n = 2
    while n <= limit:
        if metrics * smallest_p(n, n) < alpha:
            return n
        n += 1
    return None
