"""Tests of nsgen.prep.patches: crop rule (odd/even remainders), patch order, reassembly,
the patches as views, and the compiled one-pass column extremes and scaling of every patch
(equal to NumPy's per patch, NaN and infinities included)."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.prep.normalise import flat_field_log, pixel_constants
from nsgen.prep.patches import (column_extremes, crop_bounds, crop_to_multiple,
                                normalised_column_extremes, normalised_scaled_patches,
                                patch_views, scaled_patches, split_patches)
from nsgen.prep.scaling import Bounds, to_uint16


def grid(h: int, w: int) -> np.ndarray:
    return np.arange(h * w).reshape(h, w)


@pytest.mark.parametrize("shape,patch,rows,cols", [
    ((10, 11), (4, 4), (1, 9), (1, 9)),     # rh = 2 even: 1 + 1; rw = 3 odd: 1 left, 2 right
    ((11, 8), (4, 4), (1, 9), (0, 8)),      # rh = 3 odd: 1 top, 2 bottom; rw = 0
    ((9, 13), (4, 4), (0, 8), (0, 12)),     # rh = 1: 0 top, 1 bottom; rw = 1: 0 left, 1 right
    ((12, 15), (4, 5), (0, 12), (0, 15)),   # exact multiples: untouched
    ((1801, 2560), (1801, 256), (0, 1801), (0, 2560)),
    ((1801, 2559), (1801, 256), (0, 1801), (127, 2431)),  # rw = 255 odd: 127 left, 128 right
])
def test_crop_rule(shape: tuple[int, int], patch: tuple[int, int], rows: tuple[int, int],
                   cols: tuple[int, int]) -> None:
    a = grid(*shape)
    r, c = crop_bounds(shape, patch)
    assert (r.start, r.stop, c.start, c.stop) == (*rows, *cols)
    cropped = crop_to_multiple(a, patch)
    np.testing.assert_array_equal(cropped, a[rows[0]:rows[1], cols[0]:cols[1]])
    assert np.shares_memory(cropped, a)
    assert cropped.shape[0] % patch[0] == 0 and cropped.shape[1] % patch[1] == 0


def test_patch_order_is_column_block_major() -> None:
    a = grid(9, 13)              # cropped to rows 0..8, cols 0..12 with (4, 4)
    patches = split_patches(a, (4, 4))
    nh, nw = 2, 3
    assert patches.shape == (nh * nw, 4, 4)
    c = crop_to_multiple(a, (4, 4))
    for w in range(nw):
        for h in range(nh):
            np.testing.assert_array_equal(patches[w * nh + h], c[h * 4:(h + 1) * 4, w * 4:(w + 1) * 4])
    assert patches[1, 0, 0] == a[4, 0]   # second patch: lower block of the first column block


def test_reassembly() -> None:
    a = np.random.default_rng(0).random((37, 50))
    ph, pw = 6, 7
    patches = split_patches(a, (ph, pw))
    c = crop_to_multiple(a, (ph, pw))
    nh, nw = c.shape[0] // ph, c.shape[1] // pw
    rebuilt = patches.reshape(nw, nh, ph, pw).transpose(1, 2, 0, 3).reshape(c.shape)
    np.testing.assert_array_equal(rebuilt, c)


def test_leading_axes() -> None:
    stack = np.stack([grid(10, 11), -grid(10, 11)])
    got = split_patches(stack, (4, 4))
    assert got.shape == (2, 4, 4, 4)
    np.testing.assert_array_equal(got[1], -split_patches(grid(10, 11), (4, 4)))


def test_patch_too_large_or_invalid() -> None:
    with pytest.raises(ValueError):
        split_patches(grid(10, 10), (11, 4))
    with pytest.raises(ValueError):
        crop_to_multiple(grid(10, 10), (4, 11))
    with pytest.raises(ValueError):
        split_patches(grid(10, 10), (0, 4))
    with pytest.raises(ValueError):
        split_patches(np.arange(5), (1, 1))


#: (sinogram shape, patch shape): one patch, row blocks (nh > 1), odd and even crops,
#: patches of one row or one column
GRIDS = [((60, 90), (60, 30)), ((61, 97), (20, 16)), ((13, 9), (13, 9)), ((7, 20), (1, 3)),
         ((40, 33), (9, 1))]


def _values(shape: tuple[int, int], seed: int, odd: bool) -> np.ndarray:
    r = np.random.default_rng(seed)
    x = (r.random(shape) * 3 - 0.5).astype(np.float32)
    if odd:   # NaN and infinities, in some columns only
        for v in (np.nan, np.inf, -np.inf, np.nan):
            x[r.integers(shape[0]), r.integers(shape[1])] = v
    return x


@pytest.mark.parametrize("shape,patch", GRIDS)
def test_patch_views_are_the_split_patches(shape, patch):
    a = _values(shape, 0, False)
    views = patch_views(a, patch)
    np.testing.assert_array_equal(np.stack(views), split_patches(a, patch))
    assert all(np.shares_memory(v, a) for v in views)


@pytest.mark.parametrize("odd", [False, True])
@pytest.mark.parametrize("shape,patch", GRIDS)
def test_column_extremes_are_each_patch_min_and_max(shape, patch, odd):
    a = _values(shape, 1, odd)
    lo, hi = column_extremes(a, patch)
    with np.errstate(invalid="ignore"):
        for p, x in enumerate(split_patches(a, patch)):
            assert lo[p].tobytes() == x.min(axis=0).tobytes()
            assert hi[p].tobytes() == x.max(axis=0).tobytes()


@pytest.mark.parametrize("odd", [False, True])
@pytest.mark.parametrize("shape,patch", GRIDS)
@pytest.mark.parametrize("bounds", [Bounds(-0.2, 2.1), Bounds(0.3, 0.9), Bounds(1.0, 1.0)])
def test_scaled_patches_are_to_uint16_of_each_patch(shape, patch, odd, bounds):
    a = _values(shape, 2, odd)
    got = scaled_patches(a, patch, bounds.lo, bounds.hi)
    for p, x in enumerate(split_patches(a, patch)):
        want = to_uint16(x, bounds)
        assert got.images[p].tobytes() == want.tobytes()
        assert got.low[p].tolist() == want.min(axis=0).tolist()
        assert got.high[p].tolist() == want.max(axis=0).tolist()
        assert got.maxima[p].tobytes() == x.max(axis=0).tobytes()


@pytest.mark.parametrize("bounds", [Bounds(-0.2, 2.1), Bounds(1.0, 1.0)])
def test_a_column_of_nan_only_scales_to_zeros(bounds):
    a = _values((8, 6), 3, True)
    a[:, 1] = np.nan                                   # patch 0's column 1: NaN only
    a[4:, 4] = np.nan                                  # patch 3's column 1: NaN only
    a[:4, 4] = np.inf                                  # patch 2's column 1: inf only
    got = scaled_patches(a, (4, 3), bounds.lo, bounds.hi)
    lo, hi = column_extremes(a, (4, 3))
    with np.errstate(invalid="ignore"):
        for p, x in enumerate(split_patches(a, (4, 3))):
            want = to_uint16(x, bounds)
            assert got.images[p].tobytes() == want.tobytes()
            assert got.low[p].tolist() == want.min(axis=0).tolist()
            assert got.high[p].tolist() == want.max(axis=0).tolist()
            assert got.maxima[p].tobytes() == x.max(axis=0).tobytes()
            assert lo[p].tobytes() == x.min(axis=0).tobytes()
            assert hi[p].tobytes() == x.max(axis=0).tobytes()


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
@pytest.mark.parametrize("shape,patch", GRIDS)
@pytest.mark.parametrize("bounds", [Bounds(-0.2, 2.1), Bounds(0.3, 0.9), Bounds(1.0, 1.0)])
def test_normalised_row_kernels_are_the_kernels_of_the_normalised_row(
        shape, patch, dtype, bounds):
    r = np.random.default_rng(sum(shape))
    angles, columns = shape
    raw = (r.random((angles, 3, columns)) * 1200).astype(dtype)
    flat, dark = r.random((3, columns)) * 900 + 300, r.random((3, columns)) * 100
    if dtype == "float32":      # counts that are NaN or infinite, a flat that is NaN
        raw[0, 1, 0], raw[-1, 1, -1], raw[1, 1, 1], flat[1, 2] = np.nan, np.inf, -np.inf, np.nan
    want = flat_field_log(raw, flat, dark)
    sino = np.empty((angles, columns), np.float32)
    for k in range(3):
        got, same = normalised_scaled_patches(raw, k, pixel_constants(flat, dark), patch,
                                              bounds.lo, bounds.hi, sinogram=sino)
        assert same is sino and sino.tobytes() == want[k].tobytes()
        plain = scaled_patches(want[k], patch, bounds.lo, bounds.hi)
        for a, b in zip(got, plain):
            assert a.tobytes() == b.tobytes()
        lo, hi, same = normalised_column_extremes(raw, k, pixel_constants(flat, dark), patch,
                                                  sino)
        assert same is sino and sino.tobytes() == want[k].tobytes()
        assert [a.tobytes() for a in (lo, hi)] == [
            a.tobytes() for a in column_extremes(want[k], patch)]


def test_the_kernels_want_a_float32_sinogram():
    with pytest.raises(ValueError, match="need a 2-D float32 sinogram, got float64"):
        column_extremes(np.zeros((4, 4)), (2, 2))
    with pytest.raises(ValueError, match="larger than the sinogram"):
        scaled_patches(np.zeros((4, 4), np.float32), (5, 2), 0.0, 1.0)
