"""Compiled (Numba) kernel of the box sums of :mod:`nsgen.prep.robust_box`: per angle block,
each row's window of offsets, its prefix sums, and the boxes holding the row tested on
them (:func:`box_block`).

Exactness: the same sums and comparisons as :func:`nsgen.prep.robust_box.box_scores`
wrote them in NumPy (IEEE float64, no fast-math; ``tests/test_robust_box.py`` keeps that
exhaustive pass and compares bit for bit); what the kernel skips decides nothing."""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from nsgen.prep._jit import JIT as _JIT


@nb.njit(**_JIT)
def prefix_sums(x, col, out):  # pragma: no cover - compiled
    """``out[1:, 1:]`` = ``x.cumsum(axis=0).cumsum(axis=1)`` (``x`` ``(rows, columns)``;
    ``out`` ``(rows + 1, columns + 1)`` float64 with a zero first row and column; ``col``
    ``(columns,)`` scratch): NumPy's additions in NumPy's order (each cumulative sum runs
    from the first element on), so the same values bit for bit, without its temporaries."""
    n_r, n_c = x.shape
    for c in range(n_c + 1):
        out[0, c] = 0.0
    for r in range(n_r):
        out[r + 1, 0] = 0.0
        acc = 0.0
        for c in range(n_c):
            if r == 0:
                col[c] = x[0, c]
            else:
                col[c] = col[c] + x[r, c]
            if c == 0:
                acc = col[0]
            else:
                acc = acc + col[c]
            out[r + 1, c + 1] = acc


@nb.njit(**_JIT)
def _sum(s, r0, r1, c0, c1):  # pragma: no cover - compiled
    return s[r1, c1] - s[r0, c1] - s[r1, c0] + s[r0, c0]


