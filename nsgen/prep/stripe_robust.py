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
   its blocks' ranks pooled (no sort of every angle twice). Module
   :mod:`nsgen.prep.robust_scores` (steps 1-4).
2. Rows first: subtract, rank by rank, the median of the other rows ``j - hd .. j + hd``
   inside the volume (``hd = min(min_stripe_depth, rows - 1) // 2``; Larix's depth rule):
   what the rows share (the sample, its steep slopes and edges, e.g. a cylinder on the
   rotation axis, constant over angles too) goes before any filtering across columns, so a
   stripe on the sample's slope keeps its height.
3. ``q[i]`` = mean over the ranks of that difference minus the same mean of it
   median-filtered across 17 columns (mirrored edges): what still varies slowly across
   columns goes, stripes up to 8 columns wide stand out. Score ``z = q / unit``, the unit
   per column the largest of the row's robust scale (1.4826 x the MAD of the non-zero
   ``q``), its local scale (:func:`~nsgen.prep.robust_scores.local_scale`: the row's
   busy stretches) and the spread of the other rows' ``q`` there (where rows differ
   anyway).
4. Strong defects (dead, saturated columns: ``|q|`` of the row alone, without step 2,
   above ``STRONG`` robust scales of that row) are replaced, in the rows that serve as
   background, by their row's neighbouring columns: such a defect shifts the other rows'
   per-rank median enough to score beside it.
5. Every angle set's ``z`` pooled over up to 8 adjacent rows, each above 3 with one sign
   in that column (:func:`_pool_rows`: a defect stays in its columns over the rows it
   spans, which rows first partly shares with the compared rows). Whole-scan stripes:
   ``|z| > threshold`` (5; ``z`` pooled over up to 5 adjacent columns of one sign,
   :func:`_pool`, or over rectangles of rows and columns whose values are above 2 and rank
   consistent, :func:`_pool_rect`), less the columns beside a stronger stripe of the opposite sign (the
   median filter's answer to it) and those the angle blocks do not agree on (median
   block score, same sign, below :data:`CONSISTENT` of its expected share: a feature's
   turning point along the angles is one or two blocks' event); masked in the angle
   blocks whose own score agrees. Stripes over part of the scan: a run of 2 to
   ``blocks - 1`` adjacent blocks, each scoring above ``RUN_LEVEL`` with one sign, whose sum over
   ``sqrt(length)`` exceeds 2.2 x the threshold (pooled over up to 5 adjacent columns,
   as the whole-scan scores: 2 x, :data:`POOLED_FACTOR`), or any such run of each block's scores pooled over
   rectangles of rows and columns whose values (3/4 of them) are rank consistent in that
   block (one block alone above 2.2 x the threshold: :func:`_rect_runs`); their angles
   are then refined from the run's trace over angle bins, and dropped where that range
   does not stand out of the trace elsewhere or is not a significant step in it (module
   :mod:`nsgen.prep.robust_angles`).

6. Rows first again (:mod:`nsgen.prep.robust_second`): the flags of step 5 in runs of 2
   to ``hd`` rows (a defect over several rows, partly shared with the rows it is compared
   with) are left out of the compared rows' backgrounds, and steps 2-5 run again on those
   offsets (:func:`decide_twice`).
7. Each row widened into from the decided stripes over part of the scan of the rows beside
   it, where it holds their step in their columns and angles (a gain change of a detector
   pixel block spans adjacent rows; :mod:`nsgen.prep.robust_rows`), and the candidates the
   mass-conservation confirmation leaves in up to 4 adjacent rows confirmed by their rows'
   pooled ``M0`` (:mod:`nsgen.prep.robust_stack`).

Steps 2-4 couple rows (``q`` of the ``hd`` rows each side, each against its own ``hd``
rows, whose strong defects are their own), so a row chunk plus ``2 hd`` rows each side
gives exactly the whole volume's first decision, and plus ``5 hd + 4`` (:data:`HALO`,
:data:`~nsgen.prep.robust_stack.DECIDE_REACH`) its mask. The work splits so that each row's is done once
whatever the chunking (:mod:`nsgen.stages.robust`): :func:`row_features` (steps 1 and 4's
detection and the bin means: each row alone), :func:`row_offsets` (step 2 and ``q``:
``hd`` rows each side), :func:`decide_offsets` (the rest: ``hd`` rows of offsets each
side), then step 6 where the first decision left something out. Compiled kernels:
:mod:`nsgen.prep._robust_jit` (ranks, bin means) and :mod:`nsgen.prep._robust_offsets_jit`
(offsets).
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

import functools

import numpy as np

from nsgen.prep import (robust_box as _box, robust_mass as _mass, robust_rows as _rows,
                        robust_second as _second, robust_stack as _stack)
from nsgen.prep._lazy import kernels
from nsgen.prep.normalise import check_raw, pixel_constants
from nsgen.prep.robust_angles import (POOLED, RUN, RUN_LEVEL, WHOLE, angle_bins,
                                      expand_planes, plane_edges, refine, run_scores)
from nsgen.prep.robust_scores import (HALF_WINDOW, QUANTILES, column_scores, depth_rule,
                                      offset_scores, offsets, pooled, rank_index, ranks,
                                      raw_ranks, strong_columns)
from nsgen.prep.robust_tall import (CONSISTENCY, TALL_SETS, or_tall, split_tall,  # tall
                                    with_tall)

_rdj = kernels("nsgen.prep._robust_decide_jit")
_rj = kernels("nsgen.prep._robust_jit")

__all__ = ["HALF_WINDOW", "bin_means", "column_scores", "decide", "decide_bins",
           "decide_offsets",
           "decide_twice", "depth_rule",
           "feature_layout", "raw_bin_means", "raw_feature_fields", "raw_feature_parts",
           "robust_mask_rows", "row_feature_parts",
           "row_features", "row_offsets", "robust_stripe_mask", "set_offsets"]

