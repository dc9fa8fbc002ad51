"""Stripe detection: Larix generation-2 ``STRIPES_DETECT`` / ``STRIPES_MERGE``.

Implemented from the description in SCIENCE.md Part B §5.2 (no reference code used).
All kernels are pure functions on arrays laid out as Larix expects:
``(angles k, detector rows j, detector columns i)``, float32.

Pipeline
--------
1. ``G = x[k, j, i+2] - x[k, j, i]`` (``x[k, j, i-2] - x[k, j, i]`` where ``i+2`` is out of
   range); ``A = |G|``.
2. Ratio map ``R3 = min(ratio(mp, mr), ratio(mp, ml))`` with ``mp`` the mean of ``A`` over the
   ``(2R+1)^2`` plate ``k±R, j±R`` (fixed ``i``), ``mr``/``ml`` the means over
   ``j-1..j+1, i+1..i+R`` / ``i-R..i-1`` (fixed ``k``), and
   ``ratio(a, b) = min(a, b) / max(a, b)`` (0 if either is 0).
3. Weights ``W[k, j, i]`` = element ``size - 1`` (0-based) of the sorted values
   ``R3[k-size .. k+size, j, i]``.
4. Mask: threshold ``W <= threshold`` then the depth, length, short-stripe and merge passes of
   :func:`merge_stripes`.

Boundary rule ("mirror") used everywhere: a neighbour at offset ``+m`` from the centre ``c``
that falls outside the axis is replaced by the one at ``-m`` (index ``c - m``). This is *not*
``scipy.ndimage``'s ``mode='mirror'`` (which reflects about the array edge, ``n-1-(c+m-n+1)``);
the two agree only when the centre sits on the edge. A neighbour for which both ``c + m`` and
``c - m`` are out of range cannot occur for validated shapes; inside the merge passes (where the
vertical gap-filling window ``2 * width`` is not bounded by the validation) such a neighbour is
skipped.

Exact and fast
--------------
* The ratio map, the windowed counts and the merge passes are compiled with Numba
  (:mod:`nsgen.prep._ratio_jit`, :mod:`nsgen.prep._stripe_jit`): fused, cache-blocked
  loops instead of ~40 whole-array passes. Float sums are taken in a fixed order (no
  fast-math), so results do not depend on how the volume is chunked; counts are exact
  integers. The merge passes visit
  only detector columns that hold set voxels (stripes are sparse).
* ``ratio(P / (2R+1)^2, S / 3R)`` is evaluated as ``ratio(3R P, (2R+1)^2 S)``: the same
  quotient with one division instead of three.
* The vertical order statistic (window ``2 * size + 1 = 501`` for the NoStripesNet defaults)
  is computed exactly in ``O(n log w)`` per column: interior angles with SciPy's 1-D rank
  filter on the concatenated column series (windows that do not touch an edge never see the
  padding), the first/last ``size`` angles (whose windows contain mirrored duplicates) with a
  wavelet matrix over the ranks of the edge block, vectorised over columns.
* :func:`detect_stripe_mask` never needs ``W`` itself: ``W <= t`` holds exactly when at least
  ``size`` of the ``2 * size + 1`` window values are ``<= t``, a windowed count.

Chunking along detector rows
----------------------------
Every stage has a finite dependency radius along ``j`` (gradient 0, plate ``radius``,
left/right means 1, vertical order statistic 0, threshold 0, depth pass
``min_stripe_depth // 2``, length/short/merge passes 0). Streaming code runs two row-chunked
stages: :func:`stripe_candidates_rows` (``W <= threshold``, halo ``radius``) and
:func:`merge_stripes_rows` (passes 2-5 on the candidates, halo ``min_stripe_depth // 2``), so
the expensive first stage repeats only ``radius`` rows per side. Chained on one block
(:func:`detect_stripe_mask_rows`) they need :attr:`DetectParams.halo` ``= radius + min_stripe_depth // 2``.
"""

from __future__ import annotations

import numpy as np

from nsgen.prep.detect_params import DETECT_FIELDS, MERGE_FIELDS, DetectParams

__all__ = [
    "DetectParams",
    "detect_stripe_mask",
    "detect_stripe_mask_rows",
    "merge_stripes",
    "merge_stripes_rows",
    "rows_to_read",
    "stripe_candidates_rows",
    "stripe_weights",
]

