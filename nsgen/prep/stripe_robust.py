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

__all__ = ["HALF_WINDOW", "column_scores", "depth_rule", "robust_mask_rows",
           "robust_stripe_mask"]

#: half window of the median across columns (stripes up to this wide are found)
HALF_WINDOW = 8
#: decision threshold on the robust scores
THRESHOLD = 5.0
#: fraction of the angles dropped at each end of a sorted column
DROP = 0.1
#: score above which a column is left out of its neighbours' background in the second pass
#: (its own offset is kept from the first)
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


def ranked(x: np.ndarray) -> np.ndarray:
    """Step 1: :data:`QUANTILES` evenly spaced ranks of the middle of every column of a
    sinogram ``(angles, columns)`` sorted along the angles, ``(ranks, columns)`` float32."""
    n_k = x.shape[0]
    d = int(DROP * n_k)
    srt = np.sort(np.asarray(x, np.float32), axis=0)
    # evenly spaced ranks of the middle: the filter's cost does not grow with angles
    return srt[np.unique(np.linspace(d, n_k - 1 - d, QUANTILES).round().astype(np.intp))]


def _offsets(srt: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """Step 2 on ranked columns: each column's mean minus the mean of the median across
    ``2 HALF_WINDOW + 1`` columns (mirrored edges), ``exclude``d columns replaced by the
    linear interpolation of the nearest kept ones in that median."""
    from scipy import ndimage  # a slow import, only when detecting

    n_i = srt.shape[1]
    h = min(HALF_WINDOW, max(1, (n_i - 1) // 2))
    base = srt
    if exclude is not None and exclude.any() and not exclude.all():
        keep = np.flatnonzero(~exclude)
        out = np.flatnonzero(exclude)
        pos = np.searchsorted(keep, out)
        left = keep[np.clip(pos - 1, 0, keep.size - 1)]
        right = keep[np.clip(pos, 0, keep.size - 1)]
        w = np.where(right != left, (out - left) / np.maximum(right - left, 1), 0.0)
        base = srt.copy()
        base[:, out] = srt[:, left] * (1 - w) + srt[:, right] * w
    smooth = ndimage.median_filter(base, size=(1, 2 * h + 1), mode="mirror")
    return srt.mean(axis=0, dtype=np.float64) - smooth.mean(axis=0, dtype=np.float64)


def _robust_scale(q: np.ndarray) -> float:
    """1.4826 x the MAD of the non-zero offsets (at least 1e-12)."""
    nz = q[q != 0]
    s = 1.4826 * np.median(np.abs(nz - np.median(nz))) if nz.size > 8 else 0.0
    return max(float(s), 1e-12)


def column_offsets(x: np.ndarray, exclude: np.ndarray | None = None
                   ) -> tuple[np.ndarray, float]:
    """Offsets ``q`` of the columns of a sinogram ``(angles, columns)`` (steps 1-2) and their
    robust scale within the sinogram (1.4826 x the MAD of the non-zero offsets).

    ``exclude`` (bool per column): columns left out of the neighbourhood median (replaced by
    the linear interpolation of the nearest columns kept), so that strong stripes do not
    shift their own or their neighbours' background.
    """
    q = _offsets(ranked(x), exclude)
    return q, _robust_scale(q)


def column_scores(x: np.ndarray) -> np.ndarray:
    """Robust scores ``z`` of every column of one sinogram alone (no neighbouring rows)."""
    q, s = column_offsets(x)
    return q / s


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
    x = np.asarray(block)
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
    """
    a0, a1 = angles
    srt = [ranked(x[a0:a1, j]) for j in range(x.shape[1])]
    # offsets of every row needed: the output rows and the rows they are compared with
    q: dict[int, tuple[np.ndarray, float]] = {}
    for i in range(max(r0 + lo - hd, 0), min(r1 + lo + hd, n_rows_total)):
        others = _window(i, hd, n_rows_total)
        d = srt[i - lo] - np.median(np.stack([srt[o - lo] for o in others]), axis=0) \
            if others else srt[i - lo]
        qi = _offsets(d)
        q[i] = (qi, _robust_scale(qi))
    z = np.empty((r1 - r0, x.shape[2]))
    for jj in range(r0, r1):
        qj, sj = q[jj + lo]
        others = _window(jj + lo, hd, n_rows_total)
        unit = np.full(qj.shape, sj)
        if others:  # how much the other rows differ from their own backgrounds here
            win = np.stack([q[o][0] for o in others])
            spread = 1.4826 * np.median(np.abs(win - np.median(win, axis=0)), axis=0)
            unit = np.maximum(unit, spread)
        z[jj - r0] = qj / unit
    return z


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
