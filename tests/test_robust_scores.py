"""Units of the robust detector's scores (nsgen.prep.robust_scores): few rows, few photons."""

import numpy as np

from nsgen.prep import robust_scores


def test_local_scale_leaves_a_stripes_own_columns_out():
    """The local scale of a window holding a stripe's 4 columns (6 x the rest) is the median
    of the other columns' ``|q|`` (taken again below LOCAL_CLIP scales); once, it is
    higher."""
    a = np.random.default_rng(0).uniform(0.5, 1.5, 64)
    q = a * np.resize([1.0, -1.0], 64)
    q[20:24] = 6.0
    s = robust_scores.local_scale(q)
    window = np.delete(np.abs(q[8:40]), np.arange(12, 16))   # tile 1's window, less 20-23
    assert np.allclose(s[16:32], 1.4826 * np.median(window.astype(np.float32)))
    once = 1.4826 * np.median(np.abs(q[8:40]).astype(np.float32))
    assert once > s[16] * 1.05


def test_local_scale_without_outliers_is_the_median():
    """Where no ``|q|`` exceeds LOCAL_CLIP scales, the second median is the first."""
    q = np.r_[np.full(64, 0.01), np.full(64, 0.001)] * np.resize([1, -1], 128)
    s = robust_scores.local_scale(q)
    assert np.allclose(s[:48], 0.014826) and np.allclose(s[-48:], 0.0014826)


def offsets_4_rows(n_i: int = 64) -> np.ndarray:
    """Offsets of a 4-row volume (``(rows, columns + 1)``, robust scale 1 last): ``|q|`` =
    0.6745 everywhere (local scale 1), a stripe of 8 in row 1 at column 10, and what a median
    of two rows (their mean) leaks of it into rows 0 and 2, of opposite signs there."""
    q = np.zeros((4, n_i + 1))
    q[:, :n_i] = 0.6745 * np.resize([1.0, -1.0], n_i)
    q[:, n_i] = 1.0
    q[1, 10], q[0, 10], q[2, 10] = 8.0, 4.0, -4.0
    return q


def test_two_compared_rows_give_no_spread_unit():
    """With 2 rows compared (hd 1), their MAD is no estimate and holds this row's own
    stripe: the score is the offset over the row's scales (spread 5.9 before: z 1.35)."""
    z = robust_scores.offset_scores(offsets_4_rows(), 0, (0, 4), 1, 4)
    assert np.isclose(z[1, 10], 8.0, rtol=1e-4)   # (the local scale is float32)


def test_three_compared_rows_give_a_spread_unit():
    """From SPREAD_ROWS compared rows on, the other rows' spread is part of the unit."""
    q = np.concatenate([offsets_4_rows(), offsets_4_rows()[3:]])   # 5 rows
    q[3, 10] = 0.0
    z = robust_scores.offset_scores(q, 0, (0, 5), 2, 5)   # row 1: rows 0, 2, 3 compared
    assert np.isclose(z[1, 10], 8.0 / (1.4826 * 4.0))     # their MAD about 0: 4
