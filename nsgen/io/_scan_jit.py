"""Compiled (Numba) kernels of :mod:`nsgen.io.scan_frames`: line integrals, noise, counts.

* :func:`line_integrals`: the exact chord lengths of the phantom's spheres for one angle,
  added to the container's; the same float32 values as the NumPy expression it replaced
  (float64 chords, each rounded to float32, then added in float64 and rounded).
* :func:`expose_frame`: one pass over the frame turns the transmission, the beam, the
  detector gain and one standard-normal number per pixel into counts (see
  :func:`nsgen.io.scan_frames.expose` for the model).
* The standard normals are counter-based: number ``n`` of a scan is SplitMix64 output
  ``n`` (``mix(base + (n + 1) * 0x9E3779B97F4A7C15)``) of the scan's ``base``, taken
  through the inverse normal CDF: the top 12 bits pick one of 4,096 bins of equal
  probability, the quantile is interpolated linearly inside the bin (exact at the bin
  edges), and the two outermost bins (probability 1/2,048, ``|z| > 3.49``) take the exact
  quantile (:func:`ndtri`, Wichura's AS241, relative error ~1e-16). Any pixel's number
  is computed on its own, so frames can be made in any order and process.

The arithmetic is IEEE in source order (no fast-math); only the outermost bins call
``log``, so results agree across hosts up to the last bit of those (rare) quantiles.

Examples
--------
>>> import numpy as np
>>> z = np.empty(100_000, np.float32)
>>> standard_normals(np.uint64(7), np.uint64(0), z)
>>> bool(abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02)
True
>>> w = np.empty(10, np.float32)
>>> standard_normals(np.uint64(7), np.uint64(90_000), w)   # any part of the stream alone
>>> bool((w == z[90_000:90_010]).all())
True
>>> round(float(ndtri(0.975)), 12)
1.95996398454
"""

from __future__ import annotations

import numba as nb
import numpy as np

from nsgen.prep._jit import JIT as _JIT

_MAX_U16 = np.float32(65535.0)
_ZERO = np.float32(0.0)

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_BIN_BITS = 12
_N_BINS = 1 << _BIN_BITS
_BIN_SHIFT = np.uint64(53 - _BIN_BITS)
_FRAC_MASK = np.uint64((1 << (53 - _BIN_BITS)) - 1)
_FRAC_SCALE = 2.0 ** -(53 - _BIN_BITS)
_P_SCALE = 2.0**-53
_TOP = np.uint64((1 << 53) - 1)


@nb.njit(**_JIT)
def _as241_tail(r):  # pragma: no cover - compiled
    """The (positive) standard-normal quantile of probability ``exp(-r**2)`` above it."""
    if r <= 5.0:
        r = r - 1.6
        num = (((((((7.7454501427834140764e-4 * r + 0.0227238449892691845833) * r
                    + 0.24178072517745061177) * r + 1.27045825245236838258) * r
                  + 3.64784832476320460504) * r + 5.7694972214606914055) * r
                + 4.6303378461565452959) * r + 1.42343711074968357734)
        den = (((((((1.05075007164441684324e-9 * r + 5.475938084995344946e-4) * r
                    + 0.0151986665636164571966) * r + 0.14810397642748007459) * r
                  + 0.68976733498510000455) * r + 1.6763848301838038494) * r
                + 2.05319162663775882187) * r + 1.0)
    else:
        r = r - 5.0
        num = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r
                    + 0.0012426609473880784386) * r + 0.026532189526576123093) * r
                  + 0.29656057182850489123) * r + 1.7848265399172913358) * r
                + 5.4637849111641143699) * r + 6.6579046435011037772)
        den = (((((((2.04426310338993978564e-15 * r + 1.4215117583164458887e-7) * r
                    + 1.8463183175100546818e-5) * r + 7.868691311456132591e-4) * r
                  + 0.0148753612908506148525) * r + 0.13692988092273580531) * r
                + 0.59983220655588793769) * r + 1.0)
    return num / den


