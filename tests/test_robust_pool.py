"""nsgen.prep.robust_pool: scores pooled over a defect's rows and rectangles of rows and
columns (the compiled steps against NumPy: test_robust_decide_jit, test_robust_rect)."""

from __future__ import annotations

import numpy as np

from nsgen.prep.robust_pool import ROW_POOL_CAP, pool_rect, pool_rows


def test_the_rows_of_a_defect_add_their_evidence():
    """pool_rows: a defect over several rows (each below the bar alone) is
    pooled over its rows, ``sum / sqrt(rows)``; a row alone and rows below the floor keep
    their own scores; a row beside a far stronger one takes it at most ROW_POOL_CAP times
    its own; a chunk's rows (with ``hd`` rows each side) pool as the whole volume's."""
    n, hd = 12, 5
    q = np.zeros((n, 5))
    q[:, 4] = 1.0                           # 4 columns in units of the robust scale 1
    q[3:7, 1] = [3.5, 4.0, 3.2, 3.6]        # a defect over rows 3-6
    q[3:7, 0] = -2.9                        # below the floor in every row
    q[9, 2] = 4.5                           # one row alone
    q[1, 3], q[2, 3] = 3.5, 40.0            # a row beside a strong defect
    z = q[:, :4].copy()
    p = pool_rows(q, z, 0, (0, n), hd, n)
    assert np.allclose(p[3:7, 1], 14.3 / 2)
    assert np.array_equal(p[:, [0, 2]], z[:, [0, 2]])
    assert np.isclose(p[1, 3], (3.5 + ROW_POOL_CAP * 3.5) / np.sqrt(2))
    assert p[2, 3] == 40.0
    assert np.array_equal(np.delete(p, [3, 4, 5, 6], axis=0)[:, 1], np.zeros(n - 4))
    assert np.array_equal(pool_rows(q[:11], z[4:6], 0, (4, 6), hd, n), p[4:6])


def test_rectangles_pool_rows_and_columns_whose_ranks_agree():
    """pool_rect: sum / sqrt(n) over the strongest rectangle of at least 2 rows and
    RECT_MIN values above RECT_FLOOR with one sign; below ROW_POOL_FLOOR a value counts only
    where its ranks agree; other values in this row's unit, none above ROW_POOL_CAP x |z|;
    one row alone is no rectangle."""
    q = np.zeros((7, 9))
    q[:, 8] = 1.0                      # robust scale 1: z = q
    q[2:5, 3:5] = 2.5                  # 3 rows x 2 columns at 2.5
    cons = np.full((7, 8), 10.0)
    out = pool_rect(q, q[:, :8].copy(), cons, 0, (0, 7), 3, 7)
    assert np.allclose(out[2:5, 3:5], 15 / np.sqrt(6))
    assert np.array_equal(np.delete(out, [3, 4], axis=1)[2:5], np.zeros((3, 6)))
    low = cons.copy()
    low[3, 4] = 1.0     # its ranks disagree: no rectangle of 4 values without it is left
    out = pool_rect(q, q[:, :8].copy(), low, 0, (0, 7), 3, 7)
    assert np.array_equal(out, q[:, :8])
    q[3, 4] = 4.5       # above the rows' floor it counts without its ranks' agreement ...
    out = pool_rect(q, q[:, :8].copy(), low, 0, (0, 7), 3, 7)
    assert np.isclose(out[2, 3], (5 * 2.5 + 4.5) / np.sqrt(6))
    q[3, 4] = 9.0       # ... but not above 2 x 2.5: another defect's value (a dead column's)
    out = pool_rect(q, q[:, :8].copy(), low, 0, (0, 7), 3, 7)
    assert out[2, 3] == 2.5 and out[3, 4] == 9.0
    one_row = np.zeros((7, 9))
    one_row[:, 8] = 1.0
    one_row[3, 1:6] = 2.5              # one row's columns: no rectangle (they are pool_columns')
    out = pool_rect(one_row, one_row[:, :8].copy(), cons, 0, (0, 7), 3, 7)
    assert np.array_equal(out, one_row[:, :8])
