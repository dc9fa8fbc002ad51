"""Robust stripe detector: decisions from each sinogram's own statistics (Vo's sorting idea).

Larix's weights are informative but its fixed threshold is not (issue 17: clean regions have
weight medians 0.55-0.72, around the 0.63 threshold). This detector decides relative to the
spread measured in each sinogram, so one rule holds for faint and strong stripes, noisy and
clean scans.

Per sinogram ``x[k, i]`` (angles ``k``, columns ``i``), over all angles and over each of 6
angle blocks (scans of at least 180 angles):

1. Sort every column along the angles (Vo et al. 2018) and keep 32 evenly spaced ranks of
   its middle 80 %: moving object features become smooth profiles shared by neighbouring
   columns, while a defective column keeps its offset. The whole scan's ranks are those of
   its blocks' ranks pooled (:func:`_pooled`: no sort of every angle twice).
2. Rows first: subtract, rank by rank, the median of the other rows ``j - hd .. j + hd``
   inside the volume (``hd = min(min_stripe_depth, rows - 1) // 2``; Larix's depth rule):
   what the rows share (the sample, its steep slopes and edges, e.g. a cylinder on the
   rotation axis, constant over angles too) goes before any filtering across columns, so a
   stripe on the sample's slope keeps its height.
3. ``q[i]`` = mean over the ranks of that difference minus the same mean of it
   median-filtered across 17 columns (mirrored edges): what still varies slowly across
   columns goes, stripes up to 8 columns wide stand out. Score ``z = q / unit``, the unit
   per column the larger of the row's robust scale (1.4826 x the MAD of the non-zero
   ``q``) and the spread of the other rows' ``q`` there (where rows differ anyway).
4. Strong defects (dead, saturated columns: ``|q|`` of the row alone, without step 2,
   above :data:`STRONG` robust scales of that row) are replaced, in the rows that serve as
   background, by their row's neighbouring columns: such a defect shifts the other rows'
   per-rank median enough to score beside it.
5. Whole-scan stripes: ``|z| > threshold`` (5), less the columns beside a stronger stripe of
   the opposite sign (the median filter's answer to it) and those the angle blocks do not
   agree on (median block score, same sign, below :data:`CONSISTENT` of its expected
   share: a feature's turning point along the angles is one or two blocks' event); masked
   in the angle blocks whose own score agrees. Stripes over part of the scan: a run of 2
   to ``blocks - 1`` adjacent blocks, each scoring above :data:`RUN_LEVEL` with one sign,
   whose sum over ``sqrt(length)`` exceeds 2.5 x the threshold; their angles are then
   refined to the angle from the run's trace (:func:`_refine`).

Steps 2-4 couple rows (``q`` of the ``hd`` rows each side, each against its own ``hd``
rows, whose strong defects are their own), so a row chunk plus ``2 hd`` rows each side
gives exactly the whole volume's mask. Compiled kernels: :mod:`nsgen.prep._robust_jit`.
Measured quality and limits: ``docs/detection.md``.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(0, 0.01, (180, 8, 64)).astype(np.float32)
>>> x[:, 1, 40:43] += 0.02  # a 3-column stripe at twice the noise, in row 1
>>> m = robust_stripe_mask(x)
>>> np.flatnonzero(m.any(axis=(0, 2))).tolist(), np.flatnonzero(m[:, 1].any(axis=0)).tolist()
([1], [40, 41, 42])
"""

from __future__ import annotations

import numpy as np

from nsgen.prep import _robust_jit as _rj

__all__ = ["HALF_WINDOW", "column_scores", "depth_rule", "robust_mask_rows",
           "robust_stripe_mask"]

