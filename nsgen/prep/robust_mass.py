"""Mass conservation over angles: a confirmation of faint partial stripes (eighteenth round).

For an object that stays in the field of view, each detector row's ``M0(theta)``, the sum
of the ``-log`` projection over **all** its columns, is constant in theta (Helgason-Ludwig,
order 0; docs/science.md). A gain change ``g`` of ``w`` pixels of a row over the angles
``[a, b)`` adds about ``w log g`` to ``M0`` over exactly those angles, whatever the sample
does there; a sample feature mistaken for a stripe conserves mass. So a candidate the
value statistics leave (an unflagged run of columns whose offsets stand out in some angle
blocks) is confirmed when its row's ``M0`` shifts over its blocks' angles significantly,
with its sign and by about the size its offsets predict (docs/detection.md, seventeenth
and eighteenth rounds).

The work splits as the detector's (:mod:`nsgen.prep.stripe_robust`):

* :func:`row_mass`: each row's ``M0`` per angle bin from its bin means (that row alone;
  columns constant over the bins, dead or saturated, interpolated from the columns beside:
  such a column holds none of the sample's mass, which varies with the angle);
* :func:`mass_trace`: the volume's traces, each row's ``M0`` less its median over the bins
  and less each bin's median over **every** row (the beam's drift is common to the rows),
  and each row's noise: computed once per volume, so the confirmations of a row do not
  depend on the chunking;
* :func:`confirm`: the candidates of a decision's rows, tested on the traces and flagged.

Examples
--------
A 3-column gain step of 6 % in row 5 of 12, over the first third of 360 angles, on a sample
whose mass is conserved (a bright column moving across the row):

>>> rng = np.random.default_rng(0)
>>> xb = rng.normal(1.0, 0.002, (12, 72, 64))        # bin means (rows, bins, columns)
>>> for k in range(72):
...     xb[:, k, 10 + (k * 40) // 72] += 0.5          # the sample: moves, mass conserved
>>> xb[5, :24, 30:33] += np.log(1.06)
>>> t = mass_trace(row_mass(xb))
>>> step = t[5, :24].mean() - t[5, 24:72].mean()
>>> bool(abs(step - 3 * np.log(1.06)) < 0.01), bool(t[[0, 11], :72].std() < 0.03)
(True, True)
"""

from __future__ import annotations

import numpy as np

from nsgen.prep._lazy import kernels
from nsgen.prep.robust_moving import runs

_rdj = kernels("nsgen.prep._robust_decide_jit")

__all__ = ["ANGLE_REACH", "CANDIDATE_BAR", "CANDIDATE_FLOOR", "CANDIDATE_WIDTH", "CONSTANT", "MASS_BAR",
           "MIN_OUTSIDE", "MIN_ROWS", "STEP_RATIO", "candidate_blocks", "candidates", "confirm", "mass_trace",
           "row_boxes", "row_mass", "volume_mass"]

#: a candidate's columns: each column's own block score at least this, one sign ...
CANDIDATE_FLOOR = 2.5
#: ... in runs of up to this many adjacent unflagged columns, ``|sum| / sqrt(n)`` at least
CANDIDATE_BAR = 3.0
CANDIDATE_WIDTH = 5
#: the box's z on its row's trace (over the spread guard) must reach this
MASS_BAR = 4.0
#: measured step over the step the candidate's offsets predict: within this range
STEP_RATIO = (0.5, 2.0)
#: a column whose bin means vary by less than this over the bins is constant (dead or
#: saturated: interpolated before the sum)
CONSTANT = 1e-6
#: a box needs this many angles outside it (the trace's level elsewhere)
MIN_OUTSIDE = 8
#: columns each side of a candidate whose flags do not count as another stripe's
EXPLAINED_REACH = 2
#: a confirmed box's angles are sought within this many angle blocks each side of its
#: blocks (:func:`_interval`; 2 gave the same figures on the labelled benchmark)
ANGLE_REACH = 1
#: the fewest rows whose common mode (a median per bin) leaves one row's step out
MIN_ROWS = 3
#: MAD to standard deviation, and successive differences to one value's noise
_MAD = 1.4826


