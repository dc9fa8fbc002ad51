"""Scores of the robust stripe detector: ranks along the angles, rows first, robust z.

Steps 1-4 of :mod:`nsgen.prep.stripe_robust`, for one angle set (the whole scan or one angle
block): :func:`ranks` sorts every column along the angles and keeps :data:`QUANTILES` ranks
of its middle (:func:`pooled`: the whole scan's from its blocks'); :func:`scores` gives each
row's robust z per column from those ranks and its neighbouring rows'. Pure: arrays in,
arrays out; compiled kernels in :mod:`nsgen.prep._robust_jit` (ranks) and
:mod:`nsgen.prep._robust_offsets_jit` (offsets).

Examples
--------
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(0, 0.01, (180, 64)).astype(np.float32)
>>> x[:, 30:33] += 0.03
>>> z = column_scores(x)
>>> bool((z[30:33] > 8).all()), bool(np.abs(np.delete(z, range(30, 33))).max() < 5)
(True, True)
"""

from __future__ import annotations

import functools

import numpy as np

from nsgen.prep import _robust_plan as _plan   # (plain Python: no Numba)
from nsgen.prep._lazy import kernels
from nsgen.prep.robust_moving import moving

_rj = kernels("nsgen.prep._robust_jit")
_ro = kernels("nsgen.prep._robust_offsets_jit")

__all__ = ["HALF_WINDOW", "column_scores", "depth_rule", "end_trend", "local_scale",
           "mirror_table", "pooled", "offset_scores", "offsets", "rank_index", "ranks",
           "raw_ranks", "scores", "strong_columns"]

#: half window of the median across columns (stripes up to this wide are found)
HALF_WINDOW = 8

#: fraction of the angles dropped at each end of a sorted column
DROP = 0.1

#: ranks of each sorted column used (evenly spaced over the middle 80 %; 64 gave the same
#: quality at twice the cost, 16 lost some: docs/detection.md)
QUANTILES = 32

#: the unit of a score is at least the row's local scale: 1.4826 x the median ``|q|`` over
#: ``2 LOCAL`` columns around each tile of ``LOCAL`` columns (a sample's texture and the
#: noise behind a thick sample vary across the row; one scale per row made its busy parts
#: score: docs/detection.md)
LOCAL = 16
#: ... times this factor (0: one scale per row)
LOCAL_FACTOR = 1.0

#: the volume's ends: a row compared with the rows on one side only (its window's centre
#: ``delta`` rows away) takes the sample's change along the rows as an offset, ``slope x
#: delta`` (symmetric windows cancel it). Where the end rows of largest ``delta`` (at least
#: half the largest) all show an offset of one sign growing with ``delta``, the unit of an
#: end row is at least ``|slope x delta|``, the slope the TREND_QUANTILE of their ``|q| /
#: delta`` (a stripe on some of those rows is no trend: at its quantile the others are
#: ~0); at most TREND_CAP robust scales of the row (dead and saturated columns score
#: 300-6000, sample trends at most ~10); only with ``hd >= TREND_ROWS`` (fewer rows tell no
#: trend from a stripe). Labelled benchmark, seeds 1-4: clean rows flagged 20 -> 11 of 426,
#: no stripe row lost (docs/detection.md).
TREND_ROWS = 5
TREND_QUANTILE = 0.25
TREND_CAP = 30.0

#: the other rows' spread is part of the unit only with at least this many of them (lowangle:
#: a MAD of 2 values is no estimate, and their backgrounds hold this row: with 2 rows
#: compared, a median is their mean, so this row's stripe leaks into their offsets)
SPREAD_ROWS = 3

#: a column whose offset in its row alone exceeds this many robust scales of that row is
#: left out of the other rows' background (labelled benchmark: dead and saturated columns
#: score 300-6000 there, sample features at most 73; 50 let sample features in)
STRONG = 150.0


