"""Row-alone path of the robust stripe detector: stripes that span many rows.

Rows first (step 2 of :mod:`nsgen.prep.stripe_robust`) subtracts, rank by rank, the median
of the other rows within ``hd``: a stripe present in most rows of that window (a column
defect, scintillator damage, beam structure: all rows or many) is subtracted with the
sample and never scores; where the sample changes fast from row to row, the spread of the
other rows' offsets (the score's unit there) hides even a stripe over a few rows. This path
looks at each row alone, on the whole scan's ranks (``(ranks, columns)`` of
:func:`~nsgen.prep.robust_scores.ranks`):

1. ``q`` = the row's mean rank profile minus its running median across 17 columns (the
   row's strong defects, ``|q|`` above :data:`~nsgen.prep.robust_scores.STRONG` robust
   scales, replaced by their neighbours in that median; the edges extended by point
   reflection, :func:`odd_windows`, so a slope stays straight there), scored over the
   largest of the row's robust scale, its :func:`~nsgen.prep.robust_scores.local_scale`
   and the noise of the profile (its second differences: a steep monotone profile has
   exact-zero ``q``); candidates ``|z| > TALL_THRESHOLD``.
2. Rank consistency: a gain or offset error shifts every rank of its column alike, so the
   residual ``d_r`` of rank ``r`` (the rank minus its own running median across 17
   columns) has the stripe's sign at every rank; a moving sample feature that scores in
   the row alone (a turning point, an edge passing by) holds at a few ranks only. Kept:
   the sign at no fewer than :data:`SIGN_FRACTION` of the ranks and ``|mean d| / std d``
   above :data:`CONSISTENCY` (labelled benchmark: gain stripes 2.5 and up, the edges of
   its cylinder fixed over the angles at most 2.34), and no score of the opposite sign
   above :data:`ECHO` of its own within 8 columns (the median's answer to a stripe, or a
   wide stripe on a slope that cannot be told from its answer).
3. Not a centred object: what is constant over the angles and is not a stripe is a body
   of revolution on the rotation axis (a container, a tube), whose projection is mirror
   symmetric about the rotation centre ``c``: its features come in pairs at ``i`` and
   ``2c - i``, same sign, same height. ``c`` of a row is where the gradient of its
   median-filtered rank profile is most antisymmetric (stripes, up to 8 columns wide, do
   not survive the filter); in rows at least :data:`SYMMETRY` symmetric about it, a
   candidate with a partner of the same sign and a height in the range :data:`MIRROR_MATCH`
   of its own (:data:`MIRROR_MATCH_ONE_BLOCK` with one angle block: step 4 adds no test
   there) within :data:`MIRROR_TOL` columns of ``2c - i`` (and more than 8 columns
   away: a stripe on the axis is its own mirror) is dropped. (Two stripes of one height
   at mirror places are dropped too: one row cannot tell them from a tube.)
4. Angles: a stripe found on the whole scan's ranks is kept in the angle blocks whose own
   row-alone offset has its sign and at least :data:`BLOCK_AGREE` of its height
   (:func:`block_scores`); a stripe over less than about 5/6 of the angles is not rank
   consistent on the whole scan and is left to rows first.

Everything is per row, from that row alone: the chunked mask equals the whole volume's.
:func:`~nsgen.prep.stripe_robust.row_offsets` appends the scores to its offsets
(:func:`with_tall`), :func:`~nsgen.prep.stripe_robust.decide_offsets` takes them off
(:func:`split_tall`) and ORs them into its mask where rows first flagged nothing at any
angle of that row and column (:func:`or_tall`).

Examples
--------
>>> rng = np.random.default_rng(0)
>>> n_k, n_i = 181, 128
>>> theta = np.linspace(0, np.pi, n_k, endpoint=False)[:, None]
>>> s = np.arange(n_i) - 63.5
>>> x = 0.3 * np.exp(-((s - 30 * np.cos(theta)) / 4) ** 2)   # a sample off the axis
>>> x = x + 0.002 * rng.standard_normal((n_k, n_i))
>>> x[:, 40] += 0.05                                          # a gain stripe
>>> from nsgen.prep.robust_scores import ranks
>>> srt = ranks(x[:, None, :].astype(np.float32), 0, n_k)
>>> np.flatnonzero(tall_scores(srt)[0]).tolist()
[40]
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.fft  # noqa: F401  (NumPy 2 imports it lazily; not from two threads at once)

from nsgen.prep._lazy import kernels
from nsgen.prep.robust_scores import (HALF_WINDOW, STRONG, _interpolate, _robust_scale,
                                      local_scale, mirror_table)

_rj = kernels("nsgen.prep._robust_jit")
_ro = kernels("nsgen.prep._robust_offsets_jit")
_rt = kernels("nsgen.prep._robust_tall_jit")

__all__ = ["BLOCK_AGREE", "CONSISTENCY", "ECHO", "MIRROR_MATCH", "MIRROR_MATCH_ONE_BLOCK",
           "MIRROR_TOL", "SIGN_FRACTION", "SYMMETRY", "TALL_SETS", "TALL_THRESHOLD", "block_scores",
           "centre", "odd_windows", "or_tall", "split_tall", "tall_flags", "tall_scores",
           "with_tall"]

#: sets :func:`with_tall` adds to the offsets of :func:`~nsgen.prep.stripe_robust.row_offsets`,
#: per angle set
TALL_SETS = 1
#: an angle block keeps a tall stripe where its own row-alone offset has the stripe's sign
#: and at least this fraction of the whole scan's
BLOCK_AGREE = 0.5
#: a candidate's row-alone score must exceed this (the row's own scale: samples, noise)
TALL_THRESHOLD = 6.0
#: fraction of the ranks whose residual has the candidate's sign
SIGN_FRACTION = 0.9
#: ``|mean d| / std d`` over the ranks
CONSISTENCY = 2.5
#: columns around ``2c - i`` searched for a mirror partner
MIRROR_TOL = 4
#: a candidate goes beside one of the opposite sign above this fraction of its score
ECHO = 0.5
#: the mirror test holds in rows at least this symmetric (:func:`centre`)
SYMMETRY = 0.5
#: a partner's offset, as a fraction of the candidate's (same sign), in this range
MIRROR_MATCH = (0.7, 1.3)
#: ... in scans of one angle block (fewer than 180 angles), where no block agreement
#: follows (lowangle: a centred container's inner edge on a 91-angle scan, its partner
#: 0.42-0.49 of its height, was flagged in every row, 3 of 3 clean rows; true stripes of the
#: tall benchmark have partners of 0.35-0.7 too, so not on scans of several blocks)
MIRROR_MATCH_ONE_BLOCK = (0.4, 1.3)


@lru_cache(maxsize=8)
def odd_windows(n_i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The running window of :func:`~nsgen.prep.robust_scores.mirror_table` (17 columns)
    extended past the edges by point reflection: ``(idx, anchor, flip)``, each ``(window,
    columns)``; the window's values are ``x[idx]``, or ``2 x[anchor] - x[idx]`` where
    ``flip``. A slope then has its median on itself at the edges too (a plain mirror
    bends it there: a rank-consistent offset of the first and last columns, as a
    stripe's).

    Examples
    --------
    >>> idx, anchor, flip = odd_windows(20)
    >>> x = np.arange(20.0)
    >>> bool(np.array_equal(np.median(np.where(flip, 2 * x[anchor] - x[idx], x[idx]), 0), x))
    True
    """
    mir = mirror_table(n_i)
    h = mir.shape[0] // 2
    c = np.arange(n_i)[None, :] + np.arange(-h, h + 1)[:, None]
    out = (mir, np.where(c < 0, 0, n_i - 1) * np.ones_like(c), (c < 0) | (c > n_i - 1))
    for a in out:
        a.setflags(write=False)   # (cached)
    return out


