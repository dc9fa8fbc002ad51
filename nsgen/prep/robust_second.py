"""Second rows-first pass of the robust stripe detector: the flagged values left out.

Rows first (step 2 of :mod:`nsgen.prep.stripe_robust`) compares each row with the per-rank
median of the other rows within ``hd``. A defect over several rows is partly in the rows it
is compared with: their median follows it and its offsets shrink (labelled benchmark,
721x64x512 seed 3, a 7.4 % full stripe over rows 38-45: its first and last rows score
+11..+15 robust scales, its middle rows 0-3; docs/detection.md, eleventh and fourteenth
rounds). After a first decision, the offsets are computed again with the flagged values
left out of the other rows' backgrounds (replaced there by their row's neighbouring
columns, as the strong defects are: :func:`~nsgen.prep.robust_scores.offsets`), and the
rows decided again on them.

Only the flags of a defect over :data:`SHORT_MIN` to ``hd`` rows are left out
(:func:`excluded`: runs along the rows, each row flagged within :data:`GROUP` columns): one
row's defect is in no other row (nothing shared), and a stripe over more rows than ``hd`` is
the row-alone path's (:mod:`nsgen.prep.robust_tall`), which rows first never saw (each left out, the rows near
them are decided again: a cost; docs/detection.md, fourteenth round).

Pure: arrays in, arrays out. Chunk-exact: a row's excluded values need the first decision's
flags of the rows within ``hd`` each side; its second offsets those of the rows within
``hd``; its second decision the second offsets within ``hd``
(:data:`~nsgen.prep.stripe_robust.HALO`).

Examples
--------
>>> flags = np.zeros((10, 9), bool)
>>> flags[2:4, 0] = True        # 3 rows: left out
>>> flags[4, 1] = True
>>> flags[7, 0] = True          # one row: kept
>>> flags[:, 8] = True          # every row (more than hd): kept
>>> np.argwhere(excluded(flags, 0, (0, 10), 4, 10)).tolist()
[[2, 0], [3, 0], [4, 1]]
"""

from __future__ import annotations

import numpy as np

from nsgen.prep.robust_scores import _window, offsets

__all__ = ["GROUP", "SHORT_MIN", "excluded", "second_offsets", "second_rows"]

#: the first decision's flags left out of the second pass's backgrounds: those in runs along
#: the rows of SHORT_MIN to ``hd`` rows holding a flag within GROUP columns (the columns a
#: defect's rows are flagged in may differ: labelled benchmark, 721x64x512 seed 11, a
#: fluctuating stripe over rows 42-47 and columns 385-388, flagged in 387-388 of row 44)
SHORT_MIN = 2
GROUP = 2


def excluded(flags: np.ndarray, f_start: int, rows: tuple[int, int], hd: int,
             n_rows_total: int) -> np.ndarray:
    """The values of volume rows ``rows`` left out of the second pass's backgrounds,
    ``(stop - start, columns)`` bool: the first decision's ``flags`` (any angle; ``(rows,
    columns)`` bool of volume rows ``f_start ...``, holding ``hd`` rows each side of
    ``rows``, clipped to the volume) in runs along the rows of :data:`SHORT_MIN` to ``hd``
    rows each holding a flag within :data:`GROUP` columns, that reach ``rows``. (A run cut
    at the held rows' ends, where they are not the volume's, reaches ``rows`` only over
    more than ``hd`` rows: longer either way.)"""
    start, stop = rows
    lo, hi = max(0, start - hd), min(n_rows_total, stop + hd)
    if f_start > lo or f_start + flags.shape[0] < hi:
        raise ValueError(f"flags hold rows [{f_start}, {f_start + flags.shape[0]}) but rows "
                         f"[{start}, {stop}) need rows [{lo}, {hi})")
    out = np.zeros((stop - start, flags.shape[1]), bool)
    own = flags[lo - f_start:hi - f_start]
    held = own.copy()   # a flag within GROUP columns counts: a defect's rows may differ there
    for k in range(1, GROUP + 1):
        held[:, k:] |= own[:, :-k]
        held[:, :-k] |= own[:, k:]
    for c in np.flatnonzero(own[start - lo:stop - lo].any(axis=0)):
        d = np.diff(np.r_[0, held[:, c].astype(np.int8), 0])
        for a, b in zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()):
            first, last = max(a + lo, start), min(b + lo, stop)   # (the run in rows)
            if first < last and SHORT_MIN <= b - a <= hd:
                out[first - start:last - start, c] = True
    return out & own[start - lo:stop - lo]


def second_rows(ex: np.ndarray, ex_start: int, rows: tuple[int, int], hd: int
                ) -> tuple[int, int] | None:
    """The rows of ``rows`` whose second decision may differ from the first: those within
    ``2 hd`` of a row with an :func:`excluded` value (``ex`` of volume rows ``ex_start
    ...``, holding ``2 hd`` rows each side of ``rows``), as one range ``(first, stop)``;
    None where there is none.

    Examples
    --------
    >>> ex = np.zeros((30, 4), bool); ex[12, 1] = True
    >>> second_rows(ex, 0, (10, 30), 2), second_rows(ex, 0, (20, 30), 2)
    ((10, 17), None)
    """
    j = np.flatnonzero(ex.any(axis=1)) + ex_start
    start, stop = rows
    near = j[(j >= start - 2 * hd) & (j < stop + 2 * hd)]
    if near.size == 0:
        return None
    first = max(start, int(near.min()) - 2 * hd)
    last = min(stop - 1, int(near.max()) + 2 * hd)
    return (first, last + 1) if first <= last else None


def second_offsets(sets: list[np.ndarray], strong: list[np.ndarray], ex: np.ndarray,
                   feat_start: int, qs: np.ndarray, q_start: int, rows: tuple[int, int],
                   n_rows_total: int, hd: int) -> np.ndarray:
    """The :func:`~nsgen.prep.stripe_robust.set_offsets` ``qs`` (volume rows ``q_start
    ...``) of volume rows ``rows``, with each angle set's offsets, robust scale and rank
    consistency computed again where a compared row has :func:`excluded` values ``ex``
    (``(rows, columns)`` bool like ``strong``, of the feature rows ``feat_start ...``):
    those values left out of the background with the strong defects. The ranks ``sets``
    and ``strong`` (:func:`~nsgen.prep.stripe_robust.set_offsets`' fields) must hold ``hd``
    rows each side of ``rows``; the row-alone (tall) sets are the row's own, kept."""
    start, stop = rows
    out = np.array(qs[start - q_start:stop - q_start])
    n_sets = len(sets)
    n_i = sets[0].shape[2]
    has = np.asarray(ex.any(axis=1))
    redo = np.array([bool(has[[o - feat_start for o in _window(i, hd, n_rows_total)]].any())
                     for i in range(start, stop)])
    if not redo.any():
        return out
    d = np.diff(np.r_[0, redo.astype(np.int8), 0])
    for a, b in zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()):
        r0, r1 = start + a - feat_start, start + b - feat_start
        for n, (srt, st) in enumerate(zip(sets, strong)):
            cons = np.zeros((b - a, n_i))
            out[a:b, n] = offsets(srt, st | ex, r0, r1, feat_start, hd, n_rows_total, cons)
            out[a:b, out.shape[1] - n_sets + n, :n_i] = cons
    return out
