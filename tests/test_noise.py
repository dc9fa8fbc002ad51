"""Tests for nsgen.sim.noise (docs/science.md B 3.3)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nsgen.sim.noise import gaussian_noise, photon_counts, poisson_noise

SQRT11 = np.sqrt(11.0)


def _gen(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng([77, seed])


def _two_level(m: float, n_per_level: int) -> np.ndarray:
    """Rows alternate between m (y = 1) and m/2 (y = 0.5)."""
    data = np.empty((2 * n_per_level // 500, 500), dtype=np.float64)
    data[0::2] = m
    data[1::2] = 0.5 * m
    return data


def test_poisson_mean_and_variance_match_closed_form() -> None:
    # For lambda = sigma e^-y + 1, eps = (r - 1)/(lambda - 1) - 1 has mean 0 and variance
    # V = (lambda + sqrt 11)/(lambda - 1)^2, and out = m (y - ln(1 + eps)). Hence
    #   E[out]   = data + m V / 2 + O(m V^2)     (second-order bias; V^2 terms ~ 1e-5 m here)
    #   Var[out] = m^2 V (1 + O(V))               (relative correction ~ 2.5 V < 1 %).
    # With 100 000 samples per level the standard error of the mean is m sqrt(V / n) and that
    # of the variance is about sqrt(2 / n) = 0.45 % relative. Tolerances: 5 standard errors
    # (+ 2e-5 m) for the mean, 3 % relative for the variance (1 % model + 5 x 0.45 % sampling).
    m, sigma, n = 3.0, 1000.0, 100_000
    data = _two_level(m, n)
    out = poisson_noise(data, sigma, _gen(1))
    assert out.dtype == np.float32 and out.shape == data.shape
    for y, level in ((1.0, out[0::2]), (0.5, out[1::2])):
        lam = sigma * np.exp(-y) + 1
        v = (lam + SQRT11) / (lam - 1) ** 2
        samples = level.astype(np.float64).ravel()
        assert samples.size == n
        se = m * np.sqrt(v / n)
        assert abs(samples.mean() - (m * y + m * v / 2)) < 5 * se + 2e-5 * m
        np.testing.assert_allclose(samples.var(), m**2 * v, rtol=0.03)
    # the bias term itself is resolved (it is ~8 standard errors at y = 1)
    lam1 = sigma * np.exp(-1.0) + 1
    assert out[0::2].mean() - m > m * (lam1 + SQRT11) / (lam1 - 1) ** 2 / 4


def test_poisson_zero_where_counts_do_not_exceed_one() -> None:
    # With few photons r - 1 <= 0 happens often; the output is 0 there and finite elsewhere.
    # P(r <= 1) = sum_k Poisson(k; lambda) Phi((1 - k) / 11**0.25); check the zero fraction
    # against it within 5 binomial standard errors.
    m, sigma = 1.0, 2.0
    data = np.full((200, 500), m)
    out = poisson_noise(data, sigma, _gen(2))
    assert np.isfinite(out).all()
    lam = sigma * np.exp(-1.0) + 1
    k = np.arange(60)
    p_zero = float(np.sum(stats.poisson.pmf(k, lam) * stats.norm.cdf((1 - k) / 11**0.25)))
    frac = np.mean(out == 0)
    assert abs(frac - p_zero) < 5 * np.sqrt(p_zero * (1 - p_zero) / out.size)
    assert 0.2 < p_zero < 0.8  # the case is really exercised


def test_poisson_deterministic_and_seed_dependent() -> None:
    data = np.linspace(0.0, 2.0, 600).reshape(20, 30)
    a = poisson_noise(data, 4e4, _gen(3))
    b = poisson_noise(data, 4e4, _gen(3))
    c = poisson_noise(data, 4e4, _gen(4))
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c)
    # typical reference magnitude: std ~ m / sqrt(sigma e^-y), i.e. < 1 % of m for sigma = 4e4
    assert np.abs(a - data).max() < 0.05 * 2.0


@pytest.mark.parametrize("data", [np.zeros((3, 3)), -np.ones((3, 3)), np.array([[np.inf]])])
def test_poisson_degenerate_max_raises(data: np.ndarray) -> None:
    with pytest.raises(ValueError):
        poisson_noise(data, 100.0, _gen())


@pytest.mark.parametrize("sigma", [0.0, -5.0, float("nan")])
def test_poisson_bad_sigma_raises(sigma: float) -> None:
    with pytest.raises(ValueError):
        poisson_noise(np.ones((2, 2)), sigma, _gen())


def test_gaussian_std_and_mean_away_from_clip() -> None:
    # Constant data (y = 1): out = m (1 + N(0, sigma^2)), never clipped for sigma = 0.01
    # (clipping needs a 100-sigma draw). Mean within 5 standard errors, std within 2 %
    # (sampling error of the std is 1/sqrt(2n) = 0.22 % for n = 100 000).
    m, sigma = 2.5, 0.01
    data = np.full((200, 500), m)
    out = gaussian_noise(data, sigma, _gen(5))
    assert out.dtype == np.float32
    d = out.astype(np.float64) - data
    assert abs(d.mean()) < 5 * sigma * m / np.sqrt(d.size)
    np.testing.assert_allclose(d.std(), sigma * m, rtol=0.02)


def test_gaussian_clips_in_normalised_units() -> None:
    # Zero pixels next to one pixel at the max: out = m * max(N(0, sigma^2), 0) there, so about
    # half are exactly 0 and none is negative.
    data = np.zeros((100, 100))
    data[0, 0] = 4.0
    out = gaussian_noise(data, 0.1, _gen(6))
    assert out.min() >= 0
    frac = np.mean(out == 0)
    assert 0.45 < frac < 0.55
    assert gaussian_noise(data, 0.0, _gen(6)).tobytes() == data.astype(np.float32).tobytes()


def test_gaussian_errors() -> None:
    with pytest.raises(ValueError):
        gaussian_noise(np.zeros(4), 0.1, _gen())
    with pytest.raises(ValueError):
        gaussian_noise(np.ones(4), -0.1, _gen())


def test_photon_counts_mean_variance() -> None:
    # Poisson(lambda = 7.5), n = 100 000: SE of the mean sqrt(lambda/n) = 0.0087,
    # SE of the sample variance sqrt((2 lambda^2 + lambda)/n) = 0.035; 5 SE tolerances.
    lam, n = 7.5, 100_000
    counts = photon_counts(np.full((200, 500), lam), _gen(7))
    assert counts.dtype == np.float32 and counts.shape == (200, 500)
    assert np.array_equal(counts, np.round(counts)) and counts.min() >= 0
    c = counts.astype(np.float64)
    assert abs(c.mean() - lam) < 5 * np.sqrt(lam / n)
    assert abs(c.var() - lam) < 5 * np.sqrt((2 * lam**2 + lam) / n)


def test_photon_counts_large_and_zero_expectation() -> None:
    expected = np.array([[0.0, 4e4], [1e-3, 2.0]])
    counts = photon_counts(np.broadcast_to(expected, (5000, 2, 2)), _gen(8))
    assert np.all(counts[:, 0, 0] == 0)
    mean = counts.astype(np.float64).mean(axis=0)
    # 4e4: SE of the mean sqrt(4e4 / 5000) = 2.8
    assert abs(mean[0, 1] - 4e4) < 15
    assert photon_counts(expected, _gen(9)).tobytes() == photon_counts(expected, _gen(9)).tobytes()


@pytest.mark.parametrize("bad", [np.array([-1.0, 2.0]), np.array([np.nan]), np.array([np.inf])])
def test_photon_counts_rejects_bad_expectation(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        photon_counts(bad, _gen())
