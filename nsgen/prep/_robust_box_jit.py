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


_U1, _U2 = np.uint64(1), np.uint64(2)
#: columns of a row's window :func:`box_block` builds at a time by default (a whole row of
#: the bench scan's 2560: each tile's calls cost more than its columns staying in the cache
#: gains; the 24 calls of the bench replay: tiles of 256 0.45 CPU-s, 1024 0.38, 4096 0.36)
TILE = 4096


@nb.njit(**_JIT)
def _window_row(q, iv, f, rin, cap, c0, c1, a0, a1, b0, b1, e0, e1, pp, pn, first
                ):  # pragma: no cover - compiled
    """Columns ``c0 .. c1 - 1`` of one window row (the offsets ``q`` times ``iv`` times
    ``f``) added to the column sums of the rows above it (``a0``, ``b0``, ``e0``; none
    for the ``first``) into ``a1`` (raw), ``b1`` (sign +1, capped), ``e1`` (sign -1,
    capped), and its values of each sign in the volume into ``pp``, ``pn`` (1, else 0).
    (Indices unsigned, the inner loop a function of its own: vector code.)"""
    for t in range(c0, c1):
        c = np.uint64(t)
        r = q[c] * iv[c] * f
        m = -r   # (the sign -1's value: -1.0 * r exactly)
        pp[c + _U1] = np.uint8((r > 0) & rin)
        pn[c + _U1] = np.uint8((m > 0) & rin)
        vp = cap if r > cap else r
        vn = cap if m > cap else m
        if first:
            a1[c + _U2] = r
            b1[c + _U2] = vp
            e1[c + _U2] = vn
        else:
            a1[c + _U2] = a0[c + _U2] + r
            b1[c + _U2] = b0[c + _U2] + vp
            e1[c + _U2] = e0[c + _U2] + vn


@nb.njit(**_JIT)
def _along(a, b, e, c0, c1):  # pragma: no cover - compiled
    """Columns ``c0 + 2 .. c1 + 1`` of three prefix sums' row, each the one before plus
    its column sum (three chains at once)."""
    x, y, z = a[c0 + 1], b[c0 + 1], e[c0 + 1]
    for t in range(c0 + 2, c1 + 2):
        c = np.uint64(t)
        x = x + a[c]
        a[c] = x
        y = y + b[c]
        b[c] = y
        z = z + e[c]
        e[c] = z


@nb.njit(**_JIT)
def _window_tile(qv, inv, srcq, r_in, j, cap, c0, c1, s_raw, s_vp, s_vn, pos
                 ):  # pragma: no cover - compiled
    """Columns ``c0 .. c1 - 1`` of row ``j``'s window (:func:`box_block`) into its prefix
    sums (columns ``c0 + 2 .. c1 + 1``, the columns before them done): of the raw values
    ``s_raw`` and of the values of each sign capped (``s_vp``, ``s_vn``), the additions
    of :func:`prefix_sums` in its order (down the rows, then along the columns, each from
    the first element on); ``pos`` ``(2, rows, padded columns)`` the values of each sign
    in the volume (1, else 0)."""
    for d in range(srcq.shape[1]):
        rin = r_in[j, d]
        _window_row(qv[srcq[j, d]], inv[j], 1.0 if rin else 0.0, rin, cap, c0, c1,
                    s_raw[d], s_raw[d + 1], s_vp[d], s_vp[d + 1], s_vn[d], s_vn[d + 1],
                    pos[0, d], pos[1, d], d == 0)
    for d in range(1, srcq.shape[1] + 1):
        _along(s_raw[d], s_vp[d], s_vn[d], c0, c1)


@nb.njit(**_JIT)
def _runs(ps, rs, x0, x1, kw):  # pragma: no cover - compiled
    """``rs[x]`` = how many of ``ps[x], ps[x + 1], ...`` (0 or 1) are 1 before the first
    0, counted up to ``kw``, for ``x`` in ``x0 .. x1 - 1``."""
    for t in range(x0, x1):
        rs[np.uint64(t)] = 0
    for k in range(kw - 1, -1, -1):
        _run_step(ps, rs, x0, x1, np.uint64(k))


@nb.njit(**_JIT)
def _run_step(ps, rs, x0, x1, k):  # pragma: no cover - compiled
    for t in range(x0, x1):
        x = np.uint64(t)
        rs[x] = (rs[x] + np.uint8(1)) * ps[x + k]


