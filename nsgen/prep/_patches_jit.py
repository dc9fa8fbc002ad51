"""Compiled (Numba) kernels of patch mode (:mod:`nsgen.prep.patches`): one pass over a
sinogram's cropped rows per pass of the mode, with no copy of its patches.

* :func:`column_extremes` - pass one: the minimum and maximum of every column of every
  patch, and whether it holds a NaN (the callers make its extremes NaN, as NumPy's
  ``min``/``max`` do).
* :func:`scale_patches` - pass two: every patch scaled to uint16 into its own contiguous
  image (:func:`nsgen.prep._scaling_jit.scale_value`, as ``scale_rows``: the same integers
  as :func:`nsgen.prep.scaling.to_uint16`), with each column's minimum and maximum of the
  integers and of the float values.
* :func:`normalise_scale_patches` - pass two from the raw counts: each angle of a detector
  row normalised and, while in cache, scaled into the patches (the same numbers as
  normalising the row, then :func:`scale_patches`).
* :func:`normalise_column_extremes` - pass one from the raw counts: each angle normalised
  and, while in cache, counted into the column extremes (as :func:`column_extremes`).

All walk the sinogram row by row (contiguous reads); patch ``p = w * nh + h`` covers rows
``r0 + h*ph ...`` and columns ``c0 + w*pw ...`` of ``x``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from nsgen.prep._jit import JIT as _JIT
from nsgen.prep._normalise_jit import normalise_row
from nsgen.prep._scaling_jit import scale_value


@nb.njit(**_JIT)
def column_extremes(x, r0, c0, ph, pw, nh, nw, lo, hi, nan):  # pragma: no cover - compiled
    """``lo[p, j]``, ``hi[p, j]``: min and max of the values of column ``j`` of patch
    ``p`` of ``x`` that are not NaN (``inf``/``-inf`` where all are NaN); ``nan[p, j]``:
    whether a value is NaN. (One select per value and array: the loop vectorises.)"""
    for i in range(nh * ph):
        h = i // ph
        ii = i - h * ph
        row = x[r0 + i]
        for w in range(nw):
            p = w * nh + h
            seg = row[c0 + w * pw:c0 + (w + 1) * pw]
            lp = lo[p]
            hp = hi[p]
            nn = nan[p]
            if ii == 0:
                for j in range(pw):
                    lp[j] = np.inf
                    hp[j] = -np.inf
                    nn[j] = False
            for j in range(pw):
                v = seg[j]
                lp[j] = v if v < lp[j] else lp[j]
                hp[j] = v if v > hp[j] else hp[j]
                nn[j] = nn[j] | (v != v)


@nb.njit(**_JIT)
def scale_patches(x, r0, c0, ph, pw, nh, nw, lo, k, out, umin, umax, fmax,
                  nan):  # pragma: no cover - compiled
    """``out[p] = rint(clip((float64(patch p) - lo) * k, 0, 65535))`` (NaN -> 0), and per
    column ``j`` of patch ``p``: ``umin``/``umax`` of ``out[p][:, j]``, ``fmax`` the
    maximum of the float values that are not NaN, ``nan`` whether one is NaN."""
    for i in range(nh * ph):
        h = i // ph
        ii = i - h * ph
        row = x[r0 + i]
        for w in range(nw):
            p = w * nh + h
            o = out[p, ii]
            seg = row[c0 + w * pw:c0 + (w + 1) * pw]
            mn = umin[p]
            mx = umax[p]
            fm = fmax[p]
            nn = nan[p]
            if ii == 0:
                for j in range(pw):
                    mn[j] = 65535
                    mx[j] = 0
                    fm[j] = -np.inf
                    nn[j] = False
            for j in range(pw):
                v = seg[j]
                u = scale_value(v, lo, k)
                o[j] = u
                mn[j] = u if u < mn[j] else mn[j]
                mx[j] = u if u > mx[j] else mx[j]
                fm[j] = v if v > fm[j] else fm[j]
                nn[j] = nn[j] | (v != v)


@nb.njit(**_JIT)
def normalise_scale_patches(raw, k, dark, lo_px, hi_px, ln_den, sino, r0, c0, ph, pw, nh, nw,
                            lo, kk, out, umin, umax, fmin, fmax):  # pragma: no cover - compiled
    """Pass two from the raw counts: row ``k`` of ``raw`` ``(angles, rows, columns)``
    normalised angle by angle into ``sino`` ``(angles, columns)`` float32
    (:func:`nsgen.prep._normalise_jit.normalise_row` with the row's pixel constants: the
    numbers of :func:`~nsgen.prep.normalise.flat_field_log`), and each normalised angle,
    while it is in cache, scaled into the patches ``out`` as :func:`scale_patches` does.
    Per column ``j`` of patch ``p``: ``fmin``/``fmax`` the least and greatest float
    value, and ``umin``/``umax`` their scaled integers (normalised values are finite, and
    scaling is non-decreasing: the least and greatest integer of the column)."""
    for a in range(raw.shape[0]):
        row = sino[a]
        normalise_row(raw[a, k], dark, lo_px, hi_px, ln_den, row)
        i = a - r0
        if i < 0 or i >= nh * ph:
            continue
        h = i // ph
        ii = i - h * ph
        for w in range(nw):
            p = w * nh + h
            o = out[p, ii]
            seg = row[c0 + w * pw:c0 + (w + 1) * pw]
            fn = fmin[p]
            fm = fmax[p]
            if ii == 0:
                for j in range(pw):
                    fn[j] = np.inf
                    fm[j] = -np.inf
            for j in range(pw):
                v = seg[j]
                o[j] = scale_value(v, lo, kk)
                fn[j] = v if v < fn[j] else fn[j]
                fm[j] = v if v > fm[j] else fm[j]
            if ii == ph - 1:
                for j in range(pw):
                    umin[p, j] = scale_value(fn[j], lo, kk)
                    umax[p, j] = scale_value(fm[j], lo, kk)


@nb.njit(**_JIT)
def normalise_column_extremes(raw, k, dark, lo_px, hi_px, ln_den, sino, r0, c0, ph, pw, nh,
                              nw, lo, hi):  # pragma: no cover - compiled
    """Pass one from the raw counts: row ``k`` of ``raw`` normalised angle by angle into
    ``sino`` as :func:`normalise_scale_patches` does, and :func:`column_extremes` of each
    normalised angle while it is in cache (normalised values are finite: no NaN)."""
    for a in range(raw.shape[0]):
        row = sino[a]
        normalise_row(raw[a, k], dark, lo_px, hi_px, ln_den, row)
        i = a - r0
        if i < 0 or i >= nh * ph:
            continue
        h = i // ph
        ii = i - h * ph
        for w in range(nw):
            p = w * nh + h
            seg = row[c0 + w * pw:c0 + (w + 1) * pw]
            lp = lo[p]
            hp = hi[p]
            if ii == 0:
                for j in range(pw):
                    lp[j] = np.inf
                    hp[j] = -np.inf
            for j in range(pw):
                v = seg[j]
                lp[j] = v if v < lp[j] else lp[j]
                hp[j] = v if v > hp[j] else hp[j]