@nb.njit(**_JIT)
def box_block(qv, inv, ok_c, srcq, r_in, g_top, g_height, g_w0, g_w1, cap, share, out_frac,
              even, best):  # pragma: no cover - compiled
    """Every box of every row of one angle block, both signs: ``best`` ``(rows, columns)``
    takes ``sign * sum / sqrt(size)`` of the boxes that pass the tests of
    :func:`nsgen.prep.robust_box.box_scores`, where that beats its ``|best|``.

    Row ``j``'s window: rows ``srcq[j]`` of ``qv`` ``(q rows, columns)`` times ``inv[j]``
    (this row's units), zero outside the volume (``r_in[j]``; its middle row is row
    ``j``, its first and last the rows just outside the tallest box), columns padded by
    one each side; ``ok_c`` ``(q rows, columns)`` the rank-consistent values. The boxes:
    rows ``g_top + 1 .. g_top + g_height`` of the window by ``g_w0 .. g_w1`` columns per
    group. The window and its prefix sums are built per row (no maps of every row's
    window). A box's score is its capped values' sum over its prefix sums, the
    additions of NumPy's cumulative sums in NumPy's order (:func:`prefix_sums`), so the
    scores are those of the NumPy formulation bit for bit; what is skipped is skipped
    exactly:

    * the values of the box's sign: each window row's run of them from each column on,
      so a box's rows and columns are all of its sign where every row's run reaches its
      width (no box holds a column start whose middle row is of the other sign);
    * counts (rank consistent) are integers, exact in any order; the raw sums of the
      sign -1 are the negated sums of the sign +1 (IEEE rounding is symmetric: equal up
      to the sign of a zero, which no comparison sees);
    * a box whose score beats ``|best|`` in none of its columns skips the evenness and
      stand-out tests (it would change nothing): within one sign ``best`` ends as the
      largest passing score, whatever the boxes' order.
    """
    n_j, n_i = inv.shape
    n_w = srcq.shape[1]
    n_p = n_i + 2
    mid = (n_w - 1) // 2
    raw = np.zeros((n_w, n_p))
    val = np.zeros((n_w, n_p))
    cns = np.zeros((n_w, n_p))
    run = np.zeros((n_w, n_p + 1), np.int64)
    col = np.empty(n_p)
    s_raw = np.empty((n_w + 1, n_p + 1))
    s_val = np.empty((n_w + 1, n_p + 1))
    s_cns = np.empty((n_w + 1, n_p + 1))
    rows_in = np.empty(n_w + 1, np.int64)
    g_in = np.empty(g_top.size, np.bool_)
    up = np.empty(mid, np.int64)
    dn = np.empty(mid, np.int64)
    for j in range(n_j):
        rows_in[0] = 0
        for d in range(n_w):
            rin = r_in[j, d]
            rows_in[d + 1] = rows_in[d] + (1 if rin else 0)
            f = 1.0 if rin else 0.0
            qr = srcq[j, d]
            for c in range(n_i):
                raw[d, c + 1] = qv[qr, c] * inv[j, c] * f
                cns[d, c + 1] = 1.0 if (ok_c[qr, c] and rin) else 0.0
        for g in range(g_top.size):
            a, h = g_top[g] + 1, g_height[g]
            g_in[g] = rows_in[a + h] - rows_in[a] == h
        prefix_sums(raw, col, s_raw)
        prefix_sums(cns, col, s_cns)
        for sign in (1.0, -1.0):
            for d in range(n_w):
                rin = r_in[j, d]
                for c in range(n_i, 0, -1):
                    v = sign * raw[d, c]
                    # (no branch: the sign of a value is a coin toss, mispredicted at
                    # every other column; the run times 0 or 1 is the same integer)
                    run[d, c] = (run[d, c + 1] + 1) * ((v > 0) & rin)
                    val[d, c] = cap if v > cap else v
            prefix_sums(val, col, s_val)
            for x in range(1, n_i + 1):
                # each box holds the middle row and the row above or below it: the least
                # run over the rows from the middle up (down) to each reach
                up[0] = run[mid, x]
                if up[0] == 0:
                    continue
                dn[0] = up[0]
                for k in range(1, mid):
                    up[k] = min(up[k - 1], run[mid - k, x])
                    dn[k] = min(dn[k - 1], run[mid + k, x])
                if up[1] == 0 and dn[1] == 0:
                    continue
                for g in range(g_top.size):
                    if not g_in[g]:
                        continue
                    a, h = g_top[g] + 1, g_height[g]
                    m = min(g_w1[g], min(up[mid - a], dn[a + h - 1 - mid]))
                    for w in range(g_w0[g], m + 1):
                        n = h * w
                        if _sum(s_cns, a, a + h, x, x + w) < share * n:
                            continue
                        tot = _sum(s_val, a, a + h, x, x + w)
                        sc = tot / math.sqrt(n)
                        beats = False
                        for c in range(x - 1, x - 1 + w):
                            if sc > abs(best[j, c]):
                                beats = True
                        if not beats:
                            continue
                        mean = tot / n
                        ok = True
                        for r in range(a, a + h):
                            if _sum(s_val, r, r + 1, x, x + w) < even * mean * w:
                                ok = False
                        for c in range(x, x + w):
                            if _sum(s_val, a, a + h, c, c + 1) < even * mean * h:
                                ok = False
                        for r0 in (a - 1, a + h):
                            mo = float(w) if r_in[j, r0] else 0.0
                            if mo != 0 and not (sign * _sum(s_raw, r0, r0 + 1, x, x + w)
                                                < out_frac * mean * max(mo, 1.0)):
                                ok = False
                        for c0 in (x - 1, x + w):
                            mo = float(h) if 1 <= c0 <= n_i else 0.0
                            if mo != 0 and not (sign * _sum(s_raw, a, a + h, c0, c0 + 1)
                                                < out_frac * mean * max(mo, 1.0)):
                                ok = False
                        if not ok:
                            continue
                        for c in range(x - 1, x - 1 + w):
                            if sc > abs(best[j, c]):
                                best[j, c] = sign * sc