def row_mass(xb: np.ndarray) -> np.ndarray:
    """``M0`` per angle bin of each row: the sum over every column of the bin means.

    Parameters
    ----------
    xb : ndarray
        Angle-bin means ``(rows, bins, columns)`` of the ``-log`` projections (any float
        type; non-finite values count 0).

    Returns
    -------
    ndarray
        ``(rows, bins)`` float64. In each row, the columns constant over the bins (range
        below :data:`CONSTANT`: dead or saturated; they hold none of the sample's mass,
        which varies with the angle) are interpolated per bin from the nearest columns
        beside that are not (``np.interp``: the nearest one at the row's ends) before the
        sum; a row with fewer than 2 other columns is summed as it is.

    Examples
    --------
    >>> xb = np.array([[[1.0, 5.0, 3.0], [2.0, 5.0, 4.0]]])   # column 1 constant
    >>> row_mass(xb).tolist()
    [[6.0, 9.0]]
    """
    finite = bool(np.isfinite(xb).all())
    x = np.asarray(xb, np.float64)
    if not finite:
        x = np.where(np.isfinite(x), x, 0.0)
    m0 = x.sum(axis=2)
    if x.shape[1] == 0:
        return m0
    if finite and xb.dtype == np.float32:   # (the extremes of the float32 values: exact)
        span = xb.max(axis=1).astype(np.float64) - xb.min(axis=1).astype(np.float64)
    else:
        span = np.ptp(x, axis=1)
    const = span < CONSTANT   # (rows, columns)
    cols = np.arange(x.shape[2])
    for r in np.flatnonzero(const.any(axis=1) & ((~const).sum(axis=1) >= 2)):
        good = ~const[r]
        bad = cols[~good]
        right = np.searchsorted(cols[good], bad)       # the next good column's index
        g = cols[good]
        lo, hi = g[np.maximum(right - 1, 0)], g[np.minimum(right, g.size - 1)]
        span = np.maximum(hi - lo, 1)
        f = np.clip((bad - lo) / span, 0.0, 1.0)      # 0 (left) .. 1 (right); ends clamp
        filled = x[r][:, lo] * (1.0 - f) + x[r][:, hi] * f
        m0[r] = x[r][:, good].sum(axis=1) + filled.sum(axis=1)
    return m0


def mass_trace(m0: np.ndarray) -> np.ndarray:
    """The volume's traces of :func:`row_mass` ``m0`` ``(rows, bins)`` (every row of the
    volume): ``(rows, bins + 1)`` float64, each row's ``M0`` less its median over the bins
    and less each bin's median over every row (the common mode: the beam's drift, and what
    the sample does to every row alike), then in the last column the row's noise per bin
    (the MAD of successive differences / 0.6745 / sqrt 2, at least 1e-12).

    Examples
    --------
    >>> m0 = np.tile(0.1 * np.arange(8.0), (4, 1)) + [[1.0], [2.0], [3.0], [4.0]]
    >>> m0[2, 6:] += 1.0   # a step in row 2; the rest a drift common to the rows
    >>> t = mass_trace(m0)
    >>> t[2, :8].round(2).tolist(), bool(np.allclose(t[[0, 1, 3], :8], 0))
    ([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0], True)
    """
    m0 = np.asarray(m0, np.float64)
    if m0.shape[1] == 0:
        return np.ones((m0.shape[0], 1))
    r0 = m0 - np.median(m0, axis=1, keepdims=True)
    r0 = r0 - np.median(r0, axis=0, keepdims=True)
    d = np.abs(np.diff(r0, axis=1))
    noise = (np.median(d, axis=1) if d.shape[1] else np.zeros(r0.shape[0])) / 0.6745 / np.sqrt(2)
    return np.concatenate([r0, np.maximum(noise, 1e-12)[:, None]], axis=1)


def volume_mass(xb: np.ndarray) -> np.ndarray:
    """:func:`mass_trace` of the :func:`row_mass` of every row's bin means ``xb`` ``(rows,
    bins, columns)``: what :func:`confirm` needs of the whole volume (pass it to a
    decision of a chunk of rows for that chunk's mask to equal the volume's).

    Examples
    --------
    >>> volume_mass(np.zeros((3, 4, 5))).shape
    (3, 5)
    """
    return mass_trace(row_mass(xb))