@nb.njit(**_JIT)
def _least(run, lo, hi, w1, mg, x0, x1):  # pragma: no cover - compiled
    """``mg[x]`` = the least of ``w1`` and rows ``lo .. hi - 1`` of ``run`` at ``x``, for
    ``x`` in ``x0 .. x1 - 1``: the widest box of those rows from column ``x`` whose
    values are all of the runs' sign."""
    cap = np.uint8(w1)
    for t in range(x0, x1):
        x = np.uint64(t)
        mg[x] = min(cap, run[lo, x])
    for r in range(lo + 1, hi):
        _least_step(run[r], mg, x0, x1)


@nb.njit(**_JIT)
def _least_step(row, mg, x0, x1):  # pragma: no cover - compiled
    for t in range(x0, x1):
        x = np.uint64(t)
        mg[x] = min(mg[x], row[x])


@nb.njit(**_JIT)
def _mark(mg, w0, any_box, x0, x1):  # pragma: no cover - compiled
    """``any_box[x]`` |= ``mg[x] >= w0``."""
    least = np.uint8(w0)
    for t in range(x0, x1):
        x = np.uint64(t)
        any_box[x] |= np.uint8(mg[x] >= least)


@nb.njit(**_JIT)
def _boxes_at(x0, x1, j, sign, n_i, run, s_cq, s_val, s_raw, srcq, r_in, g_in, g_top,
              g_height, g_w0, g_w1, share, out_frac, even, own, mg, any_box, at
              ):  # pragma: no cover - compiled
    """The boxes of sign ``sign`` at column starts ``x0 .. x1 - 1`` of row ``j``
    (:func:`box_block`; ``run`` the runs of that sign): the scores of those that pass
    into ``own`` where they beat it. Each group's widest box of one sign from each
    column (``mg``) first, across the columns (vector code); then the columns where a
    box of some group reaches its least width, one by one."""
    for t in range(x0, x1):
        any_box[np.uint64(t)] = 0
    for g in range(g_top.size):
        if g_in[g]:
            a = g_top[g] + 1
            _least(run, a, a + g_height[g], g_w1[g], mg[g], x0, x1)
            _mark(mg[g], g_w0[g], any_box, x0, x1)
    n_at = 0
    for x in range(x0, x1):   # (the columns with a box, without a branch)
        at[n_at] = x
        n_at += any_box[x]
    for i in range(n_at):
        x = at[i]
        for g in range(g_top.size):
            if not g_in[g] or mg[g, x] < g_w0[g]:
                continue
            a, h = g_top[g] + 1, g_height[g]
            q0 = srcq[j, a]   # (the box's rows: q rows q0 .. q0 + h - 1, all in)
            for w in range(g_w0[g], mg[g, x] + 1):
                n = h * w
                if _sum(s_cq, q0, q0 + h, x, x + w) < share * n:
                    continue
                tot = _sum(s_val, a, a + h, x, x + w)
                sc = tot / math.sqrt(n)
                beats = False
                for c in range(x - 1, x - 1 + w):
                    if sc > own[c]:
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
                    if sc > own[c]:
                        own[c] = sc


