"""Crop a sinogram to a whole number of patches and split it (docs/science.md B 6.5, patch mode).

Crop rule, per axis, with remainder ``r = size mod patch``: ``r`` even -> ``r/2``
from each side; ``r`` odd -> ``floor(r/2)`` from the top (left) and
``floor(r/2) + 1`` from the bottom (right).

Patch order: the cropped image is cut into ``n_w`` column blocks and each
column block into ``n_h`` row blocks; patch ``p = w * n_h + h`` is row block
``h`` of column block ``w`` (column-block-major).
"""

from __future__ import annotations

import numpy as np

__all__ = ["crop_bounds", "crop_to_multiple", "split_patches"]


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
