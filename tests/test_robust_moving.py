"""Sample features moving across the columns from row to row (nsgen.prep.robust_moving)."""

import numpy as np
import pytest

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


# the NumPy formulation the compiled runs replace (the reference of the test below)
def _means(cs: np.ndarray, c0: np.ndarray, c1: np.ndarray, n_i: int) -> np.ndarray:
    """Means ``(runs, 2 robust_moving.LAG + 1)`` over the columns ``c0 + L .. c1 + L`` of the rows whose
    cumulative sums are ``cs`` ``(runs, columns + 1)`` (``nan`` where the displaced run
    leaves the row)."""
    lags = np.arange(-robust_moving.LAG, robust_moving.LAG + 1)
    a, b = c0[:, None] + lags, c1[:, None] + lags
    ok = (a >= 0) & (b <= n_i)
    m = (np.take_along_axis(cs, np.clip(b, 0, n_i), 1)
         - np.take_along_axis(cs, np.clip(a, 0, n_i), 1)) / (c1 - c0)[:, None]
    return np.where(ok, m, np.nan)


def _best(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per run, of the displaced means ``m`` ``(runs, 2 robust_moving.LAG + 1)`` (``nan`` off the row):
    the best mean, its displacement in columns (refined by a parabola through the best
    three), and whether it lies inside the search (not at its end or the row's)."""
    mm = np.where(np.isnan(m), -np.inf, m)
    k = np.argmax(mm, axis=1)
    r = np.arange(m.shape[0])
    best = mm[r, k]
    lo, hi = mm[r, np.maximum(k - 1, 0)], mm[r, np.minimum(k + 1, m.shape[1] - 1)]
    inner = (k > 0) & (k < m.shape[1] - 1) & np.isfinite(lo) & np.isfinite(hi)
    lo, hi = np.where(inner, lo, best), np.where(inner, hi, best)
    curv = lo - 2 * best + hi
    frac = np.where(curv < 0, 0.5 * (lo - hi) / np.where(curv < 0, curv, -1.0), 0.0)
    return best, k - robust_moving.LAG + np.clip(frac, -0.5, 0.5), inner


def numpy_moving(qs, z, q_lo, rows, hd, n_rows_total):
    """moving() as NumPy computed it."""
    m = robust_moving
    start, stop = rows
    n_i = qs.shape[1] - 1
    out = np.zeros((stop - start, n_i), bool)
    reach = min(m.ROWS, hd)
    if reach < 1:
        return out
    cs = np.zeros((qs.shape[0], n_i + 1))
    np.cumsum(qs[:, :n_i], axis=1, out=cs[:, 1:])
    steps = [d for d in range(-reach, reach + 1) if d]
    pad = np.zeros((stop - start, 1), bool)
    for sign in (1.0, -1.0):
        c0, c1 = m.runs(np.hstack([sign * z > m.EXTENT, pad]).ravel())
        cz = np.r_[0, np.cumsum(np.hstack([sign * z > m.LEVEL, pad]).ravel())]
        top = cz[c1] > cz[c0]
        c0, c1 = c0[top], c1[top]
        if not c0.size:
            continue
        j, c0 = np.divmod(c0, n_i + 1)
        c1 = c1 - j * (n_i + 1)
        j = j + start
        own = sign * (cs[j - q_lo, c1] - cs[j - q_lo, c0]) / (c1 - c0)
        speeds = np.full((len(steps), c0.size), np.nan)
        for n, dj in enumerate(steps):
            inside = (j + dj >= 0) & (j + dj < n_rows_total)
            rr = np.clip(j + dj, 0, n_rows_total - 1) - q_lo
            best, shift, inner = _best(sign * _means(cs[np.clip(rr, 0, cs.shape[0] - 1)],
                                                     c0, c1, n_i))
            hold = inside & inner & (best >= m.FOUND * own) & (best <= own / m.FOUND)
            speeds[n, hold] = shift[hold] / dj
        ok = np.isfinite(speeds).sum(axis=0) >= m.MIN_ROWS
        ok &= ~(np.abs(speeds[[reach - 1, reach]]) < m.STAYS).any(axis=0)
        v = np.zeros(c0.size)
        v[ok] = np.nanmedian(speeds[:, ok], axis=0)
        fast = np.abs(v) >= m.SPEED
        for r, a, b in zip(j[fast], c0[fast], c1[fast]):
            out[r - start, a:b] = True
    return out


@pytest.mark.parametrize("seed", range(6))
def test_compiled_runs_equal_the_numpy_formulation(seed):
    """moving() gives the NumPy formulation's flags: edges moving at several speeds and
    directions, stripes, noise, the volume's ends and chunks inside it."""
    rng = np.random.default_rng(seed)
    n, n_i = 24, 96
    q = 0.001 * rng.standard_normal((n, n_i + 1))
    q[:, n_i] = 0.001
    for j in range(n):
        c = 10 + (j * (seed % 3 + 1)) // 2
        q[j, c:c + 4] -= 0.01 * (1 + 0.1 * rng.standard_normal())
        q[j, 70 - j // 2:73 - j // 2] += 0.008
    q[5:15, 50:52] += 0.01
    q[:, 30] = np.round(q[:, 30], 3)   # ties among the displaced means
    z = q[:, :n_i] / 0.001 * (1 + 0.5 * rng.random((n, n_i)))
    for hd, rows in ((5, (0, n)), (3, (4, 20)), (15, (0, n)), (1, (0, n)), (0, (0, n))):
        lo, hi = max(0, rows[0] - hd), min(n, rows[1] + hd)
        zz = z[rows[0]:rows[1]]
        got = moving(q[lo:hi], zz, lo, rows, hd, n)
        assert np.array_equal(got, numpy_moving(q[lo:hi], zz, lo, rows, hd, n))
