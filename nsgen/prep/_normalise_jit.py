"""Compiled (Numba) inner step of :func:`nsgen.prep.normalise.flat_field_log`.

The three elementwise steps before the logarithm (convert and subtract the dark, clip below
with NaN mapped to the lower bound, clip above) fused into one pass: the same float32
operations as ``np.subtract(..., dtype=float32)``, ``np.fmax`` and ``np.minimum``, so the
result is bit-identical, at a third of the memory traffic. The logarithm stays with NumPy,
whose SIMD ``log`` is faster than a scalar libm call.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from nsgen.prep._jit import JIT as _JIT



@nb.njit(**_JIT)
def clipped_difference(raw, v, p0, p1, dark, lo, hi, out, sinograms_first):  # pragma: no cover
    """``min(fmax(float32(raw[p, v, c]) - dark[c], lo[c]), hi[c])`` for ``p0 <= p < p1``.

    ``raw`` is C-contiguous ``(projections, rows, columns)`` of any real dtype; ``dark``,
    ``lo``, ``hi`` float32 ``(columns,)``; the values go to ``out[v, p]`` (sinograms first)
    or ``out[p, v]`` of the C-contiguous float32 ``out``. (Whole contiguous arrays keep the
    rows' unit stride visible to the compiler, which then vectorises.)
    """
    for p in range(p0, p1):
        s = raw[p, v]
        o = out[v, p] if sinograms_first else out[p, v]
        for c in range(s.shape[0]):
            x = np.float32(s[c]) - dark[c]
            if not x >= lo[c]:  # fmax: a NaN difference becomes the lower bound
                x = lo[c]
            if x > hi[c]:
                x = hi[c]
            o[c] = x
