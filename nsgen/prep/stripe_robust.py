"""Robust stripe detector: decisions from each sinogram's own statistics (Vo's sorting idea).

Larix's weights are informative but its fixed threshold is not (issue 17: clean regions have
weight medians 0.55-0.72, around the 0.63 threshold). This detector decides relative to the
spread measured in each sinogram, so one rule holds for faint and strong stripes, noisy and
clean scans.

Per sinogram ``x[k, i]`` (angles ``k``, columns ``i``), over all angles and over each of 6
angle blocks (scans of at least 180 angles):

1. Sort every column along the angles (Vo et al. 2018) and keep 64 evenly spaced ranks of
   its middle 80 %: moving object features become smooth profiles shared by neighbouring
   columns, while a defective column keeps its offset.
2. Rows first: subtract, rank by rank, the median of the other rows ``j - hd .. j + hd``
   inside the volume (``hd = min(min_stripe_depth, rows - 1) // 2``; Larix's depth rule):
   what the rows share (the sample, its steep slopes and edges, e.g. a cylinder on the
   rotation axis, constant over angles too) goes before any filtering across columns, so a
   stripe on the sample's slope keeps its height.
3. ``q[i]`` = mean over the ranks of that difference minus the same mean of it
   median-filtered across 17 columns (mirrored edges): what still varies slowly across
   columns goes, stripes up to 8 columns wide stand out. Score ``z = q / unit``, the unit
   per column the larger of the row's robust scale (1.4826 x the MAD of the non-zero
   ``q``) and the spread of the other rows' ``q`` there (where rows differ anyway).
4. Whole-scan stripes: ``|z| > threshold`` (5), less the columns beside a stronger stripe of
   the opposite sign (the median filter's answer to it); masked in the angle blocks whose
   own score agrees. Stripes over part of the scan: a block score above 2.5 x the
   threshold with the same sign at half that in a neighbouring block; their angles are
   then refined to the angle from the run's trace (:func:`_refine`).

Steps 2-3 couple rows (``q`` of the ``hd`` rows each side, each against its own ``hd``), so
a row chunk plus ``2 hd`` rows each side gives exactly the whole volume's mask. Measured
quality and limits: ``docs/detection.md``.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(0, 0.01, (180, 8, 64)).astype(np.float32)
>>> x[:, 1, 40:43] += 0.02  # a 3-column stripe at twice the noise, in row 1
>>> m = robust_stripe_mask(x)
>>> np.flatnonzero(m.any(axis=(0, 2))).tolist(), np.flatnonzero(m[:, 1].any(axis=0)).tolist()
([1], [40, 41, 42])
"""

from __future__ import annotations

import numpy as np

from nsgen.prep import _robust_jit as _rj

__all__ = ["HALF_WINDOW", "column_scores", "depth_rule", "robust_mask_rows",
           "robust_stripe_mask"]

#: half window of the median across columns (stripes up to this wide are found)
HALF_WINDOW = 8
#: decision threshold on the robust scores
THRESHOLD = 5.0
#: fraction of the angles dropped at each end of a sorted column
DROP = 0.1
#: ranks of each sorted column used (evenly spaced over the middle 80 %)
QUANTILES = 64
#: angle blocks for stripes over part of the scan, the fewest angles a block may have, and
#: how much stronger than a whole-scan stripe a block-only one must be
BLOCKS = 6
MIN_BLOCK = 30
BLOCK_FACTOR = 2.5
#: angles of stripes over part of the scan: refined to the angle (trace smoothed over this
#: fraction of the angles, at least 5)
SMOOTH = 1 / 60
#: a block keeps a whole-scan stripe when its own score (same sign) exceeds this fraction of
#: the whole-scan score over sqrt(blocks) (a whole-scan score spreads over the blocks so)
AGREE = 0.15


def _robust_scale(q: np.ndarray) -> float:
    """1.4826 x the MAD of the non-zero offsets (at least 1e-12)."""
    nz = q[q != 0]
    s = 1.4826 * np.median(np.abs(nz - np.median(nz))) if nz.size > 8 else 0.0
    return max(float(s), 1e-12)


def column_scores(x: np.ndarray) -> np.ndarray:
    """Robust scores ``z`` of every column of one sinogram ``(angles, columns)`` alone (no
    neighbouring rows): steps 1 and 3 with the row's own robust scale."""
    x = np.ascontiguousarray(x, np.float32)
    return _scores(x[:, None, :], (0, x.shape[0]), 0, 1, 0, 0, 1)[0]


def depth_rule(n_rows_total: int, depth: int = 30) -> int:
    """``hd``: rows each side of a row it is compared with (step 3); the halo is ``2 hd``.

    Examples
    --------
    >>> depth_rule(256), depth_rule(8), depth_rule(1)
    (15, 3, 0)
    """
    return min(depth, n_rows_total - 1) // 2


