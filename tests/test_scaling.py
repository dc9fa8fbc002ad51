"""nsgen.prep.scaling: the compiled to_uint16 gives NumPy's integers exactly."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.prep.scaling import COMPILED_SIZE, UINT16_MAX, Bounds, to_uint16


def numpy_uint16(x: np.ndarray, bounds: Bounds) -> np.ndarray:
    """The definition: float64 scale, clip, NaN -> 0, round half to even."""
    with np.errstate(over="ignore", invalid="ignore"):
        y = (np.asarray(x, dtype=np.float64) - bounds.lo) * (UINT16_MAX / (bounds.hi - bounds.lo))
    np.clip(y, 0, UINT16_MAX, out=y)
    y[np.isnan(y)] = 0
    return np.rint(y).astype(np.uint16)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_path_equals_the_numpy_definition(dtype):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((300, 700)) * 0.7 + 0.5).astype(dtype)
    x[0, :6] = [np.nan, np.inf, -np.inf, -0.0, 0.5, 1e30]
    halves = np.arange(-3.0, 66000.0, 0.5, dtype=dtype)[:130000].reshape(130, 1000)
    assert x.size >= COMPILED_SIZE and halves.size >= COMPILED_SIZE
    cases = [(x, Bounds(-0.2, 1.3)), (x[:, 100:356], Bounds(0.1, 0.9)), (x.T, Bounds(-1, 2)),
             (halves, Bounds(0.0, 65535.0)),            # every .5: ties go to even
             (halves, Bounds(-1e-300, 1e-300)),         # the scale overflows to inf
             (x, Bounds(0.49999, 0.5))]
    for values, bounds in cases:
        got = to_uint16(values, bounds)
        assert got.dtype == np.uint16 and got.shape == values.shape
        assert np.array_equal(got, numpy_uint16(values, bounds))
    assert to_uint16(halves, Bounds(0.0, 65535.0))[0, :8].tolist() == [0, 0, 0, 0, 0, 0, 0, 0]
    assert to_uint16(halves, Bounds(0.0, 65535.0))[0, 6:12].tolist() == [0, 0, 1, 2, 2, 2]


def test_small_and_degenerate_inputs():
    assert to_uint16(np.array([0.0, 0.5, 1.0, np.nan]), Bounds(0, 1)).tolist() == [0, 32768,
                                                                                   65535, 0]
    assert to_uint16(np.ones((80, 80)), Bounds(1, 1)).max() == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_numpy_blocks_equal_the_definition(dtype):
    """to_uint16_blocks (NumPy, a block at a time) gives the definition's integers, across
    block edges, with NaN, infinities, ties and overflowing scales."""
    from nsgen.prep.scaling import BLOCK, to_uint16_blocks
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((3, BLOCK // 2 + 7)) * 0.7 + 0.5)
    if dtype is np.int32:
        x = (x * 1000).astype(dtype)
    else:
        x = x.astype(dtype)
        x[0, :6] = [np.nan, np.inf, -np.inf, -0.0, 0.5, 1e30]
    halves = np.arange(-3.0, 66000.0, 0.5)[:130000].reshape(130, 1000).astype(np.float64)
    cases = [(x, Bounds(-0.2, 1.3)), (x[:, 100:356], Bounds(0.1, 0.9)), (x.T, Bounds(-1, 2)),
             (x, Bounds(-300.0, 900.0)), (halves, Bounds(0.0, 65535.0)),
             (halves, Bounds(-1e-300, 1e-300)), (x, Bounds(0.49999, 0.5)), (x[:0], Bounds(0, 1)),
             (x, Bounds(1.0, 1.0))]
    for values, bounds in cases:
        with np.errstate(over="ignore", invalid="ignore"):   # the overflowing scale
            got = to_uint16_blocks(values, bounds)
        assert got.dtype == np.uint16 and got.shape == values.shape
        if bounds.hi > bounds.lo:
            assert np.array_equal(got, numpy_uint16(values, bounds))
        else:
            assert not got.any()
