"""Tests for nsgen.prep._robust_tall_jit: the row-alone path's edge medians are the numbers of
the NumPy formulation they replace."""

import numpy as np
import pytest

from nsgen.prep import _robust_tall_jit as rt
from nsgen.prep.robust_tall import odd_windows


def numpy_odd_median(x: np.ndarray, win: tuple[np.ndarray, np.ndarray, np.ndarray],
                     cols: np.ndarray) -> np.ndarray:
    """The NumPy formulation: each window gathered, point-reflected where flipped, its
    median."""
    idx, anchor, flip = (w[:, cols] for w in win)
    v = np.where(flip, 2 * x[..., anchor] - x[..., idx], x[..., idx])
    return np.median(v, axis=-2)


@pytest.mark.parametrize("n_i", [5, 8, 17, 18, 40, 301])
def test_odd_median_is_numpys_median_of_the_reflected_windows(n_i):
    """Every column, on a slope with noise (the reflected edges differ from a mirror), on
    two rows; bit for bit (no zeros among the values). Rows of fewer than 17 columns have
    windows of fewer (5 and 7 here)."""
    rng = np.random.default_rng(n_i)
    x = (np.linspace(1.0, 3.0, n_i)[None] * [[1.0], [-2.0]]
         + rng.normal(0, 0.05, (2, n_i))).astype(np.float32)
    win = odd_windows(n_i)
    cols = np.arange(n_i)
    out = np.empty((2, n_i), np.float32)
    rt.odd_median(x, *win, cols, out)
    assert out.tobytes() == numpy_odd_median(x, win, cols).astype(np.float32).tobytes()
    h = win[0].shape[0] // 2
    edge = np.r_[0:h, n_i - h:n_i]
    mirrored = np.median(x[:, win[0][:, edge]], axis=1)   # a plain mirror bends a slope
    assert not np.array_equal(out[:, edge], mirrored)


def test_odd_median_of_ties_and_nan():
    """Tied values give their value; a NaN in a window gives NaN there only."""
    n_i = 40
    x = np.round(np.random.default_rng(3).normal(0, 1, (1, n_i)), 0).astype(np.float32) + 5
    x[0, 30] = np.nan
    win = odd_windows(n_i)
    cols = np.array([0, 5, 21, 30, 38, 39])    # 38's window reaches 30, 39's does not
    out = np.empty((1, cols.size), np.float32)
    rt.odd_median(x, *win, cols, out)
    assert np.isnan(out[0]).tolist() == [False, False, False, True, True, False]
    np.testing.assert_array_equal(out, numpy_odd_median(x, win, cols))
