"""Compiled (Numba) kernels of :func:`nsgen.prep.resize.downsample` and
:func:`nsgen.prep.resize.normalise_downsample`.

The two 1-D resize operators are banded: output ``o`` of an axis is a weighted sum of the
``w`` consecutive inputs from ``start[o]`` (the CSR rows of ``axis_operator`` as dense bands,
padded with zero weights). Per sinogram:

1. along angles, ``t[o, :] = sum_k wp[o, k] * s[sp[o] + k, :]``, input row by input row:
   each row ``s[q]`` (read, or normalised from raw counts into a row buffer that stays in
   cache) is added, vectorised along the detector, into the few outputs whose band covers
   it (:func:`_accumulate`), and its extremes are folded into the sinogram's min and max;
2. along columns, ``out[o, j] = sum_k wd[j, k] * t[o, sd[j] + k]`` (:func:`_columns`);
3. the clip to the sinogram's [min, max].

Every sum runs over ``k`` in ascending order from 0.0, like SciPy's sparse products, and the
padding adds exact zeros, so the result is the same float32 numbers as
``(A_d @ (A_p @ s).T).T`` with the CSR operators. No fast-math.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from nsgen.prep._jit import JIT as _JIT
from nsgen.prep._normalise_jit import normalise_row

#: side of the tiles in which the column pass transposes its input
_TILE = 16


@nb.njit(**_JIT)
def _row_extremes(row, lov, hiv):  # pragma: no cover - compiled
    """Elementwise running minimum and maximum of ``row`` into ``lov`` and ``hiv``."""
    for c in range(row.shape[0]):
        x = row[c]
        lov[c] = min(lov[c], x)
        hiv[c] = max(hiv[c], x)


@nb.njit(**_JIT)
def _accumulate(row, q, sp, wp, t, first):  # pragma: no cover - compiled
    """Add ``wp[o, q - sp[o]] * row`` to every ``t[o]`` whose band covers input row ``q``.

    Inputs arrive in ascending ``q``, so each ``t[o]`` receives its terms in ascending band
    position ``k``, as in ``sum_k wp[o, k] * s[sp[o] + k]``. Band starts never decrease:
    ``first`` (returned, updated) is the first output whose band has not ended.
    """
    p, kp = wp.shape
    while first < p and sp[first] + kp <= q:
        first += 1
    o = first
    while o < p and sp[o] <= q:
        w = wp[o, q - sp[o]]
        to = t[o]
        for c in range(row.shape[0]):
            to[c] += w * row[c]
        o += 1
    return first


@nb.njit(**_JIT)
def _columns(t, sd, wd, lo, hi, res, tt, acc):  # pragma: no cover - compiled
    """``res[o, j] = clip(sum_k wd[j, k] * t[o, sd[j] + k], lo, hi)`` for every ``o``.

    ``t`` is first transposed into ``tt`` (``(D, p)``, in 16 x 16 tiles) so that the sums
    of all ``p`` output rows for one column ``j`` run as one long vectorised loop over
    ``acc`` (``(p,)``). (Numba does not enable LLVM's SLP vectoriser, so a short block of
    rows as the inner loop would stay scalar.)
    """
    p, n_d = t.shape
    d, kd = wd.shape
    for o0 in range(0, p, _TILE):
        m = min(_TILE, p - o0)
        for c0 in range(0, n_d, _TILE):
            for c in range(c0, min(c0 + _TILE, n_d)):
                for r in range(m):
                    tt[c, o0 + r] = t[o0 + r, c]
    for j in range(d):
        b = sd[j]
        for r in range(p):
            acc[r] = np.float32(0.0)
        for k in range(kd):
            w = wd[j, k]
            src = tt[b + k]
            for r in range(p):
                acc[r] += w * src[r]
        for r in range(p):
            y = acc[r]
            if y < lo:
                y = lo
            if y > hi:
                y = hi
            res[r, j] = y


@nb.njit(**_JIT)
def _work(p, n_d):  # pragma: no cover - compiled
    """Work buffers of one sinogram's resize to ``p`` rows from ``n_d`` columns:
    ``(t, tt, acc, lov, hiv)`` (see :func:`_columns` for ``tt`` and ``acc``)."""
    return (np.empty((p, n_d), np.float32), np.empty((n_d, p), np.float32),
            np.empty(p, np.float32), np.empty(n_d, np.float32), np.empty(n_d, np.float32))


@nb.njit(**_JIT)
def _begin(t, lov, hiv):  # pragma: no cover - compiled
    """Start a sinogram: empty sums, extremes that any finite value replaces."""
    t[:] = np.float32(0.0)
    lov[:] = np.inf
    hiv[:] = -np.inf


@nb.njit(**_JIT)
def _add_row(row, q, sp, wp, t, lov, hiv, first):  # pragma: no cover - compiled
    """Input row ``q`` of a sinogram: fold it into the extremes and into the angle sums
    (:func:`_accumulate`); returns the updated ``first``."""
    _row_extremes(row, lov, hiv)
    return _accumulate(row, q, sp, wp, t, first)


@nb.njit(**_JIT)
def resize_stack(x, sp, wp, sd, wd, out):  # pragma: no cover - compiled
    """Resize every sinogram ``x[v]`` (float32 ``(n, P, D)``, finite) into ``out[v]``
    (``(n, p, d)``).

    ``sp`` (p,) / ``wp`` (p, kp): band starts and weights along angles; ``sd`` / ``wd``
    along columns. Bands lie inside the input.
    """
    n, n_p, n_d = x.shape
    t, tt, acc, lov, hiv = _work(wp.shape[0], n_d)
    for v in range(n):
        _begin(t, lov, hiv)
        first = 0
        for q in range(n_p):
            first = _add_row(x[v, q], q, sp, wp, t, lov, hiv, first)
        _columns(t, sd, wd, lov.min(), hiv.max(), out[v], tt, acc)


@nb.njit(**_JIT)
def normalise_resize_stack(raw, dark, lo, hi, ln_den, sp, wp, sd, wd, out):  # pragma: no cover
    """:func:`resize_stack` of the normalised sinograms of raw projections, fused.

    ``raw`` is C-contiguous ``(P, n, D)`` (projections, rows, columns), ``dark`` ... ``ln_den``
    the float32 ``(n, D)`` pixel constants of :func:`nsgen.prep.normalise.pixel_constants`.
    Each projection row is normalised (:func:`normalise_row`) into a row buffer that stays
    in cache and is added into the outputs of its band: the full-resolution sinogram is
    never stored. Same float32 numbers as ``resize_stack(flat_field_log_rows(...))``.
    """
    n_p, n, n_d = raw.shape
    t, tt, acc, lov, hiv = _work(wp.shape[0], n_d)
    row = np.empty(n_d, np.float32)
    for v in range(n):
        _begin(t, lov, hiv)
        first = 0
        for q in range(n_p):
            normalise_row(raw[q, v], dark[v], lo[v], hi[v], ln_den[v], row)
            first = _add_row(row, q, sp, wp, t, lov, hiv, first)
        _columns(t, sd, wd, lov.min(), hiv.max(), out[v], tt, acc)
