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

from nsgen.prep.robust_scores import HALF_WINDOW

__all__ = ["POOLED", "RUN", "WHOLE", "angle_bins", "best_interval", "is_step", "refine",
           "run_scores", "stands_out"]

#: angles of stripes over part of the scan: refined to the angle, the one range of angles
#: where the trace adds most above this fraction of its amplitude (0.5: weak full stripes
#: whose blocks disagree lost their ends)
CUT = 0.3

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


def run_scores(zb: np.ndarray, level: float) -> np.ndarray:
    """Per block ``(blocks, rows, columns)``: the signed score of the strongest run of 2 to
    ``blocks - 1`` adjacent blocks holding it whose scores all exceed ``level`` with one
    sign, ``sum / sqrt(length)`` (0 where none)."""
    n_b = zb.shape[0]
    best = np.zeros_like(zb)
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


def refine(out: np.ndarray, xb: np.ndarray, bins: np.ndarray, edges: np.ndarray,
           evidence: np.ndarray) -> None:
    """Angles of the stripes found in some angle blocks but not all, to the bin (in place).

    ``out`` ``(angles, rows, columns)`` holds the block flags; ``xb`` ``(rows, bins,
    columns)`` the rows' means over the angle ``bins`` (sums in float64), ``edges`` the
    blocks'. Per run of adjacent columns of one row with the same blocks: its trace along
    the bins (its columns' mean minus the median of the unflagged columns within
    :data:`HALF_WINDOW`, per bin; without such columns, less its median over the blocks
    without the stripe) gives the one range of angles where it adds most above
    :data:`CUT` of its median over the blocks with the stripe (:func:`best_interval`, each
    bin weighted by its angles); dropped where that range does not :func:`stands_out` or,
    for stripes found by runs of blocks (``evidence`` per row and column: :data:`WHOLE`,
    :data:`RUN`, :data:`POOLED`), is not a step in its
    trace (:func:`is_step`; runs found only with their columns pooled: flat, and standing
    out :data:`WEAK_STAND_OUT` times).
    """
    n_i = out.shape[2]
    width = np.diff(bins)
    on_b = out[edges[:-1]]  # (blocks, rows, cols): block flags
    mixed = on_b.any(axis=0) & ~on_b.all(axis=0)
    blk = np.searchsorted(edges, bins[:-1], side="right") - 1
    for j in np.flatnonzero(mixed.any(axis=1)):
        cols = mixed[j]
        flagged = on_b[:, j].any(axis=0)
        c = 0
        while c < n_i:
            if not cols[c]:
                c += 1
                continue
            c1 = c + 1
            while c1 < n_i and cols[c1] and (on_b[:, j, c1] == on_b[:, j, c]).all():
                c1 += 1
            on = on_b[:, j, c].astype(bool)
            nb = [i for i in range(max(0, c - HALF_WINDOW), min(n_i, c1 + HALF_WINDOW))
                  if not flagged[i]]
            t = xb[j, :, c:c1].mean(axis=1, dtype=np.float64)
            if nb:  # the neighbours per bin are the baseline
                t = t - np.median(xb[j][:, nb], axis=1)
            else:
                t = t - np.median(t[~on[blk]])
            amp = np.median(t[on[blk]])
            keep = best_interval(width * (np.sign(amp) * t - CUT * abs(amp)),
                                 np.ones(t.size, bool))
            ev = int(evidence[j, c:c1].min())
            if not (stands_out(t, keep, abs(amp), WEAK_STAND_OUT if ev == POOLED else STAND_OUT)
                    and (ev == WHOLE or is_step(t, keep, amp, PLATEAU if ev == POOLED else 0.0))):
                keep[:] = False
            out[:, j, c:c1] = np.repeat(keep, width)[:, None]
            c = c1


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
    noise = 1.4826 * float(np.median(np.abs(np.diff(t)))) / np.sqrt(2.0) if t.size > 1 else 0.0
    z = abs(amp) * np.sqrt(inside.size) / noise if noise > 0 else np.inf
    return bool(flat >= plateau and z > STEP_Z)


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
