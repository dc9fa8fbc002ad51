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
   in that column (:func:`~nsgen.prep.robust_pool.pool_rows`: a defect stays in its
   columns over the rows it spans, which rows first partly shares with the compared rows).
   Whole-scan stripes: ``|z| > threshold`` (5; ``z`` pooled over up to 5 adjacent columns
   of one sign, :func:`~nsgen.prep.robust_pool.pool_columns`, or over rectangles of rows
   and columns whose values are above 2 and rank consistent,
   :func:`~nsgen.prep.robust_pool.pool_rect`), less the columns beside a stronger stripe of
   the opposite sign (the median filter's answer to it) and those the angle blocks do not
   agree on (median block score, same sign, below :data:`CONSISTENT` of its expected share:
   a feature's turning point along the angles is one or two blocks' event); masked in the
   angle blocks whose own score agrees. Stripes over part of the scan: a run of 2 to
   ``blocks - 1`` adjacent blocks, each scoring above ``RUN_LEVEL`` with one sign, whose
   sum over ``sqrt(length)`` exceeds 2.2 x the threshold (pooled over up to 5 adjacent
   columns, as the whole-scan scores: 2 x, :data:`POOLED_FACTOR`), or any such run of each
   block's scores pooled over rectangles of rows and columns whose values (3/4 of them) are
   rank consistent in that block (one block alone above 2.2 x the threshold:
   :func:`~nsgen.prep.robust_pool.rect_runs`); their angles are then refined from the run's
   trace over angle bins, and dropped where that range does not stand out of the trace
   elsewhere or is not a significant step in it (module :mod:`nsgen.prep.robust_angles`).

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
:data:`~nsgen.prep.robust_stack.DECIDE_REACH`) its mask. The work splits so that each row's
is done once whatever the chunking (:mod:`nsgen.stages.robust`):
:func:`~nsgen.prep.robust_features.row_features` (steps 1 and 4's detection and the bin
means: each row alone; module :mod:`nsgen.prep.robust_features`), :func:`row_offsets`
(step 2 and ``q``: ``hd`` rows each side), :func:`decide_offsets` (the rest: ``hd`` rows of
offsets each side), then step 6 where the first decision left something out. Compiled kernels:
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


import numpy as np

from nsgen.prep import (robust_box as _box, robust_mass as _mass, robust_pool as _pl,
                        robust_rows as _rows, robust_second as _second, robust_stack as _stack)
from nsgen.prep.robust_angles import (POOLED, RUN, RUN_LEVEL, WHOLE, angle_bins,
                                      expand_planes, plane_edges, refine, run_scores)
from nsgen.prep.robust_features import block_edges, row_features, split_features
from nsgen.prep.robust_scores import (HALF_WINDOW, column_scores, depth_rule, offset_scores,
                                      offsets)
from nsgen.prep.robust_tall import (TALL_SETS, or_tall, split_tall,  # tall
                                    with_tall)

__all__ = ["HALF_WINDOW", "column_scores", "decide", "decide_bins", "decide_offsets",
           "decide_twice", "depth_rule", "robust_mask_rows", "row_offsets",
           "robust_stripe_mask", "set_offsets"]

#: decision threshold on the robust scores
THRESHOLD = 5.0
#: how much stronger than a whole-scan stripe over part of the scan (a run of angle blocks:
#: :data:`~nsgen.prep.robust_features.BLOCKS`) must be
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
#: a run of block rectangles (:func:`~nsgen.prep.robust_pool.rect_runs`) is flagged above
#: this: every such run (each block's rectangle above RUN_LEVEL, its values rank consistent
#: in the block) is a stripe's candidate, which
#: :func:`~nsgen.prep.robust_angles.refine`'s step tests judge (labelled benchmark, seeds
#: 1-4: at the runs' bar, 2.2 x the threshold, partial rows
#: 142 of 154; here 147, no clean row more on any seed set; docs/detection.md, fourteenth
#: round). A lone rectangle (a run of one block) needs the bar
RECT_RUN_LEVEL = RUN_LEVEL
#: values stored per angle set by :func:`set_offsets`: the offsets, the row-alone (tall)
#: scores and the offsets' rank consistency (:func:`~nsgen.prep.robust_pool.pool_rect`
#: reads the whole scan's and each angle block's)
STORED_SETS = 2 + TALL_SETS


