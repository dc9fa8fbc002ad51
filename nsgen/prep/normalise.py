"""Flat/dark normalisation and ``-log`` (SCIENCE.md B 6.2), NaN-safe and fast.

For raw counts ``I``, mean flat ``F`` and mean dark ``D`` (per detector pixel)::

    den   = max(F - D, 1e-6)
    ratio = clip((I - D) / den, 1e-6, 1e6)
    out   = -ln(ratio)

Decisions (differences from the reference, which maps NaN to 0 and ratios
``<= 0`` to ``1e-9``):

* ``ratio`` is clipped below at ``RATIO_MIN = 1e-6``: a pixel at or below the dark
  level (dead pixel, zero counts) gives ``-ln(1e-6) = 13.8`` instead of the
  reference's 20.7. Ratios above 1 (more light than the flat) are kept, so
  ``out`` may be negative; the upper clip at ``RATIO_MAX = 1e6`` only matters
  for degenerate flats (``F <= D``, where ``den = 1e-6``) and keeps ``out``
  finite.
* NaN is "no signal": a NaN raw count, and any pixel whose flat or dark is NaN
  or infinite, is treated as zero counts (the reference's NaN -> 0), i.e. it
  becomes ``-ln(RATIO_MIN) = 13.8``. Infinite raw counts are clipped like any
  other value (``+inf`` -> ``-ln(RATIO_MAX)``, ``-inf`` -> ``-ln(RATIO_MIN)``).
  The output is therefore always finite, so the anti-aliasing filter downstream
  never spreads NaNs.

The result is float32 in the sinogram-first layout ``(rows, angles, columns)``
(SCIENCE B 6.3). It is computed as ``ln(den) - ln(clip(I - D, lo, hi))`` with
per-pixel bounds ``lo = 1e-6 den``, ``hi = 1e6 den``, which is the same function
(to float32 rounding), in cache-sized tiles: one compiled pass for the subtraction and
both clips, then NumPy's SIMD ``log`` and a subtraction in place.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RATIO_MAX", "RATIO_MIN", "flat_field_log"]

RATIO_MIN = 1e-6
RATIO_MAX = 1e6
DEN_MIN = 1e-6
_TILE_PIXELS = 1 << 16  # ~256 kB of float32 per tile: stays in L2 through the passes


def flat_field_log(raw: np.ndarray, flat_mean: np.ndarray, dark_mean: np.ndarray,
                   out: np.ndarray | None = None, sinograms_first: bool = True) -> np.ndarray:
    """Flat/dark-correct raw projections and take ``-log``, sinograms first.

    Parameters
    ----------
    raw : numpy.ndarray
        Raw counts ``(n_projections, n_rows, n_columns)``, any real dtype
        (uint16 from the detector, or float).
    flat_mean, dark_mean : numpy.ndarray
        Mean flat and dark fields ``(n_rows, n_columns)`` for the same rows.
    out : numpy.ndarray, optional
        float32 array of the output shape to write into.
    sinograms_first : bool
        True (default): output ``(n_rows, n_projections, n_columns)``, a sinogram per row.
        False: keep the raw layout ``(n_projections, n_rows, n_columns)`` (what stripe
        detection works on), without a transposed copy.

    Returns
    -------
    numpy.ndarray
        float32 ``(n_rows, n_projections, n_columns)``: ``out[v]`` is the
        sinogram of detector row ``v``. Always finite.

    Examples
    --------
    >>> raw = np.array([[[100.0, 60.0]]])      # 1 projection, 1 row, 2 columns
    >>> f = np.array([[1100.0, 1100.0]]); d = np.array([[100.0, 100.0]])
    >>> np.round(flat_field_log(raw, f, d), 3)  # ratio 0 -> floor, 1e-6 -> 13.816
    array([[[13.816, 13.816]]], dtype=float32)
    """
    raw = np.asarray(raw)
    if raw.ndim != 3:
        raise ValueError(f"raw must be (n_projections, n_rows, n_columns), got shape {raw.shape}")
    n_proj, n_rows, n_cols = raw.shape
    flat = np.asarray(flat_mean, dtype=np.float32)
    dark = np.asarray(dark_mean, dtype=np.float32)
    if flat.shape != (n_rows, n_cols) or dark.shape != (n_rows, n_cols):
        raise ValueError(
            f"flat_mean {flat.shape} and dark_mean {dark.shape} must be (n_rows, n_columns) = {(n_rows, n_cols)}"
        )
    if not (np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)):
        raise TypeError(f"raw must be real numbers, got {raw.dtype}")
    shape = (n_rows, n_proj, n_cols) if sinograms_first else (n_proj, n_rows, n_cols)
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}, got "
                         f"{out.dtype} {out.shape}")
    raw = np.ascontiguousarray(raw)

    # Per-pixel constants. A non-finite flat or dark makes the pixel "no signal":
    # dark 0, lo = hi = RATIO_MIN (so the numerator is forced to it) and ln(den) = 0.
    with np.errstate(invalid="ignore", over="ignore"):
        den = np.fmax(flat - dark, np.float32(DEN_MIN))
        bad = ~(np.isfinite(flat) & np.isfinite(dark))
        lo = (np.float32(RATIO_MIN) * den).astype(np.float32)
        hi = (np.float32(RATIO_MAX) * den).astype(np.float32)
        ln_den = np.log(den)
    d = np.where(bad, np.float32(0.0), dark).astype(np.float32)
    lo[bad] = hi[bad] = np.float32(RATIO_MIN)
    ln_den[bad] = 0.0

    from nsgen.prep._normalise_jit import clipped_difference  # compiled, cached on disk

    tile = max(1, _TILE_PIXELS // max(n_cols, 1))
    with np.errstate(invalid="ignore", over="ignore"):
        for v in range(n_rows):
            dv, lov, hiv, lnv = d[v], lo[v], hi[v], ln_den[v]
            for p0 in range(0, n_proj, tile):
                p1 = min(n_proj, p0 + tile)
                o = out[v, p0:p1] if sinograms_first else out[p0:p1, v]
                clipped_difference(raw, v, p0, p1, dv, lov, hiv, out, sinograms_first)
                np.log(o, out=o)
                np.subtract(lnv, o, out=o)
    return out
