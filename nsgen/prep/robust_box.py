"""Faint partial stripes over several rows and columns for the robust detector: box sums.

A gain change of a detector pixel block is a step at the same angles in every row and
column it covers. Where each of its values scores only 1-3 per angle block (rows first
shares the defect with the compared rows; the unit is the sample's local scale), the
block rectangles of :mod:`nsgen.prep.stripe_robust` (each value above a floor) miss it,
while the plain sum over its rows and columns stands out. :func:`box_scores` scores each
value, per angle block, by the strongest box (rows x columns) holding it: ``sum /
sqrt(size)`` of the values in this row's units, every value of one sign (each counted up
to :data:`BOX_CAP`: no one value carries the sum), enough of them rank consistent, and
the box standing out of the same columns in the rows just outside it and of the same rows
in the columns just beside it (a sample feature that stays in its columns over a few rows
spreads beyond them). :func:`box_runs` turns them into runs of angle blocks. Pure: arrays
in, arrays out.
"""

from __future__ import annotations

import functools

import numpy as np

from nsgen.prep._lazy import kernels
from nsgen.prep.robust_angles import RUN_LEVEL, run_scores
from nsgen.prep.robust_tall import CONSISTENCY

_bj = kernels("nsgen.prep._robust_box_jit")

__all__ = ["BOX_BAR", "BOX_CAP", "box_runs", "box_scores"]

#: box heights (rows) and widths (columns): 2 to BOX_ROWS rows by 1 to BOX_COLS columns,
#: at least BOX_MIN values
BOX_ROWS = 6
BOX_COLS = 5
BOX_MIN = 4
#: each value counts at most this much in a box's sum
BOX_CAP = 4.0
#: share of a box's values that must be rank consistent (above CONSISTENCY)
BOX_CONS = 0.5
#: the rows just outside a box and the columns just beside it: their mean (the box's
#: sign) below this fraction of the box's mean
BOX_OUT = 0.3
#: every row and every column of a box: its sum at least this fraction of the box's mean
#: per row or column (one strong row or column does not carry the others)
BOX_EVEN = 0.4
#: a box run's value: its own block scores outside the run below this fraction of their
#: mean inside (a partial stripe is confined to its angles)
BOX_STEP = 0.8
#: a run of box scores (each block above RUN_LEVEL, one sign) is a candidate above this
BOX_BAR = 8.0


@functools.lru_cache(maxsize=16)
def _boxes(reach: int) -> list[tuple[int, int, int]]:
    """``(top, height, width)`` of the boxes in a window of ``2 reach + 1`` rows holding
    its centre row ``reach``.

    Examples
    --------
    >>> sorted({h for _, h, _ in _boxes(1)}), len(_boxes(1))
    ([2, 3], 12)
    """
    n_r = 2 * reach + 1
    return [(a, h, w) for h in range(2, min(BOX_ROWS, n_r) + 1)
            for a in range(reach - h + 1, reach + 1) if a >= 0 and a + h <= n_r
            for w in range(1, BOX_COLS + 1) if h * w >= BOX_MIN]


@functools.lru_cache(maxsize=16)
def _groups(reach: int) -> np.ndarray:
    """:func:`_boxes` as ``(top, height, least width, most width)`` per top and height
    (the widths of one top and height are a range), ``(4, groups)``.

    Examples
    --------
    >>> _groups(1).T.tolist()[:2]
    [[0, 2, 2, 5], [1, 2, 2, 5]]
    """
    by: dict[tuple[int, int], list[int]] = {}
    for a, h, w in _boxes(reach):
        by.setdefault((a, h), []).append(w)
    assert all(ws == list(range(ws[0], ws[-1] + 1)) for ws in by.values())
    return np.array([(a, h, ws[0], ws[-1]) for (a, h), ws in by.items()],
                    np.intp).reshape(-1, 4).T.copy()