#: decision threshold on the robust scores
THRESHOLD = 5.0
#: angle blocks for stripes over part of the scan, the fewest angles a block may have, and
#: how much stronger than a whole-scan stripe a block-only one must be
BLOCKS = 6
MIN_BLOCK = 30
BLOCK_FACTOR = 2.2  # (2.5 before the local scale, which lowers block scores in busy parts)
#: runs of blocks found only with their columns pooled are flagged above this multiple of
#: the threshold (refine then asks them to be flat and to stand out; BLOCK_FACTOR before):
#: a 2-column partial stripe of one row at 3.4-4.7 per column and block pools to 10.1 over
#: its three blocks (labelled benchmark, 1801 x 32 x 1024 i0 4000 seed 10 row 9; no other
#: row changed on seeds 1-12; docs/detection.md, fifteenth round)
POOLED_FACTOR = 2.0
#: a block keeps a whole-scan stripe when its own score (same sign) exceeds this fraction of
#: its share, the whole-scan score over sqrt(blocks) (a whole-scan score spreads over the
#: blocks so; at 0.15, partial stripes strong enough to score over the whole scan were
#: flagged at every angle: partial precision 0.75, at 0.8 0.93). Blocks a full stripe loses
#: make it a stripe over part of the scan, whose angles the refinement finds again.
AGREE = 0.8
#: a whole-scan stripe needs the median of its blocks' scores (same sign) above this
#: fraction of its expected share (the whole-scan score over sqrt(blocks))
CONSISTENT = 0.4
#: a column next to a flagged one (same sign) is flagged above this fraction of the bar
GROW = 0.5
#: halo rows of a chunk, in units of ``hd``: the second decision reads the second offsets
#: of ``hd`` rows each side, each against its ``hd`` rows, whose excluded values need the
#: first decision's flags of ``hd`` rows more, which read the first offsets of ``hd`` rows
#: more, each against its own ``hd`` rows (:func:`decide_twice`; one decision: 2)
HALO = 5
#: whole-scan scores pooled over up to POOL_WIDTH adjacent columns, each above POOL_FLOOR
#: with one sign (``sum / sqrt(width)``): the columns of one stripe add their evidence (the
#: blocks' agreement compares their scores with the column's own, unpooled; block scores
#: pooled for runs of blocks let sample features over two blocks in: docs/detection.md)
POOL_WIDTH = 5
POOL_FLOOR = 3.0
#: runs of angle blocks pooled along columns too, each column's run score above this (the
#: least a run of two blocks at RUN_LEVEL scores is 2 x 3 / sqrt(2) = 4.24): a 4-column
#: partial stripe at 5 per block and column scores 7 as a run, 14 pooled (bar 11)
RUN_POOL_FLOOR = 4.0
#: every angle set's scores pooled along the rows too (:func:`_pool_rows`): runs of 2 to
#: ROW_POOL_WIDTH adjacent rows within ROW_POOL_REACH, each above ROW_POOL_FLOOR with one
#: sign in the column, the other rows' at most ROW_POOL_CAP times the row's own. A defect
#: over several rows stays in its columns; rows first shares it with the compared rows
#: (their per-rank median follows it, their spread grows), so each of its rows scores 2-4
#: (labelled benchmark, 721x64x512 seed 5: a 7 % partial stripe over 8 rows, per column
#: 6 robust scales of the row, z -1.5..-3.7). Floor 2: clean rows 5 -> 40 (seeds 5-8)
ROW_POOL_FLOOR = 3.0
ROW_POOL_REACH = 7
ROW_POOL_WIDTH = 8
ROW_POOL_CAP = 2.0
#: the whole scan's scores pooled over rectangles of rows and columns too (:func:`_pool_rect`:
#: 2 to ROW_POOL_WIDTH rows within ROW_POOL_REACH by up to POOL_WIDTH columns, at least
#: RECT_MIN values), each value above RECT_FLOOR with one sign and, where not above
#: ROW_POOL_FLOOR, rank consistent (its offset's ``|mean| / std`` over the ranks above
#: :data:`~nsgen.prep.robust_tall.CONSISTENCY`: a gain error shifts every rank of its column
#: alike, a sample feature some ranks only). A defect over several rows and columns whose
#: every value scores 1.5-3.5 (rows first shares it with the compared rows) adds up there;
#: without the consistency test, sample features that stay in their columns over a few rows
#: did too (labelled benchmark, seeds 1-4: 6 -> 60 clean rows; docs/detection.md). A
#: rectangle's flags need the blocks' agreement with its own score (CONSISTENT). Each angle
#: block's scores are pooled so too, every value rank consistent in that block (a sample
#: feature's or a moving feature's row at 3 and more is not), for runs of blocks: the rows
#: and columns of a partial stripe over 3-8 rows score 1.5-4 each in the blocks it spans
#: (labelled benchmark, seeds 5-8: 564 -> 570 of 594 rows, no clean row more)
RECT_FLOOR = 2.0
RECT_MIN = 4
#: an angle block's rectangle (:func:`_block_rects`) needs this share of its values to
#: qualify (at least RECT_MIN); the others count 0 in its sum, not in its size (``sum /
#: sqrt(size)``). A faint defect's values straddle the floor and the consistency bar in
#: each block, so every-value rectangles stay small (labelled benchmark, 721x64x512 i0
#: 4000 seed 2, rows 53-58: per block at most -8.7 of a 30-value defect; at 0.75 full and
#: fluctuating rows 162 / 157 of 166 / 164 on seeds 9-12 against 161 / 156, no clean row
#: more; docs/detection.md, fourteenth round)
BLOCK_RECT_SHARE = 0.75
#: a run of block rectangles (:func:`_rect_runs`) is flagged above this: every such run
#: (each block's rectangle above RUN_LEVEL, its values rank consistent in the block) is a
#: stripe's candidate, which :func:`~nsgen.prep.robust_angles.refine`'s step tests judge
#: (labelled benchmark, seeds 1-4: at the runs' bar, 2.2 x the threshold, partial rows
#: 142 of 154; here 147, no clean row more on any seed set; docs/detection.md, fourteenth
#: round). A lone rectangle (a run of one block) needs the bar
RECT_RUN_LEVEL = RUN_LEVEL
#: values stored per angle set by :func:`set_offsets`: the offsets, the row-alone (tall)
#: scores and the offsets' rank consistency (:func:`_pool_rect` reads the whole scan's and
#: each angle block's)
STORED_SETS = 2 + TALL_SETS


def robust_mask_rows(block: np.ndarray, block_start: int, rows: tuple[int, int],
                     n_rows_total: int, threshold: float = THRESHOLD, depth: int = 30,
                     mass: np.ndarray | None = None) -> np.ndarray:
    """Robust mask of volume rows ``[start, stop)`` from a block ``(angles, rows, cols)``.

    The block must hold the rows ``[start - 5 hd - 4, stop + 5 hd + 4)`` (clipped to the
    volume; :func:`decide_twice`) with ``hd`` of :func:`depth_rule`; the result (uint8
    0/1, ``(angles, stop - start, cols)``) is then the same whatever the chunking, given
    the volume's ``mass`` (:func:`~nsgen.prep.robust_mass.volume_mass` of every row's
    :func:`bin_means`: the mass-conservation confirmation; computed here when the block
    holds every row of the volume; without it, a block of part of the volume is decided
    without that step).
    """
    x = np.asarray(block, np.float32)
    if x.ndim != 3:
        raise ValueError(f"block must be 3D (angles, rows, columns); got shape {x.shape}")
    halo = HALO * depth_rule(n_rows_total, depth) + _stack.DECIDE_REACH
    start, stop = rows
    lo, hi = max(0, start - halo), min(n_rows_total, stop + halo)
    if block_start > lo or block_start + x.shape[1] < hi:
        raise ValueError(f"block holds rows [{block_start}, {block_start + x.shape[1]}) but rows "
                         f"[{start}, {stop}) need rows [{lo}, {hi}) (halo {halo})")
    x = x[:, lo - block_start:hi - block_start]
    if not np.isfinite(x).all():
        raise ValueError("data contains NaN or infinite values; normalise the scan first")
    feat = row_features(x)
    if mass is None and lo == 0 and hi == n_rows_total:
        mass = _mass.volume_mass(_fields(feat, x.shape[0])[2])
    return decide_twice(feat, lo, rows, n_rows_total, x.shape[0], threshold, depth, mass)


