"""The statistics behind `surge compare`: the Mann–Whitney U test, Holm's
step-down adjustment, and how small a p-value given sample sizes can reach at
all (the gate's power floor), so a comparison that cannot show significance
says so instead of reading as "no significant change"."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


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


def smallest_p_of(x, y) -> float:
    """The smallest two-sided p `mann_whitney_u` could give for these pooled values
    split into sides of len(x) and len(y): the variance depends only on the pooled
    values' ties, so p is smallest where U is farthest from its mean, which is the
    sorted split (the n1 smallest on one side, or the n1 largest). Under the null
    the pooled values say nothing about the difference, so a test that cannot get
    below alpha even then can be left out of Holm's family without spending alpha.
    tests/report/test_gate_power.py checks this against every split of small samples."""
    pooled = sorted([float(v) for v in x] + [float(v) for v in y])
    n1 = len(x)
    if n1 == 0 or len(y) == 0:
        return 1.0
    return min(mann_whitney_u(pooled[:n1], pooled[n1:])[1], mann_whitney_u(pooled[-n1:], pooled[:-n1])[1])


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
