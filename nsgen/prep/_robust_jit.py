"""Compiled (Numba) kernels of the robust stripe detector; see :mod:`nsgen.prep.stripe_robust`.

Why compiled: the detector sorts every column of every sinogram along the angles (whole
scan and each angle block), takes per-rank medians over up to 30 neighbouring rows and a
running median across 17 columns. As NumPy/SciPy calls (strided sorts, ``np.median`` of
stacked rows, ``ndimage.median_filter``) that cost 30-80x Larix's detector.

How: every sort and median here is a **sorting network applied across columns**: the
values to order sit in the rows of a buffer ``(n, columns)`` and each comparator
``(a, b)`` (``a < b``) puts ``min`` into row ``a`` and ``max`` into row ``b`` for all
columns at once, a loop the compiler vectorises, with no data-dependent branch. Networks
are Batcher's odd-even merge sort, pruned to ``n`` elements (every comparator puts the
minimum at the lower index, so padding ``+inf`` rows would never move and the comparators
that touch them are no-ops: dropping them sorts ``n`` exactly).

Exactness: order statistics are the sorted values themselves; a median of an even count is
``(a + b) / 2`` in the values' own precision, as NumPy's ``median``; means over ranks add
in rank order in float64, as NumPy's ``mean(axis=0, dtype=float64)``. The kernels give the
same numbers as the NumPy/SciPy formulation they replace (tested).
"""

from __future__ import annotations

from functools import lru_cache

import numba as nb
import numpy as np

from nsgen.prep._jit import JIT as _JIT

#: columns per tile of the long sorts along angles (a tile's buffer stays in cache)
TILE = 32


@lru_cache(maxsize=64)
def network(n: int) -> np.ndarray:
    """Comparators ``(a, b)``, ``a < b``, of Batcher's odd-even merge sort for ``n`` values
    (``(pairs, 2)`` int64), pruned to indices below ``n``.

    Examples
    --------
    >>> p = network(5)
    >>> v = np.array([[3.0], [1.0], [4.0], [1.0], [5.0]])
    >>> for a, b in p:
    ...     v[[a, b]] = np.sort(v[[a, b]], axis=0)
    >>> v.ravel().tolist()
    [1.0, 1.0, 3.0, 4.0, 5.0]
    """
    size = 1 << max(0, (n - 1).bit_length())
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < n:
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return np.array(pairs, np.int64).reshape(-1, 2)


@nb.njit(**_JIT)
def _sort_rows(buf, m, pairs, w):  # pragma: no cover - compiled
    """Sort the first ``m`` rows of ``buf`` column by column (first ``w`` columns) with the
    comparators ``pairs`` (a network for ``m`` values)."""
    for p in range(pairs.shape[0]):
        ra = buf[pairs[p, 0]]
        rb = buf[pairs[p, 1]]
        for t in range(w):
            u = ra[t]
            v = rb[t]
            ra[t] = u if u <= v else v
            rb[t] = v if u <= v else u


@nb.njit(**_JIT)
def ranked_rows(x, a0, a1, pairs, idx, out):  # pragma: no cover - compiled
    """``out[j, r, i]`` = value of rank ``idx[r]`` of ``x[a0:a1, j, i]`` sorted along the
    angles, for every row ``j`` and column ``i`` of ``x`` ``(angles, rows, columns)``
    (``pairs``: the network for ``a1 - a0`` values)."""
    n = a1 - a0
    n_j, n_i = x.shape[1], x.shape[2]
    buf = np.empty((n, TILE), np.float32)
    for j in range(n_j):
        for c0 in range(0, n_i, TILE):
            w = min(TILE, n_i - c0)
            for k in range(n):
                src = x[a0 + k, j]
                dst = buf[k]
                for t in range(w):
                    dst[t] = src[c0 + t]
            _sort_rows(buf, n, pairs, TILE if w == TILE else w)
            for r in range(idx.shape[0]):
                src = buf[idx[r]]
                dst = out[j, r]
                for t in range(w):
                    dst[c0 + t] = src[t]


