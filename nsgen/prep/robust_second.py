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

from nsgen.prep._lazy import kernels
from nsgen.prep.robust_scores import (_interpolate, _robust_scale, _window, mirror_table,
                                      offsets)

_rj = kernels("nsgen.prep._robust_jit")
_ro = kernels("nsgen.prep._robust_offsets_jit")

__all__ = ["GROUP", "SHORT_MIN", "excluded", "second_offsets", "second_rows"]

#: the first decision's flags left out of the second pass's backgrounds: those in runs along
#: the rows of SHORT_MIN to ``hd`` rows holding a flag within GROUP columns (the columns a
#: defect's rows are flagged in may differ: labelled benchmark, 721x64x512 seed 11, a
#: fluctuating stripe over rows 42-47 and columns 385-388, flagged in 387-388 of row 44)
SHORT_MIN = 2
GROUP = 2
#: offsets computed again on slabs of the columns that change (:func:`second_offsets`)
#: while these are fewer than a SLAB-th of the row, else on the whole row (a call per slab
#: costs: labelled 1801x32x1024 scans, 48 of 1024 columns left out, 0.45 s on slabs, 0.22 s
#: on whole rows)
SLAB = 4


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
    consistency as :func:`~nsgen.prep.robust_scores.offsets` gives them with the
    :func:`excluded` values ``ex`` (``(rows, columns)`` bool like ``strong``, of the feature
    rows ``feat_start ...``) left out of the background with the strong defects. The ranks
    ``sets`` and ``strong`` (:func:`~nsgen.prep.stripe_robust.set_offsets`' fields) must
    hold ``hd`` rows each side of ``rows``; the row-alone (tall) sets are the row's own,
    kept.

    Only what changes is computed (the same values): a compared row's background changes in
    the runs of its left-out and strong columns that hold a left-out one (interpolated from
    their row's neighbouring columns), a row's offsets within ``h`` (8) columns of those
    (the median across ``2 h + 1`` columns), computed on the columns within ``2 h``; where
    those are a :data:`SLAB`-th of a row or more, the range of such rows through
    :func:`~nsgen.prep.robust_scores.offsets` itself."""
    start, stop = rows
    out = np.array(qs[start - q_start:stop - q_start])
    n_sets = len(sets)
    n_i = sets[0].shape[2]
    has = np.asarray(ex.any(axis=1))
    if not has.any():
        return out
    h = mirror_table(n_i).shape[0] // 2
    for n, (srt, st) in enumerate(zip(sets, strong)):
        gone = st | ex
        # each feature row's changed background columns: runs of gone holding an ex
        changed = np.zeros(gone.shape, bool)
        for r in np.flatnonzero(has).tolist():
            d = np.diff(np.r_[0, gone[r].astype(np.int8), 0])
            for a, b in zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()):
                if ex[r, a:b].any():
                    changed[r, a:b] = True
        bg: dict[int, np.ndarray] = {}   # the backgrounds of the rows with gone columns
        wants: dict[int, np.ndarray] = {}
        for i in range(start, stop):
            near = np.zeros(n_i, bool)
            for o in _window(i, hd, n_rows_total):
                if has[o - feat_start]:
                    near |= changed[o - feat_start]
            if near.any():
                # the columns whose offsets change (those need the columns within h more)
                wants[i] = np.convolve(near, np.ones(2 * h + 1), "same") > 0
        many = [i for i, w in wants.items() if SLAB * np.count_nonzero(w) > n_i]
        if many:   # whole rows: rows first itself over their range (pair kernel, one copy)
            a, b = min(many), max(many) + 1
            cons = np.zeros((b - a, n_i))
            out[a - start:b - start, n] = offsets(srt, gone, a - feat_start, b - feat_start,
                                                  feat_start, hd, n_rows_total, cons)
            out[a - start:b - start, out.shape[1] - n_sets + n, :n_i] = cons
        for i, want in wants.items():
            if many and a <= i < b:
                continue
            others = _window(i, hd, n_rows_total)
            for o in others:
                r = o - feat_start
                if r not in bg and gone[r].any():
                    bg[r] = srt[r].copy()
                    _interpolate(bg[r], gone[r])
            d = np.diff(np.r_[0, want.astype(np.int8), 0])
            q, c = out[i - start, n], out[i - start, out.shape[1] - n_sets + n]
            for a0, b0 in zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()):
                s0, s1 = max(0, a0 - h), min(n_i, b0 + h)
                if s1 - s0 < 2 * h + 1:   # (a narrow row: all of it)
                    s0, s1 = 0, n_i
                q_s, c_s = _slab_offsets(srt, bg, i - feat_start, others, feat_start,
                                         (s0, s1))
                q[a0:b0], c[a0:b0] = q_s[a0 - s0:b0 - s0], c_s[a0 - s0:b0 - s0]
            q[n_i] = _robust_scale(q[:n_i])
    return out


def _slab_offsets(srt: np.ndarray, bg: dict[int, np.ndarray], r: int, others: list[int],
                  lo: int, cols: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and rank consistency of block row ``r`` of ``srt`` (volume rows from ``lo``)
    on the columns ``cols`` against the volume rows ``others``, whose ranks are ``bg[row]``
    where given (block rows with strong or left-out columns, interpolated), else their
    ``srt`` rows."""
    s0, s1 = cols
    rows = [r] + [o - lo for o in others]
    own = np.ascontiguousarray(srt[rows, :, s0:s1])
    back = own.copy()
    for k, o in enumerate(rows[1:], 1):
        if o in bg:
            back[k] = bg[o][:, s0:s1]
    mir = mirror_table(s1 - s0)
    q = np.empty(s1 - s0)
    cons = np.empty(s1 - s0)
    _ro.row_offsets(own, back, 0, 1, len(rows), _rj.network(len(others)), mir,
                    _rj.network(mir.shape[0]), q, cons)
    return q, cons
