"""Compiled (Numba) kernels of the robust detector's decision
(:func:`~nsgen.prep.stripe_robust.decide_offsets`): the column poolings and tests it runs
on every score map of a row chunk, a loop over columns each where NumPy made one
temporary array per shift (``drop_bias``: 32 rolls of the map; ``pool_columns``: a sum, a run
and an update per width and offset).

Exactness: the same comparisons and the same sums in the same order as the NumPy
formulation in :mod:`nsgen.prep.robust_pool` (IEEE float64, no fast-math): the same
flags and scores (tested against it).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from nsgen.prep._jit import JIT as _JIT
from nsgen.prep._robust_box_jit import prefix_sums


@nb.njit(**_JIT)
def _middle(v, n):  # pragma: no cover - compiled
    """NumPy's median of the ``n`` sorted values ``v[:n]`` (``n >= 1``): the middle one, or
    the middle two's ``(a + b) / 2``."""
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2.0


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


@nb.njit(**_JIT)
def moving_runs(cs, z, q_lo, start, reach, n_rows_total, extent, level, lag, found,
                min_rows, stays, speed, out):  # pragma: no cover - compiled
    """``out[j, c0:c1]`` = True for the runs of :func:`~nsgen.prep.robust_moving.moving`
    that move: per row ``j`` of the scores ``z`` (volume row ``start + j``) and sign, each
    run of columns above ``extent`` holding one above ``level``, its mean offset (from the
    cumulative sums ``cs`` ``(rows, columns + 1)`` of volume rows ``q_lo ...``) searched in
    the rows within ``reach`` displaced by up to ``lag`` columns (the first best mean, its
    displacement refined by a parabola); held where that mean lies between ``found`` of
    its own and its inverse; moving where at least ``min_rows`` rows hold it, neither
    adjacent row below ``stays`` columns per row, and the median speed is at least
    ``speed``. The same sums, comparisons and medians as the NumPy formulation."""
    n_j, n_i = z.shape
    n_l = 2 * lag + 1
    mm = np.empty(n_l)
    speeds = np.empty(2 * reach)
    vals = np.empty(2 * reach)
    for jj in range(n_j):
        j = jj + start
        zr = z[jj]
        own_row = cs[j - q_lo]
        for sign in (1.0, -1.0):
            c = 0
            while c < n_i:
                if not sign * zr[c] > extent:
                    c += 1
                    continue
                c0 = c
                top = False
                while c < n_i and sign * zr[c] > extent:
                    top = top or sign * zr[c] > level
                    c += 1
                c1 = c
                if not top:
                    continue
                width = c1 - c0
                own = sign * (own_row[c1] - own_row[c0]) / width
                n = 0
                for dj in range(-reach, reach + 1):
                    if dj == 0:
                        continue
                    speeds[n] = np.nan
                    inside = 0 <= j + dj < n_rows_total
                    rr = min(max(j + dj, 0), n_rows_total - 1) - q_lo
                    row = cs[min(max(rr, 0), cs.shape[0] - 1)]
                    k = 0
                    for t in range(n_l):
                        a, b = c0 + t - lag, c1 + t - lag
                        mm[t] = sign * ((row[b] - row[a]) / width) if a >= 0 and b <= n_i \
                            else -np.inf
                        if mm[t] > mm[k]:
                            k = t
                    best = mm[k]
                    lo = mm[max(k - 1, 0)]
                    hi = mm[min(k + 1, n_l - 1)]
                    inner = 0 < k < n_l - 1 and np.isfinite(lo) and np.isfinite(hi)
                    if not inner:
                        lo, hi = best, best
                    curv = lo - 2 * best + hi
                    frac = 0.5 * (lo - hi) / curv if curv < 0 else 0.0
                    shift = (k - lag) + min(max(frac, -0.5), 0.5)
                    if inside and inner and best >= found * own and best <= own / found:
                        speeds[n] = shift / dj
                    n += 1
                m = 0
                for t in range(n):
                    if np.isfinite(speeds[t]):
                        vals[m] = speeds[t]
                        m += 1
                if m < min_rows or abs(speeds[reach - 1]) < stays or \
                        abs(speeds[reach]) < stays:
                    continue
                v = np.sort(vals[:m])
                med = _middle(v, m)
                if abs(med) >= speed:
                    for t in range(c0, c1):
                        out[jj, t] = True


