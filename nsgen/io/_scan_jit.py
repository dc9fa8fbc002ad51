"""Compiled (Numba) kernels of :mod:`nsgen.io.scan_frames`: line integrals and counts.

* :func:`line_integrals`: the exact chord lengths of the phantom's spheres for one angle,
  added to the container's; the same float32 values as the NumPy expression it replaced
  (float64 chords, each rounded to float32, then added in float64 and rounded).
* :func:`expose_frame`: one pass over the frame turns the transmission, the beam, the
  detector gain and one standard-normal draw per pixel into counts (see
  :func:`nsgen.io.scan_frames.expose` for the model); the draws are NumPy's float32
  normals of the frame's PCG64 stream, computed in the loop (:mod:`nsgen.io._scan_normals`).

The arithmetic is IEEE in source order (no fast-math), so the results are the same on
every host and in every process.

Examples
--------
>>> import numpy as np
>>> out = np.empty((2, 3), np.float32)
>>> none = np.zeros((0, 2), np.int64)
>>> line_integrals(np.ones(3, np.float32), np.zeros(0), none, none, np.zeros(0), np.zeros(0),
...                np.zeros(0), out).tolist()
[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
"""

from __future__ import annotations

import numba as nb
import numpy as np

from nsgen.io._scan_normals import KI, WI, redraw, step
from nsgen.prep._jit import JIT as _JIT

_MAX_U16 = np.float32(65535.0)
_ZERO = np.float32(0.0)
_U0, _U1, _U8, _U9 = np.uint64(0), np.uint64(1), np.uint64(8), np.uint64(9)
_LOW32, _SHIFT32 = np.uint64(0xFFFFFFFF), np.uint64(32)
_LAYER, _MAGNITUDE = np.uint64(0xFF), np.uint64(0x7FFFFF)

@nb.njit(**_JIT)
def expose_frame(t, beam, drift, gain, dark, st, read_var, low, rounded, out, z_low):  # pragma: no cover
    """Counts of one frame; returns how many pixels have ``0 < lam < low``.

    ``lam = t * beam * drift[column]`` photons; ``m = gain * lam``;
    ``counts = dark + m + sqrt(m * gain + read_var) * z``, rounded to the nearest integer and
    clipped to 0..65535 when ``rounded`` (for a uint16 ``out``), with ``z`` the next
    float32 standard normal of the PCG64 state array ``st`` (advanced in place; row-major,
    one per pixel). Pixels with ``0 < lam < low`` get the same formula here and their ``z``
    in ``z_low``; the caller redraws them (exact Poisson) when the count is not 0.
    All inputs are float32 ``(rows, columns)`` but ``drift`` (``(columns,)``) and the
    scalars ``read_var`` and ``low``; ``out`` is uint16, float32 or float64.
    """
    n_rows, n_columns = t.shape
    hi, lo, inc_hi, inc_lo, has, buf = st[0], st[1], st[2], st[3], st[4], st[5]
    z = np.empty(n_columns, np.float32)  # one row of draws (in L1); the counts loop vectorises
    n_low = 0
    for r in range(n_rows):
        for c in range(n_columns):
            if has != _U0:  # the high half of the last 64-bit output
                word, has = buf, _U0
            else:
                hi, lo, bits = step(hi, lo, inc_hi, inc_lo)
                word, buf, has = bits & _LOW32, bits >> _SHIFT32, _U1
            idx = word & _LAYER
            rabs = (word >> _U9) & _MAGNITUDE
            if rabs < KI[idx]:  # 99.3 %
                x = np.float32(rabs) * WI[idx]
                z[c] = -x if (word >> _U8) & _U1 else x
            else:
                st[0], st[1], st[4], st[5] = hi, lo, has, buf
                z[c] = redraw(word, st)
                hi, lo, has, buf = st[0], st[1], st[4], st[5]
        row_low = 0
        for c in range(n_columns):
            lam = t[r, c] * beam[r, c] * drift[c]
            row_low += (lam > _ZERO) & (lam < low)  # no branch: the loop vectorises
            m = gain[r, c] * lam
            x = (dark[r, c] + m) + np.sqrt(m * gain[r, c] + read_var) * z[c]
            if rounded:
                x = min(max(np.rint(x), _ZERO), _MAX_U16)
            out[r, c] = x
        if row_low:
            n_low += row_low
            for c in range(n_columns):
                lam = t[r, c] * beam[r, c] * drift[c]
                if lam > _ZERO and lam < low:
                    z_low[r, c] = z[c]
    st[0], st[1], st[4], st[5] = hi, lo, has, buf
    return n_low


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