@nb.njit(**_JIT)
def _median_sorted(buf, m, dst):  # pragma: no cover - compiled
    """``dst`` = the median of the first ``m`` (sorted) rows of ``buf``, per column; of an
    even count ``(a + b) / 2`` in ``buf``'s precision, as NumPy's ``median``."""
    w = dst.shape[0]
    if m % 2 == 1:
        mid = buf[m // 2]
        for t in range(w):
            dst[t] = mid[t]
    else:
        lo = buf[m // 2 - 1]
        hi = buf[m // 2]
        two = buf.dtype.type(2)
        for t in range(w):
            dst[t] = (lo[t] + hi[t]) / two


@nb.njit(**_JIT)
def row_offsets(srt, bg, i, o_lo, o_hi, pairs_o, mir, pairs_w, q):  # pragma: no cover
    """Offsets ``q`` (float64 per column) of row ``i`` of the ranked rows ``srt``
    ``(rows, ranks, columns)``: ``d`` = its ranks minus, rank by rank, the median of the other
    rows ``o_lo .. o_hi - 1`` of ``bg`` (same shape: the rows as background; none if
    ``o_hi <= o_lo``; ``pairs_o``: their network), then ``q`` = mean over ranks of ``d`` minus
    that of ``d`` median-filtered across columns (window ``mir.shape[0]``, ``mir[o, c]`` the
    mirrored column at offset ``o - h``; ``pairs_w``: its network)."""
    n_r, n_i = srt.shape[1], srt.shape[2]
    n_o = 0
    for o in range(o_lo, o_hi):
        if o != i:
            n_o += 1
    win = mir.shape[0]
    h = win // 2
    bo = np.empty((max(n_o, 1), n_i), np.float32)
    med = np.empty(n_i, np.float32)
    d = np.empty(n_i, np.float32)
    bw = np.empty((win, n_i), np.float32)
    acc_d = np.zeros(n_i)
    acc_s = np.zeros(n_i)
    for r in range(n_r):
        row = srt[i, r]
        if n_o > 0:
            m = 0
            for o in range(o_lo, o_hi):
                if o != i:
                    src = bg[o, r]
                    dst = bo[m]
                    for t in range(n_i):
                        dst[t] = src[t]
                    m += 1
            _sort_rows(bo, n_o, pairs_o, n_i)
            _median_sorted(bo, n_o, med)
            for t in range(n_i):
                d[t] = row[t] - med[t]
        else:
            for t in range(n_i):
                d[t] = row[t]
        for o in range(win):
            dst = bw[o]
            mo = mir[o]
            for t in range(n_i):
                dst[t] = d[mo[t]]
        _sort_rows(bw, win, pairs_w, n_i)
        mid = bw[h]
        for t in range(n_i):
            acc_d[t] += np.float64(d[t])
            acc_s[t] += np.float64(mid[t])
    for t in range(n_i):
        q[t] = acc_d[t] / n_r - acc_s[t] / n_r


@nb.njit(**_JIT)
def spread(qs, pairs, out):  # pragma: no cover - compiled
    """``out`` = 1.4826 x the median absolute deviation from the median of the rows of
    ``qs`` ``(rows, columns)`` float64, per column (as NumPy's ``median`` over axis 0;
    ``pairs``: the network for ``rows`` values). ``qs`` is overwritten."""
    m, n_i = qs.shape
    med = np.empty(n_i)
    _sort_rows(qs, m, pairs, n_i)
    _median_sorted(qs, m, med)
    for o in range(m):
        row = qs[o]
        for t in range(n_i):
            row[t] = abs(row[t] - med[t])
    _sort_rows(qs, m, pairs, n_i)
    _median_sorted(qs, m, out)
    for t in range(n_i):
        out[t] = 1.4826 * out[t]