@nb.njit(**_JIT)
def _median_six(sign, zb, out):  # pragma: no cover - compiled
    """:func:`median_signed` of 6 blocks: the products sorted by a network of 12
    comparators (selects, no branch on the data), the middle two's ``(a + b) / 2``; NaN
    where a product is."""
    n_b, n_j, n_i = zb.shape
    for j in range(n_j):
        for c in range(n_i):
            s = sign[j, c]
            v0 = s * zb[0, j, c]
            v1 = s * zb[1, j, c]
            v2 = s * zb[2, j, c]
            v3 = s * zb[3, j, c]
            v4 = s * zb[4, j, c]
            v5 = s * zb[5, j, c]
            if (v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3) | (v4 != v4) | (v5 != v5):
                out[j, c] = np.nan
                continue
            v1, v2 = min(v1, v2), max(v1, v2)
            v4, v5 = min(v4, v5), max(v4, v5)
            v0, v2 = min(v0, v2), max(v0, v2)
            v3, v5 = min(v3, v5), max(v3, v5)
            v0, v1 = min(v0, v1), max(v0, v1)
            v3, v4 = min(v3, v4), max(v3, v4)
            v1, v4 = min(v1, v4), max(v1, v4)
            v0, v3 = min(v0, v3), max(v0, v3)
            v2, v5 = min(v2, v5), max(v2, v5)
            v1, v3 = min(v1, v3), max(v1, v3)
            v2, v4 = min(v2, v4), max(v2, v4)
            v2, v3 = min(v2, v3), max(v2, v3)
            out[j, c] = (v2 + v3) / 2.0


@nb.njit(**_JIT)
def median_signed(sign, zb, out):  # pragma: no cover - compiled
    """``out`` (rows, columns) = NumPy's ``median(sign * zb, axis=0)`` of the block
    scores ``zb`` (blocks, rows, columns) signed by ``sign`` (rows, columns): the middle
    value, or the two middle values' ``(a + b) / 2`` (as ``np.mean`` of them), NaN where
    any product is (no temporary of the products; they are the same IEEE products)."""
    n_b, n_j, n_i = zb.shape
    buf = np.empty(n_b)
    if n_b == 6:
        _median_six(sign, zb, out)
        return
    for j in range(n_j):
        for c in range(n_i):
            s = sign[j, c]
            nan = False
            for b in range(n_b):   # (insertion sort: a few blocks)
                v = s * zb[b, j, c]
                if v != v:
                    nan = True
                k = b
                while k > 0 and buf[k - 1] > v:
                    buf[k] = buf[k - 1]
                    k -= 1
                buf[k] = v
            if nan:
                out[j, c] = np.nan
            else:
                out[j, c] = _middle(buf, n_b)


@nb.njit(**_JIT)
def run_scores(zb, level, best):  # pragma: no cover - compiled
    """``best`` (blocks, rows, columns), zeroed, = per block the signed score of the
    strongest run of 2 to ``blocks - 1`` adjacent blocks holding it whose scores ``zb``
    all exceed ``level`` with one sign, ``sum / sqrt(length)``: the runs in the order of
    :func:`~nsgen.prep.robust_angles.run_scores`' NumPy loops (sign, first block, last
    block), each sum added block after block (as NumPy's sum over the first axis), a run
    replacing only strictly weaker values."""
    n_b, n_j, n_i = zb.shape
    for j in range(n_j):
        for c in range(n_i):
            # which blocks are above the level with each sign: no two adjacent, no run
            # (most values; no branch per block and run)
            pos = 0
            neg = 0
            for b in range(n_b):
                best[b, j, c] = 0.0
                v = zb[b, j, c]
                pos |= np.int64(v > level) << b
                neg |= np.int64(-v > level) << b
            for sign in (1.0, -1.0):
                bits = pos if sign > 0 else neg
                if bits & (bits >> 1) == 0:
                    continue
                for b0 in range(n_b):
                    for b1 in range(b0 + 2, min(n_b - 1, n_b - b0) + b0 + 1):
                        ok = True
                        for b in range(b0, b1):
                            if not sign * zb[b, j, c] > level:
                                ok = False
                                break
                        if not ok:
                            continue
                        tot = zb[b0, j, c]
                        for b in range(b0 + 1, b1):
                            tot = tot + zb[b, j, c]
                        score = sign * tot / math.sqrt(b1 - b0)
                        for b in range(b0, b1):
                            if score > abs(best[b, j, c]):
                                best[b, j, c] = sign * score


