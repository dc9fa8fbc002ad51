"""Compiled (Numba) kernels of patch mode (:mod:`nsgen.prep.patches`): one pass over a
sinogram's cropped rows per pass of the mode, with no copy of its patches.

* :func:`column_extremes` - pass one: the minimum and maximum of every column of every
  patch, and whether it holds a NaN (the callers make its extremes NaN, as NumPy's
  ``min``/``max`` do).
* :func:`scale_patches` - pass two: every patch scaled to uint16 into its own contiguous
  image (:func:`nsgen.prep._scaling_jit.scale_value`, as ``scale_rows``: the same integers
  as :func:`nsgen.prep.scaling.to_uint16`), with each column's minimum and maximum of the
  integers and of the float values.

Both walk the sinogram row by row (contiguous reads); patch ``p = w * nh + h`` covers rows
``r0 + h*ph ...`` and columns ``c0 + w*pw ...`` of ``x``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from nsgen.prep._jit import JIT as _JIT
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
