"""Compiled (Numba) kernels of the Larix-2 stripe detector; see :mod:`nsgen.prep.stripe_detect`.

Why compiled: the ratio map is about forty stencil operations per voxel. As NumPy whole-array
passes it costs ~13 ns per voxel (memory traffic), fused and cache-blocked here ~1 ns, which
is what lets ``nsgen mask`` run at a few times the read time of a scan.

Exactness: every output voxel is the same sequence of float32 operations (same operands, same
order, no fast-math reassociation) whatever the block or strip it is computed in, so chunked
and whole-volume results are bit-identical. The order is the one documented in
:func:`nsgen.prep.stripe_detect.ratio_map`.

Mirror tables: ``m?[d, c]`` is the index of the neighbour at offset ``d - R`` of centre ``c``
along that axis (``c + m`` if in range, else ``c - m``, else ``c`` itself), as built by
``stripe_detect._mirror_rows``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_JIT = dict(nogil=True, cache=True, boundscheck=False, error_model="numpy")
TINY = np.float32(np.finfo(np.float32).smallest_subnormal)


# Inner loops index 1-D row views only with ``c + constant`` (``c`` from ``range(n)``): Numba
# wraps negative indices unless LLVM can prove them non-negative, and the wrap test stops the
# loop from vectorising (8x slower).


@nb.njit(**_JIT)
def _gradient_plane(x, k, out):  # pragma: no cover - compiled
    """``out[j, i] = |G[k, j, i]|``: step-2 difference along columns (backwards at the end)."""
    n_j, n_i = x.shape[1], x.shape[2]
    for j in range(n_j):
        src = x[k, j]
        dst = out[j]
        for c in range(n_i - 2):
            dst[c] = abs(src[c + 2] - src[c])
        for i in range(n_i - 2, n_i):
            dst[i] = abs(src[i - 2] - src[i])


@nb.njit(**_JIT)
def _add_into(dst, s0, s1, s2, s3, n_src, first):  # pragma: no cover - compiled
    """``dst = (((dst + s0) + s1) + s2) + s3`` over the first ``n_src`` sources, in order.

    Without the ``dst`` term if ``first``. Several sources per pass keep the partial sum in
    a register (a pass per source costs 2.5x more).
    """
    w = dst.shape[0]
    if first:
        if n_src == 1:
            for c in range(w):
                dst[c] = s0[c]
        elif n_src == 2:
            for c in range(w):
                dst[c] = s0[c] + s1[c]
        elif n_src == 3:
            for c in range(w):
                dst[c] = (s0[c] + s1[c]) + s2[c]
        else:
            for c in range(w):
                dst[c] = ((s0[c] + s1[c]) + s2[c]) + s3[c]
    else:
        if n_src == 1:
            for c in range(w):
                dst[c] = dst[c] + s0[c]
        elif n_src == 2:
            for c in range(w):
                dst[c] = (dst[c] + s0[c]) + s1[c]
        elif n_src == 3:
            for c in range(w):
                dst[c] = ((dst[c] + s0[c]) + s1[c]) + s2[c]
        else:
            for c in range(w):
                dst[c] = (((dst[c] + s0[c]) + s1[c]) + s2[c]) + s3[c]


@nb.njit(**_JIT)
def _sum_plane_rows(ring, planes, j, dst):  # pragma: no cover - compiled
    """``dst = sum over d of ring[planes[d], j]``, ``d`` in order."""
    w = dst.shape[0]
    n = planes.shape[0]
    for d0 in range(0, n, 4):
        m = min(4, n - d0)
        s0 = ring[planes[d0], j]
        s1 = ring[planes[min(d0 + 1, n - 1)], j]
        s2 = ring[planes[min(d0 + 2, n - 1)], j]
        s3 = ring[planes[min(d0 + 3, n - 1)], j]
        _add_into(dst, s0, s1, s2, s3, m, d0 == 0)


@nb.njit(**_JIT)
def _sum_rows(arr, rows, dst):  # pragma: no cover - compiled
    """``dst = sum over d of arr[rows[d], :len(dst)]``, ``d`` in order."""
    w = dst.shape[0]
    n = rows.shape[0]
    for d0 in range(0, n, 4):
        m = min(4, n - d0)
        s0 = arr[rows[d0], :w]
        s1 = arr[rows[min(d0 + 1, n - 1)], :w]
        s2 = arr[rows[min(d0 + 2, n - 1)], :w]
        s3 = arr[rows[min(d0 + 3, n - 1)], :w]
        _add_into(dst, s0, s1, s2, s3, m, d0 == 0)


@nb.njit(**_JIT)
def _edge_side(a, j, i, r, mi, sign):  # pragma: no cover - compiled
    """Sum of ``|G|`` over columns ``i + sign*1 .. i + sign*R`` of ring row ``j`` (mirrored).

    Summed in increasing column order, like the direct sums.
    """
    t = np.float32(0.0)
    if sign > 0:
        for m in range(1, r + 1):
            t += a[j, mi[r + m, i]]
    else:
        for m in range(-r, 0):
            t += a[j, mi[r + m, i]]
    return t


@nb.njit(**_JIT)
def _ratio(p, s):  # pragma: no cover - compiled
    """``min(p, s) / max(p, s)``, 0 if either is 0 (``p``, ``s`` >= 0)."""
    return min(p, s) / max(max(p, s), TINY)


@nb.njit(**_JIT)
def _edge_ratio(a, mean, j, i, r, mj, mi, plate_n, side_n, thr, out_f, out_b, k):
    """Ratio of one column whose side neighbours are mirrored (pragma: compiled)."""
    j_lo, j_hi = mj[r - 1, j], mj[r + 1, j]
    p = mean[i] * side_n
    right = ((_edge_side(a, j_lo, i, r, mi, 1) + _edge_side(a, j, i, r, mi, 1))
             + _edge_side(a, j_hi, i, r, mi, 1)) * plate_n
    left = ((_edge_side(a, j_lo, i, r, mi, -1) + _edge_side(a, j, i, r, mi, -1))
            + _edge_side(a, j_hi, i, r, mi, -1)) * plate_n
    r3 = min(_ratio(p, right), _ratio(p, left))
    if out_f.ndim == 3:
        out_f[k, j, i] = r3
    else:
        out_b[k, j, i] = r3 <= thr


@nb.njit(**_JIT)
def ratio_map_into(x, r, mk, mj, mi, thr, out_f, out_b):  # pragma: no cover - compiled
    """Ratio map of a ``(angles, rows, columns)`` block.

    Writes ``R3`` into ``out_f`` if it is 3-D, else ``R3 <= thr`` into ``out_b``.
    ``ratio(mp, mr)`` with ``mp = P / (2R+1)^2`` and ``mr = S / 3R`` is evaluated as
    ``ratio(3R * P, (2R+1)^2 * S)`` (one division instead of three). The left sum of column
    ``i`` is the right sum of column ``i - R - 1`` (same terms, same order), so one row of
    side sums serves both; columns whose neighbours are mirrored are done one by one.
    """
    n_k, n_j, n_i = x.shape
    nr = 2 * r + 1
    ring = np.empty((nr, n_j, n_i), dtype=np.float32)  # |G| of the angles k-R .. k+R
    plate = np.empty((n_j, n_i), dtype=np.float32)
    side = np.empty((n_j, n_i), dtype=np.float32)
    mean = np.empty(n_i, dtype=np.float32)
    sj = np.empty(n_i, dtype=np.float32)
    plate_n = np.float32(nr * nr)
    side_n = np.float32(3 * r)
    want_float = out_f.ndim == 3
    # right sums are formed for columns [0, q_hi); direct (unmirrored) columns [v_lo, v_hi)
    q_hi = max(n_i - r, 0)
    v_lo = min(r + 1, n_i)
    v_hi = max(n_i - r, v_lo)
    nv = v_hi - v_lo
    planes = np.empty(nr, dtype=np.intp)
    computed = 0  # next angle whose |G| plane is not in the ring yet
    for k in range(n_k):
        while computed <= min(n_k - 1, k + r):
            _gradient_plane(x, computed, ring[computed % nr])
            computed += 1
        # plate column sums over the angle offsets -R..R (fixed row, column)
        for d in range(nr):
            planes[d] = mk[d, k] % nr
        for j in range(n_j):
            _sum_plane_rows(ring, planes, j, plate[j])
        # right sums over i+1..i+R of the columns [0, q_hi)
        a = ring[k % nr]
        for j in range(n_j):
            src = a[j, 1:]  # src[c + m - 1]: column c + m
            dst = side[j]
            for c in range(q_hi):
                dst[c] = src[c]
            for m in range(1, r):
                for c in range(q_hi):
                    dst[c] += src[c + m]
        for j in range(n_j):
            # plate sum over the row offsets -R..R, side sums over -1, 0, 1
            _sum_rows(plate, mj[:, j], mean)
            s_lo, s_mid, s_hi = side[mj[r - 1, j]], side[j], side[mj[r + 1, j]]
            for c in range(q_hi):
                sj[c] = ((s_lo[c] + s_mid[c]) + s_hi[c]) * plate_n
            pm = mean[v_lo:]
            sr = sj[v_lo:]
            sl = sj[v_lo - r - 1:]
            if want_float:
                dst_f = out_f[k, j, v_lo:]
                for c in range(nv):
                    p = pm[c] * side_n
                    dst_f[c] = min(_ratio(p, sr[c]), _ratio(p, sl[c]))
            else:
                dst_b = out_b[k, j, v_lo:]
                for c in range(nv):
                    p = pm[c] * side_n
                    dst_b[c] = min(_ratio(p, sr[c]), _ratio(p, sl[c])) <= thr
            # columns next to the detector edges: mirrored side neighbours
            for i in range(v_lo):
                _edge_ratio(a, mean, j, i, r, mj, mi, plate_n, side_n, thr, out_f, out_b, k)
            for i in range(v_hi, n_i):
                _edge_ratio(a, mean, j, i, r, mj, mi, plate_n, side_n, thr, out_f, out_b, k)


@nb.njit(**_JIT)
def window_count_at_least(b, size, need, strip, out):  # pragma: no cover - compiled
    """``out[k, j, i] = (sum of b over the mirrored window k-size..k+size) >= need``.

    ``b`` is 0/1 uint8 ``(n_k, n_j, n_i)`` with ``n_k >= 2 * size``; computed from integer
    prefix sums (exact), one sinogram and ``strip`` columns at a time.
    """
    n_k, n_j, n_i = b.shape
    p = np.empty((n_k + 1, strip), dtype=np.int32)
    s = size
    for j in range(n_j):
        for i0 in range(0, n_i, strip):
            w = min(n_i, i0 + strip) - i0
            row = p[0]
            for c in range(w):
                row[c] = 0
            for k in range(n_k):
                src, prev, row = b[k, j, i0:], row, p[k + 1]
                for c in range(w):
                    row[c] = prev[c] + src[c]
            for k in range(n_k):
                hi = min(n_k, k + s + 1)
                lo = max(0, k - s)
                # mirrored offsets: below the first angle (k < s), past the last (k + s >= n_k)
                lo2 = hi2 = lo3 = hi3 = 0
                if k < s:
                    lo2, hi2 = 2 * k + 1, k + s + 1
                if k + s >= n_k:
                    lo3, hi3 = k - s, 2 * k - n_k + 1
                p_hi, p_lo, p_hi2, p_lo2, p_hi3, p_lo3 = p[hi], p[lo], p[hi2], p[lo2], p[hi3], p[lo3]
                dst = out[k, j, i0:]
                for c in range(w):
                    cnt = (p_hi[c] - p_lo[c]) + (p_hi2[c] - p_lo2[c]) + (p_hi3[c] - p_lo3[c])
                    dst[c] = cnt >= need
