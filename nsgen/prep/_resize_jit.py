"""Compiled (Numba) kernel of :func:`nsgen.prep.resize.downsample`.

The two 1-D resize operators are banded: output ``o`` of an axis is a weighted sum of the
``w`` consecutive inputs from ``start[o]`` (the CSR rows of ``axis_operator`` as dense bands,
padded with zero weights). Per sinogram:

1. along angles, ``t[o, :] = sum_k wp[o, k] * s[sp[o] + k, :]``: whole detector rows,
   contiguous and vectorised; consecutive outputs share most of their input rows, which
   therefore stay in cache; the sinogram's min and max are taken from each input row when a
   band first reaches it, while the row is in cache;
2. along columns, ``out[o, j] = sum_k wd[j, k] * t[o, sd[j] + k]`` for eight output rows
   at once: a small block of ``t`` is transposed so that the eight sums are one vector;
3. the clip to the sinogram's [min, max].

Every sum runs over ``k`` in ascending order from 0.0, like SciPy's sparse products, and the
padding adds exact zeros, so the result is the same float32 numbers as
``(A_d @ (A_p @ s).T).T`` with the CSR operators. No fast-math.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from nsgen.prep._jit import JIT as _JIT

#: output rows per block of the column pass (one vector of float32)
_ROW_BLOCK = 8


@nb.njit(**_JIT)
def _row_extremes(row, lov, hiv):  # pragma: no cover - compiled
    """Elementwise running minimum and maximum of ``row`` into ``lov`` and ``hiv``."""
    for c in range(row.shape[0]):
        x = row[c]
        lov[c] = min(lov[c], x)
        hiv[c] = max(hiv[c], x)


@nb.njit(**_JIT)
def resize_stack(x, sp, wp, sd, wd, out):  # pragma: no cover - compiled
    """Resize every sinogram ``x[v]`` (float32 ``(n, P, D)``) into ``out[v]`` (``(n, p, d)``).

    ``sp`` (p,) / ``wp`` (p, kp): band starts and weights along angles; ``sd`` / ``wd``
    along columns. Bands lie inside the input.
    """
    n, n_p, n_d = x.shape
    p, kp = wp.shape
    d, kd = wd.shape
    t = np.empty((p, n_d), np.float32)
    block = np.empty((n_d, _ROW_BLOCK), np.float32)
    acc = np.empty(_ROW_BLOCK, np.float32)
    lov = np.empty(n_d, np.float32)
    hiv = np.empty(n_d, np.float32)
    for v in range(n):
        s = x[v]
        lov[:] = s[0]
        hiv[:] = s[0]
        seen = 0
        # 1. along angles, and the sinogram's extremes from each row the bands reach
        for o in range(p):
            a0 = sp[o]
            while seen < a0 + kp:
                _row_extremes(s[seen], lov, hiv)
                seen += 1
            to = t[o]
            for c in range(n_d):
                to[c] = np.float32(0.0)
            for k in range(kp):
                w = wp[o, k]
                row = s[a0 + k]
                for c in range(n_d):
                    to[c] += w * row[c]
        while seen < n_p:
            _row_extremes(s[seen], lov, hiv)
            seen += 1
        lo = lov.min()
        hi = hiv.max()
        # 2. along columns, _ROW_BLOCK output rows at a time (transposed into ``block``)
        res = out[v]
        for o0 in range(0, p, _ROW_BLOCK):
            m = min(_ROW_BLOCK, p - o0)
            for c in range(n_d):
                for r in range(m):
                    block[c, r] = t[o0 + r, c]
                for r in range(m, _ROW_BLOCK):
                    block[c, r] = np.float32(0.0)
            for j in range(d):
                b = sd[j]
                for r in range(_ROW_BLOCK):
                    acc[r] = np.float32(0.0)
                for k in range(kd):
                    w = wd[j, k]
                    row = block[b + k]
                    for r in range(_ROW_BLOCK):
                        acc[r] += w * row[r]
                # 3. the clip to the sinogram's range
                for r in range(m):
                    y = acc[r]
                    if y < lo:
                        y = lo
                    if y > hi:
                        y = hi
                    res[o0 + r, j] = y