def robust_mask_rows(block: np.ndarray, block_start: int, rows: tuple[int, int],
                     n_rows_total: int, threshold: float = THRESHOLD, depth: int = 30) -> np.ndarray:
    """Robust mask of volume rows ``[start, stop)`` from a block ``(angles, rows, cols)``.

    The block must hold the rows ``[start - 2 hd, stop + 2 hd)`` (clipped to the volume) with
    ``hd`` of :func:`depth_rule`; the result (uint8 0/1, ``(angles, stop - start, cols)``)
    is then the same whatever the chunking.
    """
    x = np.asarray(block, np.float32)
    if x.ndim != 3:
        raise ValueError(f"block must be 3D (angles, rows, columns); got shape {x.shape}")
    hd = depth_rule(n_rows_total, depth)
    start, stop = rows
    lo, hi = max(0, start - 2 * hd), min(n_rows_total, stop + 2 * hd)
    if block_start > lo or block_start + x.shape[1] < hi:
        raise ValueError(f"block holds rows [{block_start}, {block_start + x.shape[1]}) but rows "
                         f"[{start}, {stop}) need rows [{lo}, {hi}) (halo {2 * hd})")
    x = x[:, lo - block_start:hi - block_start]
    if not np.isfinite(x).all():
        raise ValueError("data contains NaN or infinite values; normalise the scan first")
    n_k = x.shape[0]
    n_b = BLOCKS if n_k >= BLOCKS * MIN_BLOCK else 1
    edges = [n_k * b // n_b for b in range(n_b + 1)]
    z_all = _scores(x, (0, n_k), start - lo, stop - lo, lo, hd, n_rows_total)
    flag_all = _drop_bias(z_all, threshold)
    out = np.zeros((n_k, stop - start, x.shape[2]), np.uint8)
    if n_b == 1:
        out[:] = flag_all[None]
        return out
    z_b = [_scores(x, (edges[b], edges[b + 1]), start - lo, stop - lo, lo, hd, n_rows_total)
           for b in range(n_b)]
    strong = [_drop_bias(z, BLOCK_FACTOR * threshold) for z in z_b]
    for b in range(n_b):
        # a whole-scan stripe, where this block agrees (a whole-scan score z spreads over
        # the blocks as about z / sqrt(blocks) each) ...
        agree = np.sign(z_b[b]) * np.sign(z_all) * np.abs(z_b[b])
        part = flag_all & (agree > AGREE * np.abs(z_all) / np.sqrt(n_b))
        # ... or a stripe over part of the scan: strong in this block and, with the same
        # sign, at least half as strong in a neighbouring block (it spans two or more)
        for nb in (b - 1, b + 1):
            if 0 <= nb < n_b:
                half = (np.sign(z_b[nb]) == np.sign(z_b[b])) & \
                    (np.abs(z_b[nb]) > 0.5 * BLOCK_FACTOR * threshold)
                part |= strong[b] & half
        out[edges[b]:edges[b + 1]] = part[None]
    _refine(out, x[:, start - lo:stop - lo], np.array(edges))
    return out


def _refine(out: np.ndarray, x: np.ndarray, edges: np.ndarray) -> None:
    """Angles of the stripes found in some angle blocks but not all, to the angle (in place).

    Per run of adjacent columns of one row with the same blocks: its trace along the angles
    (its columns' mean minus the median of the unflagged columns within
    :data:`HALF_WINDOW`, per angle), less its median over the blocks without the stripe, is
    smoothed over :data:`SMOOTH` of the angles and cut at half its median over the blocks
    with it; kept within those blocks and their neighbours.
    """
    n_k, _, n_i = out.shape
    n_b = len(edges) - 1
    on_b = out[edges[:-1]]  # (blocks, rows, cols): block flags
    mixed = on_b.any(axis=0) & ~on_b.all(axis=0)
    blk = np.repeat(np.arange(n_b), np.diff(edges))
    size = max(5, round(SMOOTH * n_k))
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
            t = x[:, j, c:c1].mean(axis=1, dtype=np.float64)
            if nb:
                t = t - np.median(x[:, j, nb], axis=1)
            t = t - np.median(t[~on[blk]])
            amp = np.median(t[on[blk]])
            ts = np.convolve(t, np.ones(size) / size, mode="same")
            near = on.copy()
            near[1:] |= on[:-1]
            near[:-1] |= on[1:]
            keep = (np.sign(amp) * ts > 0.5 * abs(amp)) & near[blk]
            out[:, j, c:c1] = keep[:, None]
            c = c1


def _scores(x: np.ndarray, angles: tuple[int, int], r0: int, r1: int, lo: int, hd: int,
            n_rows_total: int) -> np.ndarray:
    """Scores ``z`` (rows ``r0:r1`` of the block, columns) over the angles ``angles``.

    Rows first: each row's ranked sinogram minus the per-rank median of the other rows
    ``j - hd .. j + hd`` inside the volume (what the rows share, the sample, steep slopes and
    edges included, is removed before the median across columns, which then only meets
    what differs between rows); its offsets over the larger of the row's robust scale and,
    per column, the spread of the other rows' offsets (where the rows differ anyway, e.g. a
    sample edge that is not parallel to the rotation axis). Rows needed: ``2 hd`` each side.
    Compiled kernels: :mod:`nsgen.prep._robust_jit`.
    """
    a0, a1 = angles
    n_j, n_i = x.shape[1], x.shape[2]
    idx = _rank_index(a1 - a0)
    srt = np.empty((n_j, idx.size, n_i), np.float32)
    _rj.ranked_rows(x, a0, a1, _rj.network(a1 - a0), idx, srt)
    mir = _mirror_table(n_i)
    pairs_w = _rj.network(mir.shape[0])
    # offsets of every row needed: the output rows and the rows they are compared with
    first = max(r0 + lo - hd, 0)
    rows = range(first, min(r1 + lo + hd, n_rows_total))
    q = np.empty((len(rows), n_i))
    scale = np.empty(len(rows))
    for n, i in enumerate(rows):
        others = _window(i, hd, n_rows_total)
        o_lo, o_hi = (others[0] - lo, others[-1] + 1 - lo) if others else (0, 0)
        _rj.row_offsets(srt, i - lo, o_lo, o_hi, _rj.network(len(others)), mir, pairs_w, q[n])
        scale[n] = _robust_scale(q[n])
    z = np.empty((r1 - r0, n_i))
    spread = np.empty(n_i)
    for jj in range(r0, r1):
        i = jj + lo
        others = _window(i, hd, n_rows_total)
        unit = np.full(n_i, scale[i - first])
        if others:  # how much the other rows differ from their own backgrounds here
            _rj.spread(q[[o - first for o in others]], _rj.network(len(others)), spread)
            unit = np.maximum(unit, spread)
        z[jj - r0] = q[i - first] / unit
    return z


def _rank_index(n_k: int) -> np.ndarray:
    """Ranks kept of a column of ``n_k`` sorted values: :data:`QUANTILES` evenly spaced over
    its middle (``DROP`` cut at each end)."""
    d = int(DROP * n_k)
    return np.unique(np.linspace(d, n_k - 1 - d, QUANTILES).round().astype(np.intp))


def _mirror_table(n_i: int) -> np.ndarray:
    """``(2 h + 1, n_i)`` columns of the median window across columns, mirrored at the
    edges without repeating the edge column (SciPy's ``mode="mirror"``)."""
    h = min(HALF_WINDOW, max(1, (n_i - 1) // 2))
    c = np.arange(n_i)[None, :] + np.arange(-h, h + 1)[:, None]
    if n_i == 1:
        return np.zeros_like(c)
    c = np.abs(c) % (2 * n_i - 2)
    return np.where(c >= n_i, 2 * n_i - 2 - c, c)


def _window(j: int, hd: int, n_rows_total: int) -> list[int]:
    """The other volume rows within ``hd`` of row ``j``; none if fewer than 2 (one row alone
    is no background: a stripe there would score in this row with the opposite sign)."""
    rows = [i for i in range(max(j - hd, 0), min(j + hd + 1, n_rows_total)) if i != j]
    return rows if len(rows) >= 2 else []


def _drop_bias(z: np.ndarray, threshold: float) -> np.ndarray:
    """``|z| > threshold``, less the columns whose offset is only the median filter's answer to
    a stronger stripe of the opposite sign within :data:`HALF_WINDOW` columns."""
    flag = np.abs(z) > threshold
    strong = np.where(flag, np.abs(z), 0.0)
    signed = np.where(flag, np.sign(z), 0.0)
    for d in range(1, HALF_WINDOW + 1):
        for shift in (d, -d):
            other = np.roll(strong, shift, axis=1)
            other_sign = np.roll(signed, shift, axis=1)
            if shift > 0:
                other[:, :shift] = 0
            else:
                other[:, shift:] = 0
            flag &= ~((other > np.abs(z)) & (other_sign == -np.sign(z)))
    return flag


def robust_stripe_mask(volume: np.ndarray, threshold: float = THRESHOLD, depth: int = 30
                       ) -> np.ndarray:
    """Robust stripe mask of a whole volume ``(angles, rows, columns)`` (uint8 0/1)."""
    x = np.asarray(volume)
    if x.ndim != 3:
        raise ValueError(f"volume must be 3D (angles, rows, columns); got shape {x.shape}")
    return robust_mask_rows(x, 0, (0, x.shape[1]), x.shape[1], threshold, depth)
