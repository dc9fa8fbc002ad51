"""Robust stripe detector: decisions from each sinogram's own statistics (Vo's sorting idea).

Larix's weights are informative but its fixed threshold is not (issue 17: clean regions have
weight medians 0.55-0.72, around the 0.63 threshold). This detector decides relative to the
spread measured in each sinogram, so one rule holds for faint and strong stripes, noisy and
clean scans.

Per sinogram ``x[k, i]`` (angles ``k``, columns ``i``), over all angles and over each of 6
angle blocks (scans of at least 180 angles):

1. Sort every column along the angles (Vo et al. 2018): moving object features become smooth
   profiles shared by neighbouring columns, while a defective column keeps its offset.
2. ``q[i]`` = mean of 64 evenly spaced ranks of the middle 80 % of the sorted column ``i``
   minus the same mean of the sorted image median-filtered across 17 columns (mirrored
   edges): the column's offset from its neighbourhood. Stripes up to 8 columns wide stand
   out; monotone edges do not. Columns whose offset exceeds 3 x the sinogram's robust scale
   (1.4826 x the MAD of the non-zero ``q``) are then left out of their neighbours'
   background (interpolated across) and the other columns' ``q`` recomputed: a strong
   stripe no longer shifts its neighbours.
3. Score ``z``: per column, ``q`` minus the median of ``q`` over the rows ``j - hd .. j + hd``
   inside the volume, over their spread (1.4826 x MAD, at least the row's own scale);
   ``hd = min(min_stripe_depth, rows - 1) // 2``. What the rows share (the sample's
   features constant along the rows, e.g. the edges of a cylinder on the rotation axis,
   constant over angles too) scores near 0: Larix's depth rule, with robust statistics.
4. Whole-scan stripes: ``|z| > threshold`` (6), less the columns beside a stronger stripe of
   the opposite sign (the median filter's answer to it); masked in the angle blocks whose
   own score agrees. Stripes over part of the scan: a block score above 2.5 x the
   threshold with the same sign at half that in a neighbouring block.

Only step 3 couples rows (halo ``hd``), so a row chunk plus ``hd`` rows each side gives
exactly the whole volume's mask. Measured quality and limits: ``docs/detection.md``.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(0, 0.01, (180, 4, 64)).astype(np.float32)
>>> x[:, 1, 40:43] += 0.02  # a 3-column stripe at twice the noise, in row 1
>>> m = robust_stripe_mask(x)
>>> m.any(axis=(0, 2)).tolist(), np.flatnonzero(m[:, 1].any(axis=0)).tolist()
([False, True, False, False], [40, 41, 42])
"""

from __future__ import annotations

import numpy as np

__all__ = ["HALF_WINDOW", "column_scores", "depth_rule", "robust_mask_rows",
           "robust_stripe_mask"]

#: half window of the median across columns (stripes up to this wide are found)
HALF_WINDOW = 8
#: fraction of the angles dropped at each end of a sorted column
DROP = 0.1
#: score above which a column is left out of its neighbours' background in the second pass
#: (its own offset is kept from the first)
EXCLUDE = 4.0
#: passes measuring a row's offsets again without its candidate columns
PASSES = 2
#: ranks of each sorted column used (evenly spaced over the middle 80 %)
QUANTILES = 64
#: angle blocks for stripes over part of the scan, the fewest angles a block may have, and
#: how much stronger than a whole-scan stripe a block-only one must be
BLOCKS = 6
MIN_BLOCK = 30
BLOCK_FACTOR = 2.5


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


