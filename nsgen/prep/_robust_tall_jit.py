"""Compiled (Numba) kernels of the robust detector's row-alone path (:mod:`nsgen.prep.robust_tall`).

That path runs, for every row and angle set, a mean over the ranks and a running median
across columns whose first and last columns take windows extended by point reflection
(:func:`~nsgen.prep.robust_tall.odd_windows`). Written in NumPy, those two were half of its
time (the windows of the edge columns gathered by fancy indexing, ``np.median`` of 17 x 16
values: ~60 us a call, 8 calls a row); here they are loops.

Exactness: the mean adds the ranks in rank order in float64 to ``+0.0`` (NumPy's
``mean(axis=0, dtype=float64)`` of a C-ordered ``(ranks, columns)`` array: a column of
``-0.0`` has the mean ``+0.0``), and divides by the count; a median of an odd window is one
of its values (NumPy's ``median`` may take another of tied zeros of both signs: no sum or
comparison downstream tells ``-0.0`` from ``+0.0``), NaN where the window holds a NaN, as
NumPy's.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from nsgen.prep._jit import JIT as _JIT


@nb.njit(**_JIT)
def rank_mean(srt, out):  # pragma: no cover - compiled
    """``out`` (float64 per column) = the mean over the rows of ``srt`` ``(ranks, columns)``,
    added in float64 in row order to ``+0.0``, divided by the count."""
    n_r, n_i = srt.shape
    for t in range(n_i):
        out[np.uint64(t)] = 0.0
    for r in range(n_r):
        row = srt[r]
        for t in range(n_i):
            u = np.uint64(t)
            out[u] += np.float64(row[u])
    n = np.float64(n_r)
    for t in range(n_i):
        u = np.uint64(t)
        out[u] = out[u] / n


@nb.njit(**_JIT)
def odd_median(x, idx, anchor, flip, cols, out):  # pragma: no cover - compiled
    """``out[r, n]`` = the median of the window of column ``cols[n]`` of row ``r`` of ``x``
    ``(rows, columns)``: its values ``x[r, idx[o, c]]``, or ``2 x[r, anchor[o, c]] - x[r,
    idx[o, c]]`` in ``x``'s precision where ``flip[o, c]`` (``idx``, ``anchor``, ``flip``:
    ``(window, columns)``, an odd window); NaN where one of them is NaN."""
    n_w = idx.shape[0]
    two = x.dtype.type(2)
    v = np.empty(n_w, x.dtype)
    for r in range(x.shape[0]):
        row = x[r]
        for n in range(cols.shape[0]):
            c = cols[n]
            nan = False
            for o in range(n_w):
                a = row[idx[o, c]]
                if flip[o, c]:
                    a = two * row[anchor[o, c]] - a
                if a != a:
                    nan = True
                k = o   # insertion into the sorted v[:o]
                while k > 0 and v[k - 1] > a:
                    v[k] = v[k - 1]
                    k -= 1
                v[k] = a
            out[r, n] = np.nan if nan else v[n_w // 2]
