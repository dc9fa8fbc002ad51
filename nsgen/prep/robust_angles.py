"""Stripes over part of the scan for the robust detector: runs of angle blocks, and their
angles refined to the angle.

Step 5's second half of :mod:`nsgen.prep.stripe_robust`: :func:`run_scores` scores runs of
adjacent angle blocks whose block scores agree; :func:`refine` turns the block flags of a
stripe found in some blocks but not all into the one range of angles where its trace adds
most (:func:`best_interval`), and drops it where that range does not stand out of the
trace elsewhere (:func:`stands_out`: a sample feature's turning point along the angles).
Pure: arrays in, arrays out (:func:`refine` fills its output in place).
"""

from __future__ import annotations

import numpy as np

from nsgen.prep._lazy import kernels
from nsgen.prep.robust_scores import HALF_WINDOW

_rdj = kernels("nsgen.prep._robust_decide_jit")

__all__ = ["POOLED", "RUN", "WHOLE", "angle_bins", "best_interval", "expand_planes",
           "is_step", "plane_edges", "plane_of_angle", "refine", "run_scores", "stands_out",
           "step_z", "trace", "widen"]

#: angles of stripes over part of the scan: refined to the angle, the one range of angles
#: where the trace adds most above this fraction of its amplitude: CUT for whole-scan
#: stripes whose blocks disagree (a fluctuating gain's troughs lie at half its median; 0.5
#: lost them: fluctuating F1 0.954 -> 0.947 on the labelled benchmark's seeds 1-4),
#: CUT_STEP for stripes found by runs of blocks (a step: two levels, each bin counted on the
#: side of the midpoint it lies; at 0.3 a sample's offset of a third of the step, constant
#: over the angles, carried the range over every angle: docs/detection.md)
CUT = 0.4
CUT_STEP = 0.5

#: stripes over part of the scan: every block of the run scores above this (same sign)
RUN_LEVEL = 3.0

#: what a column's flags rest on (:func:`refine`'s ``evidence``): a whole-scan stripe the
#: blocks agree on, a run of blocks, a run of blocks only with its columns pooled
WHOLE, RUN, POOLED = 0, 1, 2

#: width of the angle bins whose means :func:`refine` works on, as a fraction of the angles
#: (1801 angles: bins of 7; fewer than 512 angles: every angle)
BIN = 1 / 256
#: a stripe over part of the scan must exceed this multiple of its trace's largest
#: excursion elsewhere (:func:`stands_out`)
STAND_OUT = 1.0
#: a stripe found by a run of blocks is a step in its own trace, this significant
#: (:func:`is_step`; labelled benchmark: true runs 25 and up (5th percentile), the clean
#: rows' runs from 3); one found only with its columns' runs pooled must also be flat (this
#: fraction of its range's bins above half its amplitude) and stand out this much more
STEP_Z = 15.0
PLATEAU = 0.8
WEAK_STAND_OUT = 2.5
#: ... unless its step is this significant (a sample feature's turning point in a busy
#: trace stands out less: labelled benchmark, 721 x 64 x 512 i0 20000 seed 12 row 22, a
#: 4-column partial stripe of one row, pooled run 17.1, flat 0.87, step z 46, 1.46 x the
#: trace's excursion elsewhere; at 30 and 40 no clean row more on seeds 1-12;
#: docs/detection.md, fifteenth round)
STRONG_STEP_Z = 2 * STEP_Z
#: a refined stripe widens into an adjacent column (:func:`widen`) whose step over the
#: stripe's angles has its sign, between GROW_AMP of its amplitude and its inverse, is
#: significant (``|a| sqrt(bins) / noise`` above GROW_Z) and whose scores agree in each
#: angle block inside the range (same sign, above GROW_BLOCK): the trace alone takes a
#: sample that is quiet over the stripe's angles and busy elsewhere for a step (labelled
#: benchmark: 3 % of the clean columns beside a partial stripe passed the trace's tests,
#: none with the blocks' too; 27 of 32 missed stripe columns did). Only stripes found by
#: runs of blocks widen: beside a whole-scan stripe whose blocks disagree (a fluctuating
#: gain) the trace of a cylinder's edge moving with the angle passed (labelled regression
#: guard, 361x32x256 seed 1)
GROW_AMP = 0.5
GROW_Z = 10.0
GROW_BLOCK = 1.0