@nb.njit(**_JIT)
def ndtri(p):  # pragma: no cover - compiled
    """Standard-normal quantile of ``0 < p < 1`` (Wichura 1988, algorithm AS241, PPND16)."""
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        num = (((((((2509.0809287301226727 * r + 33430.575583588128105) * r
                    + 67265.770927008700853) * r + 45921.953931549871457) * r
                  + 13731.693765509461125) * r + 1971.5909503065514427) * r
                + 133.14166789178437745) * r + 3.387132872796366608)
        den = (((((((5226.495278852545925 * r + 28729.085735721942674) * r
                    + 39307.89580009271061) * r + 21213.794301586595867) * r
                  + 5394.1960214247511077) * r + 687.1870074920579083) * r
                + 42.313330701600911252) * r + 1.0)
        return q * num / den
    tail = _as241_tail(np.sqrt(-np.log(p if q < 0.0 else 1.0 - p)))
    return -tail if q < 0.0 else tail


@nb.njit(**_JIT)
def _quantile_table(n_bins):  # pragma: no cover - compiled
    """Bin edges' quantiles ``a`` and widths ``b``; NaN in the two outermost bins."""
    a = np.empty(n_bins)
    b = np.zeros(n_bins)
    edges = np.empty(n_bins + 1)
    for j in range(1, n_bins):
        edges[j] = ndtri(j / n_bins)
    for j in range(1, n_bins - 1):
        a[j] = edges[j]
        b[j] = edges[j + 1] - edges[j]
    a[0] = a[n_bins - 1] = np.nan
    return a, b


_QA, _QB = _quantile_table(_N_BINS)


@nb.njit(**_JIT, inline="always")
def _bits(base, n):  # pragma: no cover - compiled
    """Top 53 bits of SplitMix64 output ``n`` of ``base``."""
    z = base + (n + np.uint64(1)) * _GAMMA
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return (z ^ (z >> _S31)) >> _S11


@nb.njit(**_JIT, inline="always")
def _outer(u):  # pragma: no cover - compiled
    """Exact quantile of 53-bit number ``u`` in one of the two outermost bins."""
    if (u >> _BIN_SHIFT) == 0:
        return -_as241_tail(np.sqrt(-np.log((np.float64(np.int64(u)) + 0.5) * _P_SCALE)))
    return _as241_tail(np.sqrt(-np.log((np.float64(np.int64(_TOP - u)) + 0.5) * _P_SCALE)))


@nb.njit(**_JIT)
def _normals(base, first, qa, qb, out):  # pragma: no cover - compiled
    for i in range(out.size):  # vectorised: the outermost bins give NaN here
        u = _bits(base, first + np.uint64(i))
        out[i] = qa[np.int64(u >> _BIN_SHIFT)] + qb[np.int64(u >> _BIN_SHIFT)] * (
            (np.float64(np.int64(u & _FRAC_MASK)) + 0.5) * _FRAC_SCALE)
    for i in range(out.size):
        if out[i] != out[i]:
            out[i] = _outer(_bits(base, first + np.uint64(i)))


def standard_normals(base: np.uint64, first: np.uint64, out: np.ndarray) -> None:
    """Numbers ``first, first + 1, ...`` of stream ``base`` as standard normals into ``out``
    (1-D float32 or float64)."""
    _normals(base, first, _QA, _QB, out)


@nb.njit(**_JIT)
def _normals_at(base, first, qa, qb, index, out):  # pragma: no cover - compiled
    for k in range(index.size):
        u = _bits(base, first + np.uint64(index[k]))
        j = np.int64(u >> _BIN_SHIFT)
        if j == 0 or j == qa.size - 1:
            out[k] = _outer(u)
        else:
            out[k] = qa[j] + qb[j] * ((np.float64(np.int64(u & _FRAC_MASK)) + 0.5) * _FRAC_SCALE)


def normals_at(base: np.uint64, first: np.uint64, index: np.ndarray) -> np.ndarray:
    """Numbers ``first + index`` of stream ``base`` (the values :func:`standard_normals`
    gives them), float32."""
    out = np.empty(index.size, np.float32)
    _normals_at(base, first, _QA, _QB, index.astype(np.int64), out)
    return out


