"""Tests of nsgen.io._scan_jit: exact quantiles, the counter-based normals, line integrals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from nsgen.io._scan_jit import line_integrals, ndtri, normals_at, standard_normals
from nsgen.io.scan_frames import _line_integrals, _phantom


def test_ndtri_is_the_normal_quantile_to_double_precision() -> None:
    p = np.concatenate([np.logspace(-300, -1, 400), np.linspace(0.01, 0.99, 999),
                        1 - np.logspace(-16, -1, 200)])
    got = np.array([ndtri(x) for x in p])
    want = special.ndtri(p)
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-15)


def test_normals_are_standard_normal_including_the_tails() -> None:
    z = np.empty(2_000_000, np.float64)
    standard_normals(np.uint64(2024), np.uint64(0), z)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    # the two outermost bins (|z| > 3.49, exact quantiles) hold 1/2048 of the numbers
    outer = np.abs(z) > special.ndtri(1 - 1 / 4096)
    assert abs(outer.mean() * 2048 - 1) < 0.15  # ~977 expected: standard error 3 %
    assert abs(z[outer].std() - 3.70) < 0.1  # E[z^2 | |z| > 3.49] ** 0.5 = 3.70
    beyond4 = (np.abs(z) > 4).mean()
    assert abs(beyond4 / (2 * special.ndtr(-4)) - 1) < 0.3  # ~127 expected


def test_any_number_is_computed_on_its_own() -> None:
    """Counter-based: a slice of the stream, or single numbers by index, equal the numbers
    computed in one go; another base gives other numbers; float32 rounds float64."""
    whole = np.empty(50_000, np.float32)
    standard_normals(np.uint64(7), np.uint64(1000), whole)
    part = np.empty(123, np.float32)
    standard_normals(np.uint64(7), np.uint64(1000 + 4000), part)
    np.testing.assert_array_equal(part, whole[4000:4123])
    idx = np.array([0, 17, 49_999, 31_000])
    np.testing.assert_array_equal(normals_at(np.uint64(7), np.uint64(1000), idx), whole[idx])
    other = np.empty(50_000, np.float32)
    standard_normals(np.uint64(8), np.uint64(1000), other)
    assert np.corrcoef(whole, other)[0, 1] < 0.02
    wide = np.empty(50_000, np.float64)
    standard_normals(np.uint64(7), np.uint64(1000), wide)
    np.testing.assert_array_equal(wide.astype(np.float32), whole)


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