def _robust_scale(q: np.ndarray) -> float:
    """1.4826 x the MAD of the non-zero offsets (at least 1e-12)."""
    return float(_ro.robust_scale(np.ascontiguousarray(q, np.float64)))


def column_scores(x: np.ndarray) -> np.ndarray:
    """Robust scores ``z`` of every column of one sinogram ``(angles, columns)`` alone (no
    neighbouring rows): steps 1 and 3 with the row's own robust scale."""
    x = np.ascontiguousarray(x, np.float32)
    srt = ranks(x[:, None, :], 0, x.shape[0])
    return scores(srt, np.zeros((1, x.shape[1]), bool), 0, 1, 0, 0, 1)[0]


def depth_rule(n_rows_total: int, depth: int = 30) -> int:
    """``hd``: rows each side of a row it is compared with (step 2); the halo is ``2 hd``.

    Examples
    --------
    >>> depth_rule(256), depth_rule(8), depth_rule(1)
    (15, 3, 0)
    """
    return min(depth, n_rows_total - 1) // 2


def ranks(x: np.ndarray, a0: int, a1: int, bins: np.ndarray | None = None,
          means: np.ndarray | None = None, bin0: int = 0) -> np.ndarray:
    """Step 1 over the angles ``a0:a1``: ``(rows, ranks, columns)`` float32; with ``bins``
    (angle edges from ``a0`` to ``a1``), the means over them into ``means[:, bin0:]``
    ``(rows, bins, columns)`` float32 on the way (the values are read once)."""
    idx = rank_index(a1 - a0)
    srt = np.empty((x.shape[1], idx.size, x.shape[2]), np.float32)
    if bins is None or means is None:
        bins, means = np.zeros(1, np.intp), np.empty((0, 0, 0), np.float32)
    _rj.ranked_rows(x, a0, a1, *_rj.sort_plan(a1 - a0), idx, srt, bins, bin0, means)
    return srt


def pooled(ranks_b: list[np.ndarray]) -> np.ndarray:
    """Ranks of the whole scan from those of its angle blocks: :data:`QUANTILES` evenly
    spaced ranks of the blocks' ranks pooled (each block's middle stands for its share of
    the angles; a sort of ``blocks x QUANTILES`` values, not of every angle)."""
    pool = np.ascontiguousarray(np.concatenate(ranks_b, axis=1).transpose(1, 0, 2))
    n = pool.shape[0]
    idx, runs = _pool_index([r.shape[1] for r in ranks_b])
    srt = np.empty((pool.shape[1], idx.size, pool.shape[2]), np.float32)
    _rj.ranked_rows(pool, 0, n, *_rj.sort_plan(n, runs), idx, srt, np.zeros(1, np.intp), 0,
                    np.empty((0, 0, 0), np.float32))
    return srt


def _pool_index(counts: list[int]) -> tuple[np.ndarray, int]:
    """Of the blocks' ranks pooled (``counts`` ranks per block): the ranks kept
    (:data:`QUANTILES` evenly spaced) and the sorted runs the pool is made of (each
    block's ranks are sorted: runs of that many when all blocks have as many, a power of
    2; else 1)."""
    n = sum(counts)
    idx = np.unique(np.linspace(0, n - 1, QUANTILES).round().astype(np.intp))
    runs = counts[0] if len(set(counts)) == 1 else 1
    return idx, runs if runs & (runs - 1) == 0 else 1