@nb.njit(**_JIT)
def _expose(t, beam, drift, gain, dark, base, first, qa, qb, read_var, low, rounded, out):  # pragma: no cover
    n_rows, n_columns = t.shape
    z = np.empty(n_columns, np.float32)
    n_low = 0
    for r in range(n_rows):
        _normals(base, first + np.uint64(r * n_columns), qa, qb, z)
        for c in range(n_columns):
            lam = t[r, c] * beam[r, c] * drift[c]
            n_low += (lam > _ZERO) & (lam < low)  # no branch: the loop vectorises
            m = gain[r, c] * lam
            x = (dark[r, c] + m) + np.sqrt(m * gain[r, c] + read_var) * z[c]
            if rounded:
                x = min(max(np.rint(x), _ZERO), _MAX_U16)
            out[r, c] = x
    return n_low


def expose_frame(t: np.ndarray, beam: np.ndarray, drift: np.ndarray, gain: np.ndarray,
                 dark: np.ndarray, base: np.uint64, first: np.uint64, read_var: np.float32,
                 low: np.float32, rounded: bool, out: np.ndarray) -> int:
    """Counts of one frame into ``out``; returns how many pixels have ``0 < lam < low``.

    ``lam = t * beam * drift[column]`` photons; ``m = gain * lam``;
    ``counts = dark + m + sqrt(m * gain + read_var) * z``, with ``z`` numbers
    ``first + pixel`` (row-major) of stream ``base``, rounded to the nearest integer and
    clipped to 0..65535 when ``rounded`` (for a uint16 ``out``). Pixels with
    ``0 < lam < low`` get the same formula here; the caller redraws them (exact Poisson)
    when the count is not 0. All inputs are float32 ``(rows, columns)`` but ``drift``
    (``(columns,)``) and the scalars; ``out`` is uint16, float32 or float64.
    """
    return int(_expose(t, beam, drift, gain, dark, np.uint64(base), np.uint64(first), _QA, _QB,
                       np.float32(read_var), np.float32(low), rounded, out))


@nb.njit(**_JIT)
def _spheres(sc, rows, columns, z0, radius, mu2, out):  # pragma: no cover - compiled
    """Add each sphere's ``mu2 * chord`` to ``out`` (float32), in sphere order."""
    n_columns = out.shape[1]
    axis = (n_columns - 1) / 2.0
    for k in range(sc.size):
        r2 = radius[k] * radius[k]
        for r in range(rows[k, 0], rows[k, 1]):
            dz = (r + 0.5) - z0[k]
            rz2 = r2 - dz * dz
            if rz2 <= 0.0:
                continue  # the NumPy expression added exactly 0 there
            half = np.sqrt(rz2)
            c0 = max(columns[k, 0], int(np.floor(sc[k] + axis - half)) - 1)
            c1 = min(columns[k, 1], int(np.ceil(sc[k] + axis + half)) + 2)
            seg = out[r, c0:c1]  # from index 0: no negative-index wraparound, the loop vectorises
            for i in range(seg.size):
                d = (c0 + i - axis) - sc[k]
                chord2 = max(rz2 - d * d, 0.0)
                seg[i] = np.float32(np.float64(seg[i]) + mu2[k] * np.float64(np.float32(np.sqrt(chord2))))


def line_integrals(container: np.ndarray, sc: np.ndarray, rows: np.ndarray, columns: np.ndarray,
                   z0: np.ndarray, radius: np.ndarray, mu2: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out`` (float32 ``(rows, columns)``) = the container's line integrals (``(columns,)``)
    plus each sphere's ``mu2 * chord length``.

    Sphere ``k`` projects to column ``sc[k]`` from the axis and covers detector rows
    ``rows[k, 0]:rows[k, 1]`` and columns ``columns[k, 0]:columns[k, 1]`` (int64 ``(k, 2)``);
    ``z0``, ``radius`` and ``mu2`` (twice its attenuation) are float64 ``(k,)``.
    """
    out[...] = container
    _spheres(sc, rows, columns, z0, radius, mu2, out)
    return out
