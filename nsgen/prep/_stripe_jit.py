"""Compiled (Numba) windowed counts and merge passes of the Larix-2 stripe detector.

See :mod:`nsgen.prep.stripe_detect`; the ratio map is in :mod:`nsgen.prep._ratio_jit`.
Counts are exact integers (running counts or prefix sums, whatever the order); windows
follow the mirror rule (a neighbour at ``+m`` out of range is the one at ``-m``; missing on
both sides: skipped). The merge passes visit only the detector columns that hold set
voxels (stripes are sparse).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from nsgen.prep._jit import JIT as _JIT

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


#: set bits of every byte value
_POPCOUNT = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1).astype(
    np.int64)


@nb.njit(**_JIT)
def depth_unpack(packed, b0, hd, t_d, out, active, kept):  # pragma: no cover - compiled
    """STRIPES_MERGE pass 2 on bit-packed candidates, unpacking only the rows it keeps.

    ``packed`` is ``(block rows, angles, ceil(columns / 8))`` (``np.packbits`` along
    columns, rows first); ``out`` (uint8 0/1, ``(n_out, angles, columns)``) receives block
    rows ``b0 .. b0 + n_out - 1`` with the depth pass applied (``hd < 0``: not applied):
    a set voxel is cleared if more than ``t_d`` voxels are set in rows ``j ± hd`` of the
    block (same angle and column; mirror rule, as :func:`depth_pass`). ``active[q, i]``
    (uint8) is set to whether column ``i`` of output row ``q`` holds a set voxel after the
    pass, and ``kept`` (like ``packed``, with ``n_out`` rows) to the result bit-packed.

    Angle by angle, whichever is cheaper for that angle's candidates: sparse ones are
    counted voxel by voxel on the packed rows (:func:`_depth_sparse`: the halo rows are
    never unpacked), dense ones by unpacking the rows the windows reach and prefix sums
    over rows (:func:`_depth_dense`: a cost that does not grow with the set voxels).
    """
    n_block, n_k, n_b = packed.shape
    n_out, _, n_i = out.shape
    ranges = np.zeros((n_out, 6), dtype=np.intp)
    lo, hi = b0, b0 + n_out   # block rows the windows reach
    for q in range(n_out):
        if hd >= 0:
            a1, e1, a2, e2, a3, e3 = _window_ranges(n_block, b0 + q, -hd, hd)
            ranges[q, 0], ranges[q, 1], ranges[q, 2] = a1, e1, a2
            ranges[q, 3], ranges[q, 4], ranges[q, 5] = e2, a3, e3
            for g in range(0, 6, 2):
                if ranges[q, g + 1] > ranges[q, g]:
                    lo, hi = min(lo, ranges[q, g]), max(hi, ranges[q, g + 1])
        for i in range(n_i):
            active[q, i] = 0
    width = 8 * n_b
    rows = np.zeros((n_block, width), dtype=np.uint8)
    # p[j] = rows lo .. j-1 summed, modulo 2**16: a window's count (at most 2 hd + 1) is
    # the difference modulo 2**16 whatever the block's height
    p = np.zeros((n_block + 1, width), dtype=np.uint16)
    flags = np.zeros(width, dtype=np.uint8)
    dense_cost = (hi - lo) * width + 4 * n_out * width   # rough operation counts
    for k in range(n_k):
        n_set = 0
        for q in range(n_out):
            src = packed[b0 + q, k]
            for cb in range(n_b):
                n_set += _POPCOUNT[src[cb]]
        if hd < 0 or n_set * (2 * hd + 1) * 4 < dense_cost:
            _depth_sparse(packed, b0, k, hd, t_d, ranges, out, active, kept)
        else:
            _depth_dense(packed, b0, k, t_d, ranges, lo, hi, rows, p, flags, out, active,
                         kept)


@nb.njit(**_JIT)
def _depth_sparse(packed, b0, k, hd, t_d, ranges, out, active, kept):  # pragma: no cover
    """:func:`depth_unpack` of angle ``k``, counting each set voxel's window on the packed
    rows."""
    n_out, _, n_b = kept.shape
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
def _depth_dense(packed, b0, k, t_d, ranges, lo, hi, rows, p, flags, out, active,
                 kept):  # pragma: no cover - compiled
    """:func:`depth_unpack` of angle ``k`` from the unpacked rows ``lo .. hi - 1`` and
    their prefix sums (``rows``, ``p``, ``flags``: scratch)."""
    n_out, _, n_i = out.shape
    n_b = kept.shape[2]
    width = rows.shape[1]
    for jb in range(lo, hi):
        _unpack_row(packed[jb, k], rows[jb])
    for jb in range(lo, hi):
        prev, row, nxt = p[jb], rows[jb], p[jb + 1]
        for c in range(width):
            nxt[c] = prev[c] + row[c]
    for q in range(n_out):
        src, dst, act = rows[b0 + q], out[q, k], active[q]
        pa1, pb1 = p[ranges[q, 0]], p[ranges[q, 1]]
        pa2, pb2 = p[ranges[q, 2]], p[ranges[q, 3]]
        pa3, pb3 = p[ranges[q, 4]], p[ranges[q, 5]]
        for c in range(width):
            cnt = ((np.uint16(pb1[c] - pa1[c]) + np.uint16(pb2[c] - pa2[c]))
                   + np.uint16(pb3[c] - pa3[c]))
            flags[c] = src[c] & (cnt <= t_d)
        for c in range(n_i):
            dst[c] = flags[c]
            act[c] |= flags[c]
        words = flags.view(np.uint64)
        keep = kept[q, k]
        for cb in range(n_b):
            keep[cb] = np.uint8((words[cb] * PACK_MAGIC) >> np.uint64(56))


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


@nb.njit(**_JIT)
def pack_bits(m, out):  # pragma: no cover - compiled
    """``np.packbits(m, axis=-1)`` of the 0/1 uint8 array ``m`` (3-D, C-contiguous) into
    ``out``: 8 columns per multiply."""
    n_a, n_b, n_c = m.shape
    flags = np.zeros(8 * out.shape[2], dtype=np.uint8)
    words = flags.view(np.uint64)
    for a in range(n_a):
        for b in range(n_b):
            src, dst = m[a, b], out[a, b]
            for c in range(n_c):
                flags[c] = src[c]
            for q in range(dst.shape[0]):
                dst[q] = np.uint8((words[q] * PACK_MAGIC) >> np.uint64(56))
