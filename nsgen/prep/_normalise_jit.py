"""Compiled (Numba) kernels of :mod:`nsgen.prep.normalise`.

One detector row of one projection is normalised at a time (:func:`normalise_row`), in
one vectorised loop over the row of the pixel function :func:`neg_log`:

1. ``x = min(fmax(float32(raw) - dark, lo), hi)`` (a NaN difference becomes ``lo``);
2. ``x = 2**e * m`` with ``m`` in ``[sqrt(1/2), sqrt(2))``, taken from the bits of ``x``
   (every ``x`` is a positive, normal float32: ``lo >= 1e-12``);
3. ``out = ln_den - (e ln 2 + ln m)``, with ``ln m = z - z**2/2 + z**3 Q(z)``, ``z = m - 1``
   and ``Q`` the degree-8 polynomial :data:`LOG_Q` (Chebyshev fit of
   ``(ln(1 + z) - z + z**2/2) / z**3`` on ``[sqrt(1/2) - 1, sqrt(2) - 1]``, relative error
   4e-9 before float32 rounding; the result is within 2 ulp of the float64 logarithm,
   see ``tests/test_normalise.py``).

A logarithm written out like this vectorises (Numba's ``math.log`` is a scalar libm call
per pixel, 10x slower, and NumPy's SIMD ``log`` needs its own pass over memory). The
arithmetic is float32 in source order; the one licence taken is fusing a multiply and an
add into one FMA instruction where the CPU has it (``fastmath={"contract"}``: one rounding
instead of two, 1.5x faster), so results are exact to the host, and every caller of
:func:`normalise_row` (the full-resolution pass here, the fused normalise-and-resize
kernel of :mod:`nsgen.prep._resize_jit`) gets the same numbers.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from nsgen.prep._jit import JIT as _JIT

#: coefficients of Q, lowest degree first (see the module docstring; rounded to float32)
LOG_Q = (0.3333333134651184, -0.24999989569187164, 0.20000708103179932,
         -0.1666848063468933, 0.14249935746192932, -0.12411050498485565,
         0.11661511659622192, -0.115712009370327, 0.07149753719568253)
_Q0, _Q1, _Q2, _Q3, _Q4, _Q5, _Q6, _Q7, _Q8 = (np.float32(c) for c in LOG_Q)
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
#: ln 2 in two parts: the high part has 15 significant bits, so ``e * _LN2_HI`` is exact
#: for every exponent of a float32 (|e| < 2**8)
_LN2_HI = np.float32(0.693145751953125)
_LN2_LO = np.float32(1.4286068203094172e-06)
_SQRT_HALF_BITS = np.int32(0x3F3504F3)   # float32 bits of sqrt(1/2)
_MANTISSA_SHIFT = np.int32(23)


@intrinsic
def _float_bits(typingctx, x):  # pragma: no cover - compiled
    """The bits of a float32 as an int32 (a register move)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.int32(types.float32), codegen


@intrinsic
def _bits_float(typingctx, i):  # pragma: no cover - compiled
    """The float32 whose bits are the int32 ``i``."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@intrinsic
def wide_vectors(typingctx):  # pragma: no cover - compiled
    """Let LLVM vectorise the loops of the calling kernel with 512-bit registers where the
    CPU has them (AVX-512): the function attribute ``"prefer-vector-width"="512"`` (on
    AVX-512 CPUs LLVM prefers 256-bit vectors by default). Lane by lane the same
    instructions, so the same numbers; on the bench machine 1.3-1.4x faster
    :func:`normalise_row_extremes`. Elsewhere the widest vectors the CPU has."""
    def codegen(context, builder, signature, args):
        # llvmlite's attribute set knows only the keyword attributes: add the string one
        # as it is written in a function definition
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()
    return types.none(), codegen


@nb.njit(fastmath={"contract"}, **_JIT)
def neg_log(raw, dark, lo, hi, ln_den):  # pragma: no cover - compiled
    """``ln_den - ln(min(fmax(float32(raw) - dark, lo), hi))`` of one pixel (the module's
    steps 1-3), float32; inlined into the loops of :func:`normalise_row` and
    :func:`normalise_row_extremes`, which vectorise it."""
    x = np.float32(raw) - dark
    if not x >= lo:  # fmax: a NaN difference becomes the lower bound
        x = lo
    if x > hi:
        x = hi
    i = _float_bits(x)
    e = np.int32(np.int32(i - _SQRT_HALF_BITS) >> _MANTISSA_SHIFT)
    z = _bits_float(np.int32(i - np.int32(e << _MANTISSA_SHIFT))) - _ONE
    z2 = z * z
    q = _Q8
    q = q * z + _Q7
    q = q * z + _Q6
    q = q * z + _Q5
    q = q * z + _Q4
    q = q * z + _Q3
    q = q * z + _Q2
    q = q * z + _Q1
    q = q * z + _Q0
    ln_m = z - _HALF * z2 + z2 * z * q
    ef = np.float32(e)
    return ln_den - ((ef * _LN2_LO + ln_m) + ef * _LN2_HI)


@nb.njit(fastmath={"contract"}, **_JIT)
def normalise_row(src, dark, lo, hi, ln_den, out):  # pragma: no cover - compiled
    """``out[c] = ln_den[c] - ln(min(fmax(float32(src[c]) - dark[c], lo[c]), hi[c]))``.

    ``src`` is one detector row of any real dtype; ``dark``, ``lo``, ``hi``, ``ln_den``
    and ``out`` float32 of the same length. ``lo`` must be positive and ``hi`` finite.
    """
    wide_vectors()
    for c in range(src.shape[0]):
        out[c] = neg_log(src[c], dark[c], lo[c], hi[c], ln_den[c])


@nb.njit(fastmath={"contract"}, **_JIT)
def normalise_row_extremes(src, dark, lo, hi, ln_den, out, lows, highs):  # pragma: no cover
    """:func:`normalise_row`, folding each ``out[c]`` into the running minimum ``lows[c]``
    and maximum ``highs[c]`` in the same pass (the values are finite)."""
    wide_vectors()
    for c in range(src.shape[0]):
        y = neg_log(src[c], dark[c], lo[c], hi[c], ln_den[c])
        out[c] = y
        a = lows[c]
        lows[c] = y if y < a else a
        b = highs[c]
        highs[c] = y if y > b else b


@nb.njit(**_JIT)
def flat_field_log_rows(raw, dark, lo, hi, ln_den, out, sinograms_first):  # pragma: no cover
    """:func:`normalise_row` for every ``(projection, row)`` of ``raw``.

    ``raw`` is C-contiguous ``(projections, rows, columns)``; ``dark``, ``lo``, ``hi``,
    ``ln_den`` float32 ``(rows, columns)``; the rows go to ``out[v, p]`` (sinograms first)
    or ``out[p, v]`` of the C-contiguous float32 ``out``.
    """
    n_p, n_v, n_c = raw.shape
    for v in range(n_v):
        for p in range(n_p):
            o = out[v, p] if sinograms_first else out[p, v]
            normalise_row(raw[p, v], dark[v], lo[v], hi[v], ln_den[v], o)