def raw_ranks(raw: np.ndarray,
              constants: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
              edges: np.ndarray, bins: np.ndarray | None = None,
              means: np.ndarray | None = None) -> list[np.ndarray]:
    """Step 1 of every angle set, straight from raw projections ``raw`` ``(angles, rows,
    columns)``: the :func:`ranks` of each angle block ``edges[b]:edges[b + 1]`` of the
    normalised values (``constants``: :func:`~nsgen.prep.normalise.pixel_constants` of the
    rows), then, with more blocks than one, their :func:`pooled` ranks; the same values,
    the normalised volume never stored (each tile of a row is normalised, ranked and pooled
    while it is in the cache).

    With ``bins`` (edges of angle bins nested in the blocks) and ``means`` (``(rows, bins,
    columns)`` float32), also each row's means of the normalised values over the bins into
    ``means``, from the same pass over the raw values: the values of
    :func:`~nsgen.prep.robust_features.raw_bin_means` (float64 sums in angle order).
    """
    sizes = [int(e1 - e0) for e0, e1 in zip(edges[:-1], edges[1:])]
    idx = [rank_index(n) for n in sizes]
    counts = [i.size for i in idx]
    runs = 1
    if len(counts) > 1:
        pool_idx, runs = _pool_index(counts)
        sizes.append(sum(counts))
        idx.append(pool_idx)
        counts.append(pool_idx.size)
    plans = _rj.set_plans(tuple(sizes), runs)
    cut = np.cumsum([0] + counts).astype(np.int64)
    out = np.empty((len(counts), raw.shape[1], max(counts), raw.shape[2]), np.float32)
    if means is None or bins is None:
        bins, means = np.zeros(1, np.int64), np.empty((0, 0, 0), np.float32)
    else:
        assert means.shape == (raw.shape[1], bins.size - 1, raw.shape[2]), means.shape
    args = (*constants, np.asarray(edges, np.int64), *plans,
            np.concatenate(idx).astype(np.int64), cut, out, np.asarray(bins, np.int64),
            np.searchsorted(bins, edges).astype(np.int64), means)
    if raw.dtype.kind in "ui":   # sorted as integers, only the ranks kept normalised
        _rj.ranked_int_sets(raw, np.iinfo(raw.dtype).max, *args)
    else:
        _rj.ranked_sets(raw, *args)
    return [out[s] if counts[s] == out.shape[2] else np.ascontiguousarray(out[s, :, :c])
            for s, c in enumerate(counts)]


def strong_columns(srt: np.ndarray) -> np.ndarray:
    """Step 4's strong defects (dead, saturated columns) of every row of the ranked rows
    ``srt`` ``(rows, ranks, columns)``, found in the row alone (no other rows): ``|q|`` above
    :data:`STRONG` robust scales of that row; ``(rows, columns)`` bool."""
    mir = mirror_table(srt.shape[2])
    out = np.empty((srt.shape[0], srt.shape[2]), bool)
    _ro.strong_columns(srt, mir, _rj.network(mir.shape[0]), STRONG, out)
    return out


