"""Compiled (Numba) ratio map of the Larix-2 stripe detector; see :mod:`nsgen.prep.stripe_detect`.

Why compiled: the ratio map is about forty stencil operations per voxel. As NumPy whole-array
passes it costs ~13 ns per voxel (memory traffic); fused here, in column strips whose
working set (the ring of ``2R+1`` gradient planes, the plate and side sums) stays in the
core's L2 cache, it costs under 2 ns, normalisation included.

Exactness: every output voxel is the same sequence of float32 operations (same operands, same
order, no fast-math reassociation) whatever the block, strip or row range it is computed in,
so chunked and whole-volume results are bit-identical. The order is the one documented in
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
#: bytes of a strip's working set (ring of gradient planes, plate and side sums, the
#: normalised rows) that :func:`strip_columns` aims at: well inside a core's L2 cache
STRIP_BYTES = 1024 * 1024
#: ... but at least this many columns: a strip normalises each of its rows in a call of its
#: own, whose fixed cost (~0.2 us) must stay small beside the row's (tall blocks, whose
#: working set cannot fit, go by this)
MIN_STRIP = 512


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
def strip_columns(n_j, n_i, r):  # pragma: no cover - compiled
    """Output columns per strip: a multiple of 16 whose working set is about
    :data:`STRIP_BYTES`, at least :data:`MIN_STRIP` and ``4R + 20`` columns (every strip
    holds the mirrored neighbours of its edge columns); all ``n_i`` if that is fewer."""
    per_column = (2 * r + 1 + 4) * max(n_j, 1) * 4
    width = max(STRIP_BYTES // per_column // 16 * 16, MIN_STRIP, 4 * r + 20)
    return min(width, n_i)


@nb.njit(**_JIT)
def gradient_plane(x, out, n_j, ln, n_g, n_fwd):  # pragma: no cover - compiled
    """``|G|`` of ``n_j`` rows ``ln`` apart in the flat arrays ``x`` (a plane's values) and
    ``out``: ``|x[c + 2] - x[c]|`` for the first ``n_fwd`` of the ``n_g`` columns of a row,
    ``|x[c - 2] - x[c]|`` for the rest (the last two columns of the detector).

    One loop over the whole plane (``x`` needs two values past it); the columns from
    ``n_g`` to ``ln`` of each row are computed too and mean nothing.
    """
    size = n_j * ln
    for q in range(size):
        out[q] = abs(x[q + 2] - x[q])
    if n_fwd < n_g:
        for j in range(n_j):
            src = x[j * ln:]
            dst = out[j * ln:]
            for u in range(n_fwd, n_g):
                dst[u] = abs(src[u - 2] - src[u])


@nb.njit(**_JIT)
def _add_into(dst, s0, s1, s2, s3, w, n_src, first):  # pragma: no cover - compiled
    """``dst = (((dst + s0) + s1) + s2) + s3`` over ``w`` columns and the first ``n_src``
    sources, in order; without the ``dst`` term if ``first``. Several sources per pass keep
    the partial sum in a register (a pass per source costs 2.5x more)."""
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
def _edge_side(a, row, i, r, mi, g0, sign):  # pragma: no cover - compiled
    """Sum of ``|G|`` over columns ``i + sign*1 .. i + sign*R`` (mirrored) of the strip
    row ``a[row:]`` (its column 0 is column ``g0``), in increasing column order like the
    direct sums."""
    t = np.float32(0.0)
    if sign > 0:
        for m in range(1, r + 1):
            t += a[row + mi[r + m, i] - g0]
    else:
        for m in range(-r, 0):
            t += a[row + mi[r + m, i] - g0]
    return t


@nb.njit(**_JIT)
def _ratio(p, s):  # pragma: no cover - compiled
    """``min(p, s) / max(p, s)``, 0 if either is 0 (``p``, ``s`` >= 0)."""
    return min(p, s) / max(max(p, s), TINY)


@nb.njit(**_JIT)
def _edge_into(a, p, j, i, r, mj, mi, g0, ln, plate_n, thr, out_f, out_b, k, j0):
    """``R3`` (or ``R3 <= thr``) of column ``i`` of row ``j``, whose side neighbours are
    mirrored, into the output; ``p`` is its scaled plate sum (pragma: compiled)."""
    lo, mid, hi = mj[r - 1, j] * ln, j * ln, mj[r + 1, j] * ln
    right = ((_edge_side(a, lo, i, r, mi, g0, 1) + _edge_side(a, mid, i, r, mi, g0, 1))
             + _edge_side(a, hi, i, r, mi, g0, 1)) * plate_n
    left = ((_edge_side(a, lo, i, r, mi, g0, -1) + _edge_side(a, mid, i, r, mi, g0, -1))
            + _edge_side(a, hi, i, r, mi, g0, -1)) * plate_n
    r3 = min(_ratio(p, right), _ratio(p, left))
    if out_f.ndim == 3:
        out_f[k, j - j0, i] = r3
    else:
        out_b[k, j - j0, i] = r3 <= thr


@nb.njit(**_JIT)
def _fold_rows(src, rows, base, stride, n, dst):  # pragma: no cover - compiled
    """``dst[q] = sum over d of src[base + rows[d] * stride + q]`` for ``q < n``, ``d`` in
    order (``src`` and ``dst`` flat)."""
    m = rows.shape[0]
    for d0 in range(0, m, 4):
        s0 = src[base + rows[d0] * stride:]
        s1 = src[base + rows[min(d0 + 1, m - 1)] * stride:]
        s2 = src[base + rows[min(d0 + 2, m - 1)] * stride:]
        s3 = src[base + rows[min(d0 + 3, m - 1)] * stride:]
        _add_into(dst, s0, s1, s2, s3, n, min(4, m - d0), d0 == 0)


@nb.njit(**_JIT)
def ratio_map_into(x, norm, r, mk, mj, mi, j0, j1, thr, out_f, out_b, width):  # pragma: no cover
    """Ratio map of rows ``[j0, j1)`` of a ``(angles, rows, columns)`` block.

    The outputs have ``j1 - j0`` rows; the other rows of ``x`` are context only.
    Writes ``R3`` into ``out_f`` if it is 3-D, else ``R3 <= thr`` into ``out_b``.
    ``norm`` empty: ``x`` is the float32 volume. Otherwise ``x`` holds raw counts and
    ``norm = (dark, lo, hi, ln_den)`` (float32 ``(4, rows, columns)``,
    :func:`nsgen.prep.normalise.pixel_constants`): each angle's plane is normalised
    (:func:`nsgen.prep._normalise_jit.normalise_row`, the same float32 values as
    :func:`~nsgen.prep.normalise.flat_field_log`) just before its gradient, so the
    normalised volume is never stored.

    The columns go in strips of about ``width`` (:func:`strip_columns` when ``width`` is 0),
    each with the ``R + 2`` columns its stencils reach on either side (normalised and
    differentiated again: a few per cent more work), all angles one strip at a time: the
    ring of ``2R+1`` gradient planes of a strip stays in cache while the plate sums read it.
    A strip's planes are flat, rows ``L`` apart, so that the element-wise steps (gradient,
    plate and side sums, their row sums where no row is mirrored) run as one loop over the
    whole plane; columns past the strip's in a row are computed and never read.
    """
    n_k, n_j, n_i = x.shape
    w = strip_columns(n_j, n_i, r) if width <= 0 else min(max(width, 4 * r + 4), n_i)
    n_s = max(n_i // w, 1)
    unit = 16 if w >= 64 else 1     # strips start on whole vectors
    ln = -(-n_i // n_s) + unit + 2 * r + 2   # row stride of the strip planes
    size = n_j * ln
    nr = 2 * r + 1
    n_out = j1 - j0
    psz = size + ln
    ring = np.zeros(nr * psz, dtype=np.float32)  # |G| of angles k-R .. k+R, flat planes
    raw = norm.shape[0] != 0
    xp = np.zeros(size + ln, dtype=np.float32)           # a normalised plane
    plate = np.zeros(size + ln, dtype=np.float32)
    side = np.zeros(size + ln, dtype=np.float32)
    mean = np.zeros(n_out * ln + ln, dtype=np.float32)
    sj = np.zeros(n_out * ln + ln, dtype=np.float32)
    planes = np.empty(nr, dtype=np.intp)
    plate_n = np.float32(nr * nr)
    side_n = np.float32(3 * r)
    v_lo = min(r + 1, n_i)          # columns [v_lo, v_hi): no mirrored side neighbour
    v_hi = max(n_i - r, v_lo)
    # output rows whose plate rows (j - R .. j + R) are all in the block: one flat loop
    p_lo, p_hi = max(j0, r), max(min(j1, n_j - r), max(j0, r))
    rows_p = np.arange(nr) - r
    s_lo, s_hi = max(j0, 1), max(min(j1, n_j - 1), max(j0, 1))
    rows_s = np.arange(3) - 1
    shifts = np.arange(r)
    for s in range(n_s):
        s0 = (s * n_i // n_s) // unit * unit
        s1 = n_i if s == n_s - 1 else ((s + 1) * n_i // n_s) // unit * unit
        g0, g1 = max(s0 - r, 0), min(s1 + r, n_i)  # |G| columns of the strip
        n_g = g1 - g0
        x1 = min(g1 + 2, n_i)                       # and the columns |G| reads
        n_fwd = min(n_g, max(n_i - 2 - g0, 0))      # forward differences
        off = s0 - g0                               # of output column s0 in the ring
        a_lo, a_hi = max(s0, v_lo), min(s1, v_hi)   # direct columns of the strip
        n_a = max(a_hi - a_lo, 0)
        computed = 0  # next angle whose |G| plane is not in the ring yet
        for k in range(n_k):
            while computed <= min(n_k - 1, k + r):
                for j in range(n_j):
                    dst = xp[j * ln:]
                    if raw:
                        normalise_row(x[computed, j, g0:x1], norm[0, j, g0:x1],
                                      norm[1, j, g0:x1], norm[2, j, g0:x1], norm[3, j, g0:x1],
                                      dst)
                    else:
                        src = x[computed, j, g0:]
                        for c in range(x1 - g0):
                            dst[c] = src[c]
                gradient_plane(xp, ring[computed % nr * psz:], n_j, ln, n_g, n_fwd)
                computed += 1
            # plate column sums over the angle offsets -R..R (fixed row, column)
            for d in range(nr):
                planes[d] = mk[d, k] % nr
            _fold_rows(ring, planes, 0, psz, size, plate)
            a = ring[k % nr * psz:]
            # right sums: side[t] = a[t] + ... + a[t+R-1] is that of column g0 - 1 + t (the
            # left sum of column i is the right sum of column i - R - 1: same terms, order)
            _fold_rows(a, shifts, 0, 1, size, side)
            # plate sums over the row offsets -R..R, side sums over -1, 0, 1
            if p_hi > p_lo:
                _fold_rows(plate, rows_p, p_lo * ln, ln, (p_hi - p_lo) * ln,
                           mean[(p_lo - j0) * ln:])
            for j in range(j0, j1):
                if not p_lo <= j < p_hi:
                    _fold_rows(plate, mj[:, j], 0, ln, ln, mean[(j - j0) * ln:])
            if s_hi > s_lo:
                _fold_rows(side, rows_s, s_lo * ln, ln, (s_hi - s_lo) * ln,
                           sj[(s_lo - j0) * ln:])
            for j in range(j0, j1):
                if not s_lo <= j < s_hi:
                    sjr = sj[(j - j0) * ln:]
                    lo_r, mid_r, hi_r = (side[mj[r - 1, j] * ln:], side[j * ln:],
                                         side[mj[r + 1, j] * ln:])
                    for t in range(ln):
                        sjr[t] = (lo_r[t] + mid_r[t]) + hi_r[t]
            for t in range(n_out * ln):
                sj[t] *= plate_n
            for j in range(j0, j1):
                base = (j - j0) * ln
                pm = mean[base + off + a_lo - s0:]
                sr = sj[base + a_lo - g0 + 1:]
                sl = sj[base + a_lo - g0 - r:]
                if out_f.ndim == 3:
                    dst_f = out_f[k, j - j0, a_lo:]
                    for c in range(n_a):
                        p = pm[c] * side_n
                        dst_f[c] = min(_ratio(p, sr[c]), _ratio(p, sl[c]))
                else:
                    dst_b = out_b[k, j - j0, a_lo:]
                    for c in range(n_a):
                        p = pm[c] * side_n
                        dst_b[c] = min(_ratio(p, sr[c]), _ratio(p, sl[c])) <= thr
                # columns next to the detector edges: mirrored side neighbours
                for i in range(s0, min(a_lo, s1)):
                    _edge_into(a, mean[base + off + i - s0] * side_n, j, i, r, mj, mi, g0,
                               ln, plate_n, thr, out_f, out_b, k, j0)
                for i in range(max(a_hi, a_lo, s0), s1):
                    _edge_into(a, mean[base + off + i - s0] * side_n, j, i, r, mj, mi, g0,
                               ln, plate_n, thr, out_f, out_b, k, j0)
