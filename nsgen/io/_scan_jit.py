"""Compiled (Numba) kernel of :mod:`nsgen.io.scan_frames`: detector counts of one frame.

One pass over the frame turns the transmission, the beam, the detector gain and one
standard-normal draw per pixel into counts (see :func:`nsgen.io.scan_frames.expose` for
the model). The arithmetic is float32 in source order (no fast-math), so the result is
the same on every host and in every process.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from nsgen.prep._jit import JIT as _JIT

_MAX_U16 = np.float32(65535.0)
_ZERO = np.float32(0.0)


@nb.njit(**_JIT)
def expose_frame(t, beam, drift, gain, dark, z, read_var, low, rounded, out):  # pragma: no cover - compiled
    """Counts of one frame; returns how many pixels have ``0 < lam < low``.

    ``lam = t * beam * drift[column]`` photons; ``m = gain * lam``;
    ``counts = dark + m + sqrt(m * gain + read_var) * z``, rounded to the nearest integer
    and clipped to 0..65535 when ``rounded`` (for a uint16 ``out``). Pixels with ``0 < lam < low`` get the
    same formula here; the caller redraws them (exact Poisson) when the count is not 0.
    All inputs are float32 ``(rows, columns)`` but ``drift`` (``(columns,)``) and the
    scalars ``read_var`` and ``low``; ``out`` is uint16, float32 or float64.
    """
    n_rows, n_columns = t.shape
    n_low = 0
    for r in range(n_rows):
        for c in range(n_columns):
            lam = t[r, c] * beam[r, c] * drift[c]
            n_low += (lam > _ZERO) & (lam < low)  # no branch: the loop vectorises
            m = gain[r, c] * lam
            x = (dark[r, c] + m) + np.sqrt(m * gain[r, c] + read_var) * z[r, c]
            if rounded:
                x = min(max(np.rint(x), _ZERO), _MAX_U16)
            out[r, c] = x
    return n_low
