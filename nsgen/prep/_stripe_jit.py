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

from nsgen.prep._jit import JIT as _JIT
from nsgen.prep._normalise_jit import normalise_row

TINY = np.float32(np.finfo(np.float32).smallest_subnormal)


# Inner loops index 1-D row views only with ``c + constant`` (``c`` from ``range(n)``): Numba
# wraps negative indices unless LLVM can prove them non-negative, and the wrap test stops the
# loop from vectorising (8x slower).


@nb.njit(**_JIT)
def all_finite(x):  # pragma: no cover - compiled
    """Whether every value of the 3-D float32 array ``x`` is finite (no temporary array)."""
    n_k, n_j, n_i = x.shape
    for k in range(n_k):
        for j in range(n_j):
            row = x[k, j]
            ok = True
            for c in range(n_i):
                ok &= (row[c] - row[c]) == 0  # NaN for NaN and +-inf
            if not ok:
                return False
    return True


@nb.njit(**_JIT)
def _gradient_plane(x, out):  # pragma: no cover - compiled
    """``out[j, i] = |G[j, i]|`` of one angle's plane ``x[j, i]``: step-2 difference along
    columns (backwards at the end)."""
    n_j, n_i = x.shape
    for j in range(n_j):
        src = x[j]
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
def _edge_ratio(a, mean, j, i, r, mj, mi, plate_n, side_n, thr, out_f, out_b, k, j0):
    """Ratio of one column whose side neighbours are mirrored (pragma: compiled)."""
    j_lo, j_hi = mj[r - 1, j], mj[r + 1, j]
    p = mean[i] * side_n
    right = ((_edge_side(a, j_lo, i, r, mi, 1) + _edge_side(a, j, i, r, mi, 1))
             + _edge_side(a, j_hi, i, r, mi, 1)) * plate_n
    left = ((_edge_side(a, j_lo, i, r, mi, -1) + _edge_side(a, j, i, r, mi, -1))
            + _edge_side(a, j_hi, i, r, mi, -1)) * plate_n
    r3 = min(_ratio(p, right), _ratio(p, left))
    if out_f.ndim == 3:
        out_f[k, j - j0, i] = r3
    else:
        out_b[k, j - j0, i] = r3 <= thr