def run_scores(zb: np.ndarray, level: float) -> np.ndarray:
    """Per block ``(blocks, rows, columns)``: the signed score of the strongest run of 2 to
    ``blocks - 1`` adjacent blocks holding it whose scores all exceed ``level`` with one
    sign, ``sum / sqrt(length)`` (0 where none)."""
    best = np.empty(zb.shape)   # (compiled: the same runs, sums and order)
    _rdj.run_scores(np.ascontiguousarray(zb, np.float64), float(level), best)
    return best


def _run_scores(zb: np.ndarray, level: float) -> np.ndarray:
    """:func:`run_scores` in NumPy (the reference its compiled kernel is tested against)."""
    n_b = zb.shape[0]
    best = np.zeros_like(zb)
    if not (np.abs(zb) > level).any():
        return best
    for sign in (1.0, -1.0):
        above = sign * zb > level
        for b0 in range(n_b):
            for b1 in range(b0 + 2, min(n_b - 1, n_b - b0) + b0 + 1):
                ok = above[b0:b1].all(axis=0)
                score = np.where(ok, sign * zb[b0:b1].sum(axis=0) / np.sqrt(b1 - b0), 0.0)
                seg = best[b0:b1]
                np.copyto(seg, sign * score, where=score > np.abs(seg))
    return best


def angle_bins(edges: np.ndarray, n_k: int) -> np.ndarray:
    """Edges of the angle bins the traces are kept in: :data:`BIN` of ``n_k`` angles wide
    (at least 1 angle), each angle block ``edges`` split on its own (bins nest in blocks).

    Examples
    --------
    >>> angle_bins(np.array([0, 5, 10]), 1000).tolist()   # bins of 3 angles
    [0, 3, 5, 8, 10]
    """
    w = max(1, int(BIN * n_k))
    return np.concatenate([np.arange(e0, e1, w) for e0, e1 in zip(edges[:-1], edges[1:])]
                          + [edges[-1:]]).astype(np.intp)


def plane_edges(edges: np.ndarray, n_k: int) -> np.ndarray:
    """Edges of the planes of a decision's mask held per bin (every flag of the robust
    detector is constant over an angle bin): the :func:`angle_bins` of the blocks
    ``edges`` of ``n_k`` angles, or the blocks' edges themselves with one block (one
    plane: its flags hold at every angle).

    Examples
    --------
    >>> plane_edges(np.array([0, 5, 10]), 1000).tolist(), plane_edges(np.array([0, 9]), 9)
    ([0, 3, 5, 8, 10], array([0, 9]))
    """
    return angle_bins(edges, n_k) if edges.size > 2 else edges


def plane_of_angle(edges: np.ndarray) -> np.ndarray:
    """The plane of each angle of a mask held per plane (:func:`plane_edges` ``edges``).

    Examples
    --------
    >>> plane_of_angle(np.array([0, 2, 3])).tolist()
    [0, 0, 1]
    """
    return np.repeat(np.arange(edges.size - 1), np.diff(edges))


def expand_planes(planes: np.ndarray, edges: np.ndarray, out: np.ndarray | None = None
                  ) -> np.ndarray:
    """A mask held per plane ``(planes, ...)`` (:func:`plane_edges` ``edges``) at every
    angle ``(angles, ...)``: each plane repeated over its angles (into ``out`` when given).

    Examples
    --------
    >>> expand_planes(np.array([[1], [0]], np.uint8), np.array([0, 2, 3]))[:, 0].tolist()
    [1, 1, 0]
    """
    return np.take(planes, plane_of_angle(edges), axis=0, out=out)