def box_scores(q: np.ndarray, z: np.ndarray, cons: np.ndarray, q_start: int,
               rows: tuple[int, int], hd: int, n_rows_total: int, tile: int | None = None
               ) -> np.ndarray:
    """Each value of ``z`` ``(stop - start, columns)`` (one angle block's scores of volume
    rows ``rows``) scored by the strongest box holding it (module docstring), signed; 0
    where none. ``q`` ``(q rows, columns + 1)`` the block's offsets of volume rows
    ``q_start ...`` (``hd`` rows each side of ``rows``, the robust scale last), ``cons``
    their rank consistency ``(q rows, columns)``; the other rows' values are their
    offsets in this row's units (``z / q`` of this row, column by column). ``tile``:
    the columns the kernel builds at a time (the same scores whatever it is; default
    :data:`~nsgen.prep._robust_box_jit.TILE`).

    Examples
    --------
    >>> q = np.zeros((8, 11)); q[:, 10] = 1.0        # 8 rows, 10 columns
    >>> q[2:5, 3:6] = 1.5                            # a faint box: rows 2-4, columns 3-5
    >>> cons = np.full((8, 10), 5.0)
    >>> r = box_scores(q, q[:, :10].copy(), cons, 0, (0, 8), 4, 8)
    >>> r[1:6, 2:7].round(1).tolist()[1]
    [0.0, 4.5, 4.5, 4.5, 0.0]
    >>> q[2:5, :3] = 1.0                             # the sample beside it: no box
    >>> float(box_scores(q, q[:, :10].copy(), cons, 0, (0, 8), 4, 8)[3, 4])
    0.0
    """
    start, stop = rows
    n_j, n_i = z.shape
    reach = min(BOX_ROWS - 1, hd - 1)   # (the rows just outside: within hd)
    best = np.zeros(z.shape)
    if reach < 1 or n_j == 0:
        return best
    qv = q[:, :n_i]
    own = qv[start - q_start:stop - q_start]
    inv = np.where(own != 0, z / np.where(own != 0, own, 1.0), 0.0)   # this row's units
    # window rows j - reach - 1 .. j + reach + 1 (the rows just outside the box too)
    dr = np.arange(-reach - 1, reach + 2)
    src = np.arange(start, stop)[:, None] + dr[None, :]
    r_in = (src >= 0) & (src < n_rows_total)
    srcq = np.clip(src, 0, n_rows_total - 1) - q_start
    # the boxes in groups of one top and height (each a range of widths)
    g = _groups(reach)
    _bj.box_block(np.ascontiguousarray(qv), inv, cons > CONSISTENCY, srcq, r_in, g[0], g[1],
                  g[2], g[3], BOX_CAP, BOX_CONS, BOX_OUT, BOX_EVEN, best,
                  _bj.TILE if tile is None else tile)
    return best


def box_runs(qs: np.ndarray, zb: list[np.ndarray], cons: np.ndarray, q_start: int,
             rows: tuple[int, int], hd: int, n_rows_total: int) -> np.ndarray:
    """Per angle block ``(blocks, stop - start, columns)``: runs of 2 and more adjacent
    blocks (:func:`~nsgen.prep.robust_angles.run_scores`, each above
    :data:`~nsgen.prep.robust_angles.RUN_LEVEL` with one sign) of the blocks'
    :func:`box_scores` (``qs`` ``(q rows, sets, columns + 1)``, ``cons`` ``(q rows, sets,
    columns)``, ``zb`` each block's scores of ``rows``)."""
    boxes = np.stack([box_scores(qs[:, b], z, cons[:, b], q_start, rows, hd, n_rows_total)
                      for b, z in enumerate(zb)])
    # a partial stripe is confined to its angles: a box held in every block is the whole
    # scan's (a sample feature's or a full stripe's, the whole-scan rules' to judge)
    every = (np.abs(boxes) > RUN_LEVEL).all(axis=0) & (np.abs(np.sign(boxes).sum(axis=0))
                                                      == boxes.shape[0])
    run = np.where(every[None], 0.0, run_scores(boxes, RUN_LEVEL))
    # each value in its best run's blocks only (overlapping runs may cover every block,
    # whose flags refine would not test)
    top = np.abs(run).max(axis=0)
    run = np.where((np.abs(run) == top) & (top > 0), run, 0.0)
    # ... and a step: the value's own scores outside its run's blocks below BOX_STEP of
    # their mean inside (a constant offset's run is a whole-scan event, refined to every
    # angle)
    inside = run != 0
    n_in = inside.sum(axis=0)
    v = np.sign(run.sum(axis=0)) * np.stack(zb)
    mean_in = (v * inside).sum(axis=0) / np.maximum(n_in, 1)
    mean_out = (v * ~inside).sum(axis=0) / np.maximum(len(zb) - n_in, 1)
    return np.where((mean_out < BOX_STEP * mean_in)[None], run, 0.0)