def robust_mask_rows(block: np.ndarray, block_start: int, rows: tuple[int, int],
                     n_rows_total: int, threshold: float = THRESHOLD, depth: int = 30,
                     mass: np.ndarray | None = None) -> np.ndarray:
    """Robust mask of volume rows ``[start, stop)`` from a block ``(angles, rows, cols)``.

    The block must hold the rows ``[start - 5 hd - 4, stop + 5 hd + 4)`` (clipped to the
    volume; :func:`decide_twice`) with ``hd`` of :func:`depth_rule`; the result (uint8
    0/1, ``(angles, stop - start, cols)``) is then the same whatever the chunking, given
    the volume's ``mass`` (:func:`~nsgen.prep.robust_mass.volume_mass` of every row's
    :func:`~nsgen.prep.robust_features.bin_means`: the mass-conservation confirmation;
    computed here when the block holds every row of the volume; without it, a block of part of the volume is decided
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
        mass = _mass.volume_mass(split_features(feat, x.shape[0])[2])
    return decide_twice(feat, lo, rows, n_rows_total, x.shape[0], threshold, depth, mass)


def _check_rows(have: tuple[int, int], rows: tuple[int, int], n_rows_total: int,
                halo: int) -> None:
    """``have`` (volume rows held) must cover ``rows`` plus ``halo`` rows each side."""
    lo, hi = max(0, rows[0] - halo), min(n_rows_total, rows[1] + halo)
    if have[0] > lo or have[1] < hi:
        raise ValueError(f"block holds rows [{have[0]}, {have[1]}) but rows "
                         f"[{rows[0]}, {rows[1]}) need rows [{lo}, {hi}) (halo {halo})")


def row_offsets(feat: np.ndarray, feat_start: int, rows: tuple[int, int],
                n_rows_total: int, n_k: int, depth: int = 30) -> np.ndarray:
    """Step 2's offsets (and robust scales) of volume rows ``rows`` for every angle set,
    ``(stop - start, sets, columns + 1)`` float64
    (:func:`~nsgen.prep.robust_scores.offsets`; tall: then as many sets of row-alone
    scores, :func:`~nsgen.prep.robust_tall.with_tall`; then as many of the offsets' rank
    consistency), from the :func:`~nsgen.prep.robust_features.row_features` of volume
    rows ``feat_start ...`` (or the first of
    :func:`~nsgen.prep.robust_features.row_feature_parts`), which must hold
    ``hd`` rows each side."""
    sets, strong, _ = split_features(feat, n_k)
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
    return expand_planes(planes, plane_edges(block_edges(n_k), n_k), out)


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
    z = [_pl.pool_rows(qs[:, n], zn, q_start, rows, hd, n_rows_total)
         for n, zn in enumerate(z_own)]
    z_one = z[-1]  # (each column's own score: the blocks' are compared with it)
    z_all = _pl.pool_columns(z_one, _pl.POOL_FLOOR, _pl.POOL_WIDTH)
    flag_all = _pl.grow(_pl.drop_bias(z_all, threshold), z_all, GROW * threshold)
    # ... and its rows and columns together, where their ranks agree
    rect = _pl.pool_rect(qs[:, -1], z_own[-1], cons[:, -1], q_start, rows, hd, n_rows_total)
    by_rect = _pl.drop_bias(rect, threshold)
    if len(z) == 1:
        flag_all |= by_rect
        mask = (flag_all | tall[-1])[None]   # tall
        if out is None:
            return mask.copy()
        out[...] = mask
        return out
    edges = block_edges(n_k)
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
    typical = _pl.median_signed(z_all, zb)
    flag_all &= typical > CONSISTENT * np.abs(z_one) / np.sqrt(n_b)
    by_rect &= _pl.median_signed(rect, zb) > CONSISTENT * np.abs(rect) / np.sqrt(n_b)
    z_all = np.where(by_rect & ~flag_all, rect, z_all)
    flag_all |= by_rect
    run = run_scores(zb, RUN_LEVEL)
    # ... and so may its rows and columns in each block: the block's rectangles, each of
    # whose values is rank consistent in that block (a sample feature there, or a row whose
    # score the moving-feature rule set to 0, is not), in runs of blocks: every such run
    # (each block's rectangle above RUN_LEVEL) is a stripe's candidate, left to refine's
    # step tests (a lone rectangle needs the bar: robust_pool.rect_runs)
    bar = BLOCK_FACTOR * threshold
    pbar = POOLED_FACTOR * threshold   # (the pooled runs': refine's stricter tests)
    run_rect = _pl.rect_runs(_pl.block_rects(qs, z_own[:-1], cons, q_start, rows, hd,
                                       n_rows_total), bar, np.stack(z_own[:-1]), z_own[-1])
    # the columns of one stripe over part of the scan add their evidence (each column's run
    # is already one of agreeing blocks): runs pooled along columns too
    pooled_run = np.stack([_pl.pool_columns(r, _pl.RUN_POOL_FLOOR, _pl.POOL_WIDTH) for r in run])
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
        own = (_pl.grow(_pl.drop_bias(run[b], bar), run[b], GROW * bar)
               | _pl.drop_bias(run_rect[b], RECT_RUN_LEVEL))
        part |= own | _pl.grow(_pl.drop_bias(pooled_run[b], pbar), pooled_run[b], GROW * pbar)
        part |= _pl.drop_bias(box[b], _box.BOX_BAR)
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
    :func:`~nsgen.prep.robust_features.row_features` ``feat`` of volume rows
    ``feat_start ...``, which must hold the rows ``[start - 2 hd, stop + 2 hd)`` (clipped
    to the volume; ``hd`` of :func:`depth_rule`): the same mask whatever the chunking
    (steps 2-5)."""
    hd = depth_rule(n_rows_total, depth)
    start, stop = rows
    _check_rows((feat_start, feat_start + feat.shape[0]), rows, n_rows_total, HALO * hd)
    near = (max(0, start - hd), min(n_rows_total, stop + hd))
    qs = row_offsets(feat, feat_start, near, n_rows_total, n_k, depth)
    xb = split_features(feat[start - feat_start:stop - feat_start], n_k)[2]
    return decide_offsets(qs, near[0], xb, rows, n_rows_total, n_k, threshold, depth)


