"""Units of the robust detector's scores (nsgen.prep.robust_scores): few rows, few photons."""

import numpy as np

from nsgen.prep import robust_scores


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
