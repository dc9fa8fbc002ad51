"""Map float sinograms to 16-bit integers with explicit, global bounds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UINT16_MAX = 65535
#: images of at least this many pixels are scaled by a compiled kernel (the same integers
#: as NumPy's expression, in one pass); smaller ones by NumPy (no compiler to load)
COMPILED_SIZE = 4096


@dataclass(frozen=True)
class Bounds:
    """Value range ``[lo, hi]`` mapped onto ``[0, 65535]``.

    A stored value ``u`` stands for ``lo + u * (hi - lo) / 65535`` in the units of
    the data before scaling (``-log`` units for normalised data).
    """

    lo: float
    hi: float

    @classmethod
    def of(cls, values: np.ndarray) -> "Bounds":
        """Bounds of the finite values of an array (``(0, 0)`` when there are none)."""
        if values.size == 0:
            return cls(0.0, 0.0)
        lo, hi = float(values.min()), float(values.max())
        if np.isfinite(lo) and np.isfinite(hi):   # no NaN or inf: no copy needed
            return cls(lo, hi)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return cls(0.0, 0.0)
        return cls(float(finite.min()), float(finite.max()))

    def union(self, other: "Bounds") -> "Bounds":
        """Smallest bounds holding both."""
        return Bounds(min(self.lo, other.lo), max(self.hi, other.hi))

    def decode(self, u: np.ndarray) -> np.ndarray:
        """Invert :func:`to_uint16` (up to rounding): uint16 -> float64 values."""
        return self.lo + np.asarray(u, dtype=np.float64) * ((self.hi - self.lo) / UINT16_MAX)


EMPTY = Bounds(float("inf"), float("-inf"))


def to_uint16(x: np.ndarray, bounds: Bounds) -> np.ndarray:
    """Scale ``x`` linearly so that ``bounds`` maps to ``[0, 65535]``, rounding.

    Values outside the bounds are clipped; NaN becomes 0; degenerate bounds
    (``hi <= lo``) give zeros.

    Examples
    --------
    >>> to_uint16(np.array([0.0, 0.5, 1.0, 2.0]), Bounds(0.0, 1.0)).tolist()
    [0, 32768, 65535, 65535]
    """
    span = bounds.hi - bounds.lo
    x = np.asarray(x)
    if (span > 0 and x.size >= COMPILED_SIZE and x.ndim == 2
            and x.dtype in (np.float32, np.float64)):
        from nsgen.prep._scaling_jit import scale_rows   # compiled, cached on disk
        out = np.empty(x.shape, np.uint16)
        scale_rows(x, float(bounds.lo), UINT16_MAX / span, out)
        return out
    return to_uint16_numpy(x, bounds)


def to_uint16_numpy(x: np.ndarray, bounds: Bounds) -> np.ndarray:
    """:func:`to_uint16` by NumPy alone, whatever the size (the same integers; no compiler
    loaded: for a process that scales only a few values).

    Examples
    --------
    >>> to_uint16_numpy(np.array([[0.0, 0.25], [1.0, np.nan]]), Bounds(0.0, 1.0)).tolist()
    [[0, 16384], [65535, 0]]
    """
    span = bounds.hi - bounds.lo
    if not span > 0:
        return np.zeros(np.shape(x), dtype=np.uint16)
    y = (np.asarray(x, dtype=np.float64) - bounds.lo) * (UINT16_MAX / span)
    np.clip(y, 0, UINT16_MAX, out=y)
    y[np.isnan(y)] = 0
    return np.rint(y).astype(np.uint16)
