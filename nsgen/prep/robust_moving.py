"""Sample features that move across the columns from row to row: no stripe.

A defect of the detector (a gain error of a pixel column, scintillator damage) lies in the
same detector columns in every row it spans. A feature of the sample does not: a sphere's
edge, the turning point of its trace along the angles, the end of an object along the
rows, all sit at columns that change with the row, since the sample changes along the rows.
Rows first (:func:`~nsgen.prep.robust_scores.offsets`) cancels what the rows within ``hd``
share; where the sample changes from row to row (near the volume's ends, where the compared
rows lie on one side; near an object's end along the rows) a feature is left in the offsets
``q`` of each row at its own columns, and it may score like a stripe, over the whole scan or
in the angle blocks where its trace is vertical.

:func:`moving` finds them in the offsets of one angle set: per row, each run of adjacent
columns scoring above :data:`EXTENT` with one sign, one of them above :data:`LEVEL`, is
looked for in the rows within :data:`ROWS` (and ``hd``) each side, displaced by up to
:data:`LAG` columns (the mean of the neighbouring row's offsets over the run's columns
shifted by ``L``, same sign; the best ``L`` refined to a fraction of a column). A
neighbouring row holds it where that best mean is comparable with the run's own
(:data:`FOUND`). The run moves when at least :data:`MIN_ROWS` neighbouring rows hold it,
the median of their speeds (displacement over the rows between) is at least :data:`SPEED`
columns per row, and neither row next to it holds it in its own columns (:data:`STAYS`).
A stripe is held in its own columns by the rows it spans (speed 0); one that ends leaves
the rows beyond at noise (not held); a one-row stripe has no row that holds it.

Pure: arrays in, arrays out; reads only the rows within ``hd`` of each row (the chunked mask
equals the whole volume's).

Examples
--------
>>> rng = np.random.default_rng(1)
>>> n, n_i = 12, 64
>>> q = 0.001 * rng.standard_normal((n, n_i + 1)); q[:, n_i] = 0.001
>>> for j in range(n):                 # an edge moving one column per row ...
...     q[j, 10 + j:14 + j] -= 0.01
>>> q[3:9, 50:52] += 0.01              # ... and a stripe over rows 3-8
>>> z = q[:, :n_i] / 0.001
>>> m = moving(q, z, 0, (0, n), 5, n)
>>> sorted(set(np.flatnonzero(m.any(axis=0)).tolist()) & {50, 51}), bool(m[5, 15:19].all())
([], True)
"""

from __future__ import annotations

import numpy as np

from nsgen.prep._lazy import kernels

_rdj = kernels("nsgen.prep._robust_decide_jit")

__all__ = ["EXTENT", "FOUND", "LAG", "LEVEL", "MIN_ROWS", "ROWS", "SPEED", "STAYS", "moving",
           "runs"]

#: runs of adjacent columns one of which scores above this with their sign are tested (the
#: lowest bar a column must pass to be flagged alone or in a run of columns or of angle
#: blocks: 3; columns grown beside a flag, above 2.5, lie in the same run) ...
LEVEL = 3.0
#: ... each over its adjacent columns above this with that sign (a stripe's whole width: a
#: part of it is matched by its other columns in a neighbouring row, displaced)
EXTENT = 1.0
#: rows each side searched (at most ``hd``: the rows the decision holds)
ROWS = 3
#: largest displacement searched, in columns (a best mean at the end of the search is no
#: match)
LAG = 6
#: a neighbouring row holds the run where its best same-sign mean over the displaced columns
#: is between this fraction of the run's own mean offset and its inverse (a far stronger
#: feature nearby is another one)
FOUND = 0.5
#: a run moves at this many columns per row or more (the median speed of the rows that
#: hold it) ...
SPEED = 0.5
#: ... when at least this many neighbouring rows hold it ...
MIN_ROWS = 2
#: ... and no row next to it holds it slower than this (columns per row): a stripe there too
STAYS = 0.25


def runs(flag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and stops of the runs of ``True`` in a 1-D bool array.

    Examples
    --------
    >>> [a.tolist() for a in runs(np.array([0, 1, 1, 0, 1], bool))]
    [[1, 4], [3, 5]]
    """
    d = np.diff(np.r_[0, flag.astype(np.int8), 0])
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def moving(qs: np.ndarray, z: np.ndarray, q_lo: int, rows: tuple[int, int], hd: int,
           n_rows_total: int) -> np.ndarray:
    """Columns of volume rows ``rows`` whose score is a sample feature moving across the
    columns from row to row, ``(stop - start, columns)`` bool, from the offsets ``qs``
    ``(rows, columns + 1)`` of one angle set of volume rows ``q_lo ...`` (holding ``hd``
    rows each side of ``rows``, clipped to the volume) and the scores ``z`` ``(stop -
    start, columns)`` of ``rows`` (module docstring)."""
    start, stop = rows
    n_i = qs.shape[1] - 1
    out = np.zeros((stop - start, n_i), bool)
    reach = min(ROWS, hd)
    if reach < 1:
        return out
    cs = np.zeros((qs.shape[0], n_i + 1))
    np.cumsum(qs[:, :n_i], axis=1, out=cs[:, 1:])
    # (compiled: the same sums, comparisons and medians as the NumPy formulation)
    _rdj.moving_runs(cs, np.ascontiguousarray(z, np.float64), q_lo, start, reach,
                     n_rows_total, EXTENT, LEVEL, LAG, FOUND, MIN_ROWS, STAYS, SPEED, out)
    return out
