"""The Universal Scalability Law fit on synthetic curves with known sigma and kappa."""
import numpy as np
import pytest

from surge.capacity.usl import fit_usl, limit_sentence, usl

N = np.array([1, 2, 4, 8, 16, 32, 64], dtype=float)


@pytest.mark.parametrize("lam, sigma, kappa", [(1000, 0.05, 0.0002), (250, 0.2, 0.0), (5000, 0.01, 0.001)])
def test_exact_curves_give_back_their_parameters(lam, sigma, kappa):
    fit = fit_usl(N, usl(N, lam, sigma, kappa))
    assert fit.lam == pytest.approx(lam, rel=1e-4)
    assert fit.sigma == pytest.approx(sigma, rel=1e-3, abs=1e-6)
    assert fit.kappa == pytest.approx(kappa, rel=1e-3, abs=1e-8)
    assert fit.r2 == pytest.approx(1.0, abs=1e-9)


def test_noisy_curve_gives_parameters_near_the_truth():
    rng = np.random.default_rng(3)
    truth = usl(N, 1000, 0.05, 0.0005)
    fit = fit_usl(N, truth * (1 + 0.02 * rng.standard_normal(len(N))))
    assert fit.sigma == pytest.approx(0.05, rel=0.25)
    assert fit.kappa == pytest.approx(0.0005, rel=0.5)
    assert fit.n_star == pytest.approx(np.sqrt(0.95 / 0.0005), rel=0.3)
    assert fit.r2 > 0.98


def test_coherency_limits_a_curve_that_falls_past_its_peak():
    fit = fit_usl(N, usl(N, 1000, 0.01, 0.002))
    assert fit.limited_by == "coherency"
    assert fit.n_star == pytest.approx(np.sqrt(0.99 / 0.002), rel=1e-3)
    assert "coherency" in limit_sentence(fit)


def test_a_hard_ceiling_is_contention_with_its_ceiling_as_x_max():
    # 8 slots of 1 ms: linear to N = 8, then flat at 8,000/s (the capacity bar's shape)
    fit = fit_usl(N, np.minimum(N, 8) * 1000)
    assert fit.limited_by == "contention"
    assert 0.85 * 8000 <= fit.x_max <= 1.15 * 8000
    assert fit.n_star is None or fit.n_star >= 6


def test_linear_scaling_is_limited_by_neither():
    fit = fit_usl(N, N * 100.0)
    assert fit.limited_by == "none"
    assert fit.sigma < 1e-4 and fit.kappa < 1e-6


def test_fewer_than_three_concurrencies_cannot_be_fitted():
    with pytest.raises(ValueError, match="3 or more"):
        fit_usl([1, 2], [10, 20])
