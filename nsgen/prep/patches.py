"""Crop a sinogram to a whole number of patches and split it (docs/science.md B 6.5, patch mode).

Crop rule, per axis, with remainder ``r = size mod patch``: ``r`` even -> ``r/2``
from each side; ``r`` odd -> ``floor(r/2)`` from the top (left) and
``floor(r/2) + 1`` from the bottom (right).

Patch order: the cropped image is cut into ``n_w`` column blocks and each
column block into ``n_h`` row blocks; patch ``p = w * n_h + h`` is row block
``h`` of column block ``w`` (column-block-major).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["ScaledPatches", "column_extremes", "crop_bounds", "crop_to_multiple", "fitted_patch_shape",
           "normalised_column_extremes", "normalised_scaled_patches", "patch_stack_shape",
           "patch_views", "scaled_patches", "split_patches"]


def _patch_shape(a: np.ndarray, patch_shape: tuple[int, int]) -> tuple[int, int, int, int]:
    if a.ndim < 2:
        raise ValueError(f"need an array with at least 2 dimensions, got shape {a.shape}")
    ph, pw = (int(v) for v in patch_shape)
    if ph < 1 or pw < 1:
        raise ValueError(f"patch shape must be positive, got {patch_shape}")
    h, w = a.shape[-2:]
    if ph > h or pw > w:
        raise ValueError(f"patch {ph} x {pw} is larger than the sinogram {h} x {w}")
    return h, w, ph, pw


def fitted_patch_shape(patch_shape: tuple[int, int], given: bool, shape: tuple[int, int]
                       ) -> tuple[int, int]:
    """The patch shape a sinogram of ``shape`` (angles, columns) is cut into: the one given,
    or, when the user gave none, the default cut down to the sinogram where it is larger.

    Examples
    --------
    >>> fitted_patch_shape((1801, 256), False, (3001, 26))   # a narrow detector
    (1801, 26)
    >>> fitted_patch_shape((1801, 256), False, (1200, 2560))  # fewer angles
    (1200, 256)
    >>> fitted_patch_shape((1801, 256), True, (1200, 2560))   # given: kept (then refused)
    (1801, 256)
    """
    if given:
        return (int(patch_shape[0]), int(patch_shape[1]))
    return (min(int(patch_shape[0]), int(shape[0])), min(int(patch_shape[1]), int(shape[1])))


def crop_bounds(shape: tuple[int, int], patch_shape: tuple[int, int]) -> tuple[slice, slice]:
    """Row and column slices kept by the crop rule.

    Examples
    --------
    >>> crop_bounds((10, 10), (4, 3))   # remainders 2 (even) and 1 (odd)
    (slice(1, 9, None), slice(0, 9, None))
    """
    h, w = (int(v) for v in shape)
    ph, pw = (int(v) for v in patch_shape)
    rh, rw = h % ph, w % pw
    return slice(rh // 2, h - (rh - rh // 2)), slice(rw // 2, w - (rw - rw // 2))


def crop_to_multiple(a: np.ndarray, patch_shape: tuple[int, int]) -> np.ndarray:
    """Crop the last two axes of ``a`` to multiples of ``patch_shape`` (a view).

    Parameters
    ----------
    a : numpy.ndarray
        ``(..., H, W)``, e.g. a sinogram ``(P, Dh)``.
    patch_shape : tuple of int
        ``(ph, pw)``, each at most the corresponding size of ``a``.

    Returns
    -------
    numpy.ndarray
        View ``(..., n_h * ph, n_w * pw)``.

    Raises
    ------
    ValueError
        If a patch is larger than the array or not positive.
    """
    a = np.asarray(a)
    h, w, ph, pw = _patch_shape(a, patch_shape)
    rows, cols = crop_bounds((h, w), (ph, pw))
    return a[..., rows, cols]


def split_patches(a: np.ndarray, patch_shape: tuple[int, int]) -> np.ndarray:
    """Crop (:func:`crop_to_multiple`) and split into patches, column-block-major.

    Parameters
    ----------
    a : numpy.ndarray
        ``(H, W)`` or ``(..., H, W)``.
    patch_shape : tuple of int
        ``(ph, pw)``.

    Returns
    -------
    numpy.ndarray
        ``(n_patches, ph, pw)`` (or ``(..., n_patches, ph, pw)``), a new array;
        patch ``w * n_h + h`` covers rows ``h*ph:(h+1)*ph`` and columns
        ``w*pw:(w+1)*pw`` of the cropped array.

    Raises
    ------
    ValueError
        If a patch is larger than the array or not positive.

    Examples
    --------
    >>> a = np.arange(16).reshape(4, 4)
    >>> split_patches(a, (2, 2))[1]     # second patch: lower-left block
    array([[ 8,  9],
           [12, 13]])
    """
    c = crop_to_multiple(a, patch_shape)
    ph, pw = (int(v) for v in patch_shape)
    lead = c.shape[:-2]
    nh, nw = c.shape[-2] // ph, c.shape[-1] // pw
    blocks = c.reshape(*lead, nh, ph, nw, pw)
    k = len(lead)
    order = tuple(range(k)) + (k + 2, k, k + 1, k + 3)  # (..., nw, nh, ph, pw)
    return np.ascontiguousarray(blocks.transpose(order)).reshape(*lead, nw * nh, ph, pw)


def _grid(a: np.ndarray, patch_shape: tuple[int, int]) -> tuple[int, int, int, int, int, int]:
    """``(r0, c0, ph, pw, nh, nw)``: first row and column kept by the crop, the patch
    shape and the patches per column block and per row block of a 2-D ``a``."""
    h, w, ph, pw = _patch_shape(a, patch_shape)
    rows, cols = crop_bounds((h, w), (ph, pw))
    return (rows.start, cols.start, ph, pw, (rows.stop - rows.start) // ph,
            (cols.stop - cols.start) // pw)


def patch_stack_shape(shape: tuple[int, int], patch_shape: tuple[int, int]
                      ) -> tuple[int, int, int]:
    """``(patches, ph, pw)``: the shape of the stacked patches of a ``shape`` sinogram (the
    images of :func:`scaled_patches`).

    Examples
    --------
    >>> patch_stack_shape((10, 10), (4, 3))
    (6, 4, 3)
    """
    _, _, ph, pw, nh, nw = _grid(np.broadcast_to(np.uint8(0), shape), patch_shape)
    return nh * nw, ph, pw


def patch_views(a: np.ndarray, patch_shape: tuple[int, int]) -> list[np.ndarray]:
    """The patches of :func:`split_patches` of a 2-D ``a``, as views of ``a`` (no copy).

    Examples
    --------
    >>> a = np.arange(16).reshape(4, 4)
    >>> [v.tolist() for v in patch_views(a, (2, 2))] == split_patches(a, (2, 2)).tolist()
    True
    >>> np.shares_memory(patch_views(a, (2, 2))[1], a)
    True
    """
    r0, c0, ph, pw, nh, nw = _grid(a, patch_shape)
    return [a[r0 + h * ph:r0 + (h + 1) * ph, c0 + w * pw:c0 + (w + 1) * pw]
            for w in range(nw) for h in range(nh)]


def _float32_rows(a: np.ndarray) -> np.ndarray:
    """A 2-D float32 sinogram, C-contiguous (what the compiled kernels take)."""
    a = np.ascontiguousarray(a)
    if a.ndim != 2 or a.dtype != np.float32:
        raise ValueError(f"need a 2-D float32 sinogram, got {a.dtype} {a.shape}")
    return a


def column_extremes(a: np.ndarray, patch_shape: tuple[int, int]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per patch of :func:`split_patches` of a 2-D float32 ``a``, the minimum and maximum
    of each of its columns: two ``(n_patches, pw)`` float32 arrays, ``patch.min(axis=0)``
    and ``patch.max(axis=0)`` of every patch (NaN propagates), in one pass over ``a``.

    Examples
    --------
    >>> a = np.arange(16, dtype=np.float32).reshape(4, 4)
    >>> lo, hi = column_extremes(a, (2, 2))
    >>> lo[1].tolist(), hi[1].tolist()      # lower-left patch: rows 2-3, columns 0-1
    ([8.0, 9.0], [12.0, 13.0])
    """
    from nsgen.prep._patches_jit import column_extremes as kernel

    x = _float32_rows(a)
    r0, c0, ph, pw, nh, nw = _grid(x, patch_shape)
    lo = np.empty((nh * nw, pw), np.float32)
    hi = np.empty((nh * nw, pw), np.float32)
    kernel(x, r0, c0, ph, pw, nh, nw, lo, hi)
    nan = _nan_columns(x, patch_shape)
    if nan is not None:
        lo[nan] = hi[nan] = np.nan
    return lo, hi


