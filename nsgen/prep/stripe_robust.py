"""Robust stripe detector: decisions from the data's own noise, one sinogram at a time.

Larix's weights are informative but its fixed threshold is not (issue 17: clean regions have
weight medians 0.55-0.72, right around the 0.63 threshold). This detector decides with
statistics measured on each sinogram, so the same rule holds for faint and strong stripes,
noisy and clean scans.

Per sinogram ``x[k, i]`` (angles ``k``, columns ``i``):

1. Residual across columns: ``r = x - median_{i-h..i+h} x`` (``h = 8``, window 17, mirrored at
   the detector edges). A median keeps monotone edges (object and container borders, smooth
   beam variations) and removes narrow pulses, so ``r`` holds the stripes of up to 8 columns
   and little else.
2. Block medians along angles: ``s[b, i]`` = median of ``r`` over block ``b`` of ``B`` angles
   (``B = max(3, angles // 60)``). Moving object features cross a column in a few angles; a
   defect stays. The noise of one block median, per column, comes from the spread of ``r``
   about its block medians: ``sigma_i = 1.4826 * median_k |r - s| * 1.2533 / sqrt(B)``.
3. Evidence ``z = s / sigma`` summed over ``W = 6`` neighbouring blocks (``/ sqrt(W)``, a
   standard normal where there is no stripe). A column segment is a stripe where ``|z|``
   exceeds ``threshold`` (default 6: about 1e-9 false alarms per cell) and, growing from
   there along angles, while the block's own ``z`` keeps the sign and exceeds
   ``threshold / 3``.

No step couples detector rows: the mask of a row depends on that row only, so any row
chunking gives the same mask (halo 0).

Examples
--------
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(0, 0.01, (180, 4, 64)).astype(np.float32)
>>> x[:, 1, 30:33] += 0.02  # a 3-column stripe at twice the noise, in row 1
>>> m = robust_stripe_mask(x)
>>> m.any(axis=(0, 2)).tolist(), np.flatnonzero(m[:, 1].any(axis=0)).tolist()
([False, True, False, False], [30, 31, 32])
"""

from __future__ import annotations

import numpy as np

__all__ = ["HALF_WINDOW", "depth_rule", "robust_mask_rows", "robust_stripe_mask",
           "sinogram_evidence", "sinogram_mask"]

#: half window of the median across columns (stripes up to this wide are found)
HALF_WINDOW = 8
#: blocks whose evidence is pooled for the decision
POOL = 6


def _column_median(x: np.ndarray, h: int) -> np.ndarray:
    """Median over columns ``i-h..i+h`` of each angle (mirrored at the edges)."""
    from scipy import ndimage  # a slow import, only when detecting

    return ndimage.median_filter(x, size=(1, 2 * h + 1), mode="mirror")