# Bound on the int32 scratch of the edge order statistic (bytes), see _edge_order_statistic.
_EDGE_SCRATCH_BYTES = 1 << 28
# ``norm`` argument of the compiled ratio map for a volume that is normalised already
_NO_NORM = np.empty((0, 1, 1), np.float32)
# ``bits`` argument of the compiled length passes for a mask that is not bit-packed
_NO_BITS = np.empty((0, 1, 1), np.uint8)


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _as_volume(data: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(data, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(
            f"{name} must be a 3D array (angles, detector rows, detector columns); "
            f"got shape {x.shape}"
        )
    return x


def _check_finite(x: np.ndarray) -> None:
    from nsgen.prep import _ratio_jit

    if not _ratio_jit.all_finite(np.ascontiguousarray(x, dtype=np.float32)):
        raise ValueError("data contains NaN or infinite values; normalise the scan first")


# --------------------------------------------------------------------------------------------
# mirror-indexed window operations
# --------------------------------------------------------------------------------------------


def _mirror_index(n: int, m: int) -> np.ndarray:
    """Index of the neighbour at offset ``m`` of every centre ``c`` in ``0..n-1``.

    ``c + m`` if in range, else ``c - m`` if in range, else ``-1`` (no neighbour).
    """
    c = np.arange(n)
    t = c + m
    out = (t < 0) | (t >= n)
    t[out] = c[out] - m
    t[(t < 0) | (t >= n)] = -1
    return t


def _mirror_rows(n: int, m: int) -> np.ndarray:
    """:func:`_mirror_index` with a missing neighbour replaced by the centre itself.

    Missing neighbours only occur in blocks thinner than ``2|m|``, i.e. in the discarded halo
    of a chunk, so any value is fine there.
    """
    idx = _mirror_index(n, m)
    miss = idx < 0
    idx[miss] = np.flatnonzero(miss)
    return idx


def _mirror_table(n: int, radius: int) -> np.ndarray:
    """``t[d, c]``: neighbour of centre ``c`` at offset ``d - radius`` (:func:`_mirror_rows`)."""
    return np.stack([_mirror_rows(n, m) for m in range(-radius, radius + 1)]).astype(np.intp)


def _ratio_kernel(x: np.ndarray, radius: int, threshold: float | None,
                  rows: tuple[int, int] | None = None,
                  below: np.ndarray | None = None) -> np.ndarray:
    """Run the compiled ratio map on rows ``rows`` of ``x`` (all rows by default).

    Returns ``R3`` (float32) or, with a threshold, ``R3 <= t`` (bool, written into the
    C-contiguous bool array ``below`` when given); the other rows of ``x`` are only context.
    """
    from nsgen.prep import _ratio_jit  # compiled on first use (cached on disk)

    x = np.ascontiguousarray(x, dtype=np.float32)
    j0, j1 = rows or (0, x.shape[1])
    shape = (x.shape[0], j1 - j0, x.shape[2])
    mk, mj, mi = (_mirror_table(n, radius) for n in x.shape)
    if threshold is None:
        out_f, out_b = np.empty(shape, np.float32), np.empty((1, 1), np.bool_)
    else:
        out_f = np.empty((1, 1), np.float32)
        out_b = np.empty(shape, np.bool_) if below is None else below
        if out_b.shape != shape or out_b.dtype != np.bool_ or not out_b.flags.c_contiguous:
            raise ValueError(f"below must be a C-contiguous bool array of shape {shape}")
    _ratio_jit.ratio_map_into(x, _NO_NORM, radius, mk, mj, mi, j0, j1,
                              np.float32(threshold or 0), out_f, out_b, 0)
    return out_f if threshold is None else out_b


def _ratio_map(x: np.ndarray, radius: int, rows: tuple[int, int] | None = None) -> np.ndarray:
    """Larix-2 ratio map ``R3`` (SCIENCE B §5.2 steps 2-3), float32, of rows ``rows`` of ``x``.

    Per voxel: ``P`` = plate sum of ``|G|`` over angle offsets ``-R..R`` then row offsets
    ``-R..R``; ``S_r``/``S_l`` = sums over column offsets ``1..R`` / ``-R..-1`` then row
    offsets ``-1, 0, 1``. The means are ``P / (2R+1)^2`` and ``S / 3R``, and
    ``ratio(mp, ms) = min/max`` is evaluated as ``ratio(3R * P, (2R+1)^2 * S)`` (the same
    quotient, one division). Every voxel is the same float32 sequence whatever block it is
    computed in (:mod:`nsgen.prep._ratio_jit`).
    """
    return _ratio_kernel(x, radius, None, rows)


def _below_threshold(x: np.ndarray, radius: int, threshold: float,
                     rows: tuple[int, int] | None = None,
                     out: np.ndarray | None = None) -> np.ndarray:
    """``_ratio_map(x, radius, rows) <= float32(threshold)`` without forming the ratio map."""
    return _ratio_kernel(x, radius, threshold, rows, out)


def _count_at_least(b: np.ndarray, size: int, need: int,
                    out: np.ndarray | None = None) -> np.ndarray:
    """Whether at least ``need`` values of the mirrored window ``k ± size`` of ``b`` are set.

    ``b`` is bool ``(angles, rows, columns)``; the result is uint8 0/1, rows first
    ``(rows, angles, columns)`` (written into ``out`` when given).
    """
    from nsgen.prep import _stripe_jit

    u = np.ascontiguousarray(b).view(np.uint8)
    shape = (u.shape[1], u.shape[0], u.shape[2])
    if out is None:
        out = np.empty(shape, np.uint8)
    elif out.shape != shape or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous uint8 array of shape {shape}")
    _stripe_jit.count_at_least_rows_first(u, size, need, out)
    return out


def _edge_order_statistic(block: np.ndarray, size: int) -> np.ndarray:
    """Order statistic for the first ``size`` angles of each series (mirrored windows).

    Parameters
    ----------
    block : ndarray, shape (C, 2 * size)
        First ``2 * size`` values of ``C`` series.
    size : int

    Returns
    -------
    ndarray, shape (C, size)
        Element ``size - 1`` of the sorted window of centre ``k = 0 .. size-1``.

    Notes
    -----
    With the mirror rule the window of centre ``k < size`` holds ``x[t]`` once for
    ``t <= 2k`` and twice for ``2k < t <= k + size``: weights ``2 [t <= k+size] - [t <= 2k]``
    over two prefixes of the block. A wavelet matrix over the ranks of the block answers the
    weighted rank query in ``log2(2 size)`` vectorised steps.
    """
    n_c, nb = block.shape
    s = size
    order = np.argsort(block, axis=1, kind="stable")
    svals = np.take_along_axis(block, order, axis=1)
    row_nb = (np.arange(n_c, dtype=np.intp) * nb)[:, None]
    cur = np.empty(n_c * nb, dtype=np.int32)  # rank of each value, in position order
    cur[(row_nb + order).ravel()] = np.tile(np.arange(nb, dtype=np.int32), n_c)
    cur = cur.reshape(n_c, nb)
    n_lev = max(1, (nb - 1).bit_length())
    # Wavelet matrix: per level (most significant bit first) the prefix counts of zero bits;
    # elements with a zero bit move (stably) to the front for the next level.
    zeros = [np.empty((n_c, nb + 1), dtype=np.int32) for _ in range(n_lev)]
    pos = np.arange(nb, dtype=np.int32)
    nxt = np.empty_like(cur)
    for li in range(n_lev):
        bit = (cur >> (n_lev - 1 - li)) & 1
        z = zeros[li]
        z[:, 0] = 0
        np.cumsum(1 - bit, axis=1, dtype=np.int32, out=z[:, 1:])
        zb = z[:, :nb]
        newpos = (z[:, nb:] + pos - 2 * zb) * bit + zb  # bit 0: zb; bit 1: nz + pos - zb
        nxt.reshape(-1)[(row_nb + newpos).ravel()] = cur.ravel()
        cur, nxt = nxt, cur
    # Queries: positions (within the level's row) of the common range start and of the two
    # range ends. Branch-free updates (0/1 arithmetic) are much faster than masked ones.
    base = (np.arange(n_c, dtype=np.intp) * (nb + 1))[:, None]
    k = np.arange(s, dtype=np.int32)
    start = np.zeros((n_c, s), dtype=np.int32)
    end_a = np.broadcast_to(k + s + 1, (n_c, s)).copy()  # weight +2: t <= k + size
    end_b = np.broadcast_to(2 * k + 1, (n_c, s)).copy()  # weight -1: t <= 2k
    rem = np.full((n_c, s), s - 1, dtype=np.int32)
    res = np.zeros((n_c, s), dtype=np.int32)
    for li in range(n_lev):
        zf = zeros[li].reshape(-1)
        nz = zeros[li][:, nb:]
        z_s, z_a, z_b = (zf.take(base + q) for q in (start, end_a, end_b))
        c0 = 2 * z_a - z_b - z_s  # weighted count of zero bits in the window
        one = (rem >= c0).view(np.int8).astype(np.int32)
        rem -= one * c0
        res += res + one  # bits collected most significant first
        for q, z in ((start, z_s), (end_a, z_a), (end_b, z_b)):
            # zero bit -> z (zeros before q); one bit -> nz + q - z (ones before q, after zeros)
            q += nz
            q -= 2 * z
            q *= one
            q += z
    return np.take_along_axis(svals, res, 1)


def _series_order_statistic(series: np.ndarray, size: int) -> np.ndarray:
    """Element ``size - 1`` of the mirrored window ``k ± size`` for each row of ``series``.

    ``series`` has shape ``(C, n)`` (float32, C-contiguous); returns the same shape.
    """
    n_c, n = series.shape
    s = size
    out = np.empty_like(series)
    if n > 2 * s:
        # Interior windows never reach past their own series, so filtering the concatenated
        # series is exact there (SciPy's 1-D rank filter is O(log w) per element).
        from scipy import ndimage  # only the weights need it (a slow import)

        flat = ndimage.rank_filter(series.ravel(), s - 1, size=2 * s + 1, mode="nearest")
        out[:, s : n - s] = flat.reshape(n_c, n)[:, s : n - s]
    # Edges: the bottom edge is the top edge of the reversed series (the rule is symmetric).
    per_series = 4 * (2 * s + 1) * ((2 * s - 1).bit_length() + 12)  # edge scratch, bytes
    batch = max(1, _EDGE_SCRATCH_BYTES // per_series)
    for c0 in range(0, n_c, batch):
        rows = series[c0 : c0 + batch]
        head = np.ascontiguousarray(rows[:, : 2 * s])
        out[c0 : c0 + batch, :s] = _edge_order_statistic(head, s)
        tail = np.ascontiguousarray(rows[:, ::-1][:, : 2 * s])
        out[c0 : c0 + batch, n - s :] = _edge_order_statistic(tail, s)[:, ::-1]
    return out


def _vertical_order_statistic(r3: np.ndarray, size: int) -> np.ndarray:
    """SCIENCE B §5.2 step 4 on a (k, j, i) array: exact, ``O(log w)`` per value."""
    out = np.empty_like(r3)
    for j in range(r3.shape[1]):
        series = np.ascontiguousarray(r3[:, j, :].T)
        out[:, j, :] = _series_order_statistic(series, size).T
    return out


def _weights_block(x: np.ndarray, size: int, radius: int) -> np.ndarray:
    return _vertical_order_statistic(_ratio_map(x, radius), size)


def stripe_weights(data: np.ndarray, size: int = 10, radius: int = 3) -> np.ndarray:
    """Larix generation-2 ``STRIPES_DETECT``: stripe-edge weights.

    Parameters
    ----------
    data : ndarray, shape (n_angles, n_rows, n_cols)
        Projection data laid out (angles k, detector rows j, detector columns i); cast to
        float32. Must be finite. The ratio is scale invariant, so -log data are fine.
    size : int
        Half-length of the vertical (angle) window: ``0 < size <= n_angles // 2``.
    radius : int
        Radius ``R`` of the plate/side means (> 0).

    Returns
    -------
    ndarray, float32, same shape
        ``W`` in ``[0, 1]``: about 1 in flat regions, small at stripe edges.

    Raises
    ------
    ValueError
        Not 3D; ``size <= 0`` or ``size > n_angles // 2``; ``radius <= 0``; fewer than
        ``2 radius`` angles or rows, or fewer than ``max(4, 2 radius)`` columns (the mirror
        rule would run out of neighbours); non-finite values.

    Examples
    --------
    >>> x = np.random.default_rng(0).random((40, 8, 16), dtype=np.float32)
    >>> stripe_weights(x, size=5).shape
    (40, 8, 16)
    """
    p = DetectParams(size=size, radius=radius)
    x = _as_volume(data, "data")
    p.check(x.shape, only=DETECT_FIELDS)
    _check_finite(x)
    return _weights_block(x, p.size, p.radius)


# --------------------------------------------------------------------------------------------
# STRIPES_MERGE
# --------------------------------------------------------------------------------------------


def _clean_passes(m: np.ndarray, params: DetectParams) -> np.ndarray:
    """STRIPES_MERGE passes 2-4 (depth, length, short stripe) in place.

    ``m`` is a C-contiguous bool mask laid out rows first, ``(rows j, angles k, columns i)``
    (sinograms contiguous). They only ever clear voxels. Counts as Larix has them, in float32
    arithmetic (:meth:`DetectParams.merge_counts`).
    """
    from nsgen.prep import _stripe_jit

    hl, t_v, hd, t_d = params.merge_counts()
    u = m.view(np.uint8)
    if params.min_stripe_depth > 0:  # the only pass coupling detector rows
        _stripe_jit.depth_pass(u, hd, t_d)
    _stripe_jit.length_passes(u, hl, t_v, _active_columns(m), _NO_BITS)
    return m


def _active_columns(m: np.ndarray) -> np.ndarray:
    """``(rows, columns)`` uint8: whether any voxel of that detector column is set."""
    return np.ascontiguousarray(m.any(axis=1)).view(np.uint8)


def _fill_passes(m: np.ndarray, width: int) -> np.ndarray:
    """STRIPES_MERGE pass 5 (gap filling, ``width`` Jacobi iterations) in place.

    ``m`` as for :func:`_clean_passes`.
    It only ever sets voxels. Each sinogram is independent, and once an iteration changes
    nothing in a sinogram none of the later ones will.
    """
    from nsgen.prep import _stripe_jit

    _stripe_jit.fill_passes(m.view(np.uint8), width, _active_columns(m))
    return m


def _merge_passes(m: np.ndarray, params: DetectParams) -> np.ndarray:
    """SCIENCE B §5.2 STRIPES_MERGE passes 2-5 in place on a rows-first bool mask."""
    _clean_passes(m, params)
    return _fill_passes(m, params.min_stripe_width)


def merge_stripes(
    weights: np.ndarray,
    threshold: float = 0.6,
    min_stripe_length: int = 20,
    min_stripe_depth: int = 10,
    min_stripe_width: int = 5,
    sensitivity_perc: float = 85.0,
) -> np.ndarray:
    """Larix generation-2 ``STRIPES_MERGE``: binary stripe mask from weights.

    Parameters
    ----------
    weights : ndarray, shape (n_angles, n_rows, n_cols)
        Output of :func:`stripe_weights` (cast to float32).
    threshold : float
        Pass 1: ``mask = weights <= float32(threshold)``.
    min_stripe_length : int
        ``0 < L < n_angles``. Pass 3 clears set voxels with fewer than
        ``Tv = int(s * L)`` set voxels in ``k ± L//2``; pass 4 (recounted) fewer than ``L//2``.
    min_stripe_depth : int
        ``0 <= D < n_rows``. Pass 2 (skipped if 0) clears set voxels with more than
        ``Td = int(s * D)`` set voxels in ``j ± D//2``.
    min_stripe_width : int
        ``0 < w < n_cols``. Pass 5, repeated ``w`` times: an unset voxel is set if there are
        set voxels in both ``i-w//2 .. i-1`` and ``i+1 .. i+w//2``, or in both
        ``k-2w .. k-1`` and ``k+1 .. k+2w``. A merge distance, not a width filter.
    sensitivity_perc : float
        ``0 < sens <= 100``; ``s = 0.01f * sens`` in float32 arithmetic
        (:meth:`DetectParams.merge_counts`).

    Returns
    -------
    ndarray, uint8, same shape
        0/1 mask.

    Notes
    -----
    Every pass reads the previous pass's mask and writes a new one (Jacobi style); window
    counts include the centre and use the mirror rule of this module.

    Raises
    ------
    ValueError
        Not 3D or a parameter outside the bounds above (the message names the bound).
    """
    p = DetectParams(threshold=threshold, min_stripe_length=min_stripe_length,
                     min_stripe_depth=min_stripe_depth, min_stripe_width=min_stripe_width,
                     sensitivity_perc=sensitivity_perc)
    w = _as_volume(weights, "weights")
    p.check(w.shape, only=MERGE_FIELDS)
    m = np.ascontiguousarray((w <= np.float32(p.threshold)).transpose(1, 0, 2))
    _merge_passes(m, p)
    return np.ascontiguousarray(m.transpose(1, 0, 2)).view(np.uint8)


# --------------------------------------------------------------------------------------------
# whole pipeline, whole volume or row chunks
# --------------------------------------------------------------------------------------------


def detect_stripe_mask(data: np.ndarray, size: int = 250, radius: int = 3,
                       threshold: float = 0.63, min_stripe_length: int = 600,
                       min_stripe_depth: int = 30, min_stripe_width: int = 22,
                       sensitivity_perc: float = 85.0) -> np.ndarray:
    """Stripe mask of a whole volume: ``merge_stripes(stripe_weights(data, ...), ...)``.

    Defaults are the NoStripesNet mask-script values (:class:`DetectParams`). The result is
    identical to the two-step call, but the weights themselves are never formed (only whether
    ``W <= threshold``).

    Parameters
    ----------
    data : ndarray, shape (n_angles, n_rows, n_cols)
        Normalised projections (angles, detector rows, detector columns).
    size, radius : int
        See :func:`stripe_weights`.
    threshold, min_stripe_length, min_stripe_depth, min_stripe_width, sensitivity_perc
        See :func:`merge_stripes`.

    Returns
    -------
    ndarray, uint8, same shape
        0/1 stripe mask.
    """
    params = DetectParams(size, radius, threshold, min_stripe_length, min_stripe_depth,
                          min_stripe_width, sensitivity_perc)
    x = _as_volume(data, "data")
    return detect_stripe_mask_rows(x, 0, (0, x.shape[1]), x.shape[1], params)  # type: ignore


def load_kernels() -> None:
    """Load (or compile, the first time) the compiled detector kernels in this process.

    They load on first use anyway; calling this early (e.g. in a worker while the first
    chunk is being read) takes the ~1 s off the first chunk.
    """
    x = np.ones((8, 6, 8), np.float32)
    p = DetectParams(size=2, radius=1, threshold=0.5, min_stripe_length=2, min_stripe_depth=2,
                     min_stripe_width=2)
    cand = stripe_candidates_rows(x, 0, (0, 6), 6, p)
    merge_stripes_rows(cand, 0, (0, 6), 6, p)  # type: ignore[arg-type]


def rows_to_read(start: int, stop: int, n_rows_total: int, halo: int) -> tuple[int, int]:
    """Volume rows ``[lo, hi)`` to read to compute mask rows ``[start, stop)``.

    The halo is clipped at the true volume edges (there the kernel mirrors exactly as it does
    on the whole volume). The halos: :func:`stripe_candidates_rows` needs ``radius`` rows,
    :func:`merge_stripes_rows` ``min_stripe_depth // 2``, the two chained
    (:func:`detect_stripe_mask_rows`) :attr:`DetectParams.halo` (dependency radius along
    detector rows, stage by stage: gradient 0, plate mean ``radius``, left/right means 1,
    vertical order statistic 0, threshold 0; depth pass ``min_stripe_depth // 2``, length,
    short-stripe and merge passes 0; ``size`` and ``min_stripe_width`` act along angles and
    columns only).

    Examples
    --------
    >>> rows_to_read(0, 32, 100, 18), rows_to_read(32, 64, 100, 18), rows_to_read(96, 100, 100, 18)
    ((0, 50), (14, 82), (78, 100))
    >>> DetectParams().halo
    18
    """
    if not 0 <= start < stop <= n_rows_total:
        raise ValueError(f"need 0 <= start < stop <= {n_rows_total}; got ({start}, {stop})")
    return max(0, start - halo), min(n_rows_total, stop + halo)


def _block_rows(block_start: int, n_block: int, rows: tuple[int, int], n_rows_total: int,
                halo: int) -> tuple[int, int, int, int]:
    """Validate that a block covers ``rows`` plus ``halo``; return rows and block offsets."""
    start, stop = (int(v) for v in rows)
    lo, hi = rows_to_read(start, stop, n_rows_total, halo)
    if block_start > lo or block_start + n_block < hi:
        raise ValueError(
            f"block holds volume rows [{block_start}, {block_start + n_block}) but rows "
            f"[{start}, {stop}) need rows [{lo}, {hi}) (halo {halo})"
        )
    return start, stop, lo - block_start, hi - block_start


def stripe_candidates_rows(
    block: np.ndarray,
    block_start: int,
    rows: tuple[int, int],
    n_rows_total: int,
    params: DetectParams,
    return_weights: bool = False,
    out: np.ndarray | None = None,
    work: np.ndarray | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """STRIPES_DETECT and merge pass 1 (``W <= threshold``) for detector rows ``[start, stop)``.

    The first of the two row-chunked stages of :func:`detect_stripe_mask`: it needs
    ``radius`` rows of halo (``rows_to_read(start, stop, n_rows_total, radius)``) and returns
    the candidate mask rows first, ready for :func:`merge_stripes_rows`.

    Parameters
    ----------
    block : ndarray, shape (n_angles, n_block_rows, n_cols)
        Normalised volume rows ``[block_start, block_start + n_block_rows)``.
    block_start : int
        Volume row of ``block[:, 0]``.
    rows : (int, int)
        ``(start, stop)``: volume rows to return.
    n_rows_total : int
        Detector rows of the whole volume (parameters are validated against it).
    params : DetectParams
        ``size``, ``radius`` and ``threshold`` are used.
    return_weights : bool
        Also return the exact weights :func:`stripe_weights` of those rows (slower).
    out : ndarray, optional
        C-contiguous uint8 array of the candidates' shape to write them into.
    work : ndarray, optional
        Reusable scratch: a C-contiguous uint8 array of at least
        ``n_angles * (stop - start) * n_cols`` bytes for the thresholded ratio map (a
        caller that processes chunk after chunk saves allocating it every time).

    Returns
    -------
    candidates : ndarray, uint8, shape (stop - start, n_angles, n_cols)
        ``W <= threshold``, rows first.
    weights : ndarray, float32, same shape
        Only if ``return_weights``.

    Raises
    ------
    ValueError
        Parameters out of bounds for the whole volume, non-finite data, or the block does not
        cover the rows needed.
    """
    x = _as_volume(block, "block")
    params.check((x.shape[0], n_rows_total, x.shape[2]), only=DETECT_FIELDS)
    size, radius, threshold = params.size, params.radius, params.threshold
    start, stop, b0, b1 = _block_rows(block_start, x.shape[1], rows, n_rows_total, radius)
    x = np.ascontiguousarray(x[:, b0:b1])  # once, for the finite check and the kernels
    _check_finite(x)
    crop = (start - block_start - b0, stop - block_start - b0)
    if return_weights:
        w = _vertical_order_statistic(_ratio_map(x, radius, crop), size)
        w = np.ascontiguousarray(w.transpose(1, 0, 2))
        cand = np.less_equal(w, np.float32(threshold),
                             out=None if out is None else out.view(np.bool_))
        return cand.view(np.uint8), w
    below = None
    if work is not None:
        n = x.shape[0] * (stop - start) * x.shape[2]
        if work.dtype != np.uint8 or work.size < n or not work.flags.c_contiguous:
            raise ValueError(f"work must be a C-contiguous uint8 array of at least {n} bytes")
        below = work.reshape(-1)[:n].view(np.bool_).reshape(x.shape[0], stop - start,
                                                           x.shape[2])
    # W <= t  <=>  at least `size` of the 2*size+1 window values are <= t.
    return _count_at_least(_below_threshold(x, radius, threshold, crop, below), size, size,
                           out)


def merge_stripes_rows(
    candidates: np.ndarray,
    block_start: int,
    rows: tuple[int, int],
    n_rows_total: int,
    params: DetectParams,
    overwrite_input: bool = False,
) -> np.ndarray:
    """STRIPES_MERGE passes 2-5 for detector rows ``[start, stop)`` of a candidate mask.

    The second row-chunked stage of :func:`detect_stripe_mask`: it needs
    ``min_stripe_depth // 2`` rows of halo around ``rows``.

    Parameters
    ----------
    candidates : ndarray, shape (n_block_rows, n_angles, n_cols)
        Rows ``[block_start, block_start + n_block_rows)`` of the output of
        :func:`stripe_candidates_rows` (rows first, 0/1).
    block_start, rows, n_rows_total
        As for :func:`stripe_candidates_rows`.
    params : DetectParams
        The merge fields are used (see :func:`merge_stripes`).
    overwrite_input : bool
        Work in ``candidates`` itself (a C-contiguous 0/1 uint8 array) instead of a copy;
        the result is then a view of it.

    Returns
    -------
    ndarray, uint8, shape (stop - start, n_angles, n_cols)
        0/1 stripe mask, rows first.
    """
    c = np.asarray(candidates)
    if c.ndim != 3:
        raise ValueError(f"candidates must be a 3D array (rows, angles, columns); got {c.shape}")
    params.check((c.shape[1], n_rows_total, c.shape[2]), only=MERGE_FIELDS)
    start, stop, b0, b1 = _block_rows(block_start, c.shape[0], rows, n_rows_total,
                                      params.min_stripe_depth // 2)
    if overwrite_input and c.dtype == np.uint8 and c.flags.c_contiguous:
        m = c[b0:b1].view(np.bool_)
    else:
        m = np.array(c[b0:b1], dtype=np.bool_, order="C")  # the passes work in place
    _merge_passes(m, params)
    off = start - block_start - b0
    return m[off:off + stop - start].view(np.uint8)


def detect_stripe_mask_rows(
    block: np.ndarray,
    block_start: int,
    rows: tuple[int, int],
    n_rows_total: int,
    params: DetectParams,
    return_weights: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Stripe mask for detector rows ``[start, stop)`` computed from a block of rows.

    The result equals ``detect_stripe_mask(volume)[:, start:stop]`` exactly, provided the
    block holds (at least) the volume rows ``rows_to_read(start, stop, n_rows_total, h)``
    with ``h = params.halo``. It chains the two stages :func:`stripe_candidates_rows` (halo
    ``radius``) and :func:`merge_stripes_rows` (halo ``min_stripe_depth // 2``); a pipeline
    that streams a scan runs them as two passes so that only the second repeats rows.

    How the edges work: the kernels mirror at both ends of the (cropped) block. Where a block
    end is the true volume edge (row 0 or ``n_rows_total``), that is exactly what the
    whole-volume computation does. Where it is not, the wrong mirrored values contaminate at
    most the halo rows next to that end, which are cropped away. Parameters are validated
    against the whole-volume shape ``(n_angles, n_rows_total, n_cols)``.

    Parameters
    ----------
    block : ndarray, shape (n_angles, n_block_rows, n_cols)
        Volume rows ``[block_start, block_start + n_block_rows)``.
    block_start : int
        Volume row of ``block[:, 0]``.
    rows : (int, int)
        ``(start, stop)``: volume rows of the mask to return.
    n_rows_total : int
        Number of detector rows of the whole volume.
    params : DetectParams
    return_weights : bool
        Also return the exact weights :func:`stripe_weights` of those rows (slower).

    Returns
    -------
    mask : ndarray, uint8, shape (n_angles, stop - start, n_cols)
    weights : ndarray, float32, same shape
        Only if ``return_weights``.

    Raises
    ------
    ValueError
        Parameters out of bounds for the whole volume (all problems in one message), or the
        block does not cover the rows needed.

    Examples
    --------
    >>> vol = np.random.default_rng(1).random((60, 40, 24), dtype=np.float32)
    >>> p = DetectParams(size=10, radius=3, min_stripe_length=20, min_stripe_depth=6,
    ...                  min_stripe_width=4)
    >>> lo, hi = rows_to_read(10, 20, 40, p.halo)
    >>> part = detect_stripe_mask_rows(vol[:, lo:hi], lo, (10, 20), 40, p)
    >>> bool((part == detect_stripe_mask(vol, **vars(p))[:, 10:20]).all())
    True
    """
    x = _as_volume(block, "block")
    params.check((x.shape[0], n_rows_total, x.shape[2]))
    start, stop, _, _ = _block_rows(block_start, x.shape[1], rows, n_rows_total, params.halo)
    c_lo, c_hi = rows_to_read(start, stop, n_rows_total, params.min_stripe_depth // 2)
    got = stripe_candidates_rows(x, block_start, (c_lo, c_hi), n_rows_total, params,
                                 return_weights)
    cand, w = got if isinstance(got, tuple) else (got, None)
    mask = merge_stripes_rows(cand, c_lo, (start, stop), n_rows_total, params)
    mask = np.ascontiguousarray(mask.transpose(1, 0, 2))
    if w is not None:
        return mask, np.ascontiguousarray(w[start - c_lo:stop - c_lo].transpose(1, 0, 2))
    return mask
