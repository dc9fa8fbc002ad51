"""Tests of nsgen.prep.patches: crop rule (odd/even remainders), patch order, reassembly."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.prep.patches import crop_bounds, crop_to_multiple, split_patches


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
