"""NumPy's float32 standard normals of a PCG64 stream, compiled (Numba) for make-scan.

``numpy.random.Generator(PCG64(...)).standard_normal(n, dtype=np.float32)`` costs about
8 ns a value (an indirect call per 32-bit word, a table ziggurat). make-scan draws one per
pixel, so that was two thirds of a frame's CPU. This module computes the very same values
inside a compiled loop (the counts kernel of :mod:`nsgen.io._scan_jit` draws them pixel by
pixel, no ``z`` array): the frames' bytes do not change.

What is reproduced (NumPy >= 1.17's ``Generator`` with its ``PCG64`` bit generator):

* PCG64: a 128-bit LCG, ``s = s * MULTIPLIER + inc`` (mod 2**128), then the XSL-RR
  output ``rotr64(high ^ low, high >> 58)`` of the new state; a 32-bit draw takes the low
  half of a 64-bit output and keeps the high half for the next 32-bit draw
  (``has_uint32`` / ``uinteger`` of ``PCG64.state``);
* the float32 ziggurat of 256 layers (Marsaglia and Tsang's construction with the tail at
  ``R = 3.6541528853610088``): a 32-bit word gives the layer (8 bits), the sign (1 bit) and
  a 23-bit magnitude; the rare rejections (0.7 %) and the tail draw ``(word >> 8) / 2**24``
  uniforms from the same stream. The tables (:data:`KI`, :data:`WI`, :data:`FI`) are computed
  here from the closed form; ``tests/test_scan_normals.py`` checks them, and the values
  drawn, against NumPy's own generator (every layer, the rejection thresholds, the tail).

State array (``numpy.uint64``, 6 entries, :func:`pcg_state` / :func:`set_pcg_state`):
``[state >> 64, state & MASK, inc >> 64, inc & MASK, has_uint32, uinteger]``.

Examples
--------
>>> import numpy as np
>>> bits = np.random.PCG64(7)
>>> state = pcg_state(bits)
>>> z = np.empty(1000, np.float32)
>>> standard_normals(state, z)
>>> want = np.random.Generator(np.random.PCG64(7)).standard_normal(1000, dtype=np.float32)
>>> bool((z == want).all())
True
>>> set_pcg_state(bits, state)   # the generator continues after the 1000 values
>>> rest = np.random.Generator(bits).standard_normal(3, dtype=np.float32)
>>> g = np.random.Generator(np.random.PCG64(7)); _ = g.standard_normal(1000, dtype=np.float32)
>>> bool((rest == g.standard_normal(3, dtype=np.float32)).all())
True
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from nsgen.prep._jit import JIT as _JIT

__all__ = ["FI", "KI", "R", "WI", "pcg_state", "set_pcg_state", "standard_normals"]

_MULTIPLIER = (2549297995355413924 << 64) + 4865540595714422341
_MASK64 = (1 << 64) - 1
_MUL_HI = np.uint64(_MULTIPLIER >> 64)
_MUL_LO = np.uint64(_MULTIPLIER & _MASK64)
_U32 = np.uint64(0xFFFFFFFF)
_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U8 = np.uint64(8)
_U9 = np.uint64(9)
_U32_SHIFT = np.uint64(32)
_U58 = np.uint64(58)
_U63 = np.uint64(63)
_U64 = np.uint64(64)
_LAYER = np.uint64(0xFF)
_MAGNITUDE = np.uint64(0x7FFFFF)

#: where the ziggurat's tail starts
R = 3.6541528853610088


def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``KI`` (uint64 acceptance bounds of the 23-bit magnitude), ``WI`` (float32 magnitude
    to value) and ``FI`` (float32 density at each layer's edge), 256 layers.

    Layer edges ``x[255] = R > x[254] > ... > x[1] > 0`` enclose equal areas ``v`` under
    ``exp(-x**2 / 2)`` (the base layer, 0, holds the tail); ``KI[i] = round(2**23 x[i-1] /
    x[i])``, ``WI[i] = x[i] / 2**23``, ``FI[i] = exp(-x[i]**2 / 2)``, with layer 0 using the
    base layer's width ``v / f(R)`` and layer 1 always rejected (``KI[1] = 0``).
    """
    def f(x: float) -> float:
        return math.exp(-0.5 * x * x)

    v = R * f(R) + math.sqrt(math.pi / 2) * math.erfc(R / math.sqrt(2))
    x = np.zeros(256)
    x[255] = R
    for i in range(255, 1, -1):
        x[i - 1] = math.sqrt(-2.0 * math.log(v / x[i] + f(x[i])))
    ratio = np.empty(256)
    ratio[0], ratio[1], ratio[2:] = R * f(R) / v, 0.0, x[1:255] / x[2:]
    ki = np.rint(ratio * 2.0**23).astype(np.uint64)
    wi = (np.concatenate([[v / f(R)], x[1:]]) / 2.0**23).astype(np.float32)
    fi = np.concatenate([[1.0], np.exp(-0.5 * x[1:] ** 2)]).astype(np.float32)
    return ki, wi, fi