def decide_twice(feat: np.ndarray, feat_start: int, rows: tuple[int, int], n_rows_total: int,
                 n_k: int, threshold: float = THRESHOLD, depth: int = 30,
                 mass: np.ndarray | None = None) -> np.ndarray:
    """Robust mask ``(n_k, stop - start, columns)`` uint8 of volume rows ``rows`` from the
    :func:`~nsgen.prep.robust_features.row_features` ``feat`` of volume rows
    ``feat_start ...``, which must hold the rows ``[start - 5 hd - 4, stop + 5 hd + 4)``
    (clipped to the volume; :data:`HALO` and :data:`~nsgen.prep.robust_stack.DECIDE_REACH`):
    a first decision (:func:`decide_offsets`) of
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
    sets, strong, xb = split_features(feat, n_k)
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
    edges = block_edges(n_k)
    bins = plane_edges(edges, n_k)
    stacked = _stack.stack_flags(m, rows1[0], scores, mass, rows, edges, bins, per_bin=True)
    return expand_planes(_stack.apply(_rows.grow_rows(
        m, rows1[0], xb[rows1[0] - feat_start:rows1[1] - feat_start], scores, rows, edges,
        bins), stacked), bins)


def robust_stripe_mask(volume: np.ndarray, threshold: float = THRESHOLD, depth: int = 30
                       ) -> np.ndarray:
    """Robust stripe mask of a whole volume ``(angles, rows, columns)`` (uint8 0/1)."""
    x = np.asarray(volume)
    if x.ndim != 3:
        raise ValueError(f"volume must be 3D (angles, rows, columns); got shape {x.shape}")
    return robust_mask_rows(x, 0, (0, x.shape[1]), x.shape[1], threshold, depth)