def offsets(srt: np.ndarray, strong: np.ndarray, r0: int, r1: int, lo: int, hd: int,
            n_rows_total: int, consistency: np.ndarray | None = None) -> np.ndarray:
    """Offsets ``q`` of the rows ``r0:r1`` of a block (volume rows from ``lo``) and their
    robust scales, from the ranked rows ``srt`` ``(block rows, ranks, columns)`` of one
    angle set and their :func:`strong_columns`: ``(r1 - r0, columns + 1)`` float64, the
    scale last. The block must hold ``hd`` rows each side (clipped to the volume). With
    ``consistency`` (``(r1 - r0, columns)`` float64), also each offset's rank consistency
    into it: ``|q| / std`` of the residuals of its ranks (a gain error shifts every rank of
    its column alike; a sample feature some ranks only).

    Rows first: each row's ranked sinogram minus the per-rank median of the other rows
    ``j - hd .. j + hd`` inside the volume (what the rows share, the sample, steep slopes and
    edges included, is removed before the median across columns, which then only meets
    what differs between rows). The strong defects of the rows that serve as background
    are replaced there by their row's neighbouring columns (such a defect shifts the other
    rows' per-rank median enough to score beside it). Compiled kernels:
    :mod:`nsgen.prep._robust_offsets_jit`.
    """
    n_i = srt.shape[2]
    mir = mirror_table(n_i)
    pairs_w = _rj.network(mir.shape[0])
    bg = srt
    if hd and strong.any():
        bg = srt.copy()
        for r in np.flatnonzero(strong.any(axis=1)):
            _interpolate(bg[r], strong[r])
    out = np.empty((r1 - r0, n_i + 1))
    cons = np.empty((r1 - r0, 0)) if consistency is None else consistency
    n = 0
    while n < r1 - r0:
        i = r0 + n + lo
        g = _plan.ROW_GROUP
        if (2 * hd == _plan.ROW_MEDIAN and n + g - 1 < r1 - r0 and i >= hd
                and i + g - 1 + hd < n_rows_total):   # rows with whole backgrounds
            _ro.row_offsets_group(srt, bg, i - lo, hd, mir, pairs_w, out[n:n + g, :n_i],
                                  cons[n:n + g])
            step = g
        elif (2 * hd == _plan.ROW_MEDIAN and n + 1 < r1 - r0 and i >= hd
                and i + 1 + hd < n_rows_total):   # two rows with whole backgrounds
            _ro.row_offsets_pair(srt, bg, i - lo, hd, mir, pairs_w, out[n, :n_i],
                                 out[n + 1, :n_i], cons[n], cons[n + 1])
            step = 2
        else:
            others = _window(i, hd, n_rows_total)
            o_lo, o_hi = (others[0] - lo, others[-1] + 1 - lo) if others else (0, 0)
            _ro.row_offsets(srt, bg, i - lo, o_lo, o_hi, _rj.network(len(others)), mir,
                            pairs_w, out[n, :n_i], cons[n])
            step = 1
        for k in range(n, n + step):
            out[k, n_i] = _robust_scale(out[k, :n_i])
        n += step
    return out


