"""The decision's compiled kernels give NumPy's flags and scores exactly."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.prep import _robust_decide_jit as rdj
from nsgen.prep.robust_pool import drop_bias, pool_columns
from nsgen.prep.robust_scores import HALF_WINDOW


def numpy_drop_bias(z: np.ndarray, threshold: float) -> np.ndarray:
    """The NumPy formulation the kernel replaces."""
    flag = np.abs(z) > threshold
    strong = np.where(flag, np.abs(z), 0.0)
    signed = np.where(flag, np.sign(z), 0.0)
    for d in range(1, HALF_WINDOW + 1):
        for shift in (d, -d):
            other = np.roll(strong, shift, axis=1)
            other_sign = np.roll(signed, shift, axis=1)
            if shift > 0:
                other[:, :shift] = 0
            else:
                other[:, shift:] = 0
            flag &= ~((other > np.abs(z)) & (other_sign == -np.sign(z)))
    return flag


def numpy_pool(z: np.ndarray, floor: float, width: int) -> np.ndarray:
    """The NumPy formulation the kernel replaces."""
    n_i = z.shape[1]
    best = z.copy()
    for sign in (1.0, -1.0):
        s = np.where(sign * z > floor, sign * z, 0.0)
        ok = s > 0
        tot = s.copy()
        run = ok.copy()
        for w in range(2, min(width, n_i) + 1):
            m = n_i - w + 1
            tot = tot[:, :m] + s[:, w - 1:]
            run = run[:, :m] & ok[:, w - 1:]
            sc = np.where(run, tot / np.sqrt(w), 0.0)
            for k in range(w):
                seg = best[:, k:k + m]
                np.copyto(seg, sign * sc, where=sc > np.abs(seg))
    return best


def score_maps(seed: int) -> list[np.ndarray]:
    """Score maps with stripes of both signs side by side, ties, zeros, NaN and narrow
    rows (fewer columns than the window)."""
    rng = np.random.default_rng(seed)
    maps = [rng.normal(0, 4, (6, 200)), np.round(rng.normal(0, 6, (5, 64))),
            rng.normal(0, 8, (3, 5)), rng.normal(0, 8, (2, 1)), np.zeros((2, 30))]
    z = maps[0]
    z[1, 50:54] = [9.0, -12.0, 9.0, 12.0]
    z[2, 10:13] = 7.0
    z[3, 0], z[3, -1] = np.nan, -np.inf
    return maps


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_drop_bias_equals_numpy(seed: int) -> None:
    for z in score_maps(seed):
        for threshold in (5.0, 2.2 * 5.0, 0.5):
            assert np.array_equal(drop_bias(z, threshold), numpy_drop_bias(z, threshold))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pool_equals_numpy(seed: int) -> None:
    for z in score_maps(seed):
        for floor, width in ((3.0, 5), (4.0, 5), (2.0, 3), (1.0, 1)):
            got, want = pool_columns(z, floor, width), numpy_pool(z, floor, width)
            assert got.dtype == want.dtype
            assert np.array_equal(got, want, equal_nan=True)


def test_kernels_fill_their_outputs() -> None:
    z = np.array([[0.0, 6.0, -7.0, 0.0, 4.0, 4.0]])
    flag = np.ones(z.shape, bool)
    rdj.drop_bias(z, 5.0, 8, flag)
    assert flag.tolist() == [[False, False, True, False, False, False]]
    best = np.full(z.shape, np.nan)
    rdj.pool_columns(z, 3.0, 5, best)
    assert best.round(3).tolist() == [[0.0, 6.0, -7.0, 0.0, 5.657, 5.657]]


@pytest.mark.parametrize("n_b", [2, 3, 6, 7])
def test_run_scores_equal_the_numpy_loops_bit_for_bit(n_b):
    """Runs of blocks of noisy scores (many runs above the level, both signs, ties and
    NaN): the kernel's scores equal the NumPy loops' bit for bit."""
    from nsgen.prep.robust_angles import _run_scores, run_scores
    rng = np.random.default_rng(n_b)
    zb = rng.normal(0.0, 3.0, (n_b, 40, 300))
    zb[:, 5, :10] = 4.0                      # equal blocks: equal runs
    zb[1, 6, :10] = np.nan
    zb[:, 7, :10] = -np.inf
    for level in (3.0, 0.5):
        want = _run_scores(zb, level)
        got = run_scores(zb, level)
        assert got.dtype == want.dtype and np.array_equal(got.view(np.int64),
                                                          want.view(np.int64))
    assert np.array_equal(run_scores(np.zeros((n_b, 2, 3)), 3.0), np.zeros((n_b, 2, 3)))


@pytest.mark.parametrize("n_b", [1, 5, 6])
def test_median_signed_equals_numpy_median(n_b):
    """``median(sign(z) * zb, axis=0)``: the same values (NaN where NumPy's is; zeros of
    either sign, which no comparison tells apart)."""
    from nsgen.prep.robust_pool import median_signed
    rng = np.random.default_rng(10 + n_b)
    zb = rng.normal(0.0, 3.0, (n_b, 30, 200))
    z = rng.normal(0.0, 3.0, (30, 200))
    z[0, :20] = 0.0
    z[1, :5] = np.nan
    zb[0, 2, :5] = np.nan
    zb[:, 3, :5] = 2.5                       # ties
    want = np.median(np.sign(z) * zb, axis=0)
    got = median_signed(z, zb)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.array_equal(got[~np.isnan(got)], want[~np.isnan(want)])


@pytest.mark.parametrize("n", [2, 3, 4, 9, 255, 256])
def test_mad_without_is_numpys(n: int):
    """The median deviation of all values but one: NumPy's ``np.median(np.abs(o -
    np.median(o)))`` of ``np.delete(v, k)`` (odd and even counts, ties, zeros of both
    signs), NaN where a value left in is NaN (one left out is not)."""
    rng = np.random.default_rng(n)
    for _ in range(200):
        v = rng.normal(size=n)
        if rng.random() < 0.4:
            v = np.round(v)
        if rng.random() < 0.3:
            v[rng.integers(0, n, 2)] = -0.0
        k = int(rng.integers(0, n))
        o = np.delete(v, k)
        want = np.median(np.abs(o - np.median(o)))
        assert rdj.mad_without(v, k) == want
    v = np.array([1.0, np.nan, 2.0, 4.0])
    assert np.isnan(rdj.mad_without(v, 0)) and rdj.mad_without(v, 1) == 1.0
