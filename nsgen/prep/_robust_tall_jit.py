"""Compiled (Numba) kernel of the robust detector's row-alone path (:mod:`nsgen.prep.robust_tall`).

That path runs, for every row and angle set, a running median across columns whose first
and last columns take windows extended by point reflection
(:func:`~nsgen.prep.robust_tall.odd_windows`). Written in NumPy, those edge medians were
a third of its time (the windows gathered by fancy indexing, ``np.median`` of 17 x 16
values: ~60 us a call, 8 calls a row); here they are loops. (Its means over the ranks are
the angle-bin mean of :mod:`nsgen.prep._robust_jit`, into float64.)

Exactness: a median of an odd window is one of its values (NumPy's ``median`` may take
another of tied zeros of both signs: no sum or comparison downstream tells ``-0.0`` from
``+0.0``), NaN where the window holds a NaN, as NumPy's.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from nsgen.prep._jit import JIT as _JIT


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