def local_scale(q: np.ndarray) -> np.ndarray:
    """Local robust scale of the offsets ``q`` ``(..., columns)`` of rows, per column: 1.4826
    x the median ``|q|`` over the :data:`LOCAL` columns of each tile and ``LOCAL // 2`` each
    side (``q`` is already a residual around 0); rows of fewer than ``2 LOCAL`` columns get
    one value.

    Examples
    --------
    >>> q = np.r_[np.full(64, 0.01), np.full(64, 0.001)] * np.resize([1, -1], 128)
    >>> s = local_scale(q)
    >>> bool(np.allclose(s[:48], 0.014826)), bool(np.allclose(s[-48:], 0.0014826))
    (True, True)
    """
    a = np.abs(np.asarray(q, np.float32))  # (a scale: float32 sorts 6x faster)
    n_i = a.shape[-1]
    if n_i < 2 * LOCAL:
        return np.repeat(1.4826 * np.median(a, axis=-1, keepdims=True), n_i, axis=-1)
    t = -(-n_i // LOCAL)
    lo = np.clip(np.arange(t) * LOCAL - LOCAL // 2, 0, n_i - 2 * LOCAL)
    win = np.sort(a[..., lo[:, None] + np.arange(2 * LOCAL)[None, :]], axis=-1)
    med = win[..., LOCAL - 1:LOCAL + 1].mean(axis=-1, dtype=np.float64)
    return np.repeat(1.4826 * med, LOCAL, axis=-1)[..., :n_i]


def offset_scores(qs: np.ndarray, q_lo: int, rows: tuple[int, int], hd: int,
                  n_rows_total: int) -> np.ndarray:
    """Scores ``z`` ``(stop - start, columns)`` of volume rows ``rows`` from the
    :func:`offsets` ``qs`` of volume rows ``q_lo ...`` (holding ``hd`` rows each side,
    clipped to the volume): each offset over the largest of its row's robust scale, its
    row's :func:`local_scale` (x :data:`LOCAL_FACTOR`), per column, the spread of the
    other rows' offsets (where the rows differ anyway, e.g. a sample edge that is not
    parallel to the rotation axis) and, near the volume's ends, the sample's trend along
    the rows (:func:`end_trend`); 0 where the offset is a sample feature moving across the
    columns from row to row (:func:`~nsgen.prep.robust_moving.moving`: a defect of the
    detector stays in its columns)."""
    start, stop = rows
    n_i = qs.shape[1] - 1
    z = np.empty((stop - start, n_i))
    spread = np.empty(n_i)
    local = LOCAL_FACTOR * local_scale(qs[start - q_lo:stop - q_lo, :n_i])
    trend = end_trend(qs, q_lo, rows, hd, n_rows_total)
    for i in range(start, stop):
        others = _window(i, hd, n_rows_total)
        unit = np.maximum(np.maximum(qs[i - q_lo, n_i], local[i - start]), trend[i - start])
        if len(others) >= SPREAD_ROWS:  # how much the other rows differ from their own
            # backgrounds here
            _ro.spread(qs[[o - q_lo for o in others], :n_i], median_network(len(others)),
                       spread)
            unit = np.maximum(unit, spread)
        z[i - start] = qs[i - q_lo, :n_i] / unit
    z[moving(qs, z, q_lo, rows, hd, n_rows_total)] = 0.0
    return z


@functools.lru_cache(maxsize=64)
def median_network(n: int) -> np.ndarray:
    """The comparators of :func:`~nsgen.prep._robust_jit.network` ``(n)`` that feed its
    middle outputs (``n // 2``, and ``n // 2 - 1`` of an even ``n``: what a median reads),
    ``(pairs, 2)`` int64: the same medians with fewer comparators (30 values: 148 of 178;
    the rows are permuted, never changed, so a MAD's deviations are the same values).

    Examples
    --------
    >>> v = np.array([[3.0], [1.0], [4.0], [1.0], [5.0], [9.0]])
    >>> for a, b in median_network(6):
    ...     v[[a, b]] = np.sort(v[[a, b]], axis=0)
    >>> v[2:4].ravel().tolist(), len(median_network(30)), len(_rj.network(30))
    ([3.0, 4.0], 148, 178)
    """
    keep = (n // 2,) if n % 2 else (n // 2 - 1, n // 2)
    return np.array(_plan.selection(n, keep), np.int64).reshape(-1, 2)


def _centre_offset(j: int, hd: int, n_rows_total: int) -> float:
    """How far the centre of row ``j``'s compared rows lies from it (0 for a symmetric
    window, about ``hd / 2`` at the volume's ends)."""
    others = _window(j, hd, n_rows_total)
    return float(np.mean(others)) - j if others else 0.0


def end_trend(qs: np.ndarray, q_lo: int, rows: tuple[int, int], hd: int,
              n_rows_total: int) -> np.ndarray:
    """The offsets ``(stop - start, columns)`` the sample's change along the rows explains in
    volume rows ``rows`` (0 but near the volume's ends; :data:`TREND_ROWS`): per end, the
    rows whose compared rows lie on one side (``0 .. hd - 1``, ``n - hd .. n - 1``), each
    ``|slope x delta|`` (:func:`_centre_offset`), the slope per column the
    :data:`TREND_QUANTILE` of ``|q| / delta`` over the rows of ``|delta|`` at least half the
    largest, where all of them share one sign (0 elsewhere); at most :data:`TREND_CAP` robust
    scales of the row. ``qs`` (:func:`offsets` of volume rows ``q_lo ...``) must hold ``hd``
    rows each side of ``rows``, hence every row of an end zone that ``rows`` reaches.

    Examples
    --------
    >>> n, hd = 32, 15
    >>> q = np.zeros((n, 3)); q[:, 2] = 1.0          # 2 columns, robust scale 1
    >>> for j in range(n):                           # a linear trend along the rows in column 0
    ...     q[j, 0] = -0.5 * _centre_offset(j, hd, n)
    >>> t = end_trend(q, 0, (0, n), hd, n)
    >>> t[0].round(2).tolist(), t[15].tolist(), t[31].round(2).tolist()
    ([4.0, 0.0], [0.0, 0.0], [4.0, 0.0])
    """
    start, stop = rows
    n_i = qs.shape[1] - 1
    out = np.zeros((stop - start, n_i))
    if hd < TREND_ROWS:
        return out
    for zone in (range(0, hd), range(n_rows_total - hd, n_rows_total)):
        inside = [r for r in zone if start <= r < stop]
        if not inside:
            continue
        d = np.array([_centre_offset(r, hd, n_rows_total) for r in zone])
        use = np.abs(d) >= 0.5 * np.abs(d).max()
        ratio = qs[[r - q_lo for r, u in zip(zone, use) if u], :n_i] / d[use][:, None]
        one_sign = (ratio > 0).all(axis=0) | (ratio < 0).all(axis=0)
        slope = np.where(one_sign, np.quantile(np.abs(ratio), TREND_QUANTILE, axis=0), 0.0)
        for r in inside:
            dr = d[r - zone[0]]
            out[r - start] = np.minimum(slope * abs(dr), TREND_CAP * qs[r - q_lo, n_i])
    return out


def scores(srt: np.ndarray, strong: np.ndarray, r0: int, r1: int, lo: int, hd: int,
           n_rows_total: int) -> np.ndarray:
    """Scores ``z`` (rows ``r0:r1`` of the block, columns) from the ranked rows ``srt``
    ``(block rows, ranks, columns)`` of one angle set and their :func:`strong_columns`
    (:func:`offsets`, then :func:`offset_scores`); rows needed: ``2 hd`` each side."""
    first, last = max(r0 + lo - hd, 0), min(r1 + lo + hd, n_rows_total)
    qs = offsets(srt, strong, first - lo, last - lo, lo, hd, n_rows_total)
    return offset_scores(qs, first, (r0 + lo, r1 + lo), hd, n_rows_total)


def _interpolate(ranks: np.ndarray, exclude: np.ndarray) -> None:
    """Replace the ``exclude``d columns of ``ranks`` ``(ranks, columns)`` by the linear
    interpolation of the nearest columns kept (in place; nothing if none is kept)."""
    keep = np.flatnonzero(~exclude)
    if keep.size == 0:
        return
    out = np.flatnonzero(exclude)
    pos = np.searchsorted(keep, out)
    left = keep[np.clip(pos - 1, 0, keep.size - 1)]
    right = keep[np.clip(pos, 0, keep.size - 1)]
    w = np.where(right != left, (out - left) / np.maximum(right - left, 1), 0.0)
    ranks[:, out] = ranks[:, left] * (1 - w) + ranks[:, right] * w


def rank_index(n_k: int) -> np.ndarray:
    """Ranks kept of a column of ``n_k`` sorted values: :data:`QUANTILES` evenly spaced over
    its middle (``DROP`` cut at each end)."""
    d = int(DROP * n_k)
    return np.unique(np.linspace(d, n_k - 1 - d, QUANTILES).round().astype(np.intp))


def mirror_table(n_i: int) -> np.ndarray:
    """``(2 h + 1, n_i)`` columns of the median window across columns, mirrored at the
    edges without repeating the edge column (SciPy's ``mode="mirror"``)."""
    h = min(HALF_WINDOW, max(1, (n_i - 1) // 2))
    c = np.arange(n_i)[None, :] + np.arange(-h, h + 1)[:, None]
    if n_i == 1:
        return np.zeros_like(c)
    c = np.abs(c) % (2 * n_i - 2)
    return np.where(c >= n_i, 2 * n_i - 2 - c, c)


def _window(j: int, hd: int, n_rows_total: int) -> list[int]:
    """The other volume rows within ``hd`` of row ``j``; none if fewer than 2 (one row alone
    is no background: a stripe there would score in this row with the opposite sign)."""
    rows = [i for i in range(max(j - hd, 0), min(j + hd + 1, n_rows_total)) if i != j]
    return rows if len(rows) >= 2 else []
