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
EXCLUDE = 3.0
#: ranks of each sorted column used (evenly spaced over the middle 80 %)
QUANTILES = 64
#: angle blocks for stripes over part of the scan, the fewest angles a block may have, and
#: how much stronger than a whole-scan stripe a block-only one must be
BLOCKS = 6
MIN_BLOCK = 30
BLOCK_FACTOR = 2.5


def column_offsets(x: np.ndarray, exclude: np.ndarray | None = None
                   ) -> tuple[np.ndarray, float]:
    """Offsets ``q`` of the columns of a sinogram ``(angles, columns)`` (steps 1-2) and their
    robust scale within the sinogram (1.4826 x the MAD of the non-zero offsets).

    ``exclude`` (bool per column): columns left out of the neighbourhood median (replaced by
    the linear interpolation of the nearest columns kept), so that strong stripes do not
    shift their neighbours' background.
    """
    from scipy import ndimage  # a slow import, only when detecting

    n_k, n_i = x.shape
    h = min(HALF_WINDOW, max(1, (n_i - 1) // 2))
    d = int(DROP * n_k)
    srt = np.sort(np.asarray(x, np.float32), axis=0)
    # QUANTILES evenly spaced ranks of the middle: the filter's cost does not grow with angles
    ranks = np.unique(np.linspace(d, n_k - 1 - d, QUANTILES).round().astype(np.intp))
    srt = srt[ranks]
    base = srt
    if exclude is not None and exclude.any() and not exclude.all():
        keep = np.flatnonzero(~exclude)
        cols = np.arange(n_i)
        base = srt.copy()
        for r in range(srt.shape[0]):
            base[r, exclude] = np.interp(cols[exclude], keep, srt[r, keep])
    smooth = ndimage.median_filter(base, size=(1, 2 * h + 1), mode="mirror")
    q = srt.mean(axis=0, dtype=np.float64) - smooth.mean(axis=0, dtype=np.float64)
    nz = q[q != 0]
    s = 1.4826 * np.median(np.abs(nz - np.median(nz))) if nz.size > 8 else 0.0
    return q, max(float(s), 1e-12)


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

    Each row's column offsets are compared, column by column, with the rows ``j - hd ..
    j + hd`` inside the volume: what they share (sample features constant along the rows,
    such as the edges of a cylinder on the axis) is removed, and their spread (at least the
    row's own robust scale) is the unit.
    """
    a0, a1 = angles
    got = [column_offsets(x[a0:a1, j]) for j in range(x.shape[1])]
    # second pass for the other columns: their background again, without the candidate
    # columns (the row's own |q / s| > EXCLUDE; row-local, so the halo stays hd), whose
    # rank in the median would shift it (a candidate keeps its first offset: excluding its
    # neighbours would also inflate sample structures)
    for j in range(x.shape[1]):
        cand = np.abs(got[j][0]) > EXCLUDE * got[j][1]
        if cand.any():
            q, _ = column_offsets(x[a0:a1, j], cand)
            got[j] = (np.where(cand, got[j][0], q), got[j][1])
    return _normalised(got, r0, r1, lo, hd, n_rows_total)


def _normalised(got: list[tuple[np.ndarray, float]], r0: int, r1: int, lo: int, hd: int,
                n_rows_total: int) -> np.ndarray:
    """Scores of block rows ``r0:r1`` from every block row's offsets and scale."""
    q = np.stack([g[0] for g in got])  # (rows, cols)
    s_row = np.array([g[1] for g in got])[:, None]
    if hd == 0:
        return (q / s_row)[r0:r1]
    z = np.empty((r1 - r0, q.shape[1]))
    for jj in range(r0, r1):
        j = jj + lo
        win = q[max(j - hd, 0) - lo:min(j + hd + 1, n_rows_total) - lo]
        med = np.median(win, axis=0)
        spread = 1.4826 * np.median(np.abs(win - med), axis=0)
        z[jj - r0] = (q[jj] - med) / np.maximum(spread, s_row[jj])
    return z


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
