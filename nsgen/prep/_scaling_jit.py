"""Compiled (Numba) kernel of :func:`nsgen.prep.scaling.to_uint16`: one pass per image
instead of NumPy's seven over a float64 copy, with the same float64 arithmetic (no
fast-math), so the same integers.

Rounding half to even (``np.rint``) is ``(y + M) - M`` with ``M = 1.5 * 2**52``: for
``0 <= y <= 65535`` the sum's last bit is the units place, so the addition itself rounds
``y`` to an integer as IEEE round-to-nearest-even does, and the subtraction is exact. Written
with selects instead of a call, the loop vectorises; each row is copied into a contiguous
buffer first, since an image is often a column range of a larger array.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from nsgen.prep._jit import JIT as _JIT

_ROUND = 6755399441055744.0     # 1.5 * 2**52


@nb.njit(inline="always", **_JIT)
def scale_value(v, lo, k):  # pragma: no cover - compiled
    """``rint(clip((float64(v) - lo) * k, 0, 65535))`` as uint16, NaN -> 0: one value of
    :func:`scale_rows` (inlined into the callers' loops, which then vectorise)."""
    y = (np.float64(v) - lo) * k
    y = y if y >= 0.0 else 0.0          # also NaN -> 0
    y = y if y <= 65535.0 else 65535.0
    return np.uint16(np.int32((y + _ROUND) - _ROUND))


@nb.njit(**_JIT)
def scale_rows(x, lo, k, out):  # pragma: no cover - compiled
    """``out = rint(clip((float64(x) - lo) * k, 0, 65535))`` with NaN -> 0, for 2-D ``x``
    (any layout) and uint16 ``out`` of its shape."""
    n, m = x.shape
    row = np.empty(m, x.dtype)
    for i in range(n):
        row[:] = x[i]
        oi = out[i]
        for j in range(m):
            oi[j] = scale_value(row[j], lo, k)
