"""Compiled (Numba) kernels of patch mode (:mod:`nsgen.prep.patches`): one pass over a
sinogram's cropped rows per pass of the mode, with no copy of its patches.

* :func:`column_extremes` - pass one: the minimum and maximum of every column of every
  patch (its values that are not NaN).
* :func:`scale_patches` - pass two: every patch scaled to uint16 into its own contiguous
  image (:func:`nsgen.prep._scaling_jit.scale_value`, as ``scale_rows``: the same integers
  as :func:`nsgen.prep.scaling.to_uint16`), with each column's minimum and maximum of the
  float values (not NaN) and their integers.
* :func:`normalise_scale_patches` - pass two from the raw counts: each angle of a detector
  row normalised and, while in cache, scaled into the patches (the same numbers as
  normalising the row, then :func:`scale_patches`).
* :func:`normalise_column_extremes` - pass one from the raw counts: each angle normalised
  and, while in cache, counted into the column extremes (as :func:`column_extremes`).

All walk the sinogram row by row (contiguous reads), each row into its patches through
:func:`_patch_row` (the one loop over a row's patches; the kernels from the raw counts
through :func:`_normalised_rows`); patch ``p = w * nh + h`` covers rows ``r0 + h*ph ...``
and columns ``c0 + w*pw ...`` of ``x``. NaN: the kernels on a sinogram leave it to their
callers (:mod:`nsgen.prep.patches`), and normalised values are finite.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from nsgen.prep._jit import JIT as _JIT
from nsgen.prep._normalise_jit import normalise_row
from nsgen.prep._scaling_jit import scale_value


@nb.njit(inline="always", **_JIT)
def _patch_row(row, i, c0, ph, pw, nh, nw, fmin, fmax, out, lo, k, umin, umax
               ):  # pragma: no cover - compiled
    """Row ``i`` of the cropped rows (``row``: the whole sinogram row) into its patches:
    per column ``j`` of patch ``p``, ``fmin[p, j]``/``fmax[p, j]`` the least and greatest
    value that is not NaN (``inf``/``-inf`` where none is); when ``out`` has patches
    (scaling), the row scaled into ``out[p]`` (:func:`nsgen.prep._scaling_jit.scale_value`)
    and, at a patch's last row, ``umin``/``umax`` the integers of its columns' extremes
    (scaling is non-decreasing: the least and greatest integer of a column without NaN).
    (One select per value and array: the loops vectorise.)"""
    h = i // ph
    ii = i - h * ph
    scaling = out.shape[0] > 0
    for w in range(nw):
        p = w * nh + h
        seg = row[c0 + w * pw:c0 + (w + 1) * pw]
        fn = fmin[p]
        fm = fmax[p]
        if ii == 0:
            for j in range(pw):
                fn[j] = np.inf
                fm[j] = -np.inf
        if scaling:
            o = out[p, ii]
            for j in range(pw):
                v = seg[j]
                o[j] = scale_value(v, lo, k)
                fn[j] = v if v < fn[j] else fn[j]
                fm[j] = v if v > fm[j] else fm[j]
            if ii == ph - 1:
                for j in range(pw):
                    umin[p, j] = scale_value(fn[j], lo, k)
                    umax[p, j] = scale_value(fm[j], lo, k)
        else:
            for j in range(pw):
                v = seg[j]
                fn[j] = v if v < fn[j] else fn[j]
                fm[j] = v if v > fm[j] else fm[j]


@nb.njit(**_JIT)
def column_extremes(x, r0, c0, ph, pw, nh, nw, lo, hi):  # pragma: no cover - compiled
    """``lo[p, j]``, ``hi[p, j]``: min and max of the values of column ``j`` of patch
    ``p`` of ``x`` that are not NaN (``inf``/``-inf`` where all are NaN)."""
    none = np.empty((0, 0, 0), np.uint16)
    for i in range(nh * ph):
        _patch_row(x[r0 + i], i, c0, ph, pw, nh, nw, lo, hi, none, 0.0, 0.0, none[0], none[0])


@nb.njit(**_JIT)
def scale_patches(x, r0, c0, ph, pw, nh, nw, lo, k, out, umin, umax, fmin,
                  fmax):  # pragma: no cover - compiled
    """``out[p] = rint(clip((float64(patch p) - lo) * k, 0, 65535))`` (NaN -> 0), and per
    column ``j`` of patch ``p``: ``fmin``/``fmax`` the least and greatest float value
    that is not NaN, ``umin``/``umax`` their integers (:func:`_patch_row`)."""
    for i in range(nh * ph):
        _patch_row(x[r0 + i], i, c0, ph, pw, nh, nw, fmin, fmax, out, lo, k, umin, umax)


@nb.njit(inline="always", **_JIT)
def _normalised_rows(raw, k, dark, lo_px, hi_px, ln_den, sino, r0, c0, ph, pw, nh, nw, fmin,
                     fmax, out, lo, kk, umin, umax):  # pragma: no cover - compiled
    """Row ``k`` of ``raw`` ``(angles, rows, columns)`` normalised angle by angle into
    ``sino`` ``(angles, columns)`` float32
    (:func:`nsgen.prep._normalise_jit.normalise_row` with the row's pixel constants: the
    numbers of :func:`~nsgen.prep.normalise.flat_field_log`), and each normalised angle,
    while it is in cache, into the patches (:func:`_patch_row`)."""
    for a in range(raw.shape[0]):
        row = sino[a]
        normalise_row(raw[a, k], dark, lo_px, hi_px, ln_den, row)
        if r0 <= a < r0 + nh * ph:
            _patch_row(row, a - r0, c0, ph, pw, nh, nw, fmin, fmax, out, lo, kk, umin, umax)


@nb.njit(**_JIT)
def normalise_scale_patches(raw, k, dark, lo_px, hi_px, ln_den, sino, r0, c0, ph, pw, nh, nw,
                            lo, kk, out, umin, umax, fmin, fmax):  # pragma: no cover - compiled
    """Pass two from the raw counts: :func:`_normalised_rows`, each normalised angle
    scaled into the patches ``out`` as :func:`scale_patches` does (normalised values are
    finite: ``umin``/``umax`` are the least and greatest integer of each column)."""
    _normalised_rows(raw, k, dark, lo_px, hi_px, ln_den, sino, r0, c0, ph, pw, nh, nw, fmin,
                     fmax, out, lo, kk, umin, umax)


@nb.njit(**_JIT)
def normalise_column_extremes(raw, k, dark, lo_px, hi_px, ln_den, sino, r0, c0, ph, pw, nh,
                              nw, lo, hi):  # pragma: no cover - compiled
    """Pass one from the raw counts: :func:`_normalised_rows`, counting each normalised
    angle into the column extremes ``lo``/``hi`` as :func:`column_extremes` does."""
    none = np.empty((0, 0, 0), np.uint16)
    _normalised_rows(raw, k, dark, lo_px, hi_px, ln_den, sino, r0, c0, ph, pw, nh, nw, lo, hi,
                     none, 0.0, 0.0, none[0], none[0])
