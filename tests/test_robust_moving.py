"""Sample features moving across the columns from row to row (nsgen.prep.robust_moving)."""

import numpy as np

from nsgen.prep import robust_moving, robust_scores
from nsgen.prep.robust_moving import moving
from nsgen.prep.stripe_robust import robust_stripe_mask


def offsets(n: int = 32, n_i: int = 96, seed: int = 0) -> np.ndarray:
    """Offsets ``(rows, columns + 1)`` of unit noise, robust scale 1 last."""
    q = np.random.default_rng(seed).normal(0, 1.0, (n, n_i + 1))
    q[:, n_i] = 1.0
    return q


def test_an_edge_moving_across_the_columns_moves_and_a_stripe_does_not():
    """An edge 4 columns wide moving one column per row (10 x the noise) moves in every row,
    the first included (neighbours on one side only); a stripe of the same height in the
    same columns of rows 3-8 does not, in any of its rows, nor a one-row stripe (noise
    columns scoring above LEVEL may match noise elsewhere: not asserted)."""
    q = offsets()
    for j in range(32):
        if j < 20:
            q[j, 10 + j:14 + j] -= 10.0
    q[3:9, 80:82] += 10.0
    q[20, 60] += 10.0
    z = q[:, :-1].copy()
    m = moving(q, z, 0, (0, 32), 15, 32)
    assert all(m[j, 10 + j:14 + j].all() for j in range(19))
    assert not m[:, 80:82].any() and not m[20, 60]


def test_moving_reads_only_the_rows_within_hd():
    """A chunk of rows with ``hd`` rows each side gives the same columns as the volume."""
    q = offsets(seed=1)
    for j in range(32):
        q[j, 20 + j:24 + j] += 8.0
    z = q[:, :-1].copy()
    whole = moving(q, z, 0, (0, 32), 15, 32)
    assert whole.any()
    assert np.array_equal(moving(q[:29], z[12:14], 0, (12, 14), 15, 32), whole[12:14])
    assert np.array_equal(moving(q[3:], z[18:20], 3, (18, 20), 15, 32), whole[18:20])
    assert not moving(q[:1], z[:1], 0, (0, 1), 0, 1).any()   # one row: nothing to compare


def test_a_sample_edge_moving_along_the_rows_is_no_stripe():
    """The turning point of a sample edge over the last third of the angles (growing over
    them, 2.4 x the pixel noise at most), one column further in each of rows 0-13 near the
    volume's first row, scores like a stripe over part of the scan there: without the
    moving test rows 0-13 are flagged; with it none of them but the rows of a real stripe
    (rows 3-8, column 70, 0.6 x the pixel noise), which is still found."""
    x = np.random.default_rng(0).normal(0, 0.01, (360, 32, 96)).astype(np.float32)
    for j in range(14):
        x[240:, j, 30 + j:34 + j] -= np.linspace(0, 0.024, 120, dtype=np.float32)[:, None]
    x[:, 3:9, 70] += 0.006
    m = robust_stripe_mask(x)
    assert np.flatnonzero(m.any(axis=(0, 2))).tolist() == [3, 4, 5, 6, 7, 8]
    assert np.flatnonzero(m.any(axis=(0, 1))).tolist() == [70]
    real = robust_scores.moving
    robust_scores.moving = lambda qs, z, *a: np.zeros(z.shape, bool)
    try:
        without = robust_stripe_mask(x)
    finally:
        robust_scores.moving = real
    assert without[:, 0:3].any() and without[:, 10:14].any()
    assert robust_moving.SPEED > robust_moving.STAYS