def refine(out: np.ndarray, xb: np.ndarray, bins: np.ndarray, edges: np.ndarray,
           evidence: np.ndarray, zb: np.ndarray | None = None, per_bin: bool = False
           ) -> None:
    """Angles of the stripes found in some angle blocks but not all, to the bin (in place).

    ``out`` ``(angles, rows, columns)`` holds the block flags (with ``per_bin``: ``(bins,
    rows, columns)``, a plane per bin); ``xb`` ``(rows, bins,
    columns)`` the rows' means over the angle ``bins`` (sums in float64), ``edges`` the
    blocks'; ``zb`` ``(blocks, rows, columns)`` the block scores (for :func:`widen`).
    Per run of adjacent columns of one row so flagged (a stripe's columns share its
    angles), in the blocks at least half of them hold (column by column, in its own blocks,
    where that is every block): its :func:`trace` along the bins gives the one range of
    angles where it adds most above :data:`CUT` (:data:`CUT_STEP` for stripes found by runs
    of blocks) of its median over the blocks with the stripe (:func:`best_interval`, each
    bin weighted by its angles); dropped where that range does not :func:`stands_out` or,
    for stripes found by runs of blocks (``evidence`` per row and column: :data:`WHOLE`,
    :data:`RUN`, :data:`POOLED`), is not a step in its trace (:func:`is_step`; runs found
    only with their columns pooled: flat, and standing out :data:`WEAK_STAND_OUT` times);
    else, for stripes found by runs of blocks, widened into the adjacent columns that hold
    the same step (:func:`widen`).
    """
    # each block's first plane: its flags
    first: np.ndarray = np.searchsorted(bins, edges[:-1]) if per_bin else edges[:-1]
    on_b = out[first]
    reps = np.ones(bins.size - 1, np.intp) if per_bin else np.diff(bins)
    mixed = on_b.any(axis=0) & ~on_b.all(axis=0)
    blk = np.searchsorted(edges, bins[:-1], side="right") - 1
    for j in np.flatnonzero(mixed.any(axis=1)):
        flagged = on_b[:, j].any(axis=0)
        xr = xb[j]
        d = np.diff(np.r_[0, mixed[j].astype(np.int8), 0])
        for c, c1 in zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()):
            on = 2 * on_b[:, j, c:c1].sum(axis=1) >= c1 - c
            units = [(c, c1, on)]
            if on.all():
                cut = (np.flatnonzero(np.r_[True, (np.diff(on_b[:, j, c:c1], axis=1) != 0)
                                            .any(axis=0)]) + c).tolist()
                units = [(a, b, on_b[:, j, a] > 0) for a, b in zip(cut, cut[1:] + [c1])]
            for a, b, on in units:
                ev = int(evidence[j, a:b].min())
                keep, amp = _angles(trace(xr, a, b, flagged), on[blk], np.diff(bins), ev)
                if keep.any() and not keep.all() and ev != WHOLE and zb is not None:
                    inside = np.array([keep[blk == k].mean() for k in range(edges.size - 1)])
                    inside = inside > 0.8 if (inside > 0.8).any() else inside == inside.max()
                    a, b = widen(xr, a, b, flagged, keep,
                                 amp, np.sign(amp) * zb[inside][:, j].min(axis=0))
                out[:, j, a:b] = np.repeat(keep, reps)[:, None]


def _angles(t: np.ndarray, on: np.ndarray, width: np.ndarray, ev: int
            ) -> tuple[np.ndarray, float]:
    """The bins of a stripe of trace ``t`` flagged in the bins ``on`` on evidence ``ev``
    (:func:`refine`; none where it fails its tests), and its amplitude."""
    amp = float(np.median(t[on]))
    cut = CUT if ev == WHOLE else CUT_STEP
    keep = best_interval(width * (np.sign(amp) * t - cut * abs(amp)), np.ones(t.size, bool))
    weak = ev == POOLED and step_z(t, keep, amp) <= STRONG_STEP_Z
    if not (stands_out(t, keep, abs(amp), WEAK_STAND_OUT if weak else STAND_OUT)
            and (ev == WHOLE or is_step(t, keep, amp, PLATEAU if ev == POOLED else 0.0))):
        keep[:] = False
    return keep, amp


