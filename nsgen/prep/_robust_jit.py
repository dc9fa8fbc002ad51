"""Compiled (Numba) kernels of the robust stripe detector's ranks; see :mod:`nsgen.prep.stripe_robust`.

Why compiled: the detector sorts every column of every sinogram along the angles (whole
scan and each angle block), then takes per-rank medians over up to 30 neighbouring rows
and a running median across 17 columns (:mod:`nsgen.prep._robust_offsets_jit`). As
NumPy/SciPy calls (strided sorts, ``np.median`` of stacked rows, ``ndimage.median_filter``)
those cost 30-80x Larix's detector.

How: every sort here (and every median of :mod:`nsgen.prep._robust_offsets_jit`) is a
**sorting network applied across columns**: the values to order sit in the rows of a
buffer ``(n, columns)`` and each comparator ``(a, b)`` (``a < b``) puts ``min`` into row
``a`` and ``max`` into row ``b`` for all columns at once, a loop the compiler vectorises,
with no data-dependent branch. Networks are Batcher's odd-even merge sort, pruned to ``n``
elements (every comparator puts the minimum at the lower index, so padding ``+inf`` rows
would never move and the comparators that touch them are no-ops: dropping them sorts ``n``
exactly): :func:`network`, applied by :func:`_sort_rows`.

Where it pays, the networks run in registers (:mod:`nsgen.prep._robust_net`, planned in
:mod:`nsgen.prep._robust_plan`): the sorts along angles as bitonic passes over groups of 16
rows of a tile of :data:`TILE` columns (integer raw counts sorted as integers,
:data:`TILE_INT` columns at a time). On the way, the means over angle bins
(:func:`bin_means`, :func:`raw_bin_means`).

Exactness: order statistics are the sorted values themselves; means over angle bins add
in angle order in float64, divided by the bin's width and rounded to float32. The kernels
give the same numbers as the NumPy formulation they replace (tested).
"""

from __future__ import annotations

from functools import lru_cache

import numba as nb
import numpy as np

from nsgen.prep import _normalise_jit as _nj, _robust_net as _net, _robust_plan as _plan
from nsgen.prep._jit import JIT as _JIT

#: columns per tile of the long sorts along angles (a tile's buffer stays in L2)
TILE = 256
#: the same for integer values (16-bit lanes). Wider than :data:`TILE` (the buffer of a
#: 300-angle block, 1.3 MiB, still in L2): the sort's passes load each group's 16 row
#: pointers once for more columns. 1801 x 14 x 2560 uint16, ranked_int_sets: 512 columns
#: 1.17-1.20 CPU-s per 256 rows, 768 1.15, 1024 1.11, 1280 1.05-1.08, 2560 1.10
TILE_INT = 1280


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
    return np.array(_plan.batcher(n), np.int64).reshape(-1, 2)


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


