"""The statistics of a capacity step, as pure functions.

- `quantile_rank_interval(n, p, confidence)`: the distribution-free confidence
  interval of the p-quantile as two order-statistic ranks. If B is the number
  of the n observations below the true quantile, B ~ Binomial(n, p) whatever
  the distribution (continuous), and P(X(l) <= q_p <= X(u)) >= F(u-1) - F(l-1)
  with F the binomial CDF. l is the largest rank with F(l-1) <= alpha/2, u the
  smallest with F(u-1) >= 1 - alpha/2: each tail holds at most alpha/2, so the
  coverage is at least the confidence (conservative, equal-tailed).
- `quantile_interval(histogram, p, confidence)`: those ranks mapped to values
  of an HDR histogram: the lower end is the lowest value of the bucket that
  holds rank l, the upper end the highest value equivalent to the bucket that
  holds rank u, so the bucketing widens the interval and never narrows it.
  None for an end that n observations cannot give (too few for the tail).
- `wilson_interval(k, n, confidence)`: the Wilson score interval of a proportion
  (error rates, check rates).
- `verdict(passes, low, high)`: "pass" when the whole interval meets the SLO,
  "fail" when none of it does, else "inconclusive".

No scipy: the binomial CDF is summed in log space from a ratio recurrence
(numpy), exact to floating-point rounding; beyond 40 standard deviations of
the mean the mass left out is below 1e-300.
"""
from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
_TAIL_SDS = 40.0            # the binomial window summed: the rest is far below double precision


def binomial_cdf(n: int, p: float) -> tuple[int, np.ndarray]:
    """(k0, cdf) with cdf[i] = P(B <= k0 + i) for B ~ Binomial(n, p), over the
    window of k where the CDF is neither 0 nor 1 to double precision (below k0
    it is 0, past the end it is 1)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    mean, sd = n * p, math.sqrt(n * p * (1.0 - p))
    k0 = max(0, int(math.floor(mean - _TAIL_SDS * sd - 50)))
    k1 = min(n, int(math.ceil(mean + _TAIL_SDS * sd + 50)))
    k = np.arange(k0, k1 + 1, dtype=np.float64)
    # log pmf(k0) exactly, then pmf(k+1) / pmf(k) = (n - k) / (k + 1) * p / (1 - p)
    log_first = (math.lgamma(n + 1) - math.lgamma(k0 + 1) - math.lgamma(n - k0 + 1)
                 + k0 * math.log(p) + (n - k0) * math.log1p(-p))
    log_ratio = np.log((n - k[:-1]) / (k[:-1] + 1)) + (math.log(p) - math.log1p(-p))
    log_pmf = np.concatenate(([log_first], log_first + np.cumsum(log_ratio)))
    return k0, np.minimum(np.cumsum(np.exp(log_pmf)), 1.0)


def quantile_rank_interval(n: int, p: float, confidence: float) -> tuple[int, int]:
    """1-based ranks (l, u) of the order statistics that bracket the p-quantile
    (p in (0, 1)) with at least `confidence`; l = 0 means no lower bound,
    u = n + 1 no upper bound (too few observations for that tail)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n == 0:
        return 0, 1
    alpha = 1.0 - confidence
    k0, cdf = binomial_cdf(n, p)
    # l - 1 = the largest k with F(k) <= alpha/2 (F(-1) = 0: l = 0 when F(0) > alpha/2)
    below = np.nonzero(cdf <= alpha / 2)[0]
    lower_rank = (k0 + int(below[-1]) + 1) if below.size else k0
    # u - 1 = the smallest k with F(k) >= 1 - alpha/2 (F(n) = 1)
    above = np.nonzero(cdf >= 1.0 - alpha / 2)[0]
    upper_rank = (k0 + int(above[0]) + 1) if above.size else (k0 + len(cdf))
    return lower_rank, min(upper_rank, n + 1)


def interval_coverage(n: int, p: float, lower_rank: int, upper_rank: int) -> float:
    """P(X(l) <= q_p <= X(u)) = F(u-1) - F(l-1) for a continuous distribution
    (rank 0 and n+1 stand for minus and plus infinity)."""
    k0, cdf = binomial_cdf(n, p)

    def F(k: int) -> float:
        if k < k0:
            return 0.0
        if k - k0 >= len(cdf):
            return 1.0
        return float(cdf[k - k0])

    return F(upper_rank - 1) - F(lower_rank - 1)


def rank_values(buckets, ranks: list[int]) -> list[tuple[int, int] | None]:
    """(lowest, highest equivalent) value of the bucket holding each 1-based
    rank, from (low, high, count) buckets in increasing order (an HDR
    histogram's iter_recorded()); None for a rank outside 1..n."""
    wanted = sorted((r, i) for i, r in enumerate(ranks))
    found: list[tuple[int, int] | None] = [None] * len(ranks)
    cumulative, w = 0, 0
    while w < len(wanted) and wanted[w][0] < 1:
        w += 1
    for low, high, count in buckets:
        cumulative += count
        while w < len(wanted) and wanted[w][0] <= cumulative:
            found[wanted[w][1]] = (low, high)
            w += 1
        if w == len(wanted):
            break
    return found


def quantile_interval_of_buckets(buckets, p: float, confidence: float) -> tuple[float | None, float | None]:
    """The confidence interval of the p-quantile (p in (0, 1)) of what the
    (low, high, count) buckets hold; None for an end the sample cannot give."""
    buckets = list(buckets)
    n = sum(count for _, _, count in buckets)
    lower_rank, upper_rank = quantile_rank_interval(n, p, confidence)
    low_bucket, high_bucket = rank_values(buckets, [lower_rank, upper_rank])
    low = float(low_bucket[0]) if low_bucket is not None else None
    high = float(high_bucket[1]) if high_bucket is not None else None
    return low, high


def quantile_interval(histogram, p: float, confidence: float) -> tuple[float | None, float | None]:
    """quantile_interval_of_buckets of an HDR histogram, in its units."""
    return quantile_interval_of_buckets(histogram.iter_recorded(), p, confidence)


def quantile_value_of_buckets(buckets, p: float) -> float | None:
    """The p-quantile as surge's reports give it: the highest value equivalent
    to the bucket of rank round(p * n) (at least 1); None when empty."""
    buckets = list(buckets)
    n = sum(count for _, _, count in buckets)
    if not n:
        return None
    found = rank_values(buckets, [max(int(p * n + 0.5), 1)])[0]
    return float(found[1]) if found else None


def wilson_interval(k: int, n: int, confidence: float) -> tuple[float, float]:
    """The Wilson score interval of a proportion k / n ((0, 1) when n is 0)."""
    if n <= 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2)
    phat = k / n
    denominator = 1.0 + z * z / n
    center = (phat + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(phat * (1.0 - phat) / n + z * z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def verdict(passes, low: float | None, high: float | None) -> str:
    """pass / fail / inconclusive of an SLO whose measure lies in [low, high]
    (None: unbounded on that side). `passes(value)` is the SLO's comparison,
    monotone in the value, so the interval's two ends decide."""
    ends = [passes(low if low is not None else -math.inf), passes(high if high is not None else math.inf)]
    if all(ends):
        return PASS
    if not any(ends):
        return FAIL
    return INCONCLUSIVE


def combine(verdicts: list[str]) -> tuple[str, int | None]:
    """A step's verdict from its SLOs' (any fail fails it; all pass passes it)
    and the index of the SLO that decided it (None when all passed)."""
    for wanted in (FAIL, INCONCLUSIVE):
        if wanted in verdicts:
            return wanted, verdicts.index(wanted)
    return PASS, None