def trace(xr: np.ndarray, c: int, c1: int, flagged: np.ndarray) -> np.ndarray:
    """The trace along the bins of the columns ``c:c1`` of one row's bin means ``xr``
    ``(bins, columns)``: their mean less the median of the columns within
    :data:`HALF_WINDOW` not ``flagged`` (per bin; none where all are).

    Examples
    --------
    >>> xr = np.zeros((3, 10)); xr[1, 4] = 2.0
    >>> flagged = np.zeros(10, bool); flagged[4] = True
    >>> trace(xr, 4, 5, flagged).tolist()
    [0.0, 2.0, 0.0]
    """
    n_i = xr.shape[1]
    nb = [i for i in range(max(0, c - HALF_WINDOW), min(n_i, c1 + HALF_WINDOW))
          if not flagged[i] and not c <= i < c1]
    t = xr[:, c:c1].mean(axis=1, dtype=np.float64)
    return t - np.median(xr[:, nb], axis=1) if nb else t - np.median(t)


def _line(xr: np.ndarray, i: int, a: int, b: int, flagged: np.ndarray) -> np.ndarray:
    """Per bin, the baseline of column ``i`` from the columns not ``flagged`` within
    :data:`HALF_WINDOW` left of ``a`` and right of ``b``: the line through the medians of
    both sides (one side's median at the detector's edge)."""
    n_i = xr.shape[1]
    left = [k for k in range(max(0, a - HALF_WINDOW), a) if not flagged[k]]
    right = [k for k in range(b, min(n_i, b + HALF_WINDOW)) if not flagged[k]]
    if not left or not right:
        side = left or right
        return np.median(xr[:, side], axis=1) if side else np.zeros(xr.shape[0])
    lo, hi = np.median(xr[:, left], axis=1), np.median(xr[:, right], axis=1)
    pl, pr = float(np.mean(left)), float(np.mean(right))
    return lo + (hi - lo) * (i - pl) / (pr - pl)


def widen(xr: np.ndarray, c: int, c1: int, flagged: np.ndarray, keep: np.ndarray,
          amp: float, support: np.ndarray) -> tuple[int, int]:
    """The columns ``c:c1`` of a stripe over the bins ``keep`` (amplitude ``amp`` in its
    trace) widened, one column at a time each side, into the adjacent columns that are not
    ``flagged`` and hold the same step: its trace against the line through the unflagged
    columns each side (:func:`_line`), less its median outside ``keep``, has a median over
    ``keep`` of ``amp``'s sign, between :data:`GROW_AMP` of ``amp`` and its inverse, and
    significant (``|a| sqrt(bins) / noise`` above :data:`GROW_Z`, the noise per bin from
    successive differences), and its ``support`` (its least block score in the blocks
    inside ``keep``, signed as ``amp``) exceeds :data:`GROW_BLOCK`. A stripe's columns
    that score too little to be flagged on their own share its step.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> xr = rng.normal(0, 0.01, (200, 40))
    >>> xr[50:150, 18:22] += 0.1                        # a stripe over 4 columns ...
    >>> flagged = np.zeros(40, bool); flagged[19:21] = True    # ... 2 of them flagged
    >>> keep = np.zeros(200, bool); keep[50:150] = True
    >>> widen(xr, 19, 21, flagged, keep, 0.1, np.full(40, 2.0))
    (18, 22)
    """
    n_i = xr.shape[1]
    for step in (-1, 1):
        while True:
            i = c - 1 if step < 0 else c1
            if not 0 <= i < n_i or flagged[i] or support[i] <= GROW_BLOCK:
                break
            t = xr[:, i] - _line(xr, i, min(c, i), max(c1, i + 1), flagged)
            t = t - np.median(t[~keep])
            a = float(np.median(t[keep]))
            d = np.abs(np.diff(t))
            noise = 1.4826 * float(np.median(d)) / np.sqrt(2.0) if d.size else 0.0
            z = abs(a) * np.sqrt(keep.sum()) / noise if noise > 0 else np.inf
            if not (a * amp > 0 and GROW_AMP * abs(amp) <= abs(a) <= abs(amp) / GROW_AMP
                    and z > GROW_Z):
                break
            c, c1 = (c - 1, c1) if step < 0 else (c, c1 + 1)
    return c, c1


