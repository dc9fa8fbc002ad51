"""NumPy's Poisson draws of a PCG64 stream, compiled (Numba): the same counts and states.

Written to make the complex mode's photon draws (one per pixel of every projection, ~1 of
its 3.5 CPU-seconds at N=256) cheaper, as :mod:`nsgen.io._scan_normals` did for make-scan's
normals. Measured, it is exact but not faster: 22-26 ns a draw against NumPy's 23-27 ns
(means of the complex mode, 1e3-4e4). NumPy's loop is compiled C already; the cost is the
method's: 21 % of the draws reach the exact test (four logarithms, a branch that goes
either way), and a stand-in test without logarithms still costs 13 ns a draw. Not used.

What is reproduced (NumPy >= 1.17's ``Generator.poisson``, PCG64 bit generator):

* uniforms: ``next_double`` takes one 64-bit PCG64 output ``w`` and returns
  ``(w >> 11) * 2**-53`` (the buffered 32-bit half of ``PCG64.state`` is neither used nor
  changed); the PCG64 step is :func:`nsgen.io._scan_normals.step`;
* ``lam == 0``: 0, no draw;
* ``0 < lam < 10``: the multiplication method (Knuth): multiply uniforms until the
  product is no longer above ``exp(-lam)``; the count is the number of factors before that;
* ``lam >= 10``: the transformed rejection with squeeze of W. Hoermann ("The transformed
  rejection method for generating Poisson random variables", Insurance: Mathematics and
  Economics 12 (1993) 39-45; NumPy's "PTRS"). With ``s = sqrt(lam)``:
  ``b = 0.931 + 2.53 s``, ``a = -0.059 + 0.02483 b``, ``1/alpha = 1.1239 + 1.1328 / (b - 3.4)``,
  ``v_r = 0.9277 - 3.6224 / (b - 2)``. Each attempt draws ``U = u1 - 0.5`` and ``V = u2``,
  ``us = 0.5 - |U|``, ``k = floor((2 a / us + b) U + lam + 0.43)``; it accepts at once if
  ``us >= 0.07`` and ``V <= v_r``; it rejects if ``k < 0`` or (``us < 0.013`` and
  ``V > us``); else it accepts if ``log(V) + log(1/alpha) - log(a / us**2 + b) <=
  -lam + k log(lam) - log(k!)``, with ``log(k!)`` the Stirling series of
  :func:`_log_gamma` (ten terms, the argument raised to 7 first by the recurrence).

The arithmetic is NumPy's operation for operation, in the same order and precision (no
fast-math; ``log``, ``exp`` and ``sqrt`` are the C library's, as NumPy's);
``tests/test_poisson_jit.py`` checks values and final states against NumPy's generator on
many ``lam`` (0, below and at 10, up to 1e12), including attempts chosen to fall on every
branch.

State array: that of :func:`nsgen.io._scan_normals.pcg_state`.

Examples
--------
>>> import numpy as np
>>> lam = np.array([0.0, 3.5, 10.0, 2.5e4])
>>> rng = np.random.default_rng(3)
>>> out = poisson_counts(lam, rng, 2)
>>> want = np.random.default_rng(3).poisson(lam, size=(2, 4))
>>> bool((out == want).all())
True
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from nsgen.io._scan_normals import pcg_state, set_pcg_state, step
from nsgen.prep._jit import JIT as _JIT

__all__ = ["LAM_MAX", "log_gamma_table", "poisson_counts", "poisson_rows"]

#: the largest ``lam`` NumPy's ``Generator.poisson`` accepts
LAM_MAX = float(np.iinfo(np.int64).max - np.sqrt(np.iinfo(np.int64).max) * 10)

_U11 = np.uint64(11)
_TWO_M53 = 1.0 / 9007199254740992.0
#: Stirling series coefficients of log Gamma, B_2k / (2k (2k - 1)), k = 1..10, as 16-digit decimals
_STIRLING = np.array([8.333333333333333e-02, -2.777777777777778e-03, 7.936507936507937e-04,
                      -5.952380952380952e-04, 8.417508417508418e-04, -1.917526917526918e-03,
                      6.410256410256410e-03, -2.955065359477124e-02, 1.796443723688307e-01,
                      -1.39243221690590e+00])
#: log(2 pi)
_LOG_2PI = 1.8378770664093453


@nb.njit(**_JIT)
def _uniform(st):  # pragma: no cover - compiled
    """The stream's next double in [0, 1) (53 bits of a 64-bit output); ``st`` advances."""
    st[0], st[1], out = step(st[0], st[1], st[2], st[3])
    return np.float64(out >> _U11) * _TWO_M53


