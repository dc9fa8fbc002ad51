"""Map float sinograms to 16-bit integers with explicit, global bounds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UINT16_MAX = 65535
#: images of at least this many pixels are scaled by a compiled kernel (the same integers
#: as NumPy's expression, in one pass); smaller ones by NumPy (no compiler to load)
COMPILED_SIZE = 4096
#: elements :func:`to_uint16_blocks` scales at a time: its float64 buffer (512 KiB) stays in
#: a core's L2 cache
BLOCK = 1 << 16


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


def to_uint16_blocks(x: np.ndarray, bounds: Bounds) -> np.ndarray:
    """:func:`to_uint16` by NumPy alone (the same integers, no compiler loaded), computed
    :data:`BLOCK` elements at a time in one reused float64 buffer (:func:`scale_block`):
    for a process that scales whole images without Numba (simple mode's workers: loading
    Numba is ~0.45 CPU-s of their forkserver's serial start-up).

    Examples
    --------
    >>> x = np.array([[0.0, 0.25, np.nan], [1.0, -np.inf, 2.0]], np.float32)
    >>> to_uint16_blocks(x, Bounds(0.0, 1.0)).tolist()
    [[0, 16384, 0], [65535, 0, 65535]]
    >>> y = np.random.default_rng(0).normal(0.5, 0.6, (3, 70001))
    >>> bool((to_uint16_blocks(y, Bounds(-0.2, 1.1)) == to_uint16_numpy(y, Bounds(-0.2, 1.1))).all())
    True
    """
    span = bounds.hi - bounds.lo
    x = np.asarray(x)
    if not span > 0:
        return np.zeros(x.shape, dtype=np.uint16)
    out = np.empty(x.shape, dtype=np.uint16)
    src, dst = np.ascontiguousarray(x).reshape(-1), out.reshape(-1)
    wide = np.empty(min(BLOCK, src.size), dtype=np.float64)
    scale = UINT16_MAX / span
    for start in range(0, src.size, BLOCK):
        stop = min(start + BLOCK, src.size)
        w = wide[:stop - start]
        if src.dtype == np.float64:
            np.subtract(src[start:stop], bounds.lo, out=w)
        else:   # float64(x) - lo: the cast apart is faster than NumPy's buffered one
            np.copyto(w, src[start:stop])
            np.subtract(w, bounds.lo, out=w)
        scale_block(w, scale)
        np.copyto(dst[start:stop], w, casting="unsafe")
    return out


def scale_block(w: np.ndarray, scale: float) -> None:
    """In place, float64 ``w`` (values less the lower bound) -> ``rint(clip(w * scale, 0,
    65535))`` with NaN -> 0, as :func:`to_uint16_numpy` computes it: ``fmax`` with 0
    clips below and replaces NaN by 0 in one pass (``clip`` kept NaN, which a second pass
    then set to 0).

    Examples
    --------
    >>> w = np.array([-1.0, np.nan, 0.5, 1.5, 2.5, 1e9, np.inf])
    >>> scale_block(w, 1.0); w.tolist()
    [0.0, 0.0, 0.0, 2.0, 2.0, 65535.0, 65535.0]
    """
    np.multiply(w, scale, out=w)
    np.fmax(w, 0.0, out=w)
    np.minimum(w, UINT16_MAX, out=w)
    np.rint(w, out=w)