def stands_out(t: np.ndarray, keep: np.ndarray, amp: float, factor: float = STAND_OUT) -> bool:
    """Whether a stripe over the angles ``keep`` of amplitude ``amp`` stands out of its
    trace ``t`` elsewhere: ``amp`` above :data:`STAND_OUT` x the largest excursion of the
    trace (moving mean over a quarter of the range) outside the range and its margins.

    A sample feature that scores like a partial stripe (an edge's turning point along the
    angles, vertical for a while) comes with the rest of its sinusoid: the column's trace
    against its neighbours moves as much at other angles. A stripe's trace outside its
    range is flat. Ranges with too few angles outside (fewer than 2 windows) pass.

    Examples
    --------
    >>> t = np.zeros(360); t[100:220] = 1.0
    >>> keep = np.zeros(360, bool); keep[100:220] = True
    >>> stands_out(t, keep, 1.0)
    True
    >>> t[280:330] = -1.2  # the column moves as much at other angles
    >>> stands_out(t, keep, 1.0)
    False
    """
    on = np.flatnonzero(keep)
    if on.size == 0:
        return False
    a, b = int(on[0]), int(on[-1]) + 1
    w = max(3, (b - a) // 4)
    ts = np.convolve(t, np.ones(w) / w, mode="same")
    outside = np.ones(t.shape, bool)
    outside[max(0, a - w):b + w] = False
    if outside.sum() <= 2 * w:
        return True
    rest = ts[outside]
    return bool(amp > factor * np.abs(rest - np.median(rest)).max())


def step_z(t: np.ndarray, keep: np.ndarray, amp: float) -> float:
    """``|amp| sqrt(bins) / noise`` of a step over the bins ``keep`` of the trace ``t``
    (the noise per bin from the trace's successive differences; :func:`is_step`)."""
    noise = 1.4826 * float(np.median(np.abs(np.diff(t)))) / np.sqrt(2.0) if t.size > 1 else 0.0
    return abs(amp) * np.sqrt(t[keep].size) / noise if noise > 0 else np.inf


def is_step(t: np.ndarray, keep: np.ndarray, amp: float, plateau: float = 0.0) -> bool:
    """Whether the trace ``t`` is a step of signed amplitude ``amp`` over the angles ``keep``:
    significant in the trace itself (the column's bin means against its neighbours, not
    only its ranks), ``amp sqrt(bins) / noise`` above :data:`STEP_Z` (the noise per bin
    from the trace's successive differences), and, with ``plateau``, flat: at least that
    share of the range's bins above half the amplitude (a gain error is constant over its
    range; a sample feature's turning point is peaked, and a faint offset must show at
    most angles).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> t = rng.normal(0, 0.1, 360); t[100:220] += 1.0
    >>> keep = np.zeros(360, bool); keep[100:220] = True
    >>> is_step(t, keep, 1.0), is_step(t, keep, 1.0, plateau=0.8)
    (True, True)
    >>> bump = np.exp(-((np.arange(360) - 160) / 25.0) ** 2)   # peaked, not flat
    >>> is_step(bump + rng.normal(0, 0.1, 360), keep, 1.0, plateau=0.8)
    False
    """
    inside = np.sign(amp) * t[keep]
    if inside.size == 0 or amp == 0:
        return False
    flat = float(np.mean(inside > 0.5 * abs(amp)))
    return bool(flat >= plateau and step_z(t, keep, amp) > STEP_Z)


def best_interval(v: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """The one contiguous run of ``allowed`` angles with the largest sum of ``v`` (a stripe
    over part of the scan covers one range of angles; each angle adds its trace above half
    the stripe's amplitude, so noise cannot chop the range), as a bool mask.

    Examples
    --------
    >>> v = np.array([-1.0, 2, -0.5, 2, -3, 1])
    >>> best_interval(v, np.ones(6, bool)).astype(int).tolist()
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