@nb.njit(**_JIT)
def ratio_map_into(x, norm, r, mk, mj, mi, j0, j1, thr, out_f, out_b):  # pragma: no cover
    """Ratio map of rows ``[j0, j1)`` of a ``(angles, rows, columns)`` block.

    The outputs have ``j1 - j0`` rows; the other rows of ``x`` are context only.
    Writes ``R3`` into ``out_f`` if it is 3-D, else ``R3 <= thr`` into ``out_b``.
    ``norm`` empty: ``x`` is the float32 volume. Otherwise ``x`` holds raw counts and
    ``norm = (dark, lo, hi, ln_den)`` (float32 ``(4, rows, columns)``,
    :func:`nsgen.prep.normalise.pixel_constants`): each angle's plane is normalised
    (:func:`nsgen.prep._normalise_jit.normalise_row`, the same float32 values as
    :func:`~nsgen.prep.normalise.flat_field_log`) just before its gradient, so the
    normalised volume is never stored.
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
    raw = norm.shape[0] != 0
    xp = np.empty((n_j, n_i) if raw else (1, 1), dtype=np.float32)  # a normalised plane
    computed = 0  # next angle whose |G| plane is not in the ring yet
    for k in range(n_k):
        while computed <= min(n_k - 1, k + r):
            if raw:
                for j in range(n_j):
                    normalise_row(x[computed, j], norm[0, j], norm[1, j], norm[2, j],
                                  norm[3, j], xp[j])
                _gradient_plane(xp, ring[computed % nr])
            else:
                _gradient_plane(x[computed], ring[computed % nr])
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
        for j in range(j0, j1):
            # plate sum over the row offsets -R..R, side sums over -1, 0, 1
            _sum_rows(plate, mj[:, j], mean)
            s_lo, s_mid, s_hi = side[mj[r - 1, j]], side[j], side[mj[r + 1, j]]
            for c in range(q_hi):
                sj[c] = ((s_lo[c] + s_mid[c]) + s_hi[c]) * plate_n
            pm = mean[v_lo:]
            sr = sj[v_lo:]
            sl = sj[v_lo - r - 1:]
            if want_float:
                dst_f = out_f[k, j - j0, v_lo:]
                for c in range(nv):
                    p = pm[c] * side_n
                    dst_f[c] = min(_ratio(p, sr[c]), _ratio(p, sl[c]))
            else:
                dst_b = out_b[k, j - j0, v_lo:]
                for c in range(nv):
                    p = pm[c] * side_n
                    dst_b[c] = min(_ratio(p, sr[c]), _ratio(p, sl[c])) <= thr
            # columns next to the detector edges: mirrored side neighbours
            for i in range(v_lo):
                _edge_ratio(a, mean, j, i, r, mj, mi, plate_n, side_n, thr, out_f, out_b, k, j0)
            for i in range(v_hi, n_i):
                _edge_ratio(a, mean, j, i, r, mj, mi, plate_n, side_n, thr, out_f, out_b, k, j0)


# --------------------------------------------------------------------------------------------
# windowed counts (mirror rule, missing neighbours skipped) and the STRIPES_MERGE passes
# --------------------------------------------------------------------------------------------


@nb.njit(**_JIT)
def _window_ranges(n, c, lo, hi):  # pragma: no cover - compiled
    """Index ranges ``[a, b)`` whose values make up the mirrored window ``c+lo .. c+hi``.

    Returns three ranges: the in-range part, the part mirrored from below the first index
    (``c + m < 0`` -> ``c - m``) and the part mirrored from past the last (``c + m >= n``).
    Neighbours missing on both sides are skipped. Empty ranges are ``(0, 0)``.
    """
    a1 = b1 = a2 = b2 = a3 = b3 = 0
    if lo <= hi:
        lo_in, hi_in = max(lo, -c), min(hi, n - 1 - c)
        if lo_in <= hi_in:
            a1, b1 = c + lo_in, c + hi_in + 1
        m_hi = min(hi, -c - 1)  # offsets below the first index
        if lo <= m_hi:
            t0, t1 = c - m_hi, min(c - lo, n - 1)
            if t0 <= t1:
                a2, b2 = t0, t1 + 1
        m_lo = max(lo, n - c)  # offsets past the last index
        if m_lo <= hi:
            t0, t1 = max(c - hi, 0), c - m_lo
            if t0 <= t1:
                a3, b3 = t0, t1 + 1
    return a1, b1, a2, b2, a3, b3


@nb.njit(**_JIT)
def _window_sum(p, n, c, lo, hi):  # pragma: no cover - compiled
    """Mirrored window sum ``c+lo .. c+hi`` of a series from its prefix sums ``p``."""
    a1, b1, a2, b2, a3, b3 = _window_ranges(n, c, lo, hi)
    return (p[b1] - p[a1]) + (p[b2] - p[a2]) + (p[b3] - p[a3])


@nb.njit(**_JIT)
def _prefix_along_angles(b, j, e0, w, p):  # pragma: no cover - compiled
    """``p[k, e] = sum of b[:k, j, e0 + e]`` for ``e < w`` (int32 prefix sums over angles)."""
    row = p[0]
    for e in range(w):
        row[e] = 0
    for k in range(b.shape[0]):
        src, prev, row = b[k, j, e0:], row, p[k + 1]
        for e in range(w):
            row[e] = prev[e] + src[e]


@nb.njit(**_JIT)
def count_at_least_rows_first(b, size, need, out):  # pragma: no cover - compiled
    """``out[j, k, i] = (sum of b[., j, i] over the mirrored window k ± size) >= need``.

    ``b`` is 0/1 uint8 ``(angles, rows, columns)``; the result is written rows first.
    Exact integer prefix sums, columns in strips of 256.
    """
    n_k, n_j, n_i = b.shape
    strip = 256
    p = np.empty((n_k + 1, strip), dtype=np.int32)
    for j in range(n_j):
        for e0 in range(0, n_i, strip):
            w = min(n_i, e0 + strip) - e0
            _prefix_along_angles(b, j, e0, w, p)
            for k in range(n_k):
                a1, b1, a2, b2, a3, b3 = _window_ranges(n_k, k, -size, size)
                pa1, pb1, pa2, pb2, pa3, pb3 = p[a1], p[b1], p[a2], p[b2], p[a3], p[b3]
                dst = out[j, k, e0:]
                for e in range(w):
                    cnt = (pb1[e] - pa1[e]) + (pb2[e] - pa2[e]) + (pb3[e] - pa3[e])
                    dst[e] = cnt >= need


#: ``(w * PACK_MAGIC) >> 56`` is the byte whose bits, most significant first, are the
#: eight 0/1 bytes of the native uint64 ``w`` in memory order (``np.packbits`` order): each
#: byte's bit lands in the top byte exactly once and no partial product carries into it
PACK_MAGIC = np.uint64(0x8040201008040201)


@nb.njit(**_JIT)
def _pack_at_least(cnt, need, flags, dst):  # pragma: no cover - compiled
    """``dst = np.packbits(cnt >= need)`` (``flags``: scratch of at least ``8 * len(dst)``
    bytes)."""
    n = cnt.shape[0]
    for c in range(n):
        flags[c] = cnt[c] >= need
    for c in range(n, 8 * dst.shape[0]):
        flags[c] = 0
    words = flags.view(np.uint64)
    for q in range(dst.shape[0]):
        dst[q] = np.uint8((words[q] * PACK_MAGIC) >> np.uint64(56))


@nb.njit(**_JIT)
def count_at_least_packed(b, size, need, out):  # pragma: no cover - compiled
    """:func:`count_at_least_rows_first` written bit-packed along columns.

    ``out[j, k]`` is ``np.packbits`` of the 0/1 row ``(count >= need)[j, k, :]``
    (``ceil(columns / 8)`` bytes, most significant bit first, the last byte zero-padded).
    A running count per detector row, updated angle by angle with the rows that enter and
    leave the mirrored window (``2 * size + 1 <= angles``: the window mirrors at one end
    at a time; otherwise from prefix sums, :func:`_count_packed_prefix`).
    """
    n_k, n_j, n_i = b.shape
    if n_k < 2 * size + 1:
        _count_packed_prefix(b, size, need, out)
        return
    cnt = np.empty(n_i, np.int32)
    flags = np.zeros(out.shape[2] * 8, np.uint8)
    for j in range(n_j):
        # angle 0: the window is rows 0 .. size and, mirrored, 1 .. size again
        first = b[0, j]
        for c in range(n_i):
            cnt[c] = first[c]
        for t in range(1, size + 1):
            row = b[t, j]
            for c in range(n_i):
                cnt[c] += 2 * row[c]
        _pack_at_least(cnt, need, flags, out[j, 0])
        for k in range(1, n_k):
            if k <= size:   # [0, k+size] + mirrored [2k+1, k+size]
                add, sub1, sub2 = b[k + size, j], b[2 * k - 1, j], b[2 * k, j]
                for c in range(n_i):
                    cnt[c] += 2 * np.int32(add[c]) - (np.int32(sub1[c]) + sub2[c])
            elif k < n_k - size:   # [k-size, k+size]
                add, sub = b[k + size, j], b[k - size - 1, j]
                for c in range(n_i):
                    cnt[c] += np.int32(add[c]) - sub[c]
            else:   # [k-size, n-1] + mirrored [k-size, 2k-n]
                add1, add2, sub = b[2 * k - 1 - n_k, j], b[2 * k - n_k, j], b[k - 1 - size, j]
                for c in range(n_i):
                    cnt[c] += (np.int32(add1[c]) + add2[c]) - 2 * np.int32(sub[c])
            _pack_at_least(cnt, need, flags, out[j, k])


@nb.njit(**_JIT)
def _count_packed_prefix(b, size, need, out):  # pragma: no cover - compiled
    """:func:`count_at_least_packed` from prefix sums along angles (any window length)."""
    n_k, n_j, n_i = b.shape
    strip = 256
    p = np.empty((n_k + 1, strip), dtype=np.int32)
    cnt = np.empty(strip, dtype=np.int32)
    flags = np.zeros(strip, dtype=np.uint8)
    for j in range(n_j):
        for e0 in range(0, n_i, strip):
            w = min(n_i, e0 + strip) - e0
            _prefix_along_angles(b, j, e0, w, p)
            for k in range(n_k):
                a1, b1, a2, b2, a3, b3 = _window_ranges(n_k, k, -size, size)
                pa1, pb1, pa2, pb2, pa3, pb3 = p[a1], p[b1], p[a2], p[b2], p[a3], p[b3]
                for e in range(w):
                    cnt[e] = (pb1[e] - pa1[e]) + (pb2[e] - pa2[e]) + (pb3[e] - pa3[e])
                _pack_at_least(cnt[:w], need, flags, out[j, k, e0 >> 3:(e0 + w + 7) >> 3])


@nb.njit(**_JIT)
def depth_unpack(packed, b0, hd, t_d, out, active, kept):  # pragma: no cover - compiled
    """STRIPES_MERGE pass 2 on bit-packed candidates, unpacking only the rows it keeps.

    ``packed`` is ``(block rows, angles, ceil(columns / 8))`` (``np.packbits`` along
    columns, rows first); ``out`` (uint8 0/1, ``(n_out, angles, columns)``) receives block
    rows ``b0 .. b0 + n_out - 1`` with the depth pass applied (``hd < 0``: not applied):
    a set voxel is cleared if more than ``t_d`` voxels are set in rows ``j ± hd`` of the
    block (same angle and column; mirror rule, as :func:`depth_pass`). Only the set
    voxels (sparse) are counted, on the packed rows, so the halo rows are never unpacked;
    angles are the outer loop, so the packed rows of a window stay in cache from one
    output row to the next. ``active[q, i]`` (uint8) is set to whether column ``i`` of
    output row ``q`` holds a set voxel after the pass, and ``kept`` (like ``packed``, with
    ``n_out`` rows) to the result bit-packed.
    """
    n_block, n_k, n_b = packed.shape
    n_out, _, n_i = out.shape
    ranges = np.zeros((n_out, 6), dtype=np.intp)
    for q in range(n_out):
        if hd >= 0:
            a1, e1, a2, e2, a3, e3 = _window_ranges(n_block, b0 + q, -hd, hd)
            ranges[q, 0], ranges[q, 1], ranges[q, 2] = a1, e1, a2
            ranges[q, 3], ranges[q, 4], ranges[q, 5] = e2, a3, e3
        for i in range(n_i):
            active[q, i] = 0
    for k in range(n_k):
        for q in range(n_out):
            src = packed[b0 + q, k]
            dst = out[q, k]
            keep = kept[q, k]
            act = active[q]
            _unpack_row(src, dst)
            for cb in range(n_b):
                v = src[cb]
                keep[cb] = v
                if v == 0:
                    continue
                if hd >= 0:
                    clear = 0
                    for t in range(8):
                        if not (v >> (7 - t)) & 1:
                            continue
                        cnt = 0
                        for g in range(0, 6, 2):
                            for rr in range(ranges[q, g], ranges[q, g + 1]):
                                cnt += (packed[rr, k, cb] >> (7 - t)) & 1
                        if cnt > t_d:
                            dst[8 * cb + t] = 0
                            clear |= 1 << (7 - t)
                    v = v & ~clear
                    keep[cb] = v
                for t in range(8):
                    if (v >> (7 - t)) & 1:
                        act[8 * cb + t] = 1


@nb.njit(**_JIT)
def depth_pass(m, hd, t_d):  # pragma: no cover - compiled
    """STRIPES_MERGE pass 2 in place on a 0/1 uint8 mask ``m[j, k, i]`` (rows first).

    Clears set voxels with more than ``t_d`` set voxels in ``j ± hd`` (same angle and
    column). Angles are independent, so each angle's counts (prefix sums over rows) are
    taken before it is cleared.
    """
    n_j, n_k, n_i = m.shape
    p = np.empty((n_j + 1, n_i), dtype=np.int32)
    for k in range(n_k):
        row = p[0]
        for i in range(n_i):
            row[i] = 0
        for j in range(n_j):
            src, prev, row = m[j, k], row, p[j + 1]
            for i in range(n_i):
                row[i] = prev[i] + src[i]
        for j in range(n_j):
            a1, b1, a2, b2, a3, b3 = _window_ranges(n_j, j, -hd, hd)
            pa1, pb1, pa2, pb2, pa3, pb3 = p[a1], p[b1], p[a2], p[b2], p[a3], p[b3]
            dst = m[j, k]
            for i in range(n_i):
                cnt = (pb1[i] - pa1[i]) + (pb2[i] - pa2[i]) + (pb3[i] - pa3[i])
                if cnt > t_d:
                    dst[i] = 0


@nb.njit(**_JIT)
def length_passes(m, hl, t_v, active, bits):  # pragma: no cover - compiled
    """STRIPES_MERGE passes 3 and 4 in place on a 0/1 uint8 mask ``m[j, k, i]`` (rows first).

    Pass 3 clears set voxels with fewer than ``t_v`` set voxels in ``k ± hl``; pass 4, on the
    pass-3 result, those with fewer than ``hl``. Only the columns with ``active[j, i]`` (any
    voxel set) are visited, a sinogram at a time; ``active`` is updated. ``bits`` is empty
    or ``m`` bit-packed along columns: then the active columns are gathered from it (a
    sinogram's packed bits stay in cache where its unpacked rows do not). The passes only
    clear voxels, so only the voxels they clear are written back to ``m``.
    """
    n_j, n_k, n_i = m.shape
    packed = bits.shape[0] != 0
    p = np.empty(n_k + 1, dtype=np.int32)
    cols = np.empty(n_i, dtype=np.intp)
    buf = np.empty((n_i, n_k), dtype=np.uint8)
    for j in range(n_j):
        n_c = 0
        for i in range(n_i):
            if active[j, i]:
                cols[n_c] = i
                n_c += 1
        if n_c == 0:
            continue
        for k in range(n_k):  # gather the active columns, a detector row at a time
            if packed:
                row = bits[j, k]
                for q in range(n_c):
                    i = cols[q]
                    buf[q, k] = (row[i >> 3] >> (7 - (i & 7))) & 1
            else:
                for q in range(n_c):
                    buf[q, k] = m[j, k, cols[q]]
        for q in range(n_c):
            col = buf[q]
            i = cols[q]
            for need in (t_v, hl):  # Jacobi: counts from the previous pass's column
                p[0] = 0
                for k in range(n_k):
                    p[k + 1] = p[k] + col[k]
                for k in range(n_k):
                    if col[k] and _window_sum(p, n_k, k, -hl, hl) < need:
                        col[k] = 0
                        m[j, k, i] = 0
            active[j, i] = col.any()


@nb.njit(**_JIT)
def _side_columns(active_row, i, lo, hi, out):  # pragma: no cover - compiled
    """Active columns among the mirrored neighbours ``i+lo .. i+hi`` of column ``i``."""
    n_i = active_row.shape[0]
    n = 0
    for off in range(lo, hi + 1):
        t = i + off
        if t < 0 or t >= n_i:
            t = i - off
            if t < 0 or t >= n_i:
                continue
        if active_row[t]:
            out[n] = t
            n += 1
    return n


@nb.njit(**_JIT)
def fill_passes(m, width, active):  # pragma: no cover - compiled
    """STRIPES_MERGE pass 5 in place on a 0/1 uint8 mask ``m[j, k, i]``, ``width`` iterations.

    An unset voxel is set if there are set voxels in both ``i-hw .. i-1`` and
    ``i+1 .. i+hw`` (``hw = width // 2``), or in both ``k-2w .. k-1`` and ``k+1 .. k+2w``.
    Set voxels only ever lie in active columns, so per sinogram only columns with an active
    column in reach are visited; a sinogram that stops changing is done.
    """
    n_j, n_k, n_i = m.shape
    hw, w2 = width // 2, 2 * width
    left = np.empty(max(hw, 1), dtype=np.intp)
    right = np.empty(max(hw, 1), dtype=np.intp)
    p = np.empty(n_k + 1, dtype=np.int32)
    fills = np.empty((n_i, n_k), dtype=np.uint8)  # per column, applied after the sweep
    changed = np.empty(n_i, dtype=np.intp)
    for j in range(n_j):
        act = active[j]
        if not act.any():
            continue
        for _ in range(width):
            n_changed = 0
            for i in range(n_i):
                n_l = _side_columns(act, i, -hw, -1, left)
                n_r = _side_columns(act, i, 1, hw, right) if n_l else 0
                vertical = act[i] != 0
                if n_r == 0 and not vertical:
                    continue
                if vertical:
                    p[0] = 0
                    for k in range(n_k):
                        p[k + 1] = p[k] + m[j, k, i]
                fill = fills[i]
                any_fill = False
                for k in range(n_k):
                    fill[k] = 0
                    if m[j, k, i]:
                        continue
                    if n_r:
                        found_l = False
                        for q in range(n_l):
                            if m[j, k, left[q]]:
                                found_l = True
                                break
                        if found_l:
                            for q in range(n_r):
                                if m[j, k, right[q]]:
                                    fill[k] = 1
                                    break
                    if not fill[k] and vertical:
                        if (_window_sum(p, n_k, k, -w2, -1) > 0
                                and _window_sum(p, n_k, k, 1, w2) > 0):
                            fill[k] = 1
                    any_fill = any_fill or fill[k] != 0
                if any_fill:
                    changed[n_changed] = i
                    n_changed += 1
            if n_changed == 0:
                break
            for q in range(n_changed):
                i = changed[q]
                fill = fills[i]
                for k in range(n_k):
                    if fill[k]:
                        m[j, k, i] = 1
                act[i] = 1


#: the 8 unpacked bytes of every byte value, as one native uint64 each (memory order)
_UNPACKED = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).view(np.uint64)[:, 0]


@nb.njit(**_JIT)
def _unpack_row(src, dst):  # pragma: no cover - compiled
    """``dst[c] = bit c of src`` (``np.unpackbits`` order): 8 columns per table look-up."""
    n_c = dst.shape[0]
    full = n_c >> 3
    words = dst[:full * 8].view(np.uint64)
    for c in range(full):
        words[c] = _UNPACKED[src[c]]
    for c in range(full * 8, n_c):
        dst[c] = (src[c >> 3] >> (7 - (c & 7))) & 1


@nb.njit(**_JIT)
def unpack_bits(packed, out):  # pragma: no cover - compiled
    """``np.unpackbits(packed, axis=-1, count=out.shape[-1])`` into ``out`` (3-D, uint8,
    C-contiguous)."""
    n_a, n_b, n_c = out.shape
    for a in range(n_a):
        for b in range(n_b):
            _unpack_row(packed[a, b], out[a, b])