def _nan_columns(x: np.ndarray, patch_shape: tuple[int, int]) -> np.ndarray | None:
    """Per patch of ``x``, which of its columns hold a NaN, ``(n_patches, pw)``; None
    when none does."""
    if not np.isnan(x).any():
        return None
    return np.isnan(split_patches(x, patch_shape)).any(axis=1)


class ScaledPatches(NamedTuple):
    """:func:`scaled_patches` of a sinogram: ``images[p]`` is patch ``p`` as uint16;
    ``low``/``high`` are each column's least and greatest integer of it and ``maxima``
    its greatest float value (NaN when one is NaN), ``(n_patches, pw)``."""

    images: np.ndarray
    low: np.ndarray
    high: np.ndarray
    maxima: np.ndarray


def scaled_patches(a: np.ndarray, patch_shape: tuple[int, int], lo: float, hi: float,
                   images: np.ndarray | None = None) -> ScaledPatches:
    """Every patch of :func:`split_patches` of a 2-D float32 ``a`` as
    :func:`nsgen.prep.scaling.to_uint16` with bounds ``[lo, hi]`` scales it (the same
    integers; zeros when ``hi <= lo``), with its column extremes, in one pass over ``a``.
    ``images``: the ``(n_patches, ph, pw)`` uint16 array to scale them into (a new one
    when None).

    Examples
    --------
    >>> from nsgen.prep.scaling import Bounds, to_uint16
    >>> a = np.arange(16, dtype=np.float32).reshape(4, 4)
    >>> s = scaled_patches(a, (2, 2), 0.0, 15.0)
    >>> s.images[1].tolist() == to_uint16(split_patches(a, (2, 2))[1], Bounds(0, 15)).tolist()
    True
    >>> s.low[1].tolist(), s.high[1].tolist(), s.maxima[1].tolist()
    ([34952, 39321], [52428, 56797], [12.0, 13.0])
    >>> again = scaled_patches(a, (2, 2), 0.0, 15.0, np.empty((4, 2, 2), np.uint16))
    >>> again.images.tobytes() == s.images.tobytes()
    True
    """
    from nsgen.prep._patches_jit import scale_patches as kernel

    x = _float32_rows(a)
    r0, c0, ph, pw, nh, nw = _grid(x, patch_shape)
    span = hi - lo
    lo, k = (float(lo), 65535 / span) if span > 0 else (0.0, 0.0)   # k = 0: zeros
    if images is None:
        images = np.empty((nh * nw, ph, pw), np.uint16)
    elif images.shape != (nh * nw, ph, pw) or images.dtype != np.uint16:
        raise ValueError(f"need a {(nh * nw, ph, pw)} uint16 array for the images, got "
                         f"{images.dtype} {images.shape}")
    out = ScaledPatches(images, np.empty((nh * nw, pw), np.uint16), np.empty((nh * nw, pw), np.uint16),
                        np.empty((nh * nw, pw), np.float32))
    fmin = np.empty((nh * nw, pw), np.float32)
    kernel(x, r0, c0, ph, pw, nh, nw, lo, k, images, out.low, out.high, fmin, out.maxima)
    nan = _nan_columns(x, patch_shape)
    if nan is not None:             # a NaN scales to 0; a column of NaN only: all 0
        out.low[nan] = 0
        out.high[nan & (fmin > out.maxima)] = 0
        out.maxima[nan] = np.nan
    return out


