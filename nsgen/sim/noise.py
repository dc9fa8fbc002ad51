"""Noise models (docs/science.md B 3.3) and photon counting for the complex mode.

Unlike the reference, nothing here re-seeds anything: every draw comes from the generator
passed in (docs/science.md A.1), and degenerate inputs raise instead of returning ``data / m``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["poisson_noise", "gaussian_noise", "photon_counts"]

#: Standard deviation of the electronic (read-out) noise in photons: variance sqrt(11).
_READ_NOISE_STD = 11.0**0.25


def _positive_max(data: np.ndarray) -> float:
    if data.size == 0:
        raise ValueError("noise needs a non-empty array")
    m = float(data.max())
    if not (m > 0) or not math.isfinite(m):
        raise ValueError(f"noise needs data with a positive, finite maximum, got {m}")
    return m


def poisson_noise(data: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Photon-counting noise on post-log line integrals (docs/science.md B 3.3 'Poisson').

    With ``m = max(data)`` and ``y = data / m``:
    ``lambda = sigma * exp(-y) + 1``, ``r = Poisson(lambda) + 11**(1/4) * N(0, 1)``,
    ``out = -m * ln((r - 1) / sigma)`` and ``out = 0`` where ``r - 1 <= 0``.
    Hence ``out ≈ data`` with variance ``≈ m**2 (lambda + sqrt(11)) / (lambda - 1)**2``.

    Parameters
    ----------
    data : numpy.ndarray
        Line integrals (any shape); the maximum must be positive.
    sigma : float
        Incident photons per pixel (> 0).
    rng : numpy.random.Generator
        Source of the Poisson draws (all first, C order) and then the normal draws.

    Returns
    -------
    numpy.ndarray
        float32 array of ``data``'s shape.

    Raises
    ------
    ValueError
        If ``max(data) <= 0`` (the reference would return nan/inf) or ``sigma <= 0``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> out = poisson_noise(np.full((2, 3), 2.0), 4e4, rng)
    >>> out.dtype.name, bool(np.allclose(out, 2.0, atol=0.1))
    ('float32', True)
    """
    if not (sigma > 0) or not math.isfinite(sigma):
        raise ValueError(f"Poisson noise needs sigma > 0 incident photons, got {sigma}")
    data = np.asarray(data, dtype=np.float64)
    m = _positive_max(data)
    lam = sigma * np.exp(-data / m) + 1.0
    r = rng.poisson(lam).astype(np.float64)
    r += _READ_NOISE_STD * rng.standard_normal(data.shape)
    r -= 1.0
    out = np.zeros(data.shape, dtype=np.float64)
    ok = r > 0
    out[ok] = -m * np.log(r[ok] / sigma)
    return out.astype(np.float32)


def gaussian_noise(data: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive Gaussian noise relative to the maximum (docs/science.md B 3.3 'Gaussian').

    ``out = m * max(data / m + N(0, sigma**2), 0)`` with ``m = max(data)``, i.e. ``sigma`` is a
    standard deviation in units of the maximum and clipping happens in normalised units.

    Parameters
    ----------
    data : numpy.ndarray
        Input values (any shape); the maximum must be positive.
    sigma : float
        Standard deviation relative to ``max(data)`` (>= 0).
    rng : numpy.random.Generator
        Source of the normal draws.

    Returns
    -------
    numpy.ndarray
        float32 array of ``data``'s shape.

    Raises
    ------
    ValueError
        If ``max(data) <= 0`` or ``sigma < 0``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> gaussian_noise(np.ones(3), 0.0, rng)
    array([1., 1., 1.], dtype=float32)
    """
    if not (sigma >= 0) or not math.isfinite(sigma):
        raise ValueError(f"Gaussian noise needs sigma >= 0, got {sigma}")
    data = np.asarray(data, dtype=np.float64)
    m = _positive_max(data)
    y = data / m + sigma * rng.standard_normal(data.shape)
    np.maximum(y, 0.0, out=y)
    return (m * y).astype(np.float32)


def photon_counts(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson photon counts for an array of expected photon numbers.

    Parameters
    ----------
    expected : numpy.ndarray
        Expected counts per pixel (>= 0, finite), any shape.
    rng : numpy.random.Generator
        Source of the Poisson draws.

    Returns
    -------
    numpy.ndarray
        float32 counts of ``expected``'s shape (exact integers below 2**24).

    Raises
    ------
    ValueError
        If an expected value is negative or not finite.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> photon_counts(np.zeros(2), rng)
    array([0., 0.], dtype=float32)
    """
    expected = np.asarray(expected, dtype=np.float64)
    if expected.size and not (np.isfinite(expected).all() and expected.min() >= 0):
        raise ValueError("photon_counts needs finite, non-negative expected counts")
    return rng.poisson(expected).astype(np.float32)