#: half window of the median across columns (stripes up to this wide are found)
HALF_WINDOW = 8
#: decision threshold on the robust scores
THRESHOLD = 5.0
#: fraction of the angles dropped at each end of a sorted column
DROP = 0.1
#: ranks of each sorted column used (evenly spaced over the middle 80 %; 64 gave the same
#: quality at twice the cost, 16 lost some: docs/detection.md)
QUANTILES = 32
#: angle blocks for stripes over part of the scan, the fewest angles a block may have, and
#: how much stronger than a whole-scan stripe a block-only one must be
BLOCKS = 6
MIN_BLOCK = 30
BLOCK_FACTOR = 2.5
#: angles of stripes over part of the scan: refined to the angle, the one range of angles
#: where the trace adds most above this fraction of its amplitude (0.5: weak full stripes
#: whose blocks disagree lost their ends)
CUT = 0.3
#: a block keeps a whole-scan stripe when its own score (same sign) exceeds this fraction of
#: its share, the whole-scan score over sqrt(blocks) (a whole-scan score spreads over the
#: blocks so; at 0.15, partial stripes strong enough to score over the whole scan were
#: flagged at every angle: partial precision 0.75, at 0.8 0.93). Blocks a full stripe loses
#: make it a stripe over part of the scan, whose angles :func:`_refine` finds again.
AGREE = 0.8
#: a whole-scan stripe needs the median of its blocks' scores (same sign) above this
#: fraction of its expected share (the whole-scan score over sqrt(blocks))
CONSISTENT = 0.4
#: a column next to a flagged one (same sign) is flagged above this fraction of the bar
GROW = 0.5
#: stripes over part of the scan: every block of the run scores above this (same sign)
RUN_LEVEL = 3.0
#: a column whose offset in its row alone exceeds this many robust scales of that row is
#: left out of the other rows' background (labelled benchmark: dead and saturated columns
#: score 300-6000 there, sample features at most 73; 50 let sample features in)
STRONG = 150.0
#: halo rows of a chunk, in units of ``hd`` (the compared rows' own backgrounds)
HALO = 2


def _robust_scale(q: np.ndarray) -> float:
    """1.4826 x the MAD of the non-zero offsets (at least 1e-12)."""
    nz = q[q != 0]
    s = 1.4826 * np.median(np.abs(nz - np.median(nz))) if nz.size > 8 else 0.0
    return max(float(s), 1e-12)


def column_scores(x: np.ndarray) -> np.ndarray:
    """Robust scores ``z`` of every column of one sinogram ``(angles, columns)`` alone (no
    neighbouring rows): steps 1 and 3 with the row's own robust scale."""
    x = np.ascontiguousarray(x, np.float32)
    return _scores(_ranks(x[:, None, :], 0, x.shape[0]), 0, 1, 0, 0, 1)[0]


def depth_rule(n_rows_total: int, depth: int = 30) -> int:
    """``hd``: rows each side of a row it is compared with (step 2); the halo is ``2 hd``.

    Examples
    --------
    >>> depth_rule(256), depth_rule(8), depth_rule(1)
    (15, 3, 0)
    """
    return min(depth, n_rows_total - 1) // 2