def _blocks(n_k: int) -> np.ndarray:
    """Edges of the angle blocks of ``n_k`` angles (one block below ``BLOCKS * MIN_BLOCK``)."""
    n_b = BLOCKS if n_k >= BLOCKS * MIN_BLOCK else 1
    return np.array([n_k * b // n_b for b in range(n_b + 1)], np.intp)


def feature_layout(n_k: int) -> tuple[list[int], int]:
    """Fields of :func:`row_features` for ``n_k`` angles: the ranks kept of each angle set
    (the blocks, then the whole scan's pooled from them; or the whole scan alone) and the
    angle bins of :func:`~nsgen.prep.robust_angles.refine` (none with one block). The
    fields are ``sum(ranks) + len(ranks) + bins`` (ranks, strong flags per set, bins).

    Examples
    --------
    >>> feature_layout(1801)
    ([32, 32, 32, 32, 32, 32, 32], 258)
    >>> feature_layout(100)
    ([32], 0)
    """
    edges = _blocks(n_k)
    sizes = [rank_index(int(e1 - e0)).size for e0, e1 in zip(edges[:-1], edges[1:])]
    if len(sizes) == 1:
        return sizes, 0
    n = sum(sizes)
    sizes.append(np.unique(np.linspace(0, n - 1, QUANTILES).round()).size)
    return sizes, angle_bins(edges, n_k).size - 1


def row_features(x: np.ndarray) -> np.ndarray:
    """What the detector needs of each row of ``x`` ``(angles, rows, columns)`` float32,
    from that row alone (so a pass over row chunks needs no halo): ``(rows, fields,
    columns)`` float32 in :func:`feature_layout`'s order: the ranks of every angle set,
    its strong defects (0/1), the means over the angle bins
    (:func:`row_feature_parts` joined)."""
    return np.concatenate(row_feature_parts(x), axis=1)


def row_feature_parts(x: np.ndarray, means: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """:func:`row_features` in two parts: the ranks and strong defects (what
    :func:`row_offsets` reads, with ``hd`` rows each side) and the angle-bin means (what
    the decision reads of its rows only; ``(rows, 0, columns)`` with one block, or without
    ``means``: :func:`bin_means` gives them later, for the rows that need them)."""
    n_k = x.shape[0]
    edges = _blocks(n_k)
    if edges.size == 2 or not means:
        xb = np.empty((x.shape[1], 0, x.shape[2]), np.float32)
        sets = [ranks(x, int(e0), int(e1)) for e0, e1 in zip(edges[:-1], edges[1:])]
    else:
        # the bin means (float64 sums in angle order) as the blocks are ranked
        bins = angle_bins(edges, n_k)
        xb = np.empty((x.shape[1], bins.size - 1, x.shape[2]), np.float32)
        sets = []
        for e0, e1 in zip(edges[:-1], edges[1:]):
            b0, b1 = np.searchsorted(bins, [e0, e1])
            sets.append(ranks(x, int(e0), int(e1), bins[b0:b1 + 1], xb, int(b0)))
    if edges.size > 2:
        sets.append(pooled(sets))
    strong = [strong_columns(srt)[:, None].astype(np.float32) for srt in sets]
    return np.concatenate(sets + strong, axis=1), xb


def raw_feature_parts(raw: np.ndarray, flat: np.ndarray, dark: np.ndarray) -> np.ndarray:
    """The first of :func:`row_feature_parts` (ranks and strong defects) of the raw
    projections ``raw`` ``(angles, rows, columns)`` with their mean ``flat`` and ``dark``
    rows: the same values as from :func:`~nsgen.prep.normalise.flat_field_log`'s volume,
    which is never made (:func:`~nsgen.prep.robust_scores.raw_ranks` normalises each
    tile of a row as it ranks it)."""
    return np.concatenate(raw_feature_fields(raw, flat, dark), axis=1)


def raw_feature_fields(raw: np.ndarray, flat: np.ndarray, dark: np.ndarray,
                       means: np.ndarray | None = None) -> list[np.ndarray]:
    """:func:`raw_feature_parts` apart, as computed (no joined copy): the ranks of each
    angle set ``(rows, ranks, columns)`` float32, C-contiguous, then their strong defects
    ``(rows, sets, columns)`` float32 (0/1). With ``means`` (``(rows, bins, columns)``
    float32, the bins of :func:`feature_layout`; more than one angle block), also the
    rows' :func:`raw_bin_means` into it, from the same pass over the raw values."""
    raw, flat, dark = check_raw(raw, flat, dark)
    edges = _blocks(raw.shape[0])
    bins = None if means is None else angle_bins(edges, raw.shape[0])
    sets = raw_ranks(raw, pixel_constants(flat, dark), edges, bins, means)
    strong = np.stack([strong_columns(srt) for srt in sets], axis=1).astype(np.float32)
    return [*sets, strong]


def bin_means(x: np.ndarray) -> np.ndarray:
    """The angle-bin means of :func:`row_feature_parts` (the same values) of the rows of
    ``x`` ``(angles, rows, columns)`` float32: ``(rows, bins, columns)`` float32 (no bins
    with one angle block)."""
    n_k = x.shape[0]
    edges = _blocks(n_k)
    bins = angle_bins(edges, n_k) if edges.size > 2 else edges[:1]
    out = np.empty((x.shape[1], bins.size - 1, x.shape[2]), np.float32)
    _rj.bin_means(np.ascontiguousarray(x, np.float32), bins, out)
    return out


def raw_bin_means(raw: np.ndarray, flat: np.ndarray, dark: np.ndarray,
                  rows: tuple[int, int] | None = None) -> np.ndarray:
    """:func:`bin_means` (the same values) of the rows ``rows`` (default: all) of the raw
    projections ``raw`` ``(angles, rows, columns)`` with their mean ``flat`` and ``dark``
    rows, normalised as :func:`~nsgen.prep.normalise.flat_field_log` on the way (the
    normalised rows are never stored): ``(rows, bins, columns)`` float32.

    Examples
    --------
    >>> from nsgen.prep.normalise import flat_field_log
    >>> raw = np.random.default_rng(0).integers(100, 900, (180, 3, 8)).astype(np.uint16)
    >>> flat, dark = np.full((3, 8), 1000.0), np.zeros((3, 8))
    >>> x = flat_field_log(raw, flat, dark, sinograms_first=False)
    >>> bool(np.array_equal(raw_bin_means(raw, flat, dark, (1, 3)), bin_means(x)[1:3]))
    True
    """
    raw, flat, dark = check_raw(raw, flat, dark)
    n_k = raw.shape[0]
    j0, j1 = rows or (0, raw.shape[1])
    edges = _blocks(n_k)
    bins = angle_bins(edges, n_k) if edges.size > 2 else edges[:1]
    out = np.empty((j1 - j0, bins.size - 1, raw.shape[2]), np.float32)
    _rj.raw_bin_means(raw, j0, j1, *pixel_constants(flat, dark), bins, out)
    return out


def _check_rows(have: tuple[int, int], rows: tuple[int, int], n_rows_total: int,
                halo: int) -> None:
    """``have`` (volume rows held) must cover ``rows`` plus ``halo`` rows each side."""
    lo, hi = max(0, rows[0] - halo), min(n_rows_total, rows[1] + halo)
    if have[0] > lo or have[1] < hi:
        raise ValueError(f"block holds rows [{have[0]}, {have[1]}) but rows "
                         f"[{rows[0]}, {rows[1]}) need rows [{lo}, {hi}) (halo {halo})")


def _fields(feat: np.ndarray, n_k: int) -> tuple[list[np.ndarray], list[np.ndarray],
                                                 np.ndarray]:
    """The ranks of each angle set, their strong defects and the bin means of
    :func:`row_features` ``feat`` ``(rows, fields, columns)`` (or of the first of
    :func:`row_feature_parts`: no bin means)."""
    sizes, n_bins = feature_layout(n_k)
    if feat.shape[1] not in (sum(sizes) + len(sizes) + n_bins, sum(sizes) + len(sizes)):
        raise ValueError(f"features have {feat.shape[1]} fields; {n_k} angles need "
                         f"{sum(sizes) + len(sizes) + n_bins}")
    cut = np.cumsum([0] + sizes)
    sets = [np.ascontiguousarray(feat[:, a:b]) for a, b in zip(cut[:-1], cut[1:])]
    strong = [feat[:, cut[-1] + n] > 0.5 for n in range(len(sizes))]
    return sets, strong, feat[:, cut[-1] + len(sizes):]


def row_offsets(feat: np.ndarray, feat_start: int, rows: tuple[int, int],
                n_rows_total: int, n_k: int, depth: int = 30) -> np.ndarray:
    """Step 2's offsets (and robust scales) of volume rows ``rows`` for every angle set,
    ``(stop - start, sets, columns + 1)`` float64
    (:func:`~nsgen.prep.robust_scores.offsets`; tall: then as many sets of row-alone
    scores, :func:`~nsgen.prep.robust_tall.with_tall`; then as many of the offsets' rank
    consistency), from the :func:`row_features` of volume
    rows ``feat_start ...`` (or the first of :func:`row_feature_parts`), which must hold
    ``hd`` rows each side."""
    sets, strong, _ = _fields(feat, n_k)
    return set_offsets(sets, strong, feat_start, rows, n_rows_total, depth)


def set_offsets(sets: list[np.ndarray], strong: list[np.ndarray], feat_start: int,
                rows: tuple[int, int], n_rows_total: int, depth: int = 30) -> np.ndarray:
    """:func:`row_offsets` from the fields of the features apart: the ranks of each angle
    set ``(rows, ranks, columns)`` float32, C-contiguous, and their strong defects
    ``(rows, columns)`` bool (as a pass reads them from its scratch, without copies)."""
    hd = depth_rule(n_rows_total, depth)
    _check_rows((feat_start, feat_start + sets[0].shape[0]), rows, n_rows_total, hd)
    r0, r1 = rows[0] - feat_start, rows[1] - feat_start
    n_i = sets[0].shape[2]
    cons = np.zeros((r1 - r0, len(sets), n_i + 1))
    qs = np.stack([offsets(srt, st, r0, r1, feat_start, hd, n_rows_total, cons[:, n, :n_i])
                   for n, (srt, st) in enumerate(zip(sets, strong))], axis=1)
    qs = with_tall(qs, [srt[r0:r1] for srt in sets])  # tall: + row-alone scores per set
    return np.concatenate([qs, cons], axis=1)  # + the offsets' rank consistency per set


def decide_offsets(qs: np.ndarray, q_start: int, xb: np.ndarray, rows: tuple[int, int],
                   n_rows_total: int, n_k: int, threshold: float = THRESHOLD,
                   depth: int = 30, out: np.ndarray | None = None,
                   mass: np.ndarray | None = None,
                   scores: list[np.ndarray] | None = None) -> np.ndarray:
    """Robust mask ``(n_k, stop - start, columns)`` uint8 of volume rows ``rows`` from the
    :func:`row_offsets` ``qs`` of volume rows ``q_start ...`` (holding ``hd`` rows each
    side) and the bin means ``xb`` ``(stop - start, bins, columns)`` of the rows themselves
    (steps 3-5); into ``out`` (C-contiguous uint8 of that shape, its contents overwritten)
    when given: a caller's buffer reused chunk after chunk (a new mask of 1801 angles is
    64 MiB per 14 rows of 2560 columns, each page faulted in again). ``mass``: the
    volume's :func:`~nsgen.prep.robust_mass.volume_mass` (every row's), for the
    mass-conservation confirmation of candidates the rest leaves
    (:func:`~nsgen.prep.robust_mass.confirm`; none without it). ``scores``: a list
    the rows' block scores ``(blocks, stop - start, columns)``, their offsets' rank
    consistency (the same shape) and the columns of each row flagged before the
    refinement of the angles ``(stop - start, columns)`` bool are appended to (nothing
    with one angle block; :func:`~nsgen.prep.robust_rows.grow_rows` reads them), then,
    with ``mass``, the candidates the confirmation leaves ``(stop - start, blocks,
    columns)`` int8 and the rows' offsets per block ``(stop - start, blocks, columns +
    1)`` (:func:`~nsgen.prep.robust_stack.stack_flags` reads them)."""
    planes = decide_bins(qs, q_start, xb, rows, n_rows_total, n_k, threshold, depth,
                         mass=mass, scores=scores)
    return expand_planes(planes, plane_edges(_blocks(n_k), n_k), out)


def decide_bins(qs: np.ndarray, q_start: int, xb: np.ndarray, rows: tuple[int, int],
                n_rows_total: int, n_k: int, threshold: float = THRESHOLD,
                depth: int = 30, out: np.ndarray | None = None,
                mass: np.ndarray | None = None,
                scores: list[np.ndarray] | None = None) -> np.ndarray:
    """:func:`decide_offsets`' mask held per angle bin: ``(planes, stop - start,
    columns)``, a plane per bin of :func:`~nsgen.prep.robust_angles.plane_edges` (one
    with one angle block), every angle of a bin flagged alike (the block flags, the
    refined angles, the tall and confirmed flags are per bin; at 1801 angles 7x less mask
    to write, read and fault in). Into ``out`` (C-contiguous uint8 of that shape) when
    given; ``scores`` as :func:`decide_offsets`'."""
    hd = depth_rule(n_rows_total, depth)
    _check_rows((q_start, q_start + qs.shape[0]), rows, n_rows_total, hd)
    n_sets = qs.shape[1] // STORED_SETS
    cons = qs[:, -n_sets:, :-1]   # the offsets' rank consistency per set
    qs, tall = split_tall(qs[:, :-n_sets], q_start, rows)  # tall: the row-alone flags of rows
    z_own = [offset_scores(qs[:, n], q_start, rows, hd, n_rows_total)
             for n in range(qs.shape[1])]   # (each column's own score in its row)
    # the rows of one defect add their evidence too (it stays in its columns)
    z = [_pool_rows(qs[:, n], zn, q_start, rows, hd, n_rows_total)
         for n, zn in enumerate(z_own)]
    z_one = z[-1]  # (each column's own score: the blocks' are compared with it)
    z_all = _pool(z_one, POOL_FLOOR, POOL_WIDTH)
    flag_all = _grow(_drop_bias(z_all, threshold), z_all, GROW * threshold)
    # ... and its rows and columns together, where their ranks agree
    rect = _pool_rect(qs[:, -1], z_own[-1], cons[:, -1], q_start, rows, hd, n_rows_total)
    by_rect = _drop_bias(rect, threshold)
    if len(z) == 1:
        flag_all |= by_rect
        mask = (flag_all | tall[-1])[None]   # tall
        if out is None:
            return mask.copy()
        out[...] = mask
        return out
    edges = _blocks(n_k)
    n_b = edges.size - 1
    bins = angle_bins(edges, n_k)
    at: np.ndarray = np.searchsorted(bins, edges)   # (each block's planes: at[b] .. at[b + 1])
    # (every plane is written: each block's flags at its bins)
    out = np.empty((bins.size - 1,) + z_all.shape, np.uint8) if out is None else out
    zb = np.stack(z[:-1])
    if scores is not None:   # (and the offsets' rank consistency of each block)
        scores.append(zb)
        scores.append(cons[rows[0] - q_start:rows[1] - q_start, :-1].transpose(1, 0, 2))
    # a whole-scan stripe is one the blocks agree on: not one or two blocks' event (a
    # feature's turning point along the angles, which sorting does not remove from a block),
    # each on the score it rests on
    typical = _median_signed(z_all, zb)
    flag_all &= typical > CONSISTENT * np.abs(z_one) / np.sqrt(n_b)
    by_rect &= _median_signed(rect, zb) > CONSISTENT * np.abs(rect) / np.sqrt(n_b)
    z_all = np.where(by_rect & ~flag_all, rect, z_all)
    flag_all |= by_rect
    run = run_scores(zb, RUN_LEVEL)
    # ... and so may its rows and columns in each block: the block's rectangles, each of
    # whose values is rank consistent in that block (a sample feature there, or a row whose
    # score the moving-feature rule set to 0, is not), in runs of blocks: every such run
    # (each block's rectangle above RUN_LEVEL) is a stripe's candidate, left to refine's
    # step tests (a lone rectangle needs the bar: _rect_runs)
    bar = BLOCK_FACTOR * threshold
    pbar = POOLED_FACTOR * threshold   # (the pooled runs': refine's stricter tests)
    run_rect = _rect_runs(_block_rects(qs, z_own[:-1], cons, q_start, rows, hd,
                                       n_rows_total), bar, np.stack(z_own[:-1]), z_own[-1])
    # the columns of one stripe over part of the scan add their evidence (each column's run
    # is already one of agreeing blocks): runs pooled along columns too
    pooled_run = np.stack([_pool(r, RUN_POOL_FLOOR, POOL_WIDTH) for r in run])
    # ... and so may a faint one's rows and columns, summed over boxes (robust_box; refined
    # as pooled runs)
    box = _box.box_runs(qs, z_own[:-1], cons, q_start, rows, hd, n_rows_total)
    by_run = np.zeros(z_all.shape, bool)
    for b in range(n_b):
        # a whole-scan stripe, where this block agrees (a whole-scan score z spreads over
        # the blocks as about z / sqrt(blocks) each) ...
        agree = np.sign(zb[b]) * np.sign(z_all) * np.abs(zb[b])
        share = np.abs(z_own[-1]) / np.sqrt(n_b)
        part = flag_all & (agree > AGREE * share)
        # ... or a stripe over part of the scan: a run of blocks each above RUN_LEVEL with
        # the same sign, whose summed score (pooled over adjacent columns) is strong
        own = (_grow(_drop_bias(run[b], bar), run[b], GROW * bar)
               | _drop_bias(run_rect[b], RECT_RUN_LEVEL))
        part |= own | _grow(_drop_bias(pooled_run[b], pbar), pooled_run[b], GROW * pbar)
        part |= _drop_bias(box[b], _box.BOX_BAR)
        by_run |= own
        out[at[b]:at[b + 1]] = part.view(np.uint8)[None]   # (bool: 0/1 bytes)
    # what each column's flags rest on: refine tests the angles of each accordingly
    evidence = np.where(flag_all, WHOLE, np.where(by_run, RUN, POOLED)).astype(np.int8)
    if scores is not None:   # (the candidates before refine: grow_rows)
        scores.append(out[at[:-1]].any(axis=0))
    refine(out, xb, bins, edges, evidence, zb, per_bin=True)
    or_tall(out, tall, at)  # tall: row-alone stripes in the blocks that agree
    q_rows = qs[rows[0] - q_start:rows[1] - q_start, :n_b]
    if mass is not None:   # faint partial stripes their row's M0 confirms (robust_mass)
        _mass.confirm(out, q_rows, z_own[:-1], mass, rows, edges, bins, per_bin=True)
        if scores is not None:   # (the candidates it leaves, and their offsets: robust_stack)
            scores.append(_mass.candidate_blocks(out, z_own[:-1], at))
            scores.append(q_rows)
    return out


def decide(feat: np.ndarray, feat_start: int, rows: tuple[int, int], n_rows_total: int,
           n_k: int, threshold: float = THRESHOLD, depth: int = 30) -> np.ndarray:
    """Robust mask ``(n_k, stop - start, columns)`` uint8 of volume rows ``rows`` from the
    :func:`row_features` ``feat`` of volume rows ``feat_start ...``, which must hold the
    rows ``[start - 2 hd, stop + 2 hd)`` (clipped to the volume; ``hd`` of
    :func:`depth_rule`): the same mask whatever the chunking (steps 2-5)."""
    hd = depth_rule(n_rows_total, depth)
    start, stop = rows
    _check_rows((feat_start, feat_start + feat.shape[0]), rows, n_rows_total, HALO * hd)
    near = (max(0, start - hd), min(n_rows_total, stop + hd))
    qs = row_offsets(feat, feat_start, near, n_rows_total, n_k, depth)
    xb = _fields(feat[start - feat_start:stop - feat_start], n_k)[2]
    return decide_offsets(qs, near[0], xb, rows, n_rows_total, n_k, threshold, depth)


def decide_twice(feat: np.ndarray, feat_start: int, rows: tuple[int, int], n_rows_total: int,
                 n_k: int, threshold: float = THRESHOLD, depth: int = 30,
                 mass: np.ndarray | None = None) -> np.ndarray:
    """Robust mask ``(n_k, stop - start, columns)`` uint8 of volume rows ``rows`` from the
    :func:`row_features` ``feat`` of volume rows ``feat_start ...``, which must hold the
    rows ``[start - 5 hd - 4, stop + 5 hd + 4)`` (clipped to the volume; :data:`HALO` and
    :data:`~nsgen.prep.robust_stack.DECIDE_REACH`): a first decision (:func:`decide_offsets`) of
    the rows within ``3 hd + 4``, then rows first again with its flags in runs of 2 to
    ``hd`` rows left out of the compared rows' backgrounds (:mod:`nsgen.prep.robust_second`)
    and the rows within 4 decided again on those offsets (where nothing is left out within
    ``2 hd`` of a row, its second decision is its first); then each row widened into from
    the stripes over part of the scan of the rows beside it
    (:func:`~nsgen.prep.robust_rows.grow_rows`) and flagged where a stack of the candidates
    of up to 4 adjacent rows is confirmed by their pooled ``M0``
    (:func:`~nsgen.prep.robust_stack.stack_flags`). The same mask whatever the chunking
    (``mass``: the volume's, both decisions' :func:`decide_offsets`)."""
    hd = depth_rule(n_rows_total, depth)
    start, stop = rows
    reach = _stack.DECIDE_REACH
    _check_rows((feat_start, feat_start + feat.shape[0]), rows, n_rows_total, HALO * hd + reach)
    sets, strong, xb = _fields(feat, n_k)
    rows1 = (max(0, start - reach), min(n_rows_total, stop + reach))   # (grow_rows reads)

    def near(k: int) -> tuple[int, int]:
        return max(0, rows1[0] - k * hd), min(n_rows_total, rows1[1] + k * hd)

    first, q_rows = near(3), near(4)
    qs = set_offsets(sets, strong, feat_start, q_rows, n_rows_total, depth)
    scores: list[np.ndarray] = []
    # (the masks held per angle bin: decide_bins)
    m = decide_bins(qs, q_rows[0], xb[first[0] - feat_start:first[1] - feat_start], first,
                    n_rows_total, n_k, threshold, depth, mass=mass, scores=scores)
    ex_rows = near(2)
    ex = _second.excluded(np.asarray(m.any(axis=0)), first[0], ex_rows, hd, n_rows_total)
    if _second.second_rows(ex, ex_rows[0], rows1, hd) is None:
        cut = slice(rows1[0] - first[0], rows1[1] - first[0])
        m = m[:, cut]
        scores = [v[:, cut] for v in scores[:2]] + [v[cut] for v in scores[2:]]
    else:
        full = np.zeros((feat.shape[0], feat.shape[2]), bool)
        full[ex_rows[0] - feat_start:ex_rows[1] - feat_start] = ex
        near1 = near(1)
        qs2 = _second.second_offsets(sets, strong, full, feat_start, qs, q_rows[0], near1,
                                     n_rows_total, hd)
        scores = []
        m = decide_bins(qs2, near1[0], xb[rows1[0] - feat_start:rows1[1] - feat_start],
                        rows1, n_rows_total, n_k, threshold, depth, mass=mass, scores=scores)
    edges = _blocks(n_k)
    bins = plane_edges(edges, n_k)
    stacked = _stack.stack_flags(m, rows1[0], scores, mass, rows, edges, bins, per_bin=True)
    return expand_planes(_stack.apply(_rows.grow_rows(
        m, rows1[0], xb[rows1[0] - feat_start:rows1[1] - feat_start], scores, rows, edges,
        bins), stacked), bins)


def _median_signed(z: np.ndarray, zb: np.ndarray) -> np.ndarray:
    """``np.median(np.sign(z) * zb, axis=0)`` of the block scores ``zb`` ``(blocks, rows,
    columns)`` (compiled: the same products and middle values, no temporary).

    Examples
    --------
    >>> zb = np.array([[[1.0, 2.0]], [[3.0, -4.0]], [[5.0, 0.5]]])
    >>> _median_signed(np.array([[1.0, -1.0]]), zb).tolist()
    [[3.0, -0.5]]
    """
    out = np.empty(zb.shape[1:])
    _rdj.median_signed(np.ascontiguousarray(np.sign(z), np.float64),
                       np.ascontiguousarray(zb, np.float64), out)
    return out


def _pool(z: np.ndarray, floor: float, width: int) -> np.ndarray:
    """Scores ``z`` (rows, columns) pooled along columns: each column's the strongest
    ``sum / sqrt(n)`` over the runs of 1 to ``width`` adjacent columns holding it whose
    scores all exceed ``floor`` with one sign (its own score where none does).

    Examples
    --------
    >>> _pool(np.array([[0.0, 3.0, 4.0, 0.5, -3.0]]), 2.0, 3).round(2).tolist()
    [[0.0, 4.95, 4.95, 0.5, -3.0]]
    """
    best = np.empty(z.shape)   # (compiled: the same sums in the same order)
    _rdj.pool_columns(np.ascontiguousarray(z, np.float64), floor, width, best)
    return best


def _pool_rows(q: np.ndarray, z: np.ndarray, q_start: int, rows: tuple[int, int], hd: int,
               n_rows_total: int) -> np.ndarray:
    """Scores ``z`` ``(stop - start, columns)`` of volume rows ``rows`` pooled along the rows:
    each row's the strongest ``sum / sqrt(n)`` over the runs of 2 to :data:`ROW_POOL_WIDTH`
    adjacent rows within :data:`ROW_POOL_REACH` (and ``hd``) holding it whose scores in that
    column all exceed :data:`ROW_POOL_FLOOR` with one sign (its own score where none does).
    The other rows' scores are their offsets ``q`` (:func:`~nsgen.prep.robust_scores.offsets`
    of one angle set, volume rows ``q_start ...``, ``hd`` rows each side of ``rows``) in this
    row's unit (``q / z`` of the row), each at most :data:`ROW_POOL_CAP` times this row's
    ``|z|`` (a defect keeps its height over the rows it spans; a row beside a strong one is
    not it).

    Examples
    --------
    >>> q = np.zeros((6, 3)); q[:, 2] = 1.0        # 6 rows, 2 columns, robust scale 1
    >>> q[1:5, 0] = [3.5, 4.0, 3.2, 1.0]            # a stripe over rows 1-3 in column 0
    >>> _pool_rows(q, q[:, :2].copy(), 0, (0, 6), 3, 6)[:, 0].round(2).tolist()
    [0.0, 6.18, 6.18, 6.18, 1.0, 0.0]
    """
    reach = min(ROW_POOL_REACH, hd)
    start, stop = rows
    best = z.copy()
    # only a row above the floor itself is in a run: its (row, column) pairs alone
    j, c = np.nonzero(np.abs(z) > ROW_POOL_FLOOR)
    if reach < 1 or j.size == 0:
        return best
    own = z[j, c]
    inv = own / q[j + start - q_start, c]          # 1 / the row's unit (z = q / unit)
    src = j[None, :] + start + np.arange(-reach, reach + 1)[:, None]
    inside = (src >= 0) & (src < n_rows_total)
    other = q[np.clip(src, 0, n_rows_total - 1) - q_start, c[None, :]] * inv[None]
    other[~inside] = 0.0
    top = best[j, c]
    for sign in (1.0, -1.0):
        s = np.where(sign * other > ROW_POOL_FLOOR,
                     np.minimum(sign * other, ROW_POOL_CAP * np.abs(own)[None]), 0.0)
        cs = np.concatenate([np.zeros((1, j.size)), np.cumsum(s, axis=0)])
        co = np.concatenate([np.zeros((1, j.size)), np.cumsum(s > 0, axis=0)])
        for a in range(reach + 1):          # runs [a, b) of rows holding the row (at reach)
            for b in range(max(reach + 1, a + 2), min(2 * reach + 1, a + ROW_POOL_WIDTH) + 1):
                n = b - a
                sc = np.where(co[b] - co[a] == n, (cs[b] - cs[a]) / np.sqrt(n), 0.0)
                np.copyto(top, sign * sc, where=sc > np.abs(top))
    best[j, c] = top
    return best


def _pool_rect(q: np.ndarray, z: np.ndarray, cons: np.ndarray, q_start: int,
               rows: tuple[int, int], hd: int, n_rows_total: int,
               strong: float = ROW_POOL_FLOOR, only: np.ndarray | None = None,
               share: float = 1.0) -> np.ndarray:
    """Scores ``z`` ``(stop - start, columns)`` of volume rows ``rows`` pooled over rectangles
    of rows and columns: each value's the strongest ``sum / sqrt(n)`` over the rectangles of
    2 to :data:`ROW_POOL_WIDTH` adjacent rows within :data:`ROW_POOL_REACH` (and ``hd``)
    and up to :data:`POOL_WIDTH` adjacent columns holding it, of at least :data:`RECT_MIN`
    values, each above :data:`RECT_FLOOR` with one sign and, unless above ``strong``
    (:data:`ROW_POOL_FLOOR`; ``inf``: every value), rank consistent (``cons`` above
    :data:`~nsgen.prep.robust_tall.CONSISTENCY`); its own score where none is stronger (or
    where ``only``, bool like ``z``, is not set: those values are not pooled, but may be
    in the others' rectangles). With ``share`` below 1, a rectangle needs only that
    share of its values (at least :data:`RECT_MIN`) to qualify; the others count 0 in its
    sum, not in its size (:data:`BLOCK_RECT_SHARE`, the angle blocks'). The
    other rows' values are their offsets ``q`` (one angle set, volume rows ``q_start ...``,
    ``hd`` rows each side of ``rows``; ``cons`` their rank consistency, the same shape less
    the scale) in this row's units (``q / z`` of this row, column by column), none above
    :data:`ROW_POOL_CAP` times this value's ``|z|`` (a defect keeps its height over its rows
    and columns; a stronger value is another's, e.g. a dead column's beside it).

    Examples
    --------
    >>> q = np.zeros((6, 9)); q[:, 8] = 1.0         # 6 rows, 8 columns, robust scale 1
    >>> q[1:4, 2:4] = 2.5                           # a stripe over rows 1-3, columns 2-3
    >>> cons = np.full((6, 8), 10.0)                # every rank agrees
    >>> _pool_rect(q, q[:, :8].copy(), cons, 0, (0, 6), 3, 6)[:4, 1:5].round(2).tolist()
    [[0.0, 0.0, 0.0, 0.0], [0.0, 6.12, 6.12, 0.0], [0.0, 6.12, 6.12, 0.0], [0.0, 6.12, 6.12, 0.0]]
    >>> float(_pool_rect(q, q[:, :8].copy(), cons / 10, 0, (0, 6), 3, 6)[2, 2])  # ranks disagree
    2.5
    """
    reach = min(ROW_POOL_REACH, hd)
    start, stop = rows
    best = z.copy()
    # a value in a rectangle: above the floor with one sign, and rank consistent unless
    # above the rows' own floor
    ok_own = (np.abs(z) > RECT_FLOOR) & ((np.abs(z) > strong)
                                         | (cons[start - q_start:stop - q_start] > CONSISTENCY))
    j, c = np.nonzero(ok_own if only is None else ok_own & only)
    if reach < 1 or j.size == 0:
        return best
    corners, size = _rectangles(reach)   # every rectangle holding the value
    # (compiled: the NumPy formulation's numbers, value by value)
    _rdj.pool_rect(q, z, cons, start, q_start, n_rows_total, np.stack([j, c]), reach,
                   POOL_WIDTH - 1, RECT_FLOOR, ROW_POOL_CAP, strong, CONSISTENCY, RECT_MIN,
                   corners, np.maximum(share * size, RECT_MIN), np.sqrt(size), best)
    return best


@functools.lru_cache(maxsize=16)
def _rectangles(reach: int) -> tuple[np.ndarray, np.ndarray]:
    """The rectangles of :func:`_pool_rect` in a window of ``2 reach + 1`` rows by ``2
    POOL_WIDTH - 1`` columns around a value, each of 2 to :data:`ROW_POOL_WIDTH` rows and up
    to :data:`POOL_WIDTH` columns holding the window's centre, of at least :data:`RECT_MIN`
    values: their corners as flat indices into the window's prefix sums (``2 reach + 2`` by
    ``2 POOL_WIDTH`` values; top left, top right, bottom left, bottom right) and their sizes.

    Examples
    --------
    >>> corners, size = _rectangles(1)   # 3 rows: 2 (2 ways) or 3 by 2-5 columns (2-5 ways)
    >>> corners.shape, sorted(set(size.tolist()))
    ((4, 42), [4, 6, 8, 9, 10, 12, 15])
    """
    half = POOL_WIDTH - 1
    n_r, n_c = 2 * reach + 1, 2 * half + 1
    boxes = [(a, h, b, w) for h in range(2, min(ROW_POOL_WIDTH, n_r) + 1)  # (one row: _pool's)
             for a in range(reach - h + 1, reach + 1) if a >= 0 and a + h <= n_r
             for w in range(max(1, -(-RECT_MIN // h)), POOL_WIDTH + 1)
             for b in range(half - w + 1, half + 1)]
    a, h, b, w = (np.array(v, np.intp) for v in zip(*boxes))
    stride = n_c + 1
    corners = np.stack([a * stride + b, a * stride + b + w, (a + h) * stride + b,
                        (a + h) * stride + b + w])
    return corners, h * w


def _block_rects(qs: np.ndarray, zb: list[np.ndarray], cons: np.ndarray, q_start: int,
                 rows: tuple[int, int], hd: int, n_rows_total: int) -> np.ndarray:
    """Per angle block ``(blocks, stop - start, columns)``: the scores ``zb`` of each block
    (volume rows ``rows``) pooled over the rectangles (:func:`_pool_rect`) whose every value
    is rank consistent in that block (``cons`` ``(q rows, sets, columns)`` of the offsets
    ``qs`` ``(q rows, sets, columns + 1)``, volume rows ``q_start ...``), 0 where a value is
    in none. Only values that a run of blocks can use are pooled: rank consistent above
    :data:`RECT_FLOOR` in this block and, with the same sign, in an adjacent one; a
    rectangle needs :data:`BLOCK_RECT_SHARE` of its values so, the others count 0.

    Examples
    --------
    >>> q = np.zeros((6, 3, 9)); q[:, :, 8] = 1.0     # 6 rows, 8 columns, 2 blocks + the scan
    >>> q[1:4, :2, 2:4] = 2.5                         # rows 1-3, columns 2-3, both blocks
    >>> cons = np.full((6, 3, 8), 10.0)
    >>> zb = [q[:, b, :8].copy() for b in range(2)]
    >>> _block_rects(q, zb, cons, 0, (0, 6), 3, 6)[:, 1, 1:5].round(2).tolist()
    [[0.0, 6.12, 6.12, 0.0], [0.0, 6.12, 6.12, 0.0]]
    >>> cons[2, 1, 3] = 1.0                           # its ranks disagree in block 1
    >>> float(_block_rects(q, zb, cons, 0, (0, 6), 3, 6)[1, 2, 3])
    0.0
    """
    start, stop = rows
    own = cons[start - q_start:stop - q_start]
    ok = [np.where((np.abs(z) > RECT_FLOOR) & (own[:, b] > CONSISTENCY), np.sign(z), 0.0)
          for b, z in enumerate(zb)]
    out = np.zeros((len(zb),) + zb[0].shape)
    for b, z in enumerate(zb):
        pair = np.zeros(z.shape, bool)
        for o in (b - 1, b + 1):
            if 0 <= o < len(zb):
                pair |= ok[o] == ok[b]
        use = pair & (ok[b] != 0)
        if use.any():
            r = _pool_rect(qs[:, b], z, cons[:, b], q_start, rows, hd, n_rows_total,
                           strong=np.inf, only=use, share=BLOCK_RECT_SHARE)
            out[b] = np.where(use & (r != z), r, 0.0)
    return out


def _rect_runs(rects: np.ndarray, bar: float, zb: np.ndarray, z_whole: np.ndarray
               ) -> np.ndarray:
    """Runs of angle blocks (:func:`~nsgen.prep.robust_angles.run_scores`) of the block
    rectangles ``rects`` (:func:`_block_rects`, ``(blocks, rows, columns)``), and, where a
    value is in no run, its block's rectangle alone: every value of a block rectangle is
    rank consistent in its block and, with the same sign, in an adjacent one
    (:func:`_block_rects` pools no other value), which holds no rectangle of its own above
    :data:`~nsgen.prep.robust_angles.RUN_LEVEL`. Such a rectangle is a run of two blocks
    whose neighbour adds 0 (``rect / sqrt(2)``, flagged above ``bar`` as any run), or a run
    of one block (``rect``) where the defect outlasts the block: the value's whole-scan
    score ``z_whole`` (same sign) exceeds its share of the block's own score ``zb``
    (``|zb| / sqrt(blocks)``, what one block's event adds to the whole scan). A
    fluctuating gain at its peak over one block, its other blocks at a third of that
    (labelled benchmark, 721x64x512 seed 11, rows 42-47: block 2 at -3..-5 per value,
    -12.8 pooled at i0 4000, the whole scan at -2.2 against a share of 1.7); a sample
    feature at the volume's end over one block and a half (361x32x256 seed 5 rows 1-3:
    block 4 at -11.9, the whole scan at -1.0 against 1.9) does not outlast it
    (docs/detection.md, thirteenth and fourteenth rounds).

    Examples
    --------
    >>> rects = np.zeros((6, 1, 4))
    >>> rects[2:4, 0, 0] = 8.0            # two blocks: a run of 11.3
    >>> rects[2, 0, 1] = 16.0             # one block, its neighbour agreeing: 11.3
    >>> rects[2, 0, 2:] = 12.0            # one block: 8.5, or 12 where the scan holds it
    >>> zb = np.full(rects.shape, 4.0)
    >>> z_whole = np.array([[0.0, 0.0, 1.0, 2.0]])   # share 4 / sqrt(6) = 1.63
    >>> _rect_runs(rects, 11.0, zb, z_whole)[2:4, 0].round(1).tolist()
    [[11.3, 11.3, 0.0, 12.0], [11.3, 0.0, 0.0, 0.0]]
    """
    run = run_scores(rects, RUN_LEVEL)
    pair = rects / np.sqrt(2.0)
    outlasts = np.sign(rects) * z_whole[None] > np.abs(zb) / np.sqrt(rects.shape[0])
    lone = np.where(np.abs(pair) > bar, pair, np.where(outlasts & (np.abs(rects) > bar),
                                                       rects, 0.0))
    return np.where(run == 0, lone, run)


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


def _drop_bias(z: np.ndarray, threshold: float) -> np.ndarray:
    """``|z| > threshold``, less the columns whose offset is only the median filter's answer to
    a stronger stripe of the opposite sign within :data:`HALF_WINDOW` columns.

    Examples
    --------
    >>> _drop_bias(np.array([[0.0, 9.0, 0.0, -6.0, 0.0, 7.0]]), 5.0).tolist()
    [[False, True, False, False, False, True]]
    """
    flag = np.empty(z.shape, bool)   # (compiled: the same comparisons)
    _rdj.drop_bias(np.ascontiguousarray(z, np.float64), threshold, HALF_WINDOW, flag)
    return flag


def robust_stripe_mask(volume: np.ndarray, threshold: float = THRESHOLD, depth: int = 30
                       ) -> np.ndarray:
    """Robust stripe mask of a whole volume ``(angles, rows, columns)`` (uint8 0/1)."""
    x = np.asarray(volume)
    if x.ndim != 3:
        raise ValueError(f"volume must be 3D (angles, rows, columns); got shape {x.shape}")
    return robust_mask_rows(x, 0, (0, x.shape[1]), x.shape[1], threshold, depth)