def _offsets_near(srt: np.ndarray, exclude: np.ndarray, q: np.ndarray) -> np.ndarray:
    """:func:`_offsets` with ``exclude``, computed only where it differs from ``q`` (the
    offsets without exclusion): within ``HALF_WINDOW`` columns of an excluded column."""
    n_i = srt.shape[1]
    h = min(HALF_WINDOW, max(1, (n_i - 1) // 2))
    out = q.copy()
    idx = np.flatnonzero(exclude)
    if idx.size == 0:
        return out
    # groups of excluded columns whose neighbourhoods overlap
    cut = np.flatnonzero(np.diff(idx) > 2 * h) + 1
    for g in np.split(idx, cut):
        a, b = max(0, g[0] - 3 * h), min(n_i, g[-1] + 3 * h + 1)
        part = _offsets(srt[:, a:b], exclude[a:b])
        lo_, hi_ = max(a, g[0] - h), min(b, g[-1] + h + 1)
        # columns of the slice further than h from its cut ends are exact
        lo_ = lo_ if a == 0 else max(lo_, a + h)
        hi_ = hi_ if b == n_i else min(hi_, b - h)
        out[lo_:hi_] = part[lo_ - a:hi_ - a]
    return out


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
    """``hd``: rows each side of a row its score is compared with (step 3); its halo.

    Examples
    --------
    >>> depth_rule(256), depth_rule(8), depth_rule(1)
    (15, 3, 0)
    """
    return min(depth, n_rows_total - 1) // 2


def robust_mask_rows(block: np.ndarray, block_start: int, rows: tuple[int, int],
                     n_rows_total: int, threshold: float = 6.0, depth: int = 30) -> np.ndarray:
    """Robust mask of volume rows ``[start, stop)`` from a block ``(angles, rows, cols)``.

    The block must hold the rows ``[start - hd, stop + hd)`` (clipped to the volume) with
    ``hd`` of :func:`depth_rule`; the result (uint8 0/1, ``(angles, stop - start, cols)``)
    is then the same whatever the chunking.
    """
    x = np.asarray(block)
    if x.ndim != 3:
        raise ValueError(f"block must be 3D (angles, rows, columns); got shape {x.shape}")
    hd = depth_rule(n_rows_total, depth)
    start, stop = rows
    lo, hi = max(0, start - hd), min(n_rows_total, stop + hd)
    if block_start > lo or block_start + x.shape[1] < hi:
        raise ValueError(f"block holds rows [{block_start}, {block_start + x.shape[1]}) but rows "
                         f"[{start}, {stop}) need rows [{lo}, {hi}) (halo {hd})")
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
        part = flag_all & (agree > np.maximum(0.5, 0.25 * np.abs(z_all) / np.sqrt(n_b)))
        # ... or a stripe over part of the scan: strong in this block and, with the same
        # sign, at least half as strong in a neighbouring block (it spans two or more)
        for nb in (b - 1, b + 1):
            if 0 <= nb < n_b:
                half = (np.sign(z_b[nb]) == np.sign(z_b[b])) & \
                    (np.abs(z_b[nb]) > 0.5 * BLOCK_FACTOR * threshold)
                part |= strong[b] & half
        out[edges[b]:edges[b + 1]] = part[None]
    return out


def _scores(x: np.ndarray, angles: tuple[int, int], r0: int, r1: int, lo: int, hd: int,
            n_rows_total: int) -> np.ndarray:
    """Scores ``z`` (rows ``r0:r1`` of the block, columns) over the angles ``angles``.

    Each row's column offsets are compared, column by column, with those of the other rows
    ``j - hd .. j + hd`` inside the volume: what they share (sample features constant along
    the rows, such as the edges of a cylinder on the axis) is removed, and their spread (at
    least the row's own robust scale) is the unit. Then, up to :data:`PASSES` times, the
    offsets are measured again without the row's candidate columns (``|z| > EXCLUDE`` and
    their neighbours) in the median across columns, in the row and in the rows it is
    compared with alike: a stripe several columns wide, or on the sample's slope, no longer
    shifts its own background, and a structure the rows share stays cancelled.
    """
    a0, a1 = angles
    srt = [ranked(x[a0:a1, j]) for j in range(x.shape[1])]
    q1 = np.stack([_offsets(r) for r in srt])  # (block rows, cols)
    s_row = np.array([_robust_scale(q) for q in q1])[:, None]
    med, spread = _row_background(q1, r0, r1, lo, hd, n_rows_total)
    unit = np.maximum(spread, s_row[r0:r1])
    z = (q1[r0:r1] - med) / unit
    for jj in range(r1 - r0):
        cand = np.zeros(z.shape[1], bool)
        for _ in range(PASSES):
            new = np.abs(z[jj]) > EXCLUDE
            new[1:] |= new[:-1].copy()
            new[:-1] |= new[1:].copy()
            new |= cand
            if new.all() or (new == cand).all():
                break
            cand = new
            j = r0 + jj
            qj = _offsets_near(srt[j], cand, q1[j])
            others = _window(j + lo, hd, n_rows_total)
            if others:
                win = np.stack([_offsets_near(srt[i - lo], cand, q1[i - lo]) for i in others])
                m = np.median(win, axis=0)
                sp = 1.4826 * np.median(np.abs(win - m), axis=0)
                z[jj] = (qj - m) / np.maximum(sp, s_row[j])
            else:
                z[jj] = qj / s_row[j]
    return z


def _window(j: int, hd: int, n_rows_total: int) -> list[int]:
    """The other volume rows within ``hd`` of row ``j``; none if fewer than 2 (one row alone
    is no background: a stripe there would score in this row with the opposite sign)."""
    rows = [i for i in range(max(j - hd, 0), min(j + hd + 1, n_rows_total)) if i != j]
    return rows if len(rows) >= 2 else []


def _row_background(q: np.ndarray, r0: int, r1: int, lo: int, hd: int, n_rows_total: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Median and spread (1.4826 x MAD) per column of the offsets of the other rows within
    ``hd`` of each block row ``r0:r1`` (the row itself left out: compared with itself, a
    clean value's spread would shrink, an outlier's not). Zeros when ``hd`` is 0."""
    med = np.zeros((r1 - r0, q.shape[1]))
    spread = np.zeros_like(med)
    if hd == 0:
        return med, spread
    for jj in range(r0, r1):
        idx = [i - lo for i in _window(jj + lo, hd, n_rows_total)]
        if not idx:
            continue
        win = q[idx]
        med[jj - r0] = np.median(win, axis=0)
        spread[jj - r0] = 1.4826 * np.median(np.abs(win - med[jj - r0]), axis=0)
    return med, spread


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


def robust_stripe_mask(volume: np.ndarray, threshold: float = 6.0, depth: int = 30
                       ) -> np.ndarray:
    """Robust stripe mask of a whole volume ``(angles, rows, columns)`` (uint8 0/1)."""
    x = np.asarray(volume)
    if x.ndim != 3:
        raise ValueError(f"volume must be 3D (angles, rows, columns); got shape {x.shape}")
    return robust_mask_rows(x, 0, (0, x.shape[1]), x.shape[1], threshold, depth)
