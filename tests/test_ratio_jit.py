"""The compiled ratio map (nsgen.prep._ratio_jit) gives the same bits in any column strips.

Its values are checked against a voxel-by-voxel reference in tests/test_stripe_detect.py
(one strip on those small shapes); here the strips, their halo columns and the flat plane
layout must not change a bit, on raw counts (normalised inside) and on float volumes.
"""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.prep import _ratio_jit
from nsgen.prep.normalise import flat_field_log, pixel_constants
from nsgen.prep.stripe_detect import _mirror_table

F32 = np.float32
NO_NORM = np.empty((0, 1, 1), F32)


def ratio(x, norm, r, rows, width, thr=None):
    """R3 (float32) or R3 <= thr of ``rows`` of ``x`` with strips of ``width`` columns."""
    j0, j1 = rows
    shape = (x.shape[0], j1 - j0, x.shape[2])
    mk, mj, mi = (_mirror_table(n, r) for n in x.shape)
    out_f = np.full(shape, np.nan, F32) if thr is None else np.empty((1, 1), F32)
    out_b = np.empty((1, 1), np.bool_) if thr is None else np.zeros(shape, np.bool_)
    _ratio_jit.ratio_map_into(x, norm, r, mk, mj, mi, j0, j1, F32(thr or 0), out_f, out_b,
                              width)
    return out_f if thr is None else out_b


@pytest.mark.parametrize("r", [1, 2, 3])
@pytest.mark.parametrize("n_i", [13, 64, 150, 333])
def test_any_strip_width_gives_the_same_bits(r, n_i):
    rng = np.random.default_rng(n_i + r)
    x = rng.random((3 * r + 5, 9, n_i), dtype=F32)
    x[:, :, n_i // 2] = 0.5          # a constant column: zero gradients, ties
    x[:, :, -3:] *= 4                 # larger values at the backward-difference edge
    for rows in [(0, 9), (r, 9 - r), (2, 3)]:
        one = ratio(x, NO_NORM, r, rows, n_i)
        assert not np.isnan(one).any()
        for width in (4 * r + 4, 16, 37, 64, 100, 0):
            assert np.array_equal(ratio(x, NO_NORM, r, rows, width).view(np.uint32),
                                  one.view(np.uint32)), (rows, width)
            assert np.array_equal(ratio(x, NO_NORM, r, rows, width, 0.63), one <= F32(0.63))


def test_raw_counts_equal_the_normalised_volume_in_strips():
    rng = np.random.default_rng(5)
    raw = rng.poisson(3000, (20, 10, 300)).astype(np.uint16)
    raw[:, :, 77] //= 3
    flat, dark = rng.uniform(3900, 4100, (10, 300)), rng.uniform(90, 110, (10, 300))
    vol = flat_field_log(raw, flat, dark, sinograms_first=False)
    norm = np.stack(pixel_constants(flat, dark))
    ref = ratio(vol, NO_NORM, 3, (3, 7), 300)
    for width in (16, 64, 100, 0):
        assert np.array_equal(ratio(raw, norm, 3, (3, 7), width).view(np.uint32),
                              ref.view(np.uint32))
        assert np.array_equal(ratio(raw, norm, 3, (3, 7), width, 0.63), ref <= F32(0.63))


def test_strip_columns():
    assert _ratio_jit.strip_columns(38, 2560, 3) % 16 == 0
    assert _ratio_jit.MIN_STRIP <= _ratio_jit.strip_columns(38, 2560, 3) < 2560
    assert _ratio_jit.strip_columns(2000, 2560, 3) == _ratio_jit.MIN_STRIP   # tall blocks
    assert _ratio_jit.strip_columns(38, 40, 3) == 40          # narrow scans: one strip
    assert _ratio_jit.strip_columns(2000, 9000, 200) == 4 * 200 + 20


def test_all_finite():
    x = np.zeros((2, 3, 4), F32)
    assert _ratio_jit.all_finite(x)
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[1, 2, 3] = bad
        assert not _ratio_jit.all_finite(y)