def _raw_row_sinogram(raw: np.ndarray, sinogram: np.ndarray | None) -> np.ndarray:
    """``sinogram``, checked, for one row of C-contiguous raw counts ``(angles, rows,
    columns)`` (a new one when None)."""
    if raw.ndim != 3 or not raw.flags.c_contiguous:
        raise ValueError(f"need C-contiguous raw counts (angles, rows, columns), got "
                         f"{raw.dtype} {raw.shape}")
    a, _, c = raw.shape
    if sinogram is None:
        return np.empty((a, c), np.float32)
    if sinogram.shape != (a, c) or sinogram.dtype != np.float32 or not sinogram.flags.c_contiguous:
        raise ValueError(f"need a C-contiguous {(a, c)} float32 array for the sinogram, got "
                         f"{sinogram.dtype} {sinogram.shape}")
    return sinogram


def normalised_column_extremes(raw: np.ndarray, k: int,
                               constants: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
                               patch_shape: tuple[int, int], sinogram: np.ndarray | None = None
                               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`column_extremes` of the normalised sinogram of row ``k`` of the raw counts
    ``raw``, and that sinogram, in one pass over the row (as
    :func:`normalised_scaled_patches`; no extreme is NaN: normalised values are finite).

    Examples
    --------
    >>> from nsgen.prep.normalise import flat_field_log, pixel_constants
    >>> raw = np.arange(48, dtype=np.uint16).reshape(4, 2, 6) * 40 + 100
    >>> flat, dark = np.full((2, 6), 3000.0), np.full((2, 6), 50.0)
    >>> lo, hi, sino = normalised_column_extremes(raw, 1, pixel_constants(flat, dark), (2, 3))
    >>> want = flat_field_log(raw, flat, dark)[1]
    >>> sino.tobytes() == want.tobytes()
    True
    >>> [a.tobytes() for a in (lo, hi)] == [a.tobytes() for a in column_extremes(want, (2, 3))]
    True
    """
    from nsgen.prep._patches_jit import normalise_column_extremes as kernel

    sinogram = _raw_row_sinogram(raw, sinogram)
    r0, c0, ph, pw, nh, nw = _grid(sinogram, patch_shape)
    lo = np.empty((nh * nw, pw), np.float32)
    hi = np.empty((nh * nw, pw), np.float32)
    dark, lo_px, hi_px, ln_den = (x[k] for x in constants)
    kernel(raw, k, dark, lo_px, hi_px, ln_den, sinogram, r0, c0, ph, pw, nh, nw, lo, hi)
    return lo, hi, sinogram


def normalised_scaled_patches(raw: np.ndarray, k: int,
                              constants: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
                              patch_shape: tuple[int, int], lo: float, hi: float,
                              images: np.ndarray | None = None,
                              sinogram: np.ndarray | None = None
                              ) -> tuple[ScaledPatches, np.ndarray]:
    """:func:`scaled_patches` of the normalised sinogram of row ``k`` of the raw counts
    ``raw`` ``(angles, rows, columns)``, and that sinogram, in one pass over the row:
    each angle is normalised (:func:`~nsgen.prep.normalise.flat_field_log`'s numbers, from
    ``constants``, the :func:`~nsgen.prep.normalise.pixel_constants` of the rows) and
    scaled while in cache. ``images``: as for :func:`scaled_patches`; ``sinogram``: the
    ``(angles, columns)`` float32 array to normalise into (a new one when None). Normalised
    values are finite: no maximum is NaN.

    Examples
    --------
    >>> from nsgen.prep.normalise import flat_field_log, pixel_constants
    >>> raw = np.arange(48, dtype=np.uint16).reshape(4, 2, 6) * 40 + 100
    >>> flat, dark = np.full((2, 6), 3000.0), np.full((2, 6), 50.0)
    >>> s, sino = normalised_scaled_patches(raw, 1, pixel_constants(flat, dark), (2, 3),
    ...                                     0.0, 4.0)
    >>> want = flat_field_log(raw, flat, dark)[1]
    >>> sino.tobytes() == want.tobytes()
    True
    >>> t = scaled_patches(want, (2, 3), 0.0, 4.0)
    >>> all(np.array_equal(a, b) for a, b in zip(s, t))
    True
    """
    from nsgen.prep._patches_jit import normalise_scale_patches as kernel

    sinogram = _raw_row_sinogram(raw, sinogram)
    r0, c0, ph, pw, nh, nw = _grid(sinogram, patch_shape)
    span = hi - lo
    lo, scale = (float(lo), 65535 / span) if span > 0 else (0.0, 0.0)   # scale 0: zeros
    if images is None:
        images = np.empty((nh * nw, ph, pw), np.uint16)
    elif images.shape != (nh * nw, ph, pw) or images.dtype != np.uint16:
        raise ValueError(f"need a {(nh * nw, ph, pw)} uint16 array for the images, got "
                         f"{images.dtype} {images.shape}")
    out = ScaledPatches(images, np.empty((nh * nw, pw), np.uint16),
                        np.empty((nh * nw, pw), np.uint16), np.empty((nh * nw, pw), np.float32))
    fmin = np.empty((nh * nw, pw), np.float32)
    dark, lo_px, hi_px, ln_den = (x[k] for x in constants)
    kernel(raw, k, dark, lo_px, hi_px, ln_den, sinogram, r0, c0, ph, pw, nh, nw, lo, scale,
           images, out.low, out.high, fmin, out.maxima)
    return out, sinogram