def candidates(z: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """The candidate columns of one angle block: runs of up to :data:`CANDIDATE_WIDTH`
    adjacent columns of a row, none ``flagged``, each of its block score ``z`` at least
    :data:`CANDIDATE_FLOOR` with one sign, ``|sum| / sqrt(n)`` at least
    :data:`CANDIDATE_BAR` (a longer run is cut into such runs from its first column on).

    Parameters
    ----------
    z : ndarray
        The block's own scores ``(rows, columns)`` (``offset_scores``).
    flagged : ndarray
        ``(rows, columns)`` bool: flagged by the decision at some angle of the block.

    Returns
    -------
    ndarray
        ``(rows, columns)`` int8: the candidate's sign, 0 elsewhere.

    Examples
    --------
    >>> z = np.array([[0.0, 2.6, 2.7, 0.0, -3.1, 2.6, 0.0, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5]])
    >>> candidates(z, np.zeros(z.shape, bool)).tolist()   # 2.6 alone: 2.6 < 3
    [[0, 1, 1, 0, -1, 0, 0, 1, 1, 1, 1, 1, 0]]
    """
    z = np.asarray(z, np.float64)
    n_j, n_i = z.shape
    code = np.where((np.abs(z) >= CANDIDATE_FLOOR) & ~flagged, np.sign(z), 0.0)
    # each row padded with a 0: runs end at their row's end
    flat = np.concatenate([code, np.zeros((n_j, 1))], axis=1).ravel()
    zf = np.concatenate([z, np.zeros((n_j, 1))], axis=1).ravel()
    idx = np.flatnonzero(flat)
    out = np.zeros(flat.size, np.int8)
    if idx.size:
        prev = np.concatenate([[0.0], flat[:-1]])
        start = np.where(flat[idx] != prev[idx], idx, -1)   # a run's first column
        start = np.maximum.accumulate(start)
        key = start + CANDIDATE_WIDTH * ((idx - start) // CANDIDATE_WIDTH)
        keys, inv, count = np.unique(key, return_inverse=True, return_counts=True)
        total = np.bincount(inv, weights=zf[idx], minlength=keys.size)
        ok = np.abs(total) / np.sqrt(count) >= CANDIDATE_BAR
        out[idx[ok[inv]]] = flat[idx[ok[inv]]]
    return out.reshape(n_j, n_i + 1)[:, :n_i]


def candidate_blocks(out: np.ndarray, z: list[np.ndarray], edges: np.ndarray) -> np.ndarray:
    """The :func:`candidates` of every angle block of a decision's rows: ``(rows, blocks,
    columns)`` int8, the candidate's sign, from the decision's mask ``out`` ``(angles,
    rows, columns)`` (a column flagged at some angle of a block is no candidate there),
    each block's own scores ``z`` ``(rows, columns)`` and the blocks' ``edges``.

    Examples
    --------
    >>> z = [np.full((1, 4), 3.0), np.zeros((1, 4))]
    >>> out = np.zeros((4, 1, 4), np.uint8); out[0, 0, 3] = 1
    >>> candidate_blocks(out, z, np.array([0, 2, 4]))[0].tolist()
    [[1, 1, 1, 0], [0, 0, 0, 0]]
    """
    n_b = edges.size - 1
    cand = np.zeros((out.shape[1], n_b, out.shape[2]), np.int8)
    for b in range(n_b):
        zb = np.asarray(z[b])
        jr, ic = np.nonzero(np.abs(zb) >= CANDIDATE_FLOOR)
        flagged = np.zeros(zb.shape, bool)
        if jr.size:   # (the mask read where a candidate may be only)
            flagged[jr, ic] = out[edges[b]:edges[b + 1], jr, ic].any(axis=0)
        cand[:, b] = candidates(zb, flagged)
    return cand


def row_boxes(cand: np.ndarray, q: np.ndarray) -> list[tuple[int, int, int, int, float]]:
    """The candidate boxes of one row, ``(i, j, b0, b1, expected step)``: each run of
    adjacent columns holding a candidate in some block of ``cand`` ``(blocks, columns)``
    (:func:`candidate_blocks`' row), and each run of consecutive blocks ``[b0, b1)``
    holding one there; its columns ``[i, j)`` those of its own blocks' candidates (first
    to last, not the run's in other blocks), its expected step the candidate columns'
    offsets ``q`` ``(blocks, columns + 1)`` summed, mean over its blocks.

    Examples
    --------
    >>> cand = np.zeros((3, 8), np.int8); cand[:2, 2:4] = 1; cand[1, 4] = 1
    >>> q = np.full((3, 9), 0.5)
    >>> row_boxes(cand, q)
    [(2, 5, 0, 2, 1.25)]
    """
    found = []
    for c0, c1 in zip(*runs(np.asarray(cand.any(axis=0)))):
        for b0, b1 in zip(*runs(np.asarray(cand[:, c0:c1].any(axis=1)))):
            own = c0 + np.flatnonzero(cand[b0:b1, c0:c1].any(axis=0))
            i, j = int(own[0]), int(own[-1]) + 1
            exp = float(np.mean([q[b, i:j][cand[b, i:j] != 0].sum() for b in range(b0, b1)]))
            found.append((i, j, int(b0), int(b1), exp))
    return found


def confirm(out: np.ndarray, q: np.ndarray, z: list[np.ndarray], trace: np.ndarray,
            rows: tuple[int, int], edges: np.ndarray, bins: np.ndarray,
            per_bin: bool = False) -> int:
    """Flag the candidates of a decision's rows that their row's ``M0`` confirms (in place).

    Per row, the candidate columns of each angle block (:func:`candidates`, not flagged in
    ``out`` in that block) are joined over the blocks: each run of adjacent columns holding
    a candidate in some block, and each run of consecutive blocks holding one there, is a
    box of the row's trace (those blocks' angles; its columns from the first to the last of
    those blocks' own candidates). Its expected step is the candidate
    columns' offsets ``q`` summed (mean over its blocks); it is confirmed when

    * its z on the row's trace (the box's weighted sum less the row's mean, over the noise
      of that sum), over ``max(1, the robust spread of every other row's z on the same
      box)`` (a stripe shifts its rows; an object leaving the field of view, or a drift the
      common mode misses, shifts them all), reaches :data:`MASS_BAR` with the sign of the
      expected step, and the measured step over the expected is within
      :data:`STEP_RATIO`;
    * its row has no flag over the whole scan (a fluctuating gain, which the detector flags
      so, changes ``M0`` as the angle goes; so may a wide dead run), and no flag of another
      stripe (beyond :data:`EXPLAINED_REACH` columns) in the box's angles (the shift is
      explained already);
    * no other confirmed candidate of its row whose blocks overlap has a stronger value
      score (``|sum z| / sqrt(n)`` over its columns, best block): one step, one candidate.

    Confirmed boxes are flagged in their columns at the angles where their row's trace
    steps most with their sign (:func:`_interval`: the bins within :data:`ANGLE_REACH`
    blocks of the box's blocks, overlapping them, of the largest step z; a gain change's
    step is in exactly its angles, the blocks are coarse).

    Parameters
    ----------
    out : ndarray
        The decision's mask ``(angles, stop - start, columns)`` uint8 of volume rows
        ``rows``; written in place.
    q : ndarray
        The rows' offsets per angle block ``(stop - start, blocks, columns + 1)``.
    z : list of ndarray
        Each block's own scores ``(stop - start, columns)``.
    trace : ndarray
        :func:`mass_trace` of **every** row of the volume ``(rows, bins + 1)``.
    rows : tuple of int
        The volume rows ``(start, stop)`` of ``out``.
    edges, bins : ndarray
        The angle blocks' and bins' edges (bins nest in blocks).
    per_bin : bool
        ``out`` holds a plane per bin ``(bins, stop - start, columns)`` instead.

    Returns
    -------
    int
        Boxes flagged.

    Examples
    --------
    A 4-column 6 % gain step over the first two of 6 blocks (360 angles, bins of 5) in row
    3 of 10, its offsets standing out at 3 per column, the trace holding its step:

    >>> edges, bins = np.arange(0, 361, 60), np.arange(0, 361, 5)
    >>> rng = np.random.default_rng(1)
    >>> m0 = rng.normal(0, 0.002, (10, 72))
    >>> m0[3, :24] += 4 * np.log(1.06)
    >>> trace = mass_trace(m0)
    >>> q = np.zeros((10, 6, 33)); q[3, :2, 20:24] = np.log(1.06)
    >>> z = [np.zeros((10, 32)) for _ in range(6)]
    >>> z[0][3, 20:24] = z[1][3, 20:24] = 3.0
    >>> out = np.zeros((360, 10, 32), np.uint8)
    >>> confirm(out, q, z, trace, (0, 10), edges, bins)
    1
    >>> np.argwhere(out.any(axis=0)).tolist()[0], out[:, 3, 20].nonzero()[0][[0, -1]].tolist()
    ([3, 20], [0, 119])
    """
    n_rows, n_bins = trace.shape[0], trace.shape[1] - 1
    n_b = edges.size - 1
    if n_rows < MIN_ROWS or n_b < 2 or n_bins != bins.size - 1:
        return 0
    start = rows[0]
    w = np.diff(bins).astype(np.float64)
    total = float(w.sum())
    r0, noise = trace[:, :n_bins], trace[:, n_bins]
    centred = r0 - (r0 @ w / total)[:, None]
    unit = noise * np.sqrt(w.mean())
    at = np.searchsorted(bins, edges)   # each block edge's bin
    # the mask's planes: the blocks' and bins' edges in them
    m_edges, m_bins = (at, np.arange(bins.size)) if per_bin else (edges, bins)
    cand = candidate_blocks(out, z, m_edges)
    boxes: dict[tuple[int, int], np.ndarray] = {}
    passed: list[tuple[int, int, int, int, int, float]] = []
    for r in np.flatnonzero(cand.any(axis=(1, 2))):
        for i, j, b0, b1, exp in row_boxes(cand[r], q[r]):
            a, e = at[b0], at[b1]
            length = float(w[a:e].sum())
            if total - length < MIN_OUTSIDE or exp == 0:
                continue
            if (b0, b1) not in boxes:   # every row's z on this box
                boxes[b0, b1] = (centred[:, a:e] @ w[a:e]) / (
                    unit * np.sqrt(length * (total - length) / total))
            zr = boxes[b0, b1]
            spread = _MAD * _rdj.mad_without(zr, start + r)   # (NumPy's numbers)
            zm = zr[start + r] / max(1.0, spread)
            t = r0[start + r]
            inside = float(t[a:e] @ w[a:e])
            step = inside / length - (float(t @ w) - inside) / (total - length)
            if not (np.sign(zm) == np.sign(exp) and abs(zm) >= MASS_BAR
                    and STEP_RATIO[0] <= step / exp <= STEP_RATIO[1]):
                continue
            if _explained(out, int(r), i, j, int(m_edges[b0]), int(m_edges[b1])):
                continue
            score = max(abs(float(z[b][r, i:j].sum())) / np.sqrt(j - i)
                        for b in range(b0, b1))
            passed.append((int(r), i, j, int(b0), int(b1), score))
    n = 0
    for row, i, j, b0, b1, score in passed:
        if any(o[0] == row and o[3] < b1 and b0 < o[4] and o[5] > score for o in passed):
            continue   # one row's step, one candidate: the strongest of those on its box
        # its angles: where the row's trace steps (a gain change's step is in exactly
        # its angles; the blocks are coarse)
        k0, k1 = _interval(centred[start + row], w, int(at[max(b0 - ANGLE_REACH, 0)]),
                           int(at[min(b1 + ANGLE_REACH, n_b)]), (int(at[b0]), int(at[b1])),
                           float(np.sign(np.mean([q[row, b, i:j].sum()
                                                  for b in range(b0, b1)]))))
        out[m_bins[k0]:m_bins[k1], row, i:j] = 1
        n += 1
    return n


def _interval(t: np.ndarray, w: np.ndarray, lo: int, hi: int, box: tuple[int, int],
              sign: float) -> tuple[int, int]:
    """The bins ``[k0, k1)`` within ``[lo, hi)``, overlapping ``box``, where the centred
    trace ``t`` (weights ``w``) steps most with ``sign``: the largest ``sign * sum / sqrt(L
    (N - L) / N)`` (``L`` the interval's weight, ``N`` the trace's).

    Examples
    --------
    >>> t = np.array([0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]) - 0.375
    >>> _interval(t, np.ones(8), 0, 8, (3, 4), 1.0), _interval(t, np.ones(8), 0, 4, (1, 2), 1.0)
    ((2, 5), (1, 4))
    """
    total = float(w.sum())
    c = np.concatenate([[0.0], np.cumsum(t[lo:hi] * w[lo:hi])])
    cw = np.concatenate([[0.0], np.cumsum(w[lo:hi])])
    k0 = np.arange(hi - lo + 1)[:, None]
    k1 = np.arange(hi - lo + 1)[None, :]
    length = cw[k1] - cw[k0]
    ok = (k1 > k0) & (k0 + lo < box[1]) & (k1 + lo > box[0]) & (length < total)
    z = np.where(ok, sign * (c[k1] - c[k0]) / np.sqrt(np.where(
        ok, length * (total - length) / total, 1.0)), -np.inf)
    best = np.unravel_index(int(np.argmax(z)), z.shape)
    return int(best[0]) + lo, int(best[1]) + lo


def _explained(out: np.ndarray, r: int, i: int, j: int, k0: int, k1: int) -> bool:
    """Whether row ``r`` of the mask ``out`` holds a flag over the whole scan (any column),
    or a flag over part of the scan at angles ``[k0, k1)`` in a column more than
    :data:`EXPLAINED_REACH` from the candidate's ``[i, j)``: its ``M0`` shift may be
    another defect's."""
    row = out[:, r]
    every = row.all(axis=0)
    if every.any():
        return True
    part = np.asarray(row.any(axis=0), bool)
    part[max(0, i - EXPLAINED_REACH):j + EXPLAINED_REACH] = False
    return bool(part.any() and row[k0:k1][:, part].any())
