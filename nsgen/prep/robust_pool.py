"""Scores pooled where a defect adds its evidence, and the flags drawn from them: the robust
decision's steps that sum the scores of one defect's columns (:func:`pool_columns`), rows
(:func:`pool_rows`) and rectangles of both (:func:`pool_rect`, each angle block's:
:func:`block_rects`, their runs of blocks: :func:`rect_runs`), the blocks' signed median
(:func:`median_signed`), and the flags of a threshold less the median filter's answer to a
stronger stripe (:func:`drop_bias`), grown into adjacent columns (:func:`grow`). Used by
:func:`~nsgen.prep.stripe_robust.decide_bins`; compiled parts in
:mod:`nsgen.prep._robust_decide_jit`. Measured choices: ``docs/detection.md``.
"""

from __future__ import annotations

import functools

import numpy as np

from nsgen.prep._lazy import kernels
from nsgen.prep.robust_angles import RUN_LEVEL, run_scores
from nsgen.prep.robust_scores import HALF_WINDOW
from nsgen.prep.robust_tall import CONSISTENCY

_rdj = kernels("nsgen.prep._robust_decide_jit")

__all__ = ["BLOCK_RECT_SHARE", "POOL_FLOOR", "POOL_WIDTH", "RECT_FLOOR", "RECT_MIN",
           "ROW_POOL_CAP", "ROW_POOL_FLOOR", "ROW_POOL_REACH", "ROW_POOL_WIDTH",
           "RUN_POOL_FLOOR", "block_rects", "drop_bias", "grow", "median_signed",
           "pool_columns", "pool_rect", "pool_rows", "rect_runs", "rectangles"]

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
#: every angle set's scores pooled along the rows too (:func:`pool_rows`): runs of 2 to
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
#: the whole scan's scores pooled over rectangles of rows and columns too (:func:`pool_rect`:
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
#: an angle block's rectangle (:func:`block_rects`) needs this share of its values to
#: qualify (at least RECT_MIN); the others count 0 in its sum, not in its size (``sum /
#: sqrt(size)``). A faint defect's values straddle the floor and the consistency bar in
#: each block, so every-value rectangles stay small (labelled benchmark, 721x64x512 i0
#: 4000 seed 2, rows 53-58: per block at most -8.7 of a 30-value defect; at 0.75 full and
#: fluctuating rows 162 / 157 of 166 / 164 on seeds 9-12 against 161 / 156, no clean row
#: more; docs/detection.md, fourteenth round)
BLOCK_RECT_SHARE = 0.75


def median_signed(z: np.ndarray, zb: np.ndarray) -> np.ndarray:
    """``np.median(np.sign(z) * zb, axis=0)`` of the block scores ``zb`` ``(blocks, rows,
    columns)`` (compiled: the same products and middle values, no temporary).

    Examples
    --------
    >>> zb = np.array([[[1.0, 2.0]], [[3.0, -4.0]], [[5.0, 0.5]]])
    >>> median_signed(np.array([[1.0, -1.0]]), zb).tolist()
    [[3.0, -0.5]]
    """
    out = np.empty(zb.shape[1:])
    _rdj.median_signed(np.ascontiguousarray(np.sign(z), np.float64),
                       np.ascontiguousarray(zb, np.float64), out)
    return out


def pool_columns(z: np.ndarray, floor: float, width: int) -> np.ndarray:
    """Scores ``z`` (rows, columns) pooled along columns: each column's the strongest
    ``sum / sqrt(n)`` over the runs of 1 to ``width`` adjacent columns holding it whose
    scores all exceed ``floor`` with one sign (its own score where none does).

    Examples
    --------
    >>> pool_columns(np.array([[0.0, 3.0, 4.0, 0.5, -3.0]]), 2.0, 3).round(2).tolist()
    [[0.0, 4.95, 4.95, 0.5, -3.0]]
    """
    best = np.empty(z.shape)   # (compiled: the same sums in the same order)
    _rdj.pool_columns(np.ascontiguousarray(z, np.float64), floor, width, best)
    return best


