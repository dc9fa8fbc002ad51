"""Stripes over part of the scan widened along the detector rows for the robust detector.

A gain change of a detector pixel block is a step at the same angles in every row and
column it covers. Where one of its rows is found and refined to its angles (a partial
stripe), the rows beside it that hold the same step in the same columns are the same
defect, even where their own scores stay under the bars (rows first shares a defect over
several rows with the rows it compares them with; the unit is the sample's local scale).
:func:`grow_rows` is :func:`~nsgen.prep.robust_angles.widen` (the refined stripe's
columns widened into adjacent columns with the same step) applied along the rows, with
the same tests and bars: the adjacent row's trace over the flagged columns (against the
median of the columns around them, less its median outside the stripe's angles) has a
median over the stripe's angle bins of the stripe's sign, between
:data:`~nsgen.prep.robust_angles.GROW_AMP` of the flagged row's amplitude and its inverse,
significant (``|a| sqrt(bins) / noise`` above :data:`~nsgen.prep.robust_angles.GROW_Z`,
the noise per bin from successive differences), and the row's block scores agree in each
angle block inside the stripe's angles (their mean over the columns, signed as the
stripe, above :data:`~nsgen.prep.robust_angles.GROW_BLOCK`). Three more tests keep the
widening from carrying a flag of a sample feature into the next row (sample features
are smooth along the rows too): the stripe covers 2 angle blocks or more (a run of
blocks: one block's event is a feature's turning point), the row's own candidate there
was not dropped by :func:`~nsgen.prep.robust_angles.refine`, and the columns just beside
the stripe's in that row hold on average less than
:data:`~nsgen.prep.robust_box.BOX_OUT` of its step (a gain change stays in its columns;
a sample's edge spreads beyond them). Labelled benchmark and the small labelled scans
of the tests: docs/detection.md, eighteenth round.

Only the decision's own flags widen (a widened row does not widen further): a row's mask
needs the decided flags of the rows within :data:`REACH`. Pure: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np

from nsgen.prep.robust_angles import GROW_AMP, GROW_BLOCK, GROW_Z, angle_bins, trace
from nsgen.prep.robust_box import BOX_OUT

__all__ = ["REACH", "grow_rows"]

#: rows each side whose decided flags a row's widening reads
REACH = 1


def grow_rows(mask: np.ndarray, m_start: int, xb: np.ndarray, scores: list[np.ndarray],
              rows: tuple[int, int], edges: np.ndarray, bins: np.ndarray | None = None
              ) -> np.ndarray:
    """The decided mask ``mask`` ``(angles, rows, columns)`` uint8 of volume rows ``m_start
    ...`` (holding :data:`REACH` rows each side of ``rows``, clipped to the volume) cut to
    ``rows``, each row widened into from the stripes over part of the scan of the rows
    beside it (module docstring; a view of ``mask``, written in place). ``xb`` the bin
    means ``(rows, bins, columns)`` of the same rows as ``mask`` (read as ``xb[j]``),
    ``scores`` what :func:`~nsgen.prep.stripe_robust.decide_offsets` gave of them: their
    block scores ``(blocks, rows, columns)``, the offsets' rank consistency (the same
    shape) and the columns of each row flagged before the refinement of the angles
    ``(rows, columns)`` bool (empty with one angle block: no widening), ``edges`` the
    angle blocks' edges. With ``bins`` (the angle bins' edges), ``mask`` holds a plane per
    bin ``(bins, rows, columns)`` instead of one per angle.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> n_k, n_j, n_i = 360, 3, 40
    >>> edges = np.arange(7) * 60
    >>> x = rng.normal(0, 0.002, (n_k, n_j, n_i)); x[100:250, :, 20:22] += 0.01
    >>> xb = x.transpose(1, 0, 2).copy()                # bins of one angle
    >>> m = np.zeros((n_k, n_j, n_i), np.uint8); m[100:250, 1, 20:22] = 1
    >>> zb = np.zeros((6, n_j, n_i)); zb[:, :, 20:22] = 2.0
    >>> pre = m.any(axis=0)                             # row 1's candidate, before refine
    >>> g = grow_rows(m.copy(), 0, xb, [zb, zb, pre], (0, 3), edges)
    >>> [np.flatnonzero(g[:, j].any(axis=0)).tolist() for j in range(3)]
    [[20, 21], [20, 21], [20, 21]]
    >>> zb[:, 0] = 0.0                                  # row 0's scores do not agree
    >>> g = grow_rows(m.copy(), 0, xb, [zb, zb, pre], (0, 3), edges)
    >>> [np.flatnonzero(g[:, j].any(axis=0)).tolist() for j in range(3)]
    [[], [20, 21], [20, 21]]
    """
    start, stop = rows
    out = mask[:, start - m_start:stop - m_start]
    if not scores or edges.size <= 2:
        return out
    zb, pre = scores[0], scores[2]
    per_bin = bins is not None
    if bins is None:
        bins = angle_bins(edges, mask.shape[0])
    width = np.ones(bins.size - 1, np.intp) if per_bin else np.diff(bins)
    blk = np.searchsorted(edges, bins[:-1], side="right") - 1
    # (bins, rows, columns): flags are per bin (0/1 bytes: read as they are, no copy)
    on: np.ndarray = mask if per_bin else np.asarray(mask[bins[:-1]] > 0)
    anyf = np.asarray(on.any(axis=0))
    adds: list[tuple[int, int, int, np.ndarray]] = []
    for jj in range(start - m_start, stop - m_start):
        for j in (jj - 1, jj + 1):
            if not 0 <= j < mask.shape[1] or not anyf[j].any():
                continue
            d = np.diff(np.r_[0, anyf[j].astype(np.int8), 0])
            for c, c1 in zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()):
                keep = np.asarray(on[:, j, c:c1].any(axis=1))
                if (keep.all() or anyf[jj, max(0, c - 1):c1 + 1].any()
                        or pre[jj, c:c1].any()):
                    continue
                if _same_step(xb, j, jj, c, c1, anyf, keep, zb, blk, edges.size - 1):
                    adds.append((jj, c, c1, keep))
    for jj, c, c1, keep in adds:   # (the decided flags only are read above)
        mask[:, jj, c:c1] |= np.repeat(keep, width)[:, None].astype(mask.dtype)
    return out


def _same_step(xb: np.ndarray, j: int, jj: int, c: int, c1: int, anyf: np.ndarray,
               keep: np.ndarray, zb: np.ndarray, blk: np.ndarray, n_b: int) -> bool:
    """Whether row ``jj`` holds the step of row ``j``'s stripe over the columns ``c:c1``
    and the bins ``keep`` (:func:`grow_rows`' tests; rows relative to ``xb``)."""
    amp = float(np.median(trace(xb[j], c, c1, anyf[j])[keep]))
    t = trace(xb[jj], c, c1, anyf[jj])
    t = t - np.median(t[~keep])
    a = float(np.median(t[keep]))
    if not (a * amp > 0 and GROW_AMP * abs(amp) <= abs(a) <= abs(amp) / GROW_AMP):
        return False
    d = np.abs(np.diff(t))
    noise = 1.4826 * float(np.median(d)) / np.sqrt(2.0)
    if not (noise == 0 or abs(a) * np.sqrt(keep.sum()) / noise > GROW_Z):
        return False
    side = []   # (the columns just beside: a gain change stays in its columns)
    for i in (c - 1, c1):
        if 0 <= i < xb[jj].shape[1]:
            ts = trace(xb[jj], i, i + 1, anyf[jj])
            side.append(float(np.median(ts[keep] - np.median(ts[~keep]))) / a)
    if side and np.mean(side) >= BOX_OUT:
        return False
    inside = np.array([keep[blk == k].mean() for k in range(n_b)]) > 0.8
    if inside.sum() < 2:
        return False
    support = (np.sign(amp) * zb[inside][:, jj, c:c1]).mean(axis=1).min()
    return bool(support > GROW_BLOCK)
