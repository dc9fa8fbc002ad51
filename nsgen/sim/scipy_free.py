"""The two SciPy functions complex mode's detector uses, in NumPy, bit for bit.

:class:`~nsgen.modes.complex.DetectorModel` is drawn in the main process, and importing
``scipy.special`` or ``scipy.ndimage`` (which imports the former) cost it 0.2-0.27 CPU-s,
more than drawing the detector itself (0.08 CPU-s), while the workers projected. These
compute what the SciPy functions do, operation for operation, so the values are the same
bits (``tests/test_scipy_free.py`` compares them with SciPy's):

* :func:`spherical_y1` is ``scipy.special.spherical_yn(1, x)`` for ``x > 0``: SciPy's
  ``-cos(x) / x`` then ``(y0 - sin(x)) / x``, with the C library's ``cos`` and ``sin``
  (those of :mod:`math`);
* :func:`gaussian_filter_reflect` is ``scipy.ndimage.gaussian_filter(image, sigma,
  mode="reflect")`` of a float64 image: SciPy's kernel (``exp(-0.5 / sigma**2 * x**2)``
  normalised to sum 1, radius ``int(4 sigma + 0.5)``) applied along each axis in turn, each
  output value the centre product plus, from the outermost pair inwards, each pair of
  mirrored neighbours' sum times its weight (the order of SciPy's ``NI_Correlate1D`` for a
  symmetric kernel). Images narrower than the kernel's radius along an axis go to SciPy.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["gaussian_filter_reflect", "spherical_y1"]


def spherical_y1(x: np.ndarray) -> np.ndarray:
    """Spherical Bessel function of the second kind of order 1 at ``x > 0`` (float64).

    Examples
    --------
    >>> y = spherical_y1(np.array([1.0, 2.5]))
    >>> bool(y[0] == -math.cos(1.0) - math.sin(1.0))
    True
    """
    values = np.asarray(x, dtype=np.float64)
    out = np.empty(values.shape, dtype=np.float64)
    flat = out.reshape(-1)
    for i, v in enumerate(values.reshape(-1).tolist()):
        if not v > 0 or math.isinf(v):
            raise ValueError(f"spherical_y1 takes finite arguments > 0, got {v}")
        y0 = -math.cos(v) / v
        flat[i] = (y0 - math.sin(v)) / v
    return out


def _kernel(sigma: float, radius: int) -> np.ndarray:
    """SciPy's order-0 Gaussian weights of ``radius`` (``_gaussian_kernel1d``)."""
    sigma2 = sigma * sigma
    x = np.arange(-radius, radius + 1)
    phi_x = np.exp(-0.5 / sigma2 * x ** 2)
    return phi_x / phi_x.sum()


def _correlate_reflect(image: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    """``image`` correlated with the symmetric ``weights`` along ``axis``, the border
    mirrored (``d c b a | a b c d | d c b a``), in SciPy's order of operations."""
    size1 = len(weights) // 2
    moved = np.moveaxis(image, axis, 0)
    n = moved.shape[0]
    pad = [(size1, size1)] + [(0, 0)] * (moved.ndim - 1)
    line = np.pad(moved, pad, mode="symmetric")
    out = line[size1:size1 + n] * weights[size1]
    for jj in range(-size1, 0):
        out += (line[size1 + jj:size1 + jj + n] + line[size1 - jj:size1 - jj + n]) \
            * weights[size1 + jj]
    return np.moveaxis(out, 0, axis)


def gaussian_filter_reflect(image: np.ndarray, sigma: float, truncate: float = 4.0
                            ) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(image, sigma, mode="reflect", truncate=truncate)``
    of a float64 ``image``, the same bits.

    Examples
    --------
    >>> img = np.zeros((5, 7)); img[2, 3] = 1.0
    >>> out = gaussian_filter_reflect(img, 1.0)
    >>> out.shape, round(float(out.sum()), 12), bool(out[2, 3] == out.max())
    ((5, 7), 1.0, True)
    """
    values = np.asarray(image, dtype=np.float64)
    sd = float(sigma)
    if not sd > 1e-15:
        return values.copy()
    radius = int(truncate * sd + 0.5)
    if radius >= min(values.shape):   # SciPy's border for lines shorter than the kernel
        from scipy.ndimage import gaussian_filter
        return gaussian_filter(values, sigma, mode="reflect", truncate=truncate)
    weights = _kernel(sd, radius)[::-1]
    out = values
    for axis in range(values.ndim):
        out = _correlate_reflect(out, weights, axis)
    return np.ascontiguousarray(out)