@nb.njit(**_JIT)
def _log_gamma(x):  # pragma: no cover - compiled
    """``log Gamma(x)`` for ``x >= 1``: exactly 0 at 1 and 2; below 7 the argument is raised
    by ``n = int(7 - x)`` and the recurrence subtracts ``log(x0 - 1)`` n times."""
    if x == 1.0 or x == 2.0:
        return 0.0
    n = np.int64(7.0 - x) if x < 7.0 else np.int64(0)
    x0 = x + np.float64(n)
    inv = 1.0 / x0
    x2 = inv * inv
    series = _STIRLING[9]
    for j in range(8, -1, -1):
        series = series * x2 + _STIRLING[j]
    out = series / x0 + 0.5 * _LOG_2PI + (x0 - 0.5) * math.log(x0) - x0
    for _ in range(n):
        out -= math.log(x0 - 1.0)
        x0 -= 1.0
    return out


@nb.njit(**_JIT)
def _ptrs(st, lam, log_gammas):  # pragma: no cover - compiled
    """One draw for ``lam >= 10`` (transformed rejection with squeeze); ``log_gammas[k]`` is
    ``_log_gamma(k + 1)`` for the ``k`` it covers."""
    b = 0.931 + 2.53 * math.sqrt(lam)
    a = -0.059 + 0.02483 * b
    v_r = 0.9277 - 3.6224 / (b - 2.0)
    log_lam = np.nan   # the exact test's per-lam terms, computed at its first use
    log_inv_alpha = np.nan
    while True:
        u = _uniform(st) - 0.5
        v = _uniform(st)
        us = 0.5 - abs(u)
        if us == 0.0:   # u == -0.5: k would be floor(-inf) (NumPy: INT64_MIN, rejected)
            continue
        k = np.int64(math.floor((2.0 * a / us + b) * u + lam + 0.43))
        if us >= 0.07 and v <= v_r:
            return k
        if k < 0 or (us < 0.013 and v > us):
            continue
        if log_lam != log_lam:
            log_lam = math.log(lam)
            log_inv_alpha = math.log(1.1239 + 1.1328 / (b - 3.4))
        if k < log_gammas.size:
            log_factorial = log_gammas[k]
        else:
            log_factorial = _log_gamma(np.float64(k + 1))
        if (math.log(v) + log_inv_alpha - math.log(a / (us * us) + b)
                <= -lam + np.float64(k) * log_lam - log_factorial):
            return k


@nb.njit(**_JIT)
def _multiply(st, lam):  # pragma: no cover - compiled
    """One draw for ``0 < lam < 10`` (products of uniforms against ``exp(-lam)``)."""
    bound = math.exp(-lam)
    count = np.int64(0)
    prod = 1.0
    while True:
        prod *= _uniform(st)
        if prod > bound:
            count += 1
        else:
            return count


@nb.njit(**_JIT)
def log_gamma_table(n):  # pragma: no cover - compiled
    """``_log_gamma(k + 1)`` for ``k = 0 .. n - 1`` (float64)."""
    out = np.empty(n)
    for k in range(n):
        out[k] = _log_gamma(np.float64(k + 1))
    return out


