"""Flat/dark normalisation and ``-log`` (docs/science.md B 6.2), NaN-safe and fast.

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
(docs/science.md B 6.3). It is computed as ``ln(den) - ln(clip(I - D, lo, hi))`` with
per-pixel bounds ``lo = 1e-6 den``, ``hi = 1e6 den``, which is the same function
(to float32 rounding), one detector row at a time by a compiled kernel with a
vectorised logarithm (:mod:`nsgen.prep._normalise_jit`, within 2 ulp of float64's).
"""

from __future__ import annotations

import numpy as np

__all__ = ["RATIO_MAX", "RATIO_MIN", "check_raw", "flat_field_log", "pixel_constants"]

RATIO_MIN = 1e-6
RATIO_MAX = 1e6
DEN_MIN = 1e-6


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
    raw, flat, dark = check_raw(raw, flat_mean, dark_mean)
    n_proj, n_rows, n_cols = raw.shape
    shape = (n_rows, n_proj, n_cols) if sinograms_first else (n_proj, n_rows, n_cols)
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}, got "
                         f"{out.dtype} {out.shape}")

    if raw.size:
        from nsgen.prep._normalise_jit import flat_field_log_rows  # compiled, cached on disk
        flat_field_log_rows(raw, *pixel_constants(flat, dark), out, sinograms_first)
    return out


def check_raw(raw: np.ndarray, flat_mean: np.ndarray, dark_mean: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate the inputs of a normalisation: ``(raw C-contiguous, flat, dark float32)``.

    Raises ``ValueError`` for wrong shapes and ``TypeError`` for a raw dtype that is not
    real numbers.
    """
    raw = np.asarray(raw)
    if raw.ndim != 3:
        raise ValueError(f"raw must be (n_projections, n_rows, n_columns), got shape {raw.shape}")
    _, n_rows, n_cols = raw.shape
    flat = np.asarray(flat_mean, dtype=np.float32)
    dark = np.asarray(dark_mean, dtype=np.float32)
    if flat.shape != (n_rows, n_cols) or dark.shape != (n_rows, n_cols):
        raise ValueError(
            f"flat_mean {flat.shape} and dark_mean {dark.shape} must be (n_rows, n_columns) = {(n_rows, n_cols)}"
        )
    if not (np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)):
        raise TypeError(f"raw must be real numbers, got {raw.dtype}")
    return np.ascontiguousarray(raw), flat, dark


def pixel_constants(flat_mean: np.ndarray, dark_mean: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel constants of the normalisation: ``(dark, lo, hi, ln_den)``, float32.

    ``lo = RATIO_MIN den`` and ``hi = RATIO_MAX den`` bound ``I - D``; ``ln_den = ln(den)``.
    A non-finite flat or dark makes the pixel "no signal": dark 0, ``lo = hi = RATIO_MIN``
    (so the difference is forced to it) and ``ln_den = 0``.
    """
    flat = np.asarray(flat_mean, dtype=np.float32)
    dark = np.asarray(dark_mean, dtype=np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        den = np.fmax(flat - dark, np.float32(DEN_MIN))
        bad = ~(np.isfinite(flat) & np.isfinite(dark))
        lo = (np.float32(RATIO_MIN) * den).astype(np.float32)
        hi = np.minimum(np.float32(RATIO_MAX) * den, np.finfo(np.float32).max)
        ln_den = np.log(den)
    d = np.where(bad, np.float32(0.0), dark).astype(np.float32)
    lo[bad] = hi[bad] = np.float32(RATIO_MIN)
    ln_den[bad] = 0.0
    return d, lo, hi, ln_den.astype(np.float32)