@nb.njit(**_JIT)
def pool_rect(q, z, cons, start, q_start, n_rows_total, jc, reach, half, floor, cap_factor,
              strong, level, least, corners, thr, root, best):  # pragma: no cover - compiled
    """:func:`~nsgen.prep.robust_pool.pool_rect`'s rectangles for the values ``jc``
    ``(2, values)`` (row in ``z``, column) of the scores ``z`` ``(rows, columns)`` of
    volume rows ``start ...``, into ``best`` (its copy of ``z``): ``q`` ``(q rows,
    columns + 1)`` the offsets of volume rows ``q_start ...``, ``cons`` their rank
    consistency; a window of ``2 reach + 1`` rows by ``2 half + 1`` columns around each
    value, its values kept above ``floor`` with the value's sign, at most ``cap_factor``
    times its ``|z|``, and rank consistent (``cons`` above ``level``) unless above
    ``strong``; a value with at least ``least`` of them takes the largest of its ``|z|``
    and of its rectangles' (``corners`` ``(4, rectangles)`` flat indices into the
    window's prefix sums) ``sum / root`` whose count reaches ``thr``, with its sign.

    The same numbers as the NumPy formulation it replaces (kept in the tests): the
    window's values by the same products (``q x (z / q)`` of the value's row, times 1 or
    0 inside or outside the volume, times the sign), its prefix sums in NumPy's order of
    ``cumsum`` over the rows then the columns
    (:func:`~nsgen.prep._robust_box_jit.prefix_sums`), each rectangle's sum as ``((t3 -
    t1) - t2) + t0``, counts as integers; a maximum is the same in any order."""
    n_i = z.shape[1]
    n_r, n_c = 2 * reach + 1, 2 * half + 1
    s = np.zeros((n_r, n_c))
    cnt = np.zeros((n_r, n_c))
    col = np.empty(n_c)
    sums = np.empty((n_r + 1, n_c + 1))
    counts = np.empty((n_r + 1, n_c + 1))
    cs, cn = sums.reshape(sums.size), counts.reshape(counts.size)   # (flat views)
    inv = np.empty(n_c)
    cols = np.empty(n_c, np.int64)
    for k in range(jc.shape[1]):
        j, c = jc[0, k], jc[1, k]
        zv = z[j, c]
        sign = 1.0 if zv > 0 else (-1.0 if zv < 0 else 0.0)   # (np.sign)
        cap = cap_factor * abs(zv)
        own = j + start - q_start
        for d in range(n_c):
            cc = c - half + d
            cols[d] = min(max(cc, 0), n_i - 1)
            qr = q[own, cols[d]]
            safe = qr if qr != 0 else 1.0
            inv[d] = z[j, cols[d]] / safe if (qr != 0 and 0 <= cc < n_i) else 0.0
        kept = 0
        for r in range(n_r):
            src = j + start + r - reach
            f = 1.0 if 0 <= src < n_rows_total else 0.0
            sq = min(max(src, 0), n_rows_total - 1) - q_start
            for d in range(n_c):
                v = sign * (q[sq, cols[d]] * inv[d] * f)
                ok = v > floor and v <= cap and (v > strong or cons[sq, cols[d]] > level)
                s[r, d] = v if ok else 0.0
                cnt[r, d] = 1.0 if s[r, d] > 0 else 0.0
                kept += 1 if s[r, d] != 0 else 0
        if kept < least:
            continue
        prefix_sums(s, col, sums)
        prefix_sums(cnt, col, counts)
        top = abs(zv)
        for m in range(corners.shape[1]):
            a, b, e, g = corners[0, m], corners[1, m], corners[2, m], corners[3, m]
            if cn[g] - cn[b] - cn[e] + cn[a] >= thr[m]:
                sc = (cs[g] - cs[b] - cs[e] + cs[a]) / root[m]
                if sc > top:
                    top = sc
        best[j, c] = sign * top


@nb.njit(**_JIT)
def mad_without(v, k):  # pragma: no cover - compiled
    """The median absolute deviation from the median of ``v`` (1-D float64) without its
    value ``k``, as NumPy's ``np.median(np.abs(o - np.median(o)))`` of ``o =
    np.delete(v, k)`` (an even count's middle two's ``(a + b) / 2``; NaN with a NaN): an
    order statistic is one of the values, but for the sign of a zero among tied zeros,
    which ``|o - m|`` does not see."""
    n = v.shape[0] - 1
    o = np.empty(n)
    for t in range(n):
        o[t] = v[t] if t < k else v[t + 1]
        if np.isnan(o[t]):
            return np.nan
    if n == 0:
        return np.nan
    o.sort()
    m = _middle(o, n)
    for t in range(n):
        o[t] = abs(o[t] - m)
    o.sort()
    return _middle(o, n)
