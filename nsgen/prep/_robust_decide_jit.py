"""Compiled (Numba) kernels of the robust detector's decision
(:func:`~nsgen.prep.stripe_robust.decide_offsets`): the column poolings and tests it runs
on every score map of a row chunk, a loop over columns each where NumPy made one
temporary array per shift (``_drop_bias``: 32 rolls of the map; ``_pool``: a sum, a run
and an update per width and offset).

Exactness: the same comparisons and the same sums in the same order as the NumPy
formulation in :mod:`nsgen.prep.stripe_robust` (IEEE float64, no fast-math): the same
flags and scores (tested against it).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from nsgen.prep._jit import JIT as _JIT


@nb.njit(**_JIT)
def drop_bias(z, threshold, half, flag):  # pragma: no cover - compiled
    """``flag`` (rows, columns) bool = ``|z| > threshold``, less the columns with a column
    within ``half`` of them (same row) above ``threshold`` too, stronger (``|z|``) and of
    the opposite sign."""
    n_j, n_i = z.shape
    for j in range(n_j):
        row = z[j]
        for c in range(n_i):
            a = abs(row[c])
            keep = a > threshold
            if keep:
                s = 1.0 if row[c] > 0 else -1.0
                for d in range(1, half + 1):
                    for cc in (c - d, c + d):
                        if 0 <= cc < n_i:
                            o = abs(row[cc])
                            if o > threshold and o > a and (row[cc] > 0) == (s < 0) \
                                    and row[cc] != 0:
                                keep = False
            flag[j, c] = keep


@nb.njit(**_JIT)
def pool_columns(z, floor, width, best):  # pragma: no cover - compiled
    """``best`` (rows, columns) float64 = the scores ``z`` pooled along columns: each
    column's the strongest ``sum / sqrt(n)`` over the runs of 2 to ``width`` adjacent
    columns holding it whose scores all exceed ``floor`` with one sign, signed (the
    positive runs first; a candidate replaces only a strictly stronger value, so the
    order of one sign's candidates does not matter), else its own score. The sums add left
    to right, as NumPy's running ``tot[:, :m] + s[:, w - 1:]``."""
    n_j, n_i = z.shape
    w_max = min(width, n_i)
    s = np.empty(n_i)
    for j in range(n_j):
        row = z[j]
        out = best[j]
        for c in range(n_i):
            out[c] = row[c]
        for sign in (1.0, -1.0):
            for c in range(n_i):
                v = sign * row[c]
                s[c] = v if v > floor else 0.0
            for c in range(n_i - 1):   # the runs from column c (none without it)
                if s[c] <= 0:
                    continue
                tot = s[c]
                for w in range(2, min(w_max, n_i - c) + 1):
                    if s[c + w - 1] <= 0:
                        break
                    tot = tot + s[c + w - 1]
                    sc = tot / math.sqrt(w)
                    for k in range(w):
                        if sc > abs(out[c + k]):
                            out[c + k] = sign * sc
