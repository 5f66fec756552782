"""The Universal Scalability Law fitted to a closed-model sweep.

X(N) = lambda * N / (1 + sigma * (N - 1) + kappa * N * (N - 1))

lambda: throughput of one user without contention; sigma: contention (the
serial fraction, queueing for a shared resource); kappa: coherency (the
cost of keeping shared state consistent, which makes throughput fall past
a peak). Fitted by least squares on the measured throughputs: for fixed
(sigma, kappa) the best lambda is linear (sum X g / sum g^2, g the curve's
shape), so only the two shape parameters are searched: a log-spaced grid
over sigma in [0, 1] and kappa in [0, 1], then a finer grid around the best
point, four times, then Levenberg-Marquardt steps on all three (kept inside
the bounds). Bounded, no start values to guess, and no scipy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_GRID_POINTS = 121
_REFINE_ROUNDS = 4


@dataclass(frozen=True)
class UslFit:
    lam: float                      # req/s of one user, no contention
    sigma: float                    # contention
    kappa: float                    # coherency
    r2: float
    n_star: float | None            # the peak concurrency sqrt((1 - sigma) / kappa); None when kappa is 0
    x_max: float                    # X(N*), or lambda / sigma (the ceiling) when kappa is 0
    knee: float                     # x_max / lambda: where ideal linear scaling meets the peak
    limited_by: str                 # "contention" | "coherency" | "none" (linear within the range)

    def predict(self, n) -> np.ndarray:
        return usl(np.asarray(n, dtype=float), self.lam, self.sigma, self.kappa)

    def as_dict(self, points: list[dict]) -> dict:
        return {"lambda": self.lam, "sigma": self.sigma, "kappa": self.kappa, "n_star": self.n_star,
                "x_max": self.x_max, "knee": self.knee, "r2": self.r2, "limited_by": self.limited_by,
                "points": points}


def usl(n: np.ndarray, lam: float, sigma: float, kappa: float) -> np.ndarray:
    return lam * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))


def _shape(n: np.ndarray, sigma: np.ndarray, kappa: np.ndarray) -> np.ndarray:
    """g(N) for every (sigma, kappa) pair: arrays broadcast to (..., len(n))."""
    return n / (1.0 + sigma[..., None] * (n - 1.0) + kappa[..., None] * n * (n - 1.0))


def _best_on_grid(n, x, sigmas, kappas):
    s, k = np.meshgrid(sigmas, kappas, indexing="ij")
    g = _shape(n, s, k)
    lam = (g * x).sum(-1) / np.maximum((g * g).sum(-1), 1e-300)
    sse = ((lam[..., None] * g - x) ** 2).sum(-1)
    i, j = np.unravel_index(np.argmin(sse), sse.shape)
    return float(sigmas[i]), float(kappas[j]), float(lam[i, j]), float(sse[i, j])


def _around(values: np.ndarray, best: float, low: float, high: float) -> np.ndarray:
    """A finer grid between best's neighbours on the coarser one."""
    index = int(np.argmin(np.abs(values - best)))
    lo = values[max(index - 1, 0)]
    hi = values[min(index + 1, len(values) - 1)]
    return np.unique(np.clip(np.linspace(lo, hi, _GRID_POINTS), low, high))


def _polish(n, x, lam, sigma, kappa, sse, iterations: int = 60):
    """Levenberg-Marquardt on (lambda, sigma, kappa) from the grid's best,
    each step clipped to lambda > 0, 0 <= sigma <= 1, kappa >= 0."""
    params = np.array([lam, sigma, kappa])
    damping = 1e-3

    def residual(q):
        return usl(n, *q) - x

    for _ in range(iterations):
        r = residual(params)
        steps = np.maximum(np.abs(params) * 1e-6, np.array([1e-6, 1e-9, 1e-12]))
        jacobian = np.stack([(residual(params + np.eye(3)[i] * steps[i]) - r) / steps[i] for i in range(3)], 1)
        normal = jacobian.T @ jacobian
        gradient = jacobian.T @ r
        improved = False
        while damping < 1e12:
            try:
                delta = np.linalg.solve(normal + damping * np.diag(np.diag(normal) + 1e-30), -gradient)
            except np.linalg.LinAlgError:
                damping *= 10
                continue
            trial = np.clip(params + delta, [1e-12, 0.0, 0.0], [np.inf, 1.0, 1.0])
            trial_sse = float((residual(trial) ** 2).sum())
            if trial_sse < sse:
                params, sse, improved = trial, trial_sse, True
                damping = max(damping / 10, 1e-12)
                break
            damping *= 10
        if not improved:
            break
    return float(params[0]), float(params[1]), float(params[2]), sse


def fit_usl(concurrency, throughput) -> UslFit:
    """Least-squares USL fit of throughput (req/s) against concurrency N
    (at least 3 distinct N). Raises ValueError with fewer."""
    n = np.asarray(concurrency, dtype=float)
    x = np.asarray(throughput, dtype=float)
    if len(np.unique(n)) < 3 or len(n) != len(x):
        raise ValueError("the USL fit needs throughput at 3 or more concurrencies")
    sigmas = np.concatenate(([0.0], np.logspace(-6, 0, _GRID_POINTS - 1)))
    kappas = np.concatenate(([0.0], np.logspace(-9, 0, _GRID_POINTS - 1)))
    sigma, kappa, lam, sse = _best_on_grid(n, x, sigmas, kappas)
    for _ in range(_REFINE_ROUNDS):
        sigmas, kappas = _around(sigmas, sigma, 0.0, 1.0), _around(kappas, kappa, 0.0, 1.0)
        sigma, kappa, lam, sse = _best_on_grid(n, x, sigmas, kappas)
    lam, sigma, kappa, sse = _polish(n, x, lam, sigma, kappa, sse)
    total = float(((x - x.mean()) ** 2).sum())
    r2 = 1.0 - sse / total if total > 0 else 1.0
    if kappa > 0:
        n_star = math.sqrt(max(1.0 - sigma, 0.0) / kappa)
        x_max = float(usl(np.array([max(n_star, 1.0)]), lam, sigma, kappa)[0])
    else:
        n_star = None
        x_max = lam / sigma if sigma > 0 else math.inf
    top = float(n.max())
    contention, coherency = sigma * (top - 1.0), kappa * top * (top - 1.0)
    if max(contention, coherency) < 0.05:        # under 5% below linear at the largest N measured
        limited_by = "none"
    else:
        limited_by = "contention" if contention >= coherency else "coherency"
    knee = x_max / lam if lam > 0 and math.isfinite(x_max) else math.inf
    return UslFit(lam, sigma, kappa, r2, n_star, x_max, knee, limited_by)


def limit_sentence(fit: UslFit) -> str:
    """Which term limits scaling, in one line."""
    if fit.limited_by == "none":
        return "scaling is near linear over the measured range (neither contention nor coherency limits it yet)"
    if fit.limited_by == "contention":
        return (f"contention (sigma={fit.sigma:.3g}) limits scaling: throughput levels off towards "
                f"{fit.x_max:,.0f} req/s, a serial part that more concurrency cannot spread")
    return (f"coherency (kappa={fit.kappa:.3g}) limits scaling: throughput peaks at N*={fit.n_star:.1f} "
            f"({fit.x_max:,.0f} req/s) and falls beyond it, crosstalk between users")