@nb.njit(**_JIT)
def box_block(qv, inv, ok_c, srcq, r_in, g_top, g_height, g_w0, g_w1, cap, share, out_frac,
              even, best, tile=TILE):  # pragma: no cover - compiled
    """Every box of every row of one angle block, both signs: ``best`` ``(rows, columns)``,
    zero on entry, takes ``sign * sum / sqrt(size)`` of the strongest box passing the
    tests of :func:`nsgen.prep.robust_box.box_scores` that holds each value (all of its
    middle row's sign), else 0.

    Row ``j``'s window: rows ``srcq[j]`` of ``qv`` ``(q rows, columns)`` times ``inv[j]``
    (this row's units), zero outside the volume (``r_in[j]``; its middle row is row
    ``j``, its first and last the rows just outside the tallest box), columns padded by
    one each side; ``ok_c`` ``(q rows, columns)`` the rank-consistent values. The boxes:
    rows ``g_top + 1 .. g_top + g_height`` of the window by ``g_w0 .. g_w1`` columns per
    group. The window's prefix sums are built per row, ``tile`` columns at a time,
    and the boxes starting in a tile's columns tested as soon as the columns they read
    are summed (no maps of every row's window). A box's score is its capped values' sum
    over its prefix sums, the additions of NumPy's cumulative sums in NumPy's order
    (:func:`prefix_sums`), so the scores are those of the NumPy formulation bit for bit;
    what is skipped is skipped exactly:

    * the values of the box's sign: each window row's run of them from each column on
      (counted up to the widest box), so a box's rows and columns are all of its sign
      where every row's run reaches its width (no box holds a column start whose middle
      row is of the other sign): each group's widest such box from each column is
      worked out across the columns first (:func:`_least`), and only the columns where
      some group's reaches its least width are visited;
    * counts (rank consistent) are integers, exact in any order: the box's rows are all
      in the volume, a range of the q rows, counted on the prefix sums of all of them;
      the raw sums of the sign -1 are the negated sums of the sign +1 (IEEE rounding is
      symmetric: equal up to the sign of a zero, which no comparison sees);
    * each sign's strongest passing box per value is kept apart, the two signs' boxes
      tested tile by tile: a value's boxes all hold its middle row, so only one sign
      has boxes there (no tie between the signs to break); a box whose score beats its
      sign's strongest in none of its columns skips the evenness and stand-out tests (it
      would change nothing): within one sign the strongest passing score is the same
      whatever the boxes' order.
    """
    n_j, n_i = inv.shape
    n_w = srcq.shape[1]
    n_q = qv.shape[0]
    n_p = n_i + 2
    kw = 1
    for g in range(g_top.size):
        kw = max(kw, g_w1[g])
    # the rank-consistent values of the q rows, counted
    cq = np.zeros((n_q, n_p))
    for r in range(n_q):
        for c in range(n_i):
            cq[r, c + 1] = 1.0 if ok_c[r, c] else 0.0
    counts = np.empty((n_q + 1, n_p + 1))
    prefix_sums(cq, np.empty(n_p), counts)
    s_cq = counts.astype(np.int32)   # (integers: exact; half the bytes)
    s_raw = np.zeros((n_w + 1, n_p + 1))
    s_vp = np.zeros((n_w + 1, n_p + 1))
    s_vn = np.zeros((n_w + 1, n_p + 1))
    # (zero beyond the last column: runs end there)
    pos = np.zeros((2, n_w, n_p + kw), np.uint8)
    run = np.zeros((2, n_w, n_p), np.uint8)
    own = np.zeros((2, n_i))
    rows_in = np.empty(n_w + 1, np.int64)
    g_in = np.empty(g_top.size, np.bool_)
    mg = np.zeros((g_top.size, n_p), np.uint8)
    any_box = np.zeros(n_p, np.uint8)
    at = np.empty(n_p, np.int64)
    for j in range(n_j):
        rows_in[0] = 0
        for d in range(n_w):
            rows_in[d + 1] = rows_in[d] + (1 if r_in[j, d] else 0)
        for g in range(g_top.size):
            a, h = g_top[g] + 1, g_height[g]
            g_in[g] = rows_in[a + h] - rows_in[a] == h
        own[:] = 0.0
        x0 = 1
        for c0 in range(0, n_i, tile):
            c1 = min(n_i, c0 + tile)
            _window_tile(qv, inv, srcq, r_in, j, cap, c0, c1, s_raw, s_vp, s_vn, pos)
            if c1 < n_i:
                x1 = max(x0, c1 - kw + 1)   # (the columns a box from there reads: summed)
            else:
                x1 = n_i + 1
                for d in range(1, n_w + 1):   # (the padding column: + 0.0 as NumPy adds it)
                    s_raw[d, n_p] = s_raw[d, n_p - 1] + 0.0
                    s_vp[d, n_p] = s_vp[d, n_p - 1] + 0.0
                    s_vn[d, n_p] = s_vn[d, n_p - 1] + 0.0
            for s in range(2):
                for d in range(1, n_w - 1):   # (the rows a box may hold)
                    _runs(pos[s, d], run[s, d], x0, x1, kw)
            _boxes_at(x0, x1, j, 1.0, n_i, run[0], s_cq, s_vp, s_raw, srcq, r_in, g_in,
                      g_top, g_height, g_w0, g_w1, share, out_frac, even, own[0], mg,
                      any_box, at)
            _boxes_at(x0, x1, j, -1.0, n_i, run[1], s_cq, s_vn, s_raw, srcq, r_in, g_in,
                      g_top, g_height, g_w0, g_w1, share, out_frac, even, own[1], mg,
                      any_box, at)
            x0 = x1
        for c in range(n_i):
            if own[0, c] >= own[1, c]:
                best[j, c] = own[0, c]
            else:
                best[j, c] = -own[1, c]