def robust_mask_rows(block: np.ndarray, block_start: int, rows: tuple[int, int],
                     n_rows_total: int, threshold: float = THRESHOLD, depth: int = 30) -> np.ndarray:
    """Robust mask of volume rows ``[start, stop)`` from a block ``(angles, rows, cols)``.

    The block must hold the rows ``[start - 2 hd, stop + 2 hd)`` (clipped to the volume) with
    ``hd`` of :func:`depth_rule`; the result (uint8 0/1, ``(angles, stop - start, cols)``)
    is then the same whatever the chunking.
    """
    x = np.asarray(block, np.float32)
    if x.ndim != 3:
        raise ValueError(f"block must be 3D (angles, rows, columns); got shape {x.shape}")
    hd = depth_rule(n_rows_total, depth)
    start, stop = rows
    lo, hi = max(0, start - HALO * hd), min(n_rows_total, stop + HALO * hd)
    if block_start > lo or block_start + x.shape[1] < hi:
        raise ValueError(f"block holds rows [{block_start}, {block_start + x.shape[1]}) but rows "
                         f"[{start}, {stop}) need rows [{lo}, {hi}) (halo {HALO * hd})")
    x = x[:, lo - block_start:hi - block_start]
    if not np.isfinite(x).all():
        raise ValueError("data contains NaN or infinite values; normalise the scan first")
    n_k = x.shape[0]
    n_b = BLOCKS if n_k >= BLOCKS * MIN_BLOCK else 1
    edges = [n_k * b // n_b for b in range(n_b + 1)]
    r0, r1 = start - lo, stop - lo
    if n_b == 1:
        z_all = _scores(_ranks(x, 0, n_k), r0, r1, lo, hd, n_rows_total)
        flag = _grow(_drop_bias(z_all, threshold), z_all, GROW * threshold)
        return np.broadcast_to(flag[None], (n_k,) + z_all.shape).copy()
    ranks_b = [_ranks(x, edges[b], edges[b + 1]) for b in range(n_b)]
    z_all = _scores(_pooled(ranks_b), r0, r1, lo, hd, n_rows_total)
    flag_all = _grow(_drop_bias(z_all, threshold), z_all, GROW * threshold)
    out = np.zeros((n_k, stop - start, x.shape[2]), np.uint8)
    z_b = [_scores(srt, r0, r1, lo, hd, n_rows_total) for srt in ranks_b]
    zb = np.stack(z_b)
    # a whole-scan stripe is one the blocks agree on: not one or two blocks' event (a
    # feature's turning point along the angles, which sorting does not remove from a block)
    typical = np.median(np.sign(z_all) * zb, axis=0)
    flag_all &= typical > CONSISTENT * np.abs(z_all) / np.sqrt(n_b)
    run = _run_scores(zb, RUN_LEVEL)
    for b in range(n_b):
        # a whole-scan stripe, where this block agrees (a whole-scan score z spreads over
        # the blocks as about z / sqrt(blocks) each) ...
        agree = np.sign(zb[b]) * np.sign(z_all) * np.abs(zb[b])
        share = np.abs(z_all) / np.sqrt(n_b)
        part = flag_all & (agree > AGREE * share)
        # ... or a stripe over part of the scan: a run of blocks each above RUN_LEVEL with
        # the same sign, whose summed score is strong
        part |= _grow(_drop_bias(run[b], BLOCK_FACTOR * threshold), run[b],
                      GROW * BLOCK_FACTOR * threshold)
        out[edges[b]:edges[b + 1]] = part[None]
    _refine(out, x[:, start - lo:stop - lo], np.array(edges))
    return out


def _grow(flag: np.ndarray, score: np.ndarray, low: float) -> np.ndarray:
    """``flag`` (rows, columns) grown along columns into adjacent columns whose ``score`` has
    the same sign and exceeds ``low`` (hysteresis: the columns of one stripe share its
    cause, each is tested against a lower bar once a neighbour is found)."""
    sign = np.sign(score)
    cand = np.abs(score) > low
    same = sign[:, 1:] == sign[:, :-1]
    for _ in range(2 * HALF_WINDOW):
        nb = np.zeros_like(flag)
        nb[:, 1:] |= flag[:, :-1] & same
        nb[:, :-1] |= flag[:, 1:] & same
        new = flag | (nb & cand)
        if np.array_equal(new, flag):
            break
        flag = new
    return flag


def _run_scores(zb: np.ndarray, level: float) -> np.ndarray:
    """Per block ``(blocks, rows, columns)``: the signed score of the strongest run of 2 to
    ``blocks - 1`` adjacent blocks holding it whose scores all exceed ``level`` with one
    sign, ``sum / sqrt(length)`` (0 where none)."""
    n_b = zb.shape[0]
    best = np.zeros_like(zb)
    for sign in (1.0, -1.0):
        above = sign * zb > level
        for b0 in range(n_b):
            for b1 in range(b0 + 2, min(n_b - 1, n_b - b0) + b0 + 1):
                ok = above[b0:b1].all(axis=0)
                score = np.where(ok, sign * zb[b0:b1].sum(axis=0) / np.sqrt(b1 - b0), 0.0)
                seg = best[b0:b1]
                np.copyto(seg, sign * score, where=score > np.abs(seg))
    return best


def _refine(out: np.ndarray, x: np.ndarray, edges: np.ndarray) -> None:
    """Angles of the stripes found in some angle blocks but not all, to the angle (in place).

    Per run of adjacent columns of one row with the same blocks: its trace along the angles
    (its columns' mean minus the median of the unflagged columns within
    :data:`HALF_WINDOW`, per angle; without such columns, less its median over the blocks
    without the stripe) gives the one range of angles where it adds most above
    :data:`CUT` of its median over the blocks with the stripe (:func:`_best_interval`).
    """
    n_k, _, n_i = out.shape
    n_b = len(edges) - 1
    on_b = out[edges[:-1]]  # (blocks, rows, cols): block flags
    mixed = on_b.any(axis=0) & ~on_b.all(axis=0)
    blk = np.repeat(np.arange(n_b), np.diff(edges))
    for j in np.flatnonzero(mixed.any(axis=1)):
        cols = mixed[j]
        flagged = on_b[:, j].any(axis=0)
        c = 0
        while c < n_i:
            if not cols[c]:
                c += 1
                continue
            c1 = c + 1
            while c1 < n_i and cols[c1] and (on_b[:, j, c1] == on_b[:, j, c]).all():
                c1 += 1
            on = on_b[:, j, c].astype(bool)
            nb = [i for i in range(max(0, c - HALF_WINDOW), min(n_i, c1 + HALF_WINDOW))
                  if not flagged[i]]
            t = x[:, j, c:c1].mean(axis=1, dtype=np.float64)
            if nb:  # the neighbours per angle are the baseline
                t = t - np.median(x[:, j, nb], axis=1)
            else:
                t = t - np.median(t[~on[blk]])
            amp = np.median(t[on[blk]])
            out[:, j, c:c1] = _best_interval(np.sign(amp) * t - CUT * abs(amp),
                                             np.ones(n_k, bool))[:, None]
            c = c1


def _ranks(x: np.ndarray, a0: int, a1: int) -> np.ndarray:
    """Step 1 over the angles ``a0:a1``: ``(rows, ranks, columns)`` float32."""
    idx = _rank_index(a1 - a0)
    srt = np.empty((x.shape[1], idx.size, x.shape[2]), np.float32)
    _rj.ranked_rows(x, a0, a1, _rj.network(a1 - a0), idx, srt)
    return srt


def _pooled(ranks_b: list[np.ndarray]) -> np.ndarray:
    """Ranks of the whole scan from those of its angle blocks: :data:`QUANTILES` evenly
    spaced ranks of the blocks' ranks pooled (each block's middle stands for its share of
    the angles; a sort of ``blocks x QUANTILES`` values, not of every angle)."""
    pool = np.ascontiguousarray(np.concatenate(ranks_b, axis=1).transpose(1, 0, 2))
    n = pool.shape[0]
    idx = np.unique(np.linspace(0, n - 1, QUANTILES).round().astype(np.intp))
    srt = np.empty((pool.shape[1], idx.size, pool.shape[2]), np.float32)
    _rj.ranked_rows(pool, 0, n, _rj.network(n), idx, srt)
    return srt


def _best_interval(v: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """The one contiguous run of ``allowed`` angles with the largest sum of ``v`` (a stripe
    over part of the scan covers one range of angles; each angle adds its trace above half
    the stripe's amplitude, so noise cannot chop the range), as a bool mask.

    Examples
    --------
    >>> v = np.array([-1.0, 2, -0.5, 2, -3, 1])
    >>> _best_interval(v, np.ones(6, bool)).astype(int).tolist()
    [0, 1, 1, 1, 0, 0]
    """
    v = np.where(allowed, v, -(np.abs(v).sum() + 1.0))
    c = np.concatenate(([0.0], np.cumsum(v)))
    gain = c[1:] - np.minimum.accumulate(c[:-1])
    b = int(np.argmax(gain)) + 1
    a = int(np.argmin(c[:b]))
    keep = np.zeros(v.shape, bool)
    keep[a:b] = gain[b - 1] > 0
    return keep


def _scores(srt: np.ndarray, r0: int, r1: int, lo: int, hd: int, n_rows_total: int
            ) -> np.ndarray:
    """Scores ``z`` (rows ``r0:r1`` of the block, columns) from the ranked rows ``srt``
    ``(block rows, ranks, columns)`` of one angle set.

    Rows first: each row's ranked sinogram minus the per-rank median of the other rows
    ``j - hd .. j + hd`` inside the volume (what the rows share, the sample, steep slopes and
    edges included, is removed before the median across columns, which then only meets
    what differs between rows); its offsets over the larger of the row's robust scale and,
    per column, the spread of the other rows' offsets (where the rows differ anyway, e.g. a
    sample edge that is not parallel to the rotation axis). Rows needed: ``2 hd`` each side.
    Compiled kernels: :mod:`nsgen.prep._robust_jit`.
    """
    n_i = srt.shape[2]
    mir = _mirror_table(n_i)
    pairs_w = _rj.network(mir.shape[0])

    def offsets(rows: range, bg: np.ndarray, alone: bool = False
                ) -> tuple[np.ndarray, np.ndarray]:
        """q and robust scale of ``rows`` against ``bg`` (or ``alone``: no other rows)."""
        q = np.empty((len(rows), n_i))
        scale = np.empty(len(rows))
        for n, i in enumerate(rows):
            others = [] if alone else _window(i, hd, n_rows_total)
            o_lo, o_hi = (others[0] - lo, others[-1] + 1 - lo) if others else (0, 0)
            _rj.row_offsets(srt, bg, i - lo, o_lo, o_hi, _rj.network(len(others)), mir,
                            pairs_w, q[n])
            scale[n] = _robust_scale(q[n])
        return q, scale

    # step 4: strong defects (dead, saturated columns) of every row that serves as
    # background, found in the row alone, replaced there by their row's neighbouring columns
    bg = srt
    if hd:
        rows1 = range(max(r0 + lo - 2 * hd, 0), min(r1 + lo + 2 * hd, n_rows_total))
        q1, s1 = offsets(rows1, srt, alone=True)
        strong = np.abs(q1) > STRONG * s1[:, None]
        if strong.any():
            bg = srt.copy()
            for n in np.flatnonzero(strong.any(axis=1)):
                _interpolate(bg[rows1[n] - lo], strong[n])
    # offsets of every row needed: the output rows and the rows they are compared with
    first = max(r0 + lo - hd, 0)
    q, scale = offsets(range(first, min(r1 + lo + hd, n_rows_total)), bg)
    z = np.empty((r1 - r0, n_i))
    spread = np.empty(n_i)
    for jj in range(r0, r1):
        i = jj + lo
        others = _window(i, hd, n_rows_total)
        unit = np.full(n_i, scale[i - first])
        if others:  # how much the other rows differ from their own backgrounds here
            _rj.spread(q[[o - first for o in others]], _rj.network(len(others)), spread)
            unit = np.maximum(unit, spread)
        z[jj - r0] = q[i - first] / unit
    return z


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


def _rank_index(n_k: int) -> np.ndarray:
    """Ranks kept of a column of ``n_k`` sorted values: :data:`QUANTILES` evenly spaced over
    its middle (``DROP`` cut at each end)."""
    d = int(DROP * n_k)
    return np.unique(np.linspace(d, n_k - 1 - d, QUANTILES).round().astype(np.intp))


def _mirror_table(n_i: int) -> np.ndarray:
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


def _drop_bias(z: np.ndarray, threshold: float) -> np.ndarray:
    """``|z| > threshold``, less the columns whose offset is only the median filter's answer to
    a stronger stripe of the opposite sign within :data:`HALF_WINDOW` columns."""
    flag = np.abs(z) > threshold
    strong = np.where(flag, np.abs(z), 0.0)
    signed = np.where(flag, np.sign(z), 0.0)
    for d in range(1, HALF_WINDOW + 1):
        for shift in (d, -d):
            other = np.roll(strong, shift, axis=1)
            other_sign = np.roll(signed, shift, axis=1)
            if shift > 0:
                other[:, :shift] = 0
            else:
                other[:, shift:] = 0
            flag &= ~((other > np.abs(z)) & (other_sign == -np.sign(z)))
    return flag


def robust_stripe_mask(volume: np.ndarray, threshold: float = THRESHOLD, depth: int = 30
                       ) -> np.ndarray:
    """Robust stripe mask of a whole volume ``(angles, rows, columns)`` (uint8 0/1)."""
    x = np.asarray(volume)
    if x.ndim != 3:
        raise ValueError(f"volume must be 3D (angles, rows, columns); got shape {x.shape}")
    return robust_mask_rows(x, 0, (0, x.shape[1]), x.shape[1], threshold, depth)
