"""Tests of nsgen.io._scan_jit: the compiled line integrals and counts."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.io._scan_jit import expose_frame, line_integrals
from nsgen.io._scan_normals import pcg_state, set_pcg_state
from nsgen.io.scan_frames import _line_integrals, _phantom


@pytest.mark.parametrize("rows, columns, seed", [(7, 33, 0), (64, 100, 1), (40, 256, 5)])
def test_line_integrals_equal_the_numpy_expression_bit_for_bit(rows: int, columns: int, seed: int) -> None:
    """The compiled sum is the NumPy one it replaced: float64 chords rounded to float32, each
    sphere added in float64 and rounded, in sphere order."""
    ph = _phantom(rows, columns, seed)
    s = np.arange(columns) - (columns - 1) / 2.0
    container = (2.0 * ph.container_mu * np.sqrt(np.maximum(ph.container_radius**2 - s**2, 0.0))
                 ).astype(np.float32)[None, :]
    for theta in np.linspace(0, 180, 19):
        want = np.empty((rows, columns), np.float32)
        want[...] = container
        t = np.deg2rad(theta)
        axis = (columns - 1) / 2.0
        r_mid = np.arange(rows) + 0.5
        for (x0, y0, z0), r, mu in zip(ph.centres, ph.radii, ph.mus):
            sc = x0 * np.cos(t) + y0 * np.sin(t)
            c0, c1 = max(0, int(np.floor(sc + axis - r))), min(columns, int(np.ceil(sc + axis + r)) + 1)
            r0, r1 = max(0, int(np.floor(z0 - r))), min(rows, int(np.ceil(z0 + r)) + 1)
            if c0 >= c1 or r0 >= r1:
                continue
            chord2 = (r * r - (r_mid[r0:r1] - z0) ** 2)[:, None] - ((s[c0:c1] - sc) ** 2)[None, :]
            want[r0:r1, c0:c1] += (2.0 * mu) * np.sqrt(np.maximum(chord2, 0.0)).astype(np.float32)
        got = _line_integrals(ph, theta, rows, columns, container)
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


def test_line_integrals_of_no_sphere_are_the_container() -> None:
    out = np.empty((3, 5), np.float32)
    container = np.arange(5, dtype=np.float32)
    none = np.zeros((0, 2), np.int64)
    line_integrals(container, np.zeros(0), none, none, np.zeros(0), np.zeros(0), np.zeros(0), out)
    np.testing.assert_array_equal(out, np.broadcast_to(container, (3, 5)))


@pytest.mark.parametrize("dtype, seed", [(np.uint16, 0), (np.float32, 1), (np.float64, 2)])
def test_counts_are_the_numpy_expression_with_numpys_normals(dtype: type, seed: int) -> None:
    """expose_frame draws NumPy's float32 normals of the stream in the loop: its counts are the
    float32 expression on ``rng.standard_normal`` bit for bit (rounded and clipped for uint16),
    it reports and keeps the draws of the pixels with ``0 < lam < low``, and the stream ends
    where NumPy's does."""
    rows, columns = 37, 211
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.0, 1.0, (rows, columns)).astype(np.float32)
    t[0, :5] = 0.0
    beam = rng.uniform(20.0, 40000.0, (rows, columns)).astype(np.float32)
    drift = rng.uniform(0.98, 1.02, columns).astype(np.float32)
    gain = np.ones((rows, columns), np.float32)
    gain[:, 7] = 0.0
    gain[3:9, 50:53] = 1.07
    dark = rng.uniform(90.0, 110.0, (rows, columns)).astype(np.float32)
    bits = np.random.PCG64(seed)
    st = pcg_state(bits)
    out = np.empty((rows, columns), dtype)
    z_low = np.full((rows, columns), np.nan, np.float32)
    n_low = expose_frame(t, beam, drift, gain, dark, st, np.float32(4.0), np.float32(100.0), dtype == np.uint16,
                         out, z_low)
    ref = np.random.Generator(np.random.PCG64(seed))
    z = ref.standard_normal((rows, columns), dtype=np.float32)
    lam = t * beam * drift
    m = gain * lam
    want = (dark + m) + np.sqrt(m * gain + np.float32(4.0)) * z
    if dtype == np.uint16:
        want = np.clip(np.rint(want), 0, 65535)
    np.testing.assert_array_equal(out, want.astype(dtype))
    low = (lam > 0) & (lam < 100)
    assert n_low == low.sum() > 0
    np.testing.assert_array_equal(z_low[low], z[low])
    assert np.isnan(z_low[~low]).all()
    set_pcg_state(bits, st)
    assert bits.state == ref.bit_generator.state