@lru_cache(maxsize=64)
def sort_plan(n: int, runs: int = 1) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`~nsgen.prep._robust_plan.sort_plan` of ``n`` rows (sorted in ``runs``) as
    :func:`ranked_rows` takes it: padded rows, template of each pass (index in
    ``TEMPLATES``), the passes' first group and the groups ``(groups, 16)`` int64 (fewer
    rows: the first columns)."""
    size, passes = _plan.sort_plan(n, runs)
    names = list(_plan.TEMPLATES)
    kinds = np.array([names.index(name) for name, _ in passes], np.int64)
    offs = np.cumsum([0] + [g.shape[0] for _, g in passes]).astype(np.int64)
    groups = np.zeros((int(offs[-1]), 16), np.int64)
    for (_, g), o in zip(passes, offs[:-1]):
        groups[o:o + g.shape[0], :g.shape[1]] = g
    return size, kinds, offs, groups


@nb.njit(**_JIT)
def _sort_passes(buf, kinds, offs, groups, w):  # pragma: no cover - compiled
    """Sort the first ``w`` columns of ``buf`` by the passes of :func:`sort_plan`."""
    for p in range(kinds.shape[0]):
        gs = groups[offs[p]:offs[p + 1]]
        kind = kinds[p]
        if kind == 0:
            _net.sort_s(buf, gs, w)
        elif kind == 1:
            _net.sort_m1(buf, gs, w)
        elif kind == 2:
            _net.sort_m2(buf, gs, w)
        elif kind == 3:
            _net.sort_m3(buf, gs, w)
        elif kind == 4:
            _net.sort_m4(buf, gs, w)
        else:
            _net.sort_h4(buf, gs, w)


@nb.njit(**_JIT)
def ranked_rows(x, a0, a1, size, kinds, offs, groups, idx, out, bins, bin0,
                means):  # pragma: no cover - compiled
    """``out[j, r, i]`` = value of rank ``idx[r]`` of ``x[a0:a1, j, i]`` sorted along the
    angles, for every row ``j`` and column ``i`` of ``x`` ``(angles, rows, columns)``
    (``size, kinds, offs, groups``: the :func:`sort_plan` of ``a1 - a0`` values); on the
    way, ``means[j, bin0 + b]`` = the mean over the angles ``bins[b]:bins[b + 1]``
    (``bins`` from ``a0`` to ``a1``, or one value: none) as :func:`bin_means`."""
    n = a1 - a0
    n_j, n_i = x.shape[1], x.shape[2]
    # rows of TILE columns, padded so that rows a power of 2 apart do not share cache sets
    buf = np.empty((size, TILE + 16), np.float32)
    buf[n:] = np.inf
    acc = np.zeros(TILE)
    n_b = bins.shape[0] - 1
    for j in range(n_j):
        for c0 in range(0, n_i, TILE):
            w = min(TILE, n_i - c0)
            b = 0
            for k in range(n):
                # (slices, not ``src[c0 + t]``: an index Numba cannot prove non-negative is
                # checked for wrapping around, and the loop is not vectorised: 3x slower)
                src = x[a0 + k, j, c0:c0 + w]
                dst = buf[k]
                if n_b > 0:
                    for t in range(w):
                        v = src[t]
                        dst[t] = v
                        acc[t] += np.float64(v)
                    if a0 + k + 1 == bins[b + 1]:
                        width = np.float64(bins[b + 1] - bins[b])
                        mrow = means[j, bin0 + b, c0:c0 + w]
                        for t in range(w):
                            mrow[t] = np.float32(acc[t] / width)
                            acc[t] = 0.0
                        b += 1
                else:
                    for t in range(w):
                        dst[t] = src[t]
            _sort_passes(buf, kinds, offs, groups, w)
            _take(buf, idx, out[j], c0, w)


@lru_cache(maxsize=16)
def set_plans(sizes: tuple[int, ...], runs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                          np.ndarray, np.ndarray]:
    """The :func:`sort_plan` of each angle set of :func:`ranked_sets` joined: the sets
    ``sizes`` (values sorted: the blocks' angles, then, with more than one block, the
    blocks' ranks pooled, sorted in ``runs``), as ``(padded, kind_cut, kinds, offs,
    groups)``: set ``s`` sorts ``padded[s]`` rows by the passes ``kinds[kind_cut[s]:
    kind_cut[s + 1]]`` whose groups are ``groups[offs[kind_cut[s] + s + p]:offs[... + 1]]``.

    Examples
    --------
    >>> padded, kind_cut, kinds, offs, groups = set_plans((300, 301, 64), 32)
    >>> padded.tolist(), kind_cut.tolist(), offs.size == kinds.size + 3
    ([512, 512, 64], [0, 12, 24, 26], True)
    """
    plans = [sort_plan(n) for n in sizes[:-1]] + [sort_plan(sizes[-1], runs if len(sizes) > 1
                                                           else 1)]
    padded = np.array([p[0] for p in plans], np.int64)
    kind_cut = np.cumsum([0] + [p[1].size for p in plans]).astype(np.int64)
    kinds = np.concatenate([p[1] for p in plans]).astype(np.int64)
    base = np.cumsum([0] + [p[3].shape[0] for p in plans])
    offs = np.concatenate([p[2] + b for p, b in zip(plans, base[:-1])]).astype(np.int64)
    groups = np.concatenate([p[3] for p in plans]).astype(np.int64)
    return padded, kind_cut, kinds, offs, groups


@nb.njit(**_JIT)
def ranked_sets(raw, dark, lo, hi, ln_den, edges, padded, kind_cut, kinds, offs, groups, idx,
                idx_cut, out, bins, bin_cut, means):  # pragma: no cover - compiled
    """Step 1 straight from raw projections ``raw`` ``(angles, rows, columns)`` (any real
    dtype), normalised on the way by :func:`~nsgen.prep._normalise_jit.normalise_row` with
    the pixel constants ``dark, lo, hi, ln_den`` ``(rows, columns)`` float32 (the same
    values as :func:`~nsgen.prep.normalise.flat_field_log`; the normalised volume is never
    made): ``out[s, j, r, i]`` = rank ``idx[idx_cut[s] + r]`` of angle set ``s`` of row
    ``j``, column ``i``, sorted; the sets are the angle blocks ``edges[b]:edges[b + 1]``,
    then, with more blocks than one, the whole scan's: the blocks' ranks (in block order)
    sorted again (``padded, kind_cut, kinds, offs, groups``: :func:`set_plans`).

    A row's block is normalised whole rows at a time (the projections' rows read in
    order; tiles of a row normalised each apart read every projection's row in pieces,
    each piece a cache miss) into a buffer of the block's rows, then sorted
    :data:`TILE` columns at a time, as :func:`ranked_rows`.

    With ``means`` of a row per row of ``raw`` (``(rows, bins, columns)`` float32; else of
    no row), also the means of the normalised values over the angle bins ``bins`` (nested
    in the blocks; block ``b``'s are ``bin_cut[b]:bin_cut[b + 1]``) into it, from the same
    normalised rows: :func:`raw_bin_means`' values (float64 sums in angle order)."""
    n_b = edges.shape[0] - 1
    n_sets = idx_cut.shape[0] - 1
    n_j, n_i = raw.shape[1], raw.shape[2]
    rows = 0
    most = 0
    for b in range(n_b):
        rows = max(rows, padded[b])
        most = max(most, edges[b + 1] - edges[b])
    # rows of TILE columns, padded so that rows a power of 2 apart do not share cache sets;
    # rows past a set's values hold +inf (they never move)
    buf = np.full((rows, TILE + 16), np.inf, np.float32)
    pool = np.full((padded[n_b] if n_sets > n_b else 0, TILE + 16), np.inf, np.float32)
    norm = np.empty((most, n_i), np.float32)
    acc = np.empty(n_i)
    filled = 0   # rows of buf that may hold values
    for j in range(n_j):
        for b in range(n_b):
            n = edges[b + 1] - edges[b]
            for k in range(n):
                _nj.normalise_row(raw[edges[b] + k, j], dark[j], lo[j], hi[j], ln_den[j],
                                  norm[k])
            if means.shape[0] > 0:
                for m in range(bin_cut[b], bin_cut[b + 1]):
                    _bin_mean(norm[bins[m] - edges[b]:bins[m + 1] - edges[b]], acc, means[j, m])
            for m in range(n, filled):
                buf[m] = np.inf
            filled = n
            for c0 in range(0, n_i, TILE):
                w = min(TILE, n_i - c0)
                for k in range(n):
                    src = norm[k, c0:c0 + w]
                    dst = buf[k]
                    for t in range(w):
                        dst[t] = src[t]
                _sort_set(buf, b, kind_cut, kinds, offs, groups, w)
                _take(buf, idx[idx_cut[b]:idx_cut[b + 1]], out[b, j], c0, w)
        if n_sets > n_b:
            for c0 in range(0, n_i, TILE):
                w = min(TILE, n_i - c0)
                for b in range(n_b):
                    for r in range(idx_cut[b + 1] - idx_cut[b]):
                        src = out[b, j, r, c0:c0 + w]
                        dst = pool[idx_cut[b] + r]
                        for t in range(w):
                            dst[t] = src[t]
                _sort_set(pool, n_b, kind_cut, kinds, offs, groups, w)
                _take(pool, idx[idx_cut[n_b]:idx_cut[n_b + 1]], out[n_b, j], c0, w)


@nb.njit(**_JIT)
def ranked_int_sets(raw, top, dark, lo, hi, ln_den, edges, padded, kind_cut, kinds, offs,
                    groups, idx, idx_cut, out, bins, bin_cut, means):  # pragma: no cover
    """:func:`ranked_sets` of integer raw projections (``top``: the largest value of their
    dtype), the same values: the normalisation of a pixel is a non-increasing function of
    its raw count (``float32(raw) - dark``, the clip and the computed logarithm are each
    monotone: tested for every float32), so rank ``r`` of a block's normalised values is
    the normalised rank ``n - 1 - r`` of its raw counts. The raw counts are sorted as
    integers (16-bit lanes: twice the columns per instruction of float32) and only the
    ranks kept are normalised (:data:`TILE_INT` columns at a time); with ``means``, every
    value is normalised too, tile by tile while its block's counts are in the cache, for
    the angle-bin means (the same values)."""
    n_b = edges.shape[0] - 1
    n_sets = idx_cut.shape[0] - 1
    n_j, n_i = raw.shape[1], raw.shape[2]
    rows = 0
    for b in range(n_b):
        rows = max(rows, padded[b])
    # rows past a set's values hold ``top`` (they never move)
    buf = np.full((rows, TILE_INT + 32), top, raw.dtype)
    pool = np.full((padded[n_b] if n_sets > n_b else 0, TILE_INT + 16), np.inf, np.float32)
    filled = 0   # rows of buf that may hold values
    acc = np.empty(TILE_INT)
    norm = np.empty(TILE_INT, np.float32)
    for j in range(n_j):
        for c0 in range(0, n_i, TILE_INT):
            w = min(TILE_INT, n_i - c0)
            c1 = c0 + w
            dk, lk, hk, nk = dark[j, c0:c1], lo[j, c0:c1], hi[j, c0:c1], ln_den[j, c0:c1]
            for b in range(n_b):
                n = edges[b + 1] - edges[b]
                for m in range(n, filled):
                    buf[m] = top
                filled = n
                for k in range(n):
                    src = raw[edges[b] + k, j, c0:c1]
                    dst = buf[k]
                    for t in range(w):
                        dst[t] = src[t]
                if means.shape[0] > 0:
                    for m in range(bin_cut[b], bin_cut[b + 1]):
                        _int_bin_mean(buf, bins[m] - edges[b], bins[m + 1] - edges[b], w,
                                      dk, lk, hk, nk, acc, norm, means[j, m, c0:c1])
                _sort_set(buf, b, kind_cut, kinds, offs, groups, w)
                for r in range(idx_cut[b + 1] - idx_cut[b]):
                    dst = out[b, j, r, c0:c1]
                    _nj.normalise_row(buf[n - 1 - idx[idx_cut[b] + r], :w], dk, lk, hk, nk,
                                      dst)
                    if n_sets > n_b:
                        prow = pool[idx_cut[b] + r]
                        for t in range(w):
                            prow[t] = dst[t]
            if n_sets > n_b:
                _sort_set(pool, n_b, kind_cut, kinds, offs, groups, w)
                _take(pool, idx[idx_cut[n_b]:idx_cut[n_b + 1]], out[n_b, j], c0, w)


@nb.njit(**_JIT)
def _bin_mean(rows, acc, dst):  # pragma: no cover - compiled
    """``dst`` = the mean of ``rows`` ``(angles, columns)`` float32 per column: float64
    sums in row order from ``+0.0``, divided by the count, in ``dst``'s precision (rounded
    to float32 for a float32 ``dst``; into float64, NumPy's ``mean(axis=0,
    dtype=float64)`` of C-ordered rows, the same numbers)."""
    n_i = dst.shape[0]
    for t in range(n_i):
        acc[t] = 0.0
    for k in range(rows.shape[0]):
        src = rows[k]
        for t in range(n_i):
            acc[t] += np.float64(src[t])
    width = np.float64(rows.shape[0])
    for t in range(n_i):
        dst[t] = dst.dtype.type(acc[t] / width)


@nb.njit(**_JIT)
def _int_bin_mean(buf, k0, k1, w, dark, lo, hi, ln_den, acc, norm, dst):  # pragma: no cover
    """:func:`_bin_mean` of the raw counts in the first ``w`` columns of the rows
    ``k0:k1`` of ``buf``, normalised row by row into ``norm``
    (:func:`~nsgen.prep._normalise_jit.normalise_row`); ``acc``, ``norm``: buffers of at
    least ``w``."""
    for t in range(w):
        acc[t] = 0.0
    nrow = norm[:w]
    for k in range(k0, k1):
        _nj.normalise_row(buf[k][:w], dark, lo, hi, ln_den, nrow)
        for t in range(w):
            acc[t] += np.float64(nrow[t])
    width = np.float64(k1 - k0)
    for t in range(w):
        dst[t] = np.float32(acc[t] / width)


@nb.njit(**_JIT)
def _take(buf, idx, out, c0, w):  # pragma: no cover - compiled
    """``out[r, c0:c0 + w]`` = ``buf[idx[r], :w]`` for every ``r`` of ``idx``."""
    for r in range(idx.shape[0]):
        src = buf[idx[r]]
        dst = out[r, c0:c0 + w]
        for t in range(w):
            dst[t] = src[t]


@nb.njit(**_JIT)
def _sort_set(buf, s, kind_cut, kinds, offs, groups, w):  # pragma: no cover - compiled
    """Sort ``buf`` by the plan of set ``s`` of :func:`set_plans`."""
    k0, k1 = kind_cut[s], kind_cut[s + 1]
    _sort_passes(buf, kinds[k0:k1], offs[k0 + s:k1 + s + 1], groups, w)


@nb.njit(**_JIT)
def bin_means(x, bins, means):  # pragma: no cover - compiled
    """``means[j, b]`` = the mean of ``x[bins[b]:bins[b + 1], j]`` ``(angles, rows,
    columns)`` per column, as :func:`ranked_rows` takes it on the way (float64 sums in
    angle order, divided by the bin's width, rounded to float32): the same values."""
    acc = np.zeros(x.shape[2])
    for j in range(x.shape[1]):
        for b in range(bins.shape[0] - 1):
            _bin_mean(x[bins[b]:bins[b + 1], j], acc, means[j, b])


@nb.njit(**_JIT)
def raw_bin_means(raw, j0, j1, dark, lo, hi, ln_den, bins, means):  # pragma: no cover
    """:func:`bin_means` of the rows ``j0:j1`` of raw projections ``raw`` ``(angles, rows,
    columns)`` normalised on the way (:func:`~nsgen.prep._normalise_jit.normalise_row`, with
    the pixel constants ``dark, lo, hi, ln_den`` ``(rows, columns)`` float32 of ``raw``'s
    rows) into ``means[j - j0]``: the same values as of
    :func:`~nsgen.prep.normalise.flat_field_log`'s volume, which is never made."""
    n_i = raw.shape[2]
    acc = np.zeros(n_i)
    row = np.empty(n_i, np.float32)
    for j in range(j0, j1):
        for b in range(bins.shape[0] - 1):
            for t in range(n_i):
                acc[t] = 0.0
            for k in range(bins[b], bins[b + 1]):
                _nj.normalise_row(raw[k, j], dark[j], lo[j], hi[j], ln_den[j], row)
                for t in range(n_i):
                    acc[t] += np.float64(row[t])
            width = np.float64(bins[b + 1] - bins[b])
            mrow = means[j - j0, b]
            for t in range(n_i):
                mrow[t] = np.float32(acc[t] / width)