def sinogram_evidence(x: np.ndarray, threshold: float = 6.0
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stripe evidence of one sinogram ``(angles, columns)`` (steps 1-3 of the module).

    Returns
    -------
    seeds, allowed : ndarray of bool, shape (n_blocks, n_cols)
        Blocks whose pooled evidence exceeds ``threshold``; blocks a stripe may grow into.
    edges : ndarray of int, shape (n_blocks + 1,)
        Angle boundaries of the blocks.

    Notes
    -----
    Pixels of extreme stripes (dead, saturated) shift the column median of their
    neighbours; the residual is therefore computed twice, the second time with the seeded
    columns of each block replaced by their median background.
    """
    n_k, n_i = x.shape
    x = np.asarray(x, np.float32)
    h = min(HALF_WINDOW, max(1, (n_i - 1) // 2))
    b = max(3, n_k // 60)
    n_b = max(1, n_k // b)
    edges = np.minimum(np.arange(n_b + 1) * b, n_k)
    edges[-1] = n_k
    counts = np.diff(edges)
    background = _column_median(x, h)
    noise = pixel_noise(x)
    seeds, allowed = _evidence(x - background, noise, edges, threshold)
    if seeds.any():
        hit = np.repeat(seeds, counts, axis=0)
        cleaned = np.where(hit, background, x)
        background = _column_median(cleaned, h)
        seeds, allowed = _evidence(x - background, noise, edges, threshold)
    return seeds, allowed, edges


def pixel_noise(x: np.ndarray) -> np.ndarray:
    """Noise of one pixel per column, from differences of neighbouring angles (robust).

    ``1.4826 * median_k |x[k+1, i] - x[k, i]| / sqrt(2)``: object features move little between
    neighbouring angles and stripes cancel, so this is the noise alone.
    """
    d = np.abs(np.diff(x, axis=0)) if x.shape[0] > 1 else np.abs(x)
    return (1.4826 / np.sqrt(2)) * np.median(d, axis=0)


def _evidence(r: np.ndarray, noise: np.ndarray, edges: np.ndarray, threshold: float
              ) -> tuple[np.ndarray, np.ndarray]:
    n_b, n_i = edges.size - 1, r.shape[1]
    s = np.empty((n_b, n_i), np.float32)
    for j in range(n_b):
        s[j] = np.median(r[edges[j]:edges[j + 1]], axis=0)
    b = float(np.median(np.diff(edges)))
    # a block median of b pixels (efficiency 2/pi) minus a background of similar noise
    sigma = np.maximum(noise * (1.2533 * 1.25 / np.sqrt(b)), np.float32(1e-9))
    z = s / sigma
    w = min(POOL, n_b)
    pad = np.pad(z, ((w // 2, w - 1 - w // 2), (0, 0)), mode="reflect" if n_b > w else "edge")
    c = np.cumsum(np.vstack([np.zeros((1, n_i), np.float32), pad]), axis=0)
    pooled = (c[w:] - c[:-w]) / np.sqrt(w)
    allowed = (np.abs(z) > threshold / 3) & (np.sign(z) == np.sign(pooled))
    return (np.abs(pooled) > threshold) & allowed, allowed


def sinogram_mask(x: np.ndarray, threshold: float = 6.0) -> np.ndarray:
    """Stripe mask of one sinogram ``(angles, columns)`` without the depth rule (bool)."""
    seeds, allowed, edges = sinogram_evidence(x, threshold)
    return np.repeat(_grow(seeds, allowed), np.diff(edges), axis=0)


def _grow(seed: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Blocks connected (along angles, same column) to a seed through allowed blocks."""
    from scipy import ndimage

    along_angles = np.array([[0, 1, 0], [0, 1, 0], [0, 1, 0]])
    labels, n = ndimage.label(allowed, structure=along_angles)
    if n == 0:
        return np.zeros_like(allowed)
    hit = np.zeros(n + 1, bool)
    hit[labels[seed]] = True
    hit[0] = False
    return hit[labels]


def depth_rule(n_rows_total: int, depth: int = 30) -> tuple[int, int]:
    """``(hd, Td)``: a seed is dropped where more than ``Td`` of the rows ``j - hd .. j + hd``
    hold a seed at the same block and column (a feature deep along the rows is the sample's,
    e.g. the edge of a container centred on the axis, not a detector defect).

    ``hd = min(depth, n_rows_total - 1) // 2``, ``Td = int(0.85 (2 hd + 1))``; 1-row scans
    have no depth rule.

    Examples
    --------
    >>> depth_rule(256), depth_rule(8), depth_rule(1)
    ((15, 26), (3, 5), (0, 1))
    """
    hd = min(depth, n_rows_total - 1) // 2
    return hd, int(0.85 * (2 * hd + 1))


def robust_mask_rows(block: np.ndarray, block_start: int, rows: tuple[int, int],
                     n_rows_total: int, threshold: float = 6.0, depth: int = 30) -> np.ndarray:
    """Robust mask of volume rows ``[start, stop)`` from a block of rows ``(angles, rows, cols)``.

    The block must hold rows ``rows_to_read(start, stop, n_rows_total, hd)`` with ``hd`` of
    :func:`depth_rule`; the result (uint8 0/1, ``(angles, stop - start, cols)``) is then the
    same whatever the chunking.
    """
    x = np.asarray(block, np.float32)
    if x.ndim != 3:
        raise ValueError(f"block must be 3D (angles, rows, columns); got shape {x.shape}")
    hd, t_d = depth_rule(n_rows_total, depth)
    start, stop = rows
    lo, hi = max(0, start - hd), min(n_rows_total, stop + hd)
    if block_start > lo or block_start + x.shape[1] < hi:
        raise ValueError(f"block holds rows [{block_start}, {block_start + x.shape[1]}) but rows "
                         f"[{start}, {stop}) need rows [{lo}, {hi}) (halo {hd})")
    x = x[:, lo - block_start:hi - block_start]
    if not np.isfinite(x).all():
        raise ValueError("data contains NaN or infinite values; normalise the scan first")
    got = [sinogram_evidence(x[:, j], threshold) for j in range(x.shape[1])]
    seeds = np.stack([g[0] for g in got])  # (rows, blocks, cols)
    edges = got[0][2]
    if hd > 0:
        c = np.cumsum(np.concatenate([np.zeros((1, *seeds.shape[1:]), np.int32),
                                      seeds.astype(np.int32)]), axis=0)
        j = np.arange(seeds.shape[0])
        # counts over j - hd .. j + hd, clipped at the true volume edges (rows outside the
        # volume count as clean)
        top = np.minimum(j + hd + 1, seeds.shape[0])
        bottom = np.maximum(j - hd, 0)
        deep = (c[top] - c[bottom]) > t_d
        seeds = seeds & ~deep
    out = np.zeros((x.shape[0], stop - start, x.shape[2]), np.uint8)
    for j in range(start, stop):
        jj = j - lo
        flag = _grow(seeds[jj], got[jj][1])
        out[:, j - start] = np.repeat(flag, np.diff(edges), axis=0)
    return out


def robust_stripe_mask(block: np.ndarray, threshold: float = 6.0, depth: int = 30
                       ) -> np.ndarray:
    """Robust stripe mask of a whole volume ``(angles, rows, columns)`` (uint8 0/1)."""
    x = np.asarray(block, np.float32)
    if x.ndim != 3:
        raise ValueError(f"block must be 3D (angles, rows, columns); got shape {x.shape}")
    return robust_mask_rows(x, 0, (0, x.shape[1]), x.shape[1], threshold, depth)