@nb.njit(**_JIT)
def poisson_rows(st, lam, out, log_gammas):  # pragma: no cover - compiled
    """Fill ``out`` (2-D, rows of ``lam.size``) row after row with draws of mean ``lam`` (1-D,
    finite, in ``[0, LAM_MAX]``: unchecked here), as NumPy's ``poisson(lam, size=out.shape)``;
    ``st`` advances. ``log_gammas``: :func:`log_gamma_table` of any length."""
    for r in range(out.shape[0]):
        for i in range(lam.size):
            mean = lam[i]
            if mean >= 10.0:
                k = _ptrs(st, mean, log_gammas)
            elif mean == 0.0:
                k = np.int64(0)
            else:
                k = _multiply(st, mean)
            out[r, i] = k


#: the largest table :func:`poisson_counts` keeps (8 MiB; beyond it, ``log(k!)`` is computed)
_TABLE_MAX = 1 << 20
_TABLE = [np.empty(0)]


def _table_for(lam_max: float) -> np.ndarray:
    """The process's :func:`log_gamma_table`, grown to cover the counts of means up to
    ``lam_max`` (``k <= lam + 7 sqrt(lam)``, the exact test's reach), at most ``_TABLE_MAX``."""
    need = min(int(lam_max + 8.0 * math.sqrt(lam_max)) + 16, _TABLE_MAX)
    if _TABLE[0].size < need:
        _TABLE[0] = log_gamma_table(max(need, 2 * _TABLE[0].size) if need < _TABLE_MAX else need)
    return _TABLE[0]


def poisson_counts(lam: np.ndarray, rng: np.random.Generator, repeats: int = 1,
                   dtype: type = np.float32) -> np.ndarray:
    """``rng.poisson(lam, size=(repeats,) + lam.shape).astype(dtype)``, the same values and
    the same state of ``rng`` afterwards, for a PCG64 generator.

    Parameters
    ----------
    lam : numpy.ndarray
        Means, finite and in ``[0, LAM_MAX]`` (checked: ``ValueError``), any shape.
    rng : numpy.random.Generator
        A generator of a :class:`numpy.random.PCG64` bit generator (else ``TypeError``).
    repeats : int
        Draws per mean, in NumPy's order (all of the first repeat, then the second, ...).
    dtype : type
        Output type (float32 counts are exact below 2**24).

    Returns
    -------
    numpy.ndarray
        Counts of shape ``(repeats,) + lam.shape``.

    Examples
    --------
    >>> g1, g2 = np.random.default_rng(4), np.random.default_rng(4)
    >>> lam = np.array([[0.5, 12.0], [400.0, 0.0]])
    >>> bool((poisson_counts(lam, g1, 3) == g2.poisson(lam, size=(3, 2, 2))).all())
    True
    >>> bool(g1.random() == g2.random())
    True
    """
    if type(rng.bit_generator) is not np.random.PCG64:
        raise TypeError(f"poisson_counts needs a PCG64 generator, got {type(rng.bit_generator).__name__}")
    flat = np.ascontiguousarray(lam, dtype=np.float64).reshape(-1)
    out: np.ndarray = np.empty((int(repeats), flat.size), dtype=dtype)
    if flat.size == 0 or repeats == 0:
        return out.reshape((int(repeats),) + np.shape(lam))
    lo, hi = float(flat.min()), float(flat.max())
    if not (lo >= 0.0 and hi <= LAM_MAX):   # also false for a nan
        raise ValueError(f"Poisson means must be finite and in [0, {LAM_MAX:.4g}], got "
                         f"{lo:.4g} .. {hi:.4g}")
    bits = rng.bit_generator
    st = pcg_state(bits)
    poisson_rows(st, flat, out, _table_for(hi))
    set_pcg_state(bits, st)
    return out.reshape((int(repeats),) + np.shape(lam))