def pool_rows(q: np.ndarray, z: np.ndarray, q_start: int, rows: tuple[int, int], hd: int,
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
    >>> pool_rows(q, q[:, :2].copy(), 0, (0, 6), 3, 6)[:, 0].round(2).tolist()
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


def pool_rect(q: np.ndarray, z: np.ndarray, cons: np.ndarray, q_start: int,
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
    >>> pool_rect(q, q[:, :8].copy(), cons, 0, (0, 6), 3, 6)[:4, 1:5].round(2).tolist()
    [[0.0, 0.0, 0.0, 0.0], [0.0, 6.12, 6.12, 0.0], [0.0, 6.12, 6.12, 0.0], [0.0, 6.12, 6.12, 0.0]]
    >>> float(pool_rect(q, q[:, :8].copy(), cons / 10, 0, (0, 6), 3, 6)[2, 2])  # ranks disagree
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
    corners, size = rectangles(reach)   # every rectangle holding the value
    # (compiled: the NumPy formulation's numbers, value by value)
    _rdj.pool_rect(q, z, cons, start, q_start, n_rows_total, np.stack([j, c]), reach,
                   POOL_WIDTH - 1, RECT_FLOOR, ROW_POOL_CAP, strong, CONSISTENCY, RECT_MIN,
                   corners, np.maximum(share * size, RECT_MIN), np.sqrt(size), best)
    return best


@functools.lru_cache(maxsize=16)
def rectangles(reach: int) -> tuple[np.ndarray, np.ndarray]:
    """The rectangles of :func:`pool_rect` in a window of ``2 reach + 1`` rows by ``2
    POOL_WIDTH - 1`` columns around a value, each of 2 to :data:`ROW_POOL_WIDTH` rows and up
    to :data:`POOL_WIDTH` columns holding the window's centre, of at least :data:`RECT_MIN`
    values: their corners as flat indices into the window's prefix sums (``2 reach + 2`` by
    ``2 POOL_WIDTH`` values; top left, top right, bottom left, bottom right) and their sizes.

    Examples
    --------
    >>> corners, size = rectangles(1)   # 3 rows: 2 (2 ways) or 3 by 2-5 columns (2-5 ways)
    >>> corners.shape, sorted(set(size.tolist()))
    ((4, 42), [4, 6, 8, 9, 10, 12, 15])
    """
    half = POOL_WIDTH - 1
    n_r, n_c = 2 * reach + 1, 2 * half + 1
    # (one row is pool_columns')
    boxes = [(a, h, b, w) for h in range(2, min(ROW_POOL_WIDTH, n_r) + 1)
             for a in range(reach - h + 1, reach + 1) if a >= 0 and a + h <= n_r
             for w in range(max(1, -(-RECT_MIN // h)), POOL_WIDTH + 1)
             for b in range(half - w + 1, half + 1)]
    a, h, b, w = (np.array(v, np.intp) for v in zip(*boxes))
    stride = n_c + 1
    corners = np.stack([a * stride + b, a * stride + b + w, (a + h) * stride + b,
                        (a + h) * stride + b + w])
    return corners, h * w


def block_rects(qs: np.ndarray, zb: list[np.ndarray], cons: np.ndarray, q_start: int,
                 rows: tuple[int, int], hd: int, n_rows_total: int) -> np.ndarray:
    """Per angle block ``(blocks, stop - start, columns)``: the scores ``zb`` of each block
    (volume rows ``rows``) pooled over the rectangles (:func:`pool_rect`) whose every value
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
    >>> block_rects(q, zb, cons, 0, (0, 6), 3, 6)[:, 1, 1:5].round(2).tolist()
    [[0.0, 6.12, 6.12, 0.0], [0.0, 6.12, 6.12, 0.0]]
    >>> cons[2, 1, 3] = 1.0                           # its ranks disagree in block 1
    >>> float(block_rects(q, zb, cons, 0, (0, 6), 3, 6)[1, 2, 3])
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
            r = pool_rect(qs[:, b], z, cons[:, b], q_start, rows, hd, n_rows_total,
                           strong=np.inf, only=use, share=BLOCK_RECT_SHARE)
            out[b] = np.where(use & (r != z), r, 0.0)
    return out


def rect_runs(rects: np.ndarray, bar: float, zb: np.ndarray, z_whole: np.ndarray
               ) -> np.ndarray:
    """Runs of angle blocks (:func:`~nsgen.prep.robust_angles.run_scores`) of the block
    rectangles ``rects`` (:func:`block_rects`, ``(blocks, rows, columns)``), and, where a
    value is in no run, its block's rectangle alone: every value of a block rectangle is
    rank consistent in its block and, with the same sign, in an adjacent one
    (:func:`block_rects` pools no other value), which holds no rectangle of its own above
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
    >>> rect_runs(rects, 11.0, zb, z_whole)[2:4, 0].round(1).tolist()
    [[11.3, 11.3, 0.0, 12.0], [11.3, 0.0, 0.0, 0.0]]
    """
    run = run_scores(rects, RUN_LEVEL)
    pair = rects / np.sqrt(2.0)
    outlasts = np.sign(rects) * z_whole[None] > np.abs(zb) / np.sqrt(rects.shape[0])
    lone = np.where(np.abs(pair) > bar, pair, np.where(outlasts & (np.abs(rects) > bar),
                                                       rects, 0.0))
    return np.where(run == 0, lone, run)


def grow(flag: np.ndarray, score: np.ndarray, low: float) -> np.ndarray:
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


def drop_bias(z: np.ndarray, threshold: float) -> np.ndarray:
    """``|z| > threshold``, less the columns whose offset is only the median filter's answer to
    a stronger stripe of the opposite sign within :data:`HALF_WINDOW` columns.

    Examples
    --------
    >>> drop_bias(np.array([[0.0, 9.0, 0.0, -6.0, 0.0, 7.0]]), 5.0).tolist()
    [[False, True, False, False, False, True]]
    """
    flag = np.empty(z.shape, bool)   # (compiled: the same comparisons)
    _rdj.drop_bias(np.ascontiguousarray(z, np.float64), threshold, HALF_WINDOW, flag)
    return flag