KI, WI, FI = _tables()
_R_F = np.float32(R)
_INV_R_F = np.float32(1.0 / R)
_ONE_F = np.float32(1.0)
_TWO_24_F = np.float32(1.0 / 16777216.0)


@intrinsic
def _mulhi(typingctx, a, b):  # pragma: no cover - compiled
    """High 64 bits of the 128-bit product of two uint64 (one machine multiply)."""
    sig = types.uint64(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        return builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))

    return sig, codegen


@nb.njit(**_JIT)
def step(hi, lo, inc_hi, inc_lo):  # pragma: no cover - compiled
    """The next PCG64 state and its 64-bit output: ``(hi, lo, output)``."""
    new_lo = lo * _MUL_LO + inc_lo
    carry = _U1 if new_lo < inc_lo else _U0
    new_hi = _mulhi(lo, _MUL_LO) + lo * _MUL_HI + hi * _MUL_LO + inc_hi + carry
    word = new_hi ^ new_lo
    rot = new_hi >> _U58
    return new_hi, new_lo, (word >> rot) | (word << ((_U64 - rot) & _U63))


@nb.njit(**_JIT)
def next_word(st):  # pragma: no cover - compiled
    """The next 32-bit draw of state array ``st`` (advanced in place), as uint64."""
    if st[4] != _U0:
        st[4] = _U0
        return st[5]
    st[0], st[1], out = step(st[0], st[1], st[2], st[3])
    st[4], st[5] = _U1, out >> _U32_SHIFT
    return out & _U32


@nb.njit(**_JIT)
def _uniform(st):  # pragma: no cover - compiled
    return np.float32(next_word(st) >> _U8) * _TWO_24_F


@nb.njit(**_JIT)
def redraw(word, st):  # pragma: no cover - compiled
    """The normal of a first word ``word`` that the quick test rejected (``magnitude >=
    KI[layer]``): the wedge or tail test, drawing from ``st``, then new words until one is
    accepted."""
    while True:
        idx = word & _LAYER
        rabs = (word >> _U9) & _MAGNITUDE
        x = np.float32(rabs) * WI[idx]
        if (word >> _U8) & _U1:
            x = -x
        if rabs < KI[idx]:
            return x
        if idx == _U0:
            while True:
                xx = -_INV_R_F * np.log1p(-_uniform(st))
                yy = -np.log1p(-_uniform(st))
                if yy + yy > xx * xx:
                    return -(_R_F + xx) if (rabs >> _U8) & _U1 else _R_F + xx
        left = (FI[idx - _U1] - FI[idx]) * _uniform(st) + FI[idx]
        if np.float64(left) < math.exp(-0.5 * np.float64(x) * np.float64(x)):
            return x
        word = next_word(st)


@nb.njit(**_JIT)
def standard_normals(st, out):  # pragma: no cover - compiled
    """Fill float32 ``out`` (1-D) with the stream's next normals; ``st`` advances."""
    for i in range(out.size):
        word = next_word(st)
        idx = word & _LAYER
        rabs = (word >> _U9) & _MAGNITUDE
        if rabs < KI[idx]:
            x = np.float32(rabs) * WI[idx]
            out[i] = -x if (word >> _U8) & _U1 else x
        else:
            out[i] = redraw(word, st)


def pcg_state(bits: np.random.PCG64) -> np.ndarray:
    """The state array of a PCG64 bit generator (a copy: advancing it leaves ``bits``)."""
    s = bits.state
    state, inc = int(s["state"]["state"]), int(s["state"]["inc"])
    return np.array([state >> 64, state & _MASK64, inc >> 64, inc & _MASK64, s["has_uint32"],
                     s["uinteger"]], dtype=np.uint64)


def set_pcg_state(bits: np.random.PCG64, st: np.ndarray) -> None:
    """Put state array ``st`` back into ``bits`` (it continues where ``st`` stopped)."""
    hi, lo, inc_hi, inc_lo, has, word = (int(v) for v in st)
    bits.state = {"bit_generator": "PCG64", "state": {"state": (hi << 64) | lo, "inc": (inc_hi << 64) | inc_lo},
                  "has_uint32": has, "uinteger": word}
