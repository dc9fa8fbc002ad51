"""Compiled (Numba) kernels of :func:`nsgen.prep.resize.downsample` and
:func:`nsgen.prep.resize.normalise_downsample`.

The two 1-D resize operators are banded: output ``o`` of an axis is a weighted sum of the
``w`` consecutive inputs from ``start[o]`` (the CSR rows of ``axis_operator`` as dense bands,
padded with zero weights). A sinogram streams through in one pass, input row by input row:

1. each input row ``s[q]`` (read, or normalised from raw counts into a ring of the last
   ``kp`` rows, which stays in cache) has its extremes folded into the sinogram's min and
   max (in the normalising loop itself, for raw counts);
2. once ``q`` ends the angle band of output ``o``, ``t[o, :] = sum_k wp[o, k] *
   s[sp[o] + k, :]`` is made (:func:`_taps`: four rows a pass, vectorised along the
   detector) into a tile of :data:`TILE_ROWS` rows;
3. a full tile is transposed (8 x 8 blocks in registers, :func:`_transpose8`) and resized
   along columns, ``out[o, j] = sum_k wd[j, k] * t[o, sd[j] + k]`` (:func:`_tile_columns`:
   vectorised over the tile's rows);
4. at the end of the sinogram, the clip to its [min, max].

So the full-resolution sinogram and its angle-resized ``(p, D)`` image are never stored:
every buffer is a few hundred KiB. Every sum runs over ``k`` in ascending order from 0.0
(grouping four terms per pass changes nothing: ``((a + x) + y) + z`` is the order), like
SciPy's sparse products, and the padding adds exact zeros, so the result is the same
float32 numbers as ``(A_d @ (A_p @ s).T).T`` with the CSR operators. No fast-math.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from nsgen.prep._jit import JIT as _JIT
from nsgen.prep._normalise_jit import normalise_row_extremes, wide_vectors

#: output rows resized along columns together (a multiple of 8)
TILE_ROWS = 32

_V8 = ir.VectorType(ir.FloatType(), 8)
_I64 = ir.IntType(64)


def _shuffle(builder: ir.IRBuilder, a: ir.Value, b: ir.Value, picks: list[int]) -> ir.Value:
    """Elements ``picks`` of the 16 of ``a`` then ``b`` (8 floats each)."""
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(ir.IntType(32), 8), picks))


@intrinsic
def _transpose8(typingctx, src, r0, c0, dst):  # pragma: no cover - compiled
    """``dst[c0 + i, r0 + j] = src[r0 + j, c0 + i]`` for ``i, j < 8`` (C-contiguous float32
    2-D arrays; the block must lie inside both): eight vector loads, 24 shuffles (the
    unpack, shuffle and lane-swap steps of an 8 x 8 transpose) and eight vector stores,
    where element by element it costs a load and a store each."""
    float2d = (isinstance(src, types.Array) and isinstance(dst, types.Array)
               and src.dtype == dst.dtype == types.float32 and src.ndim == dst.ndim == 2
               and src.layout == dst.layout == "C")
    if not float2d:
        return None

    def codegen(context, builder, signature, args):
        s = context.make_array(signature.args[0])(context, builder, args[0])
        d = context.make_array(signature.args[3])(context, builder, args[3])
        row, col = args[1], args[2]

        def at(data, cols, major, minor, i):
            flat = builder.add(builder.mul(builder.add(major, ir.Constant(_I64, i)), cols),
                               minor)
            return builder.bitcast(builder.gep(data, [flat]), _V8.as_pointer())

        s_cols, d_cols = builder.extract_value(s.shape, 1), builder.extract_value(d.shape, 1)
        x = [builder.load(at(s.data, s_cols, row, col, i), align=4) for i in range(8)]
        lo, hi = [0, 8, 1, 9, 4, 12, 5, 13], [2, 10, 3, 11, 6, 14, 7, 15]
        t = [_shuffle(builder, x[i], x[i + 1], h) for i in range(0, 8, 2) for h in (lo, hi)]
        a, b = [0, 1, 8, 9, 4, 5, 12, 13], [2, 3, 10, 11, 6, 7, 14, 15]
        u = [_shuffle(builder, t[i], t[i + 2], h) for i in (0, 1, 4, 5) for h in (a, b)]
        first, second = [0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]
        y = [_shuffle(builder, u[i], u[i + 4], h) for h in (first, second) for i in range(4)]
        for i in range(8):
            builder.store(y[i], at(d.data, d_cols, col, row, i), align=4)
        return context.get_dummy_value()

    return types.none(src, types.int64, types.int64, dst), codegen


@nb.njit(**_JIT)
def _row_extremes(row, lov, hiv):  # pragma: no cover - compiled
    """Elementwise running minimum and maximum of ``row`` into ``lov`` and ``hiv``."""
    wide_vectors()
    for c in range(row.shape[0]):
        x = row[c]
        lov[c] = min(lov[c], x)
        hiv[c] = max(hiv[c], x)


@nb.njit(**_JIT)
def _taps(ring, b, w, out):  # pragma: no cover - compiled
    """``out[c] = sum_k w[k] * ring[(b + k) % K, c]`` (``K`` rows in the ring), ``k``
    ascending from 0.0, four rows a pass."""
    wide_vectors()
    n_ring = ring.shape[0]
    kp = w.shape[0]
    n_d = out.shape[0]
    k = 0
    if kp < 4:
        for c in range(n_d):
            out[c] = np.float32(0.0)
    else:   # the first pass starts from 0.0 itself
        r0, r1, r2, r3 = ring[b % n_ring], ring[(b + 1) % n_ring], ring[(b + 2) % n_ring], \
            ring[(b + 3) % n_ring]
        w0, w1, w2, w3 = w[0], w[1], w[2], w[3]
        for c in range(n_d):
            out[c] = (((np.float32(0.0) + w0 * r0[c]) + w1 * r1[c]) + w2 * r2[c]) + w3 * r3[c]
        k = 4
    while k + 4 <= kp:
        r0, r1 = ring[(b + k) % n_ring], ring[(b + k + 1) % n_ring]
        r2, r3 = ring[(b + k + 2) % n_ring], ring[(b + k + 3) % n_ring]
        w0, w1, w2, w3 = w[k], w[k + 1], w[k + 2], w[k + 3]
        for c in range(n_d):
            out[c] = (((out[c] + w0 * r0[c]) + w1 * r1[c]) + w2 * r2[c]) + w3 * r3[c]
        k += 4
    while k < kp:
        r0 = ring[(b + k) % n_ring]
        w0 = w[k]
        for c in range(n_d):
            out[c] = out[c] + w0 * r0[c]
        k += 1


@nb.njit(**_JIT)
def _tile_columns(tile, m, sd, wd, res, o0, tt, acc):  # pragma: no cover - compiled
    """``res[o0 + r, j] = sum_k wd[j, k] * tile[r, sd[j] + k]`` for ``r < m`` (unclipped).

    ``tile`` (:data:`TILE_ROWS`, D) is first transposed into ``tt`` (D, :data:`TILE_ROWS`)
    so that the sums of all its rows for one column ``j`` run as one vectorised loop over
    ``acc`` (:data:`TILE_ROWS`,); rows ``m`` and beyond are finite leftovers, not stored.
    (Numba does not enable LLVM's SLP vectoriser, so the loop over the rows must be a
    loop of unknown length to be vectorised.)
    """
    wide_vectors()
    n_rows, n_d = tile.shape
    d, kd = wd.shape
    d8 = n_d - n_d % 8
    for r0 in range(0, n_rows, 8):
        for c0 in range(0, d8, 8):
            _transpose8(tile, r0, c0, tt)
    for c in range(d8, n_d):
        for r in range(n_rows):
            tt[c, r] = tile[r, c]
    for j in range(d):
        b = sd[j]
        for r in range(n_rows):
            acc[r] = np.float32(0.0)
        k = 0
        while k + 4 <= kd:
            w0, w1, w2, w3 = wd[j, k], wd[j, k + 1], wd[j, k + 2], wd[j, k + 3]
            s0, s1, s2, s3 = tt[b + k], tt[b + k + 1], tt[b + k + 2], tt[b + k + 3]
            for r in range(n_rows):
                acc[r] = (((acc[r] + w0 * s0[r]) + w1 * s1[r]) + w2 * s2[r]) + w3 * s3[r]
            k += 4
        while k < kd:
            w0 = wd[j, k]
            s0 = tt[b + k]
            for r in range(n_rows):
                acc[r] = acc[r] + w0 * s0[r]
            k += 1
        for r in range(m):
            res[o0 + r, j] = acc[r]


@nb.njit(inline="always", **_JIT)   # (as a call of its own: 10-15 % slower)
def _outputs_until(q, o, ring, sp, wp, sd, wd, res, tile, tt, acc):  # pragma: no cover
    """Make every output row from ``o`` on whose angle band ends at input row ``q``
    (:func:`_taps` into ``tile``; a full tile, or the last, resized along columns into
    ``res``); returns the next output row. Band starts never decrease."""
    p, kp = wp.shape
    n_tile = tile.shape[0]
    while o < p and sp[o] + kp - 1 == q:
        _taps(ring, sp[o], wp[o], tile[o % n_tile])
        o += 1
        if o % n_tile == 0 or o == p:
            m = (o - 1) % n_tile + 1
            _tile_columns(tile, m, sd, wd, res, o - m, tt, acc)
    return o


@nb.njit(**_JIT)
def _clip(res, lo, hi):  # pragma: no cover - compiled
    """Clip ``res`` to ``[lo, hi]`` in place."""
    for r in range(res.shape[0]):
        for j in range(res.shape[1]):
            y = res[r, j]
            if y < lo:
                y = lo
            if y > hi:
                y = hi
            res[r, j] = y


@nb.njit(**_JIT)
def _work(n_d):  # pragma: no cover - compiled
    """Work buffers of one sinogram's resize from ``n_d`` columns: ``(tile, tt, acc,
    lov, hiv)`` (see :func:`_tile_columns`; the tile starts finite)."""
    return (np.zeros((TILE_ROWS, n_d), np.float32), np.empty((n_d, TILE_ROWS), np.float32),
            np.empty(TILE_ROWS, np.float32), np.empty(n_d, np.float32),
            np.empty(n_d, np.float32))


@nb.njit(**_JIT)
def resize_stack(x, sp, wp, sd, wd, out):  # pragma: no cover - compiled
    """Resize every sinogram ``x[v]`` (float32 ``(n, P, D)``, finite) into ``out[v]``
    (``(n, p, d)``).

    ``sp`` (p,) / ``wp`` (p, kp): band starts and weights along angles; ``sd`` / ``wd``
    along columns. Bands lie inside the input.
    """
    n, n_p, n_d = x.shape
    p, kp = wp.shape
    tile, tt, acc, lov, hiv = _work(n_d)
    for v in range(n):
        lov[:] = np.inf
        hiv[:] = -np.inf
        o, s, res = 0, x[v], out[v]
        for q in range(n_p):
            _row_extremes(s[q], lov, hiv)
            if o < p and sp[o] + kp - 1 == q:   # most input rows end no band
                o = _outputs_until(q, o, s, sp, wp, sd, wd, res, tile, tt, acc)
        _clip(res, lov.min(), hiv.max())


@nb.njit(**_JIT)
def normalise_resize_stack(raw, dark, lo, hi, ln_den, sp, wp, sd, wd, out):  # pragma: no cover
    """:func:`resize_stack` of the normalised sinograms of raw projections, fused.

    ``raw`` is C-contiguous ``(P, n, D)`` (projections, rows, columns), ``dark`` ... ``ln_den``
    the float32 ``(n, D)`` pixel constants of :func:`nsgen.prep.normalise.pixel_constants`.
    Each projection row is normalised (:func:`~nsgen.prep._normalise_jit.normalise_row_extremes`)
    into a ring of the last ``kp`` rows that stays in cache: the full-resolution sinogram is
    never stored. Same float32 numbers as ``resize_stack(flat_field_log_rows(...))``.
    """
    n_p, n, n_d = raw.shape
    p, kp = wp.shape
    tile, tt, acc, lov, hiv = _work(n_d)
    ring = np.empty((kp, n_d), np.float32)
    for v in range(n):
        lov[:] = np.inf
        hiv[:] = -np.inf
        o, res = 0, out[v]
        d, low, high, ld = dark[v], lo[v], hi[v], ln_den[v]
        for q in range(n_p):
            normalise_row_extremes(raw[q, v], d, low, high, ld, ring[q % kp], lov, hiv)
            if o < p and sp[o] + kp - 1 == q:   # most input rows end no band
                o = _outputs_until(q, o, ring, sp, wp, sd, wd, res, tile, tt, acc)
        _clip(res, lov.min(), hiv.max())