def _median(x: np.ndarray, win: tuple[np.ndarray, np.ndarray, np.ndarray],
            cols: np.ndarray | slice = slice(None)) -> np.ndarray:
    """Running median across columns of ``x`` ``(..., columns)`` float32 at ``cols``, over
    the :func:`odd_windows` ``win`` (compiled: :func:`~nsgen.prep._robust_tall_jit.
    odd_median`)."""
    cols = np.arange(x.shape[-1])[cols]
    x2 = np.ascontiguousarray(x, np.float32).reshape(-1, x.shape[-1])
    out = np.empty((x2.shape[0], cols.size), np.float32)
    _rt.odd_median(x2, *win, cols, out)
    return out.reshape(*x.shape[:-1], cols.size)


def _rank_mean(srt: np.ndarray) -> np.ndarray:
    """``srt.mean(axis=0, dtype=np.float64)`` of ranks ``(ranks, columns)`` float32, the same
    numbers (compiled: the angle-bin mean of :mod:`nsgen.prep._robust_jit`)."""
    out = np.empty(srt.shape[1])
    _rj._bin_mean(np.ascontiguousarray(srt, np.float32), np.empty(srt.shape[1]), out)
    return out


def _running_median(p: np.ndarray, win: tuple[np.ndarray, np.ndarray, np.ndarray]
                    ) -> np.ndarray:
    """:func:`_median` of one profile ``(columns,)`` in float32 (an element of each window,
    so a profile as float32 minus it is exactly 0 where the median is the column itself):
    the compiled running median of :mod:`nsgen.prep._robust_offsets_jit` inside, the
    point-reflected edges here."""
    mir = win[0]
    n_w, n_i = mir.shape
    h = n_w // 2
    p32 = np.ascontiguousarray(p, np.float32)
    med = np.empty(n_i, np.float32)
    _ro._column_median(p32, mir, _rj.network(n_w), np.empty((n_w, n_i), np.float32),
                       np.empty((4, n_i // 2 + 1), np.float32), med)
    edge = np.r_[0:min(h, n_i), max(h, n_i - h):n_i]
    med[edge] = _median(p32, win, edge)
    return med


def centre(profile: np.ndarray) -> tuple[float, float]:
    """Rotation centre (column, a multiple of 0.5) of one row from its rank profile
    ``(columns,)`` and how symmetric the row is about it (0 to 1): where the gradient of
    the profile median-filtered across 17 columns (no stripe survives it) is most
    antisymmetric (a body of revolution's projection is symmetric about the axis),
    searched over the middle half of the columns; the symmetry is ``-sum g(i) g(2c - i) /
    sum g^2`` of that gradient ``g``.

    Examples
    --------
    >>> s = np.arange(200) - 120.0
    >>> c, sym = centre(np.sqrt(np.maximum(50.0 ** 2 - s ** 2, 0)))
    >>> c, sym > 0.9
    (120.0, True)
    """
    p = np.asarray(profile, np.float64)
    n_i = p.size
    if n_i < 8:
        return (n_i - 1) / 2, 0.0
    g = np.diff(_running_median(p, odd_windows(n_i)).astype(np.float64))
    m = 1 << int(2 * g.size - 1).bit_length()
    conv = np.fft.irfft(np.fft.rfft(g, m) ** 2, m)[:2 * g.size - 1]
    # conv[k] pairs gradients at i + 0.5 and k - i + 0.5: mirror about c = (k + 1) / 2
    c = (np.arange(conv.size) + 1) / 2
    ok = np.flatnonzero((c >= n_i / 4) & (c <= 3 * n_i / 4))
    k = ok[np.argmin(conv[ok])]
    return float(c[k]), float(max(0.0, -conv[k] / max(float(g @ g), 1e-300)))


def _background(srt: np.ndarray, win: tuple[np.ndarray, np.ndarray, np.ndarray]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ranks ``(ranks, columns)`` with the row's strong defects (``|q|`` above
    :data:`~nsgen.prep.robust_scores.STRONG` robust scales) replaced by their neighbouring
    columns, their mean rank profile, and the row-alone offsets ``q`` of the row's mean
    rank profile against them."""
    prof = _rank_mean(srt).astype(np.float32).astype(np.float64)
    q = prof - _running_median(prof, win)
    strong = np.abs(q) > STRONG * _robust_scale(q)
    if not strong.any():
        return srt, prof, q
    bg = srt.copy()
    _interpolate(bg, strong)
    bg_prof = _rank_mean(bg)
    return bg, bg_prof, prof - _running_median(bg_prof, win)


def _noise(prof: np.ndarray) -> float:
    """Noise of a mean rank profile ``(columns,)``: 1.4826 x the MAD of its second
    differences over ``sqrt(6)`` (a slope or a smooth sample leaves them; the offsets ``q``
    of a steep monotone profile are exact zeros, no scale)."""
    d2 = np.diff(prof, 2)
    return _robust_scale(d2) / np.sqrt(6.0) if d2.size > 8 else 1e-12


def _candidates(srt: np.ndarray, win: tuple[np.ndarray, np.ndarray, np.ndarray]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                           tuple[float, float]]:
    """One row's candidates (columns) and their scores, rank-sign fractions and
    consistency (steps 1 and 2), the row-alone offsets ``q`` and the row's :func:`centre`."""
    bg, bg_prof, q = _background(srt, win)
    z = q / np.maximum(np.maximum(_robust_scale(q), local_scale(q)), _noise(bg_prof))
    cand = np.flatnonzero(np.abs(z) > TALL_THRESHOLD)
    d = srt[:, cand] - _median(bg, win, cand)   # (ranks, candidates)
    frac = (np.sign(d) == np.sign(q[cand])).mean(axis=0)
    ratio = np.abs(d.mean(axis=0)) / np.maximum(d.std(axis=0), 1e-12)
    return cand, z, q, frac, ratio, centre(bg_prof)


def _row(srt: np.ndarray, win: tuple[np.ndarray, np.ndarray, np.ndarray],
         match: tuple[float, float] = MIRROR_MATCH) -> tuple[np.ndarray, np.ndarray]:
    """Tall scores of one row's ranks ``(ranks, columns)`` float32 (0 where none), and the
    row-alone offsets ``q`` they were found on (``match``: a mirror partner's height range,
    as a fraction of the candidate's)."""
    n_i = srt.shape[1]
    out = np.zeros(n_i)
    cand, z, q, frac, ratio, (c, sym) = _candidates(srt, win)
    keep = (frac >= SIGN_FRACTION) & (ratio > CONSISTENCY)
    for n in np.flatnonzero(keep):
        i = cand[n]
        # the median filter's answer to a stripe of the opposite sign nearby, or that
        # stripe itself when it is as strong as its answer (a wide stripe on a slope)
        near = z[max(0, i - HALF_WINDOW):i + HALF_WINDOW + 1] * np.sign(z[i])
        if np.any(near < -ECHO * abs(z[i])):
            keep[n] = False
            continue
        if sym < SYMMETRY:   # no body of revolution to speak of in this row
            continue
        j0 = int(round(2 * c - i))
        part = np.arange(max(0, j0 - MIRROR_TOL), min(n_i, j0 + MIRROR_TOL + 1))
        part = part[np.abs(part - i) > HALF_WINDOW]
        ratio = q[part] / q[i]
        if part.size and np.any((ratio >= match[0]) & (ratio <= match[1])):
            keep[n] = False
    out[cand[keep]] = z[cand[keep]]
    return out, q


def _scores_and_offsets(srt: np.ndarray, match: tuple[float, float] = MIRROR_MATCH
                        ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`tall_scores` of ``srt`` and the row-alone offsets ``q`` of each row,
    ``(rows, columns)`` each."""
    srt = np.ascontiguousarray(srt, np.float32)
    n_i = srt.shape[2]
    if not srt.shape[0]:
        return np.zeros((0, n_i)), np.zeros((0, n_i))
    win = odd_windows(n_i)
    z, q = zip(*(_row(srt[r], win, match) for r in range(srt.shape[0])))
    return np.stack(z), np.stack(q)


def tall_scores(srt: np.ndarray) -> np.ndarray:
    """Row-alone scores ``(rows, columns)`` float64 of the ranked rows ``srt`` ``(rows,
    ranks, columns)`` (one angle set, normally the whole scan's): each row's score where
    it is a rank-consistent candidate that is not a centred object's feature, else 0."""
    return _scores_and_offsets(srt)[0]


def block_scores(sets: list[np.ndarray]) -> np.ndarray:
    """Row-alone scores per angle set ``(rows, sets, columns)`` from the ranked rows of every
    angle set (the blocks', then the whole scan's last; each ``(rows, ranks, columns)``):
    the whole scan's :func:`tall_scores` where that set's own row-alone offset has the
    same sign and at least :data:`BLOCK_AGREE` of the whole scan's (a stripe over part of
    the angles is flagged in its blocks only), else 0."""
    z, q_all = _scores_and_offsets(sets[-1], MIRROR_MATCH if len(sets) > 1
                                   else MIRROR_MATCH_ONE_BLOCK)
    out = np.zeros((z.shape[0], len(sets), z.shape[1]))
    out[:, -1] = z
    if len(sets) == 1:
        return out
    win = odd_windows(z.shape[1])
    for r in np.flatnonzero(z.any(axis=1)):
        cols = np.flatnonzero(z[r])
        q = q_all[r, cols]
        for b, srt in enumerate(sets[:-1]):
            qb = _background(np.ascontiguousarray(srt[r], np.float32), win)[2][cols]
            agree = qb * np.sign(q) >= BLOCK_AGREE * np.abs(q)
            out[r, b, cols[agree]] = z[r, cols[agree]]
    return out


def tall_flags(z: np.ndarray) -> np.ndarray:
    """Columns of the :func:`tall_scores` ``z`` ``(rows, columns)`` flagged (bool)."""
    return np.asarray(z) != 0


def with_tall(qs: np.ndarray, sets: list[np.ndarray]) -> np.ndarray:
    """The :func:`~nsgen.prep.stripe_robust.row_offsets` ``qs`` ``(rows, sets, columns +
    1)`` with the :func:`block_scores` of the same rows' ranks ``sets`` (one ``(rows,
    ranks, columns)`` per angle set) appended as :data:`TALL_SETS` more sets per angle set
    (their last value 0): the offsets spill carries them to the decision, which takes them
    off with :func:`split_tall`."""
    slot = np.zeros((qs.shape[0], TALL_SETS * len(sets), qs.shape[2]))
    slot[:, :, :-1] = block_scores(sets)
    return np.concatenate([qs, slot], axis=1)


def split_tall(qs: np.ndarray, q_lo: int, rows: tuple[int, int]
               ) -> tuple[np.ndarray, np.ndarray]:
    """The offsets of :func:`with_tall` ``qs`` of volume rows ``q_lo ...`` without the tall
    sets, and the :func:`tall_flags` ``(sets, stop - start, columns)`` of volume rows
    ``rows`` (the angle blocks', then the whole scan's)."""
    n = qs.shape[1] // (1 + TALL_SETS)
    z = qs[rows[0] - q_lo:rows[1] - q_lo, n:, :-1]
    return qs[:, :n], tall_flags(z.transpose(1, 0, 2))


def or_tall(out: np.ndarray, tall: np.ndarray, edges: np.ndarray) -> None:
    """OR the :func:`split_tall` flags ``tall`` into the mask ``out`` ``(angles, rows,
    columns)`` (in place) where ``out`` has no flag at any angle (where it has, its angles
    are refined; a block is coarse): each angle block's flags at its angles
    ``edges[b]:edges[b + 1]``, or the whole scan's everywhere with one block."""
    # only the rows and columns of a tall flag are read and written (the mask is 1801
    # angles deep: a pass over it cost more than the rest of the decision's tall work)
    j, c = np.nonzero(tall.any(axis=0))
    if not j.size:
        return
    tall = np.logical_and(tall[:, j, c], ~np.any(out[:, j, c], axis=0)[None])
    if tall.shape[0] == 1:
        out[:, j, c] |= tall[0][None]
        return
    for b in range(edges.size - 1):
        out[edges[b]:edges[b + 1], j, c] |= tall[b][None]
