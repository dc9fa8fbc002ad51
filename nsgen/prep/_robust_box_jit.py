"""Compiled (Numba) kernels of the box sums of :mod:`nsgen.prep.robust_box`: the prefix sums
of each window, and every box of every row and column start tested on them (NumPy made
some 25 temporary maps per box shape and sign).

Exactness: the same sums and comparisons as :func:`nsgen.prep.robust_box.box_scores`
wrote them in NumPy (IEEE float64, no fast-math), boxes in the same order.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from nsgen.prep._jit import JIT as _JIT


@nb.njit(**_JIT)
def prefix_sums(x, out):  # pragma: no cover - compiled
    """``out[:, 1:, 1:]`` = ``x.cumsum(axis=1).cumsum(axis=2)`` (``x`` ``(n, rows,
    columns)``; ``out`` ``(n, rows + 1, columns + 1)`` float64 with a zero first row and
    column): NumPy's additions in NumPy's order (each cumulative sum runs from the first
    element on), so the same values bit for bit, without its temporaries."""
    n, n_r, n_c = x.shape
    col = np.empty(n_c)   # (set from row 0 on: a cumulative sum starts at its first value)
    for j in range(n):
        for c in range(n_c + 1):
            out[j, 0, c] = 0.0
        for r in range(n_r):
            out[j, r + 1, 0] = 0.0
            acc = 0.0
            for c in range(n_c):
                if r == 0:
                    col[c] = x[j, 0, c]
                else:
                    col[c] = col[c] + x[j, r, c]
                if c == 0:
                    acc = col[0]
                else:
                    acc = acc + col[c]
                out[j, r + 1, c + 1] = acc


@nb.njit(**_JIT)
def _sum(s, j, r0, r1, c0, c1):  # pragma: no cover - compiled
    return s[j, r1, c1] - s[j, r0, c1] - s[j, r1, c0] + s[j, r0, c0]


@nb.njit(**_JIT)
def box_pass(s_val, s_raw, s_pos, s_cons, s_in, tops, heights, widths, sign, share,
             out_frac, even, best):  # pragma: no cover - compiled
    """One sign's boxes (``tops``, ``heights``, ``widths`` in the window, whose row 0 is
    the row just outside) over the prefix sums ``(rows, window + 1, columns + 3)`` of the
    window's capped values, values, positive values, rank-consistent values and values
    inside the volume (columns padded by one each side): ``best`` (rows, columns) takes
    ``sign * sum / sqrt(size)`` where that beats its ``|best|``. Each row's and each
    column's capped sum must reach ``even`` times the box's mean per row or column."""
    n_j = s_val.shape[0]
    n_i = s_val.shape[2] - 3
    for j in range(n_j):
        for k in range(tops.size):
            a, h, w = tops[k] + 1, heights[k], widths[k]
            n = h * w
            for x in range(1, n_i - w + 2):
                if _sum(s_pos, j, a, a + h, x, x + w) != n:
                    continue
                if _sum(s_in, j, a, a + h, x, x + w) != n:
                    continue
                if _sum(s_cons, j, a, a + h, x, x + w) < share * n:
                    continue
                tot = _sum(s_val, j, a, a + h, x, x + w)
                mean = tot / n
                ok = True
                for r in range(a, a + h):
                    if _sum(s_val, j, r, r + 1, x, x + w) < even * mean * w:
                        ok = False
                for c in range(x, x + w):
                    if _sum(s_val, j, a, a + h, c, c + 1) < even * mean * h:
                        ok = False
                for r0 in (a - 1, a + h):
                    m = _sum(s_in, j, r0, r0 + 1, x, x + w)
                    if m != 0 and not (_sum(s_raw, j, r0, r0 + 1, x, x + w)
                                       < out_frac * mean * max(m, 1.0)):
                        ok = False
                for c0 in (x - 1, x + w):
                    m = _sum(s_in, j, a, a + h, c0, c0 + 1)
                    if m != 0 and not (_sum(s_raw, j, a, a + h, c0, c0 + 1)
                                       < out_frac * mean * max(m, 1.0)):
                        ok = False
                if not ok:
                    continue
                sc = tot / math.sqrt(n)
                for dx in range(w):
                    c = x - 1 + dx
                    if sc > abs(best[j, c]):
                        best[j, c] = sign * sc
