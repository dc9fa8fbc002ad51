"""Tests for nsgen.prep._robust_offsets_jit: the offsets kernels give the same numbers as the
NumPy/SciPy formulation of the robust detector's steps (per-rank median of the other rows,
median filter across columns with mirrored edges, means over ranks, spreads and scales)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from nsgen.prep import _robust_jit as rj, _robust_offsets_jit as ro
from nsgen.prep.robust_scores import mirror_table as _mirror_table, rank_index as _rank_index

#: ranked_rows' arguments for no angle bins
NO_BINS = (np.zeros(1, np.intp), 0, np.empty((0, 0, 0), np.float32))


@pytest.mark.parametrize("n_i", [1, 2, 3, 5, 17, 40])
def test_mirror_table_is_scipys_mirror_mode(n_i):
    m = _mirror_table(n_i)
    v = np.arange(n_i, dtype=float) ** 2 + 1
    h = m.shape[0] // 2
    for o in range(m.shape[0]):  # a shift filter picks the same neighbour as the table
        kern = np.zeros(m.shape[0])
        kern[m.shape[0] - 1 - o] = 1
        want = ndimage.convolve1d(v, kern, mode="mirror", origin=0)
        assert np.array_equal(v[m[o]], want), (o, h)


def reference_offsets(srt, i, others, h):
    """NumPy/SciPy form: ranks minus the per-rank median of the other rows, minus its
    median across 2h+1 columns (mirror), each averaged over the ranks in float64."""
    d = srt[i] - np.median(srt[others], axis=0) if others else srt[i]
    smooth = ndimage.median_filter(d, size=(1, 2 * h + 1), mode="mirror")
    return d.mean(axis=0, dtype=np.float64) - smooth.mean(axis=0, dtype=np.float64)


@pytest.mark.parametrize("n_others", [0, 2, 3, 6])
def test_kernels_equal_the_numpy_formulation(n_others):
    rng = np.random.default_rng(7)
    x = rng.normal(0, 0.01, (97, 8, 45)).astype(np.float32)
    x[:, 2, 10:13] += 0.02
    idx = _rank_index(97)
    srt = np.empty((8, idx.size, 45), np.float32)
    rj.ranked_rows(x, 0, 97, *rj.sort_plan(97), idx, srt, *NO_BINS)
    assert np.array_equal(srt, np.sort(x, axis=0)[idx].transpose(1, 0, 2))
    mir = _mirror_table(45)
    o_lo, o_hi = (1 - (n_others > 2), 2 + n_others - (n_others > 2)) if n_others else (0, 0)
    others = [o for o in range(o_lo, o_hi) if o != 1]
    assert len(others) == n_others
    q = np.empty(45)
    args = (srt, srt, 1, o_lo, o_hi, rj.network(len(others)), mir, rj.network(mir.shape[0]))
    ro.row_offsets(*args, q, np.empty(0))
    assert np.array_equal(q, reference_offsets(srt, 1, others, mir.shape[0] // 2))
    cons = np.empty(45)
    ro.row_offsets(*args, q, cons)   # the offsets the same with the consistency asked for
    assert np.array_equal(q, reference_offsets(srt, 1, others, mir.shape[0] // 2))
    assert np.allclose(cons, reference_consistency(srt, 1, others, mir.shape[0] // 2),
                       rtol=1e-6, atol=0)


def reference_consistency(srt, i, others, h):
    """NumPy/SciPy form of the rank consistency: ``|mean| / std`` over the ranks of the
    residual of :func:`reference_offsets` (ranks less the other rows' median, less its
    median across columns)."""
    d = srt[i] - np.median(srt[others], axis=0) if others else srt[i]
    res = d.astype(np.float64) - ndimage.median_filter(d, size=(1, 2 * h + 1), mode="mirror")
    return np.abs(res.mean(axis=0)) / np.maximum(res.std(axis=0), 1e-12)


def test_consistency_of_a_constant_shift_and_of_one_rank():
    """A column shifted alike at every rank has no spread over the ranks (the largest
    consistency, |q| / 1e-12); one shifted at one rank of 4 only has |mean| / std =
    (a / 4) / (a sqrt(3) / 4) = 1 / sqrt(3)."""
    srt = np.zeros((1, 4, 20), np.float32)
    srt[0, :, 5] = 0.5
    srt[0, 2, 12] = 0.5
    mir = _mirror_table(20)
    q, cons = np.empty(20), np.empty(20)
    ro.row_offsets(srt, srt, 0, 0, 0, np.empty((0, 2), np.int64), mir,
                   rj.network(mir.shape[0]), q, cons)
    assert q[5] == 0.5 and cons[5] == 0.5 / 1e-12
    assert q[12] == 0.125 and np.isclose(cons[12], 1 / np.sqrt(3))
    assert (cons[q == 0] == 0).all()


@pytest.mark.parametrize("m", [2, 6, 29, 30, 31])
def test_spread_is_scaled_mad_over_rows(m):
    """The buffered network and the register kernel (30 rows) give NumPy's numbers, ties
    and signed zeros included."""
    q = np.random.default_rng(m).normal(size=(m, 67))
    q[:, :5] = np.round(q[:, :5])      # ties, and zero deviations
    q[: m // 2, 5] = -0.0
    q[m // 2:, 5] = 0.0
    q[:, 6] = 1e300 * np.sign(q[:, 6])  # large values
    want = 1.4826 * np.median(np.abs(q - np.median(q, axis=0)), axis=0)
    out = np.empty(67)
    ro.spread(q.copy(), rj.network(m), out)
    assert np.array_equal(out, want)


@pytest.mark.parametrize("n_others", [2, 7, 15, 16, 29, 30, 31, 34])
@pytest.mark.parametrize("n_i", [9, 45, 46])
def test_row_offsets_equal_the_numpy_formulation(n_others, n_i):
    """The register kernels (up to 30 other rows, 17 columns of window) and the buffered
    ones (more rows; narrower windows) give NumPy's medians."""
    rng = np.random.default_rng(n_others)
    srt = rng.normal(0, 0.01, (n_others + 1, 5, n_i)).astype(np.float32)
    srt[:, 2, :4] = 0.0  # ties
    mir = _mirror_table(n_i)
    i = n_others // 3
    others = [o for o in range(n_others + 1) if o != i]
    q = np.empty(n_i)
    ro.row_offsets(srt, srt, i, 0, n_others + 1, rj.network(n_others), mir,
                   rj.network(mir.shape[0]), q, np.empty(0))
    assert np.array_equal(q, reference_offsets(srt, i, others, mir.shape[0] // 2))


def test_row_offsets_pair_equal_single_rows():
    rng = np.random.default_rng(11)
    srt = rng.normal(0, 0.01, (33, 4, 40)).astype(np.float32)
    srt[:, 1, :5] = 0.0  # ties
    bg = srt.copy()
    bg[3] += 0.5   # a background that differs from the ranks
    mir = _mirror_table(40)
    q = np.empty((2, 40))
    c = np.empty((2, 40))
    ro.row_offsets_pair(srt, bg, 15, 15, mir, rj.network(17), q[0], q[1], c[0], c[1])
    for k, i in enumerate((15, 16)):
        want, want_c = np.empty(40), np.empty(40)
        ro.row_offsets(srt, bg, i, i - 15, i + 16, rj.network(30), mir, rj.network(17), want,
                       want_c)
        assert np.array_equal(q[k], want) and np.array_equal(c[k], want_c)
    others = [o for o in range(1, 32) if o != 16]
    assert np.array_equal(q[1], reference_offsets(np.where(np.arange(33)[:, None, None] == 16,
                                                           srt, bg), 16, others, 8))


def reference_robust_scale(q):
    """NumPy form: 1.4826 x the MAD of the non-zero values (0 for at most 8), >= 1e-12."""
    nz = q[q != 0]
    s = 1.4826 * np.median(np.abs(nz - np.median(nz))) if nz.size > 8 else 0.0
    return max(float(s), 1e-12)


@pytest.mark.parametrize("n", [0, 8, 9, 10, 17, 2560, 2561])
def test_robust_scale_equals_numpys(n):
    rng = np.random.default_rng(n)
    q = rng.normal(0, 0.01, n)
    q[::5] = 0.0                      # zeros left out
    q[1::7] = -0.0
    q[2::11] = np.round(q[2::11], 2)  # ties
    assert ro.robust_scale(q) == reference_robust_scale(q)
    assert ro.robust_scale(np.ones(n)) == reference_robust_scale(np.ones(n)) == 1e-12


@pytest.mark.parametrize("n_i", [9, 45, 300])
def test_strong_columns_equal_the_row_alone_loop(n_i):
    """The kernel's flags are |q| > 150 robust scales of each row's offsets alone (no other
    rows), as the NumPy formulation."""
    from nsgen.prep.robust_scores import STRONG, strong_columns
    rng = np.random.default_rng(n_i)
    srt = np.sort(rng.normal(0, 0.01, (4, 32, n_i)).astype(np.float32), axis=1)
    srt[1, :, 5] += 50.0            # a dead column
    srt[2, :, 3:5] -= 3.0           # and a pair
    srt[3] = 0.0                    # a row of zeros (scale 1e-12)
    mir = _mirror_table(n_i)
    want = np.empty((4, n_i), bool)
    for j in range(4):
        q = reference_offsets(srt, j, [], mir.shape[0] // 2)
        want[j] = np.abs(q) > STRONG * reference_robust_scale(q)
    got = strong_columns(srt)
    assert np.array_equal(got, want) and got[1, 5] and got[2, 3:5].all()


@pytest.mark.parametrize("n_i", [1, 2, 9, 16, 17, 18, 19, 20, 21, 23, 24, 33, 255, 2560, 2563])
def test_column_median_equals_numpys(n_i):
    """The 17-column running median (the inner columns four at a time, the others sorted
    side by side) of rows with and without ties: NumPy's median of each mirrored window."""
    rng = np.random.default_rng(n_i)
    mir = _mirror_table(n_i)
    for d in (rng.normal(size=n_i).astype(np.float32),
              rng.integers(0, 4, n_i).astype(np.float32)):
        out = np.empty(n_i, np.float32)
        ro._column_median(d, mir, rj.network(mir.shape[0]),
                           np.empty((mir.shape[0], n_i), np.float32),
                           np.empty((4, n_i // 2 + 1), np.float32), out)
        assert np.array_equal(out, np.median(d[mir], axis=0).astype(np.float32))


def _signed_zero_ties(x: np.ndarray) -> np.ndarray:
    """``x`` with ties of both zeros (and of other values) in some columns."""
    x = x.copy()
    x[..., 3::7] = 0.0
    x[..., 5::11] = -0.0
    x[..., 6::13] = np.round(x[..., 6::13], 1)
    return x


@pytest.mark.parametrize("n_i", [17, 18, 19, 20, 21, 23, 24, 33, 255, 2560, 2563])
def test_median17_equals_numpys(n_i):
    """The four-window kernel at every column (mirrored edges dealt into its phases):
    NumPy's median of each mirrored window, bit for bit without zeros, equal values with
    ties of +0.0 and -0.0 (the sign of such a zero may differ: no sum sees it)."""
    rng = np.random.default_rng(n_i)
    mir = _mirror_table(n_i)
    base = rng.normal(size=n_i).astype(np.float32)
    for d, bits in ((base, True), (rng.integers(1, 4, n_i).astype(np.float32), True),
                    (_signed_zero_ties(base), False)):
        out = np.full(n_i, np.nan, np.float32)
        ro._median17(d, np.empty(ro.median17_buffer(n_i), np.float32), out)
        want = np.median(d[mir], axis=0).astype(np.float32)
        assert np.array_equal(out, want)
        assert not bits or out.tobytes() == want.tobytes()


@pytest.mark.parametrize("n", [7, 1023, 1024, 1025, 2560, 2561, 6000])
def test_median_equals_numpys(n):
    """:func:`_robust_offsets_jit._median` (a bracket from a sample, one pass, a selection among
    the values bracketed): NumPy's median bit for bit, with ties, sorted and reversed
    values, a heavy tail and a bracket that misses (mostly equal values)."""
    rng = np.random.default_rng(n)
    x = rng.normal(size=n)
    cases = [x, np.round(x * 3) + 0.5, np.sort(x), np.sort(x)[::-1].copy(),
             np.abs(rng.standard_cauchy(n)), np.where(np.arange(n) % 9 == 0, x, 1.5)]
    for a in cases:
        keep = a.copy()
        assert np.float64(ro._median(a)).tobytes() == np.float64(np.median(a)).tobytes()
        assert np.array_equal(a, keep)   # (read only)


@pytest.mark.parametrize("n_i", [40, 300, 2563])
def test_row_offsets_group_equal_single_rows(n_i):
    """3 rows' offsets at once (their shared background's middle ranks merged with each
    row's own rows) equal each row's alone bit for bit, rank consistency included, with
    ties of both zeros in the ranks and a background that differs from them; and NumPy's."""
    rng = np.random.default_rng(n_i)
    srt = _signed_zero_ties(rng.normal(0, 0.01, (40, 4, n_i)).astype(np.float32))
    srt[:, 2, :6] = 0.0
    srt[20, 1, 7:9] = -0.0          # a zero row value against zero medians
    bg = srt.copy()
    bg[3] += 0.5
    bg[30, :, 10] -= 0.25
    mir = _mirror_table(n_i)
    q = np.empty((3, n_i))
    c = np.empty((3, n_i))
    ro.row_offsets_group(srt, bg, 17, 15, mir, rj.network(17), q, c)
    for k, i in enumerate((17, 18, 19)):
        want, want_c = np.empty(n_i), np.empty(n_i)
        ro.row_offsets(srt, bg, i, i - 15, i + 16, rj.network(30), mir, rj.network(17), want,
                       want_c)
        assert q[k].tobytes() == want.tobytes() and c[k].tobytes() == want_c.tobytes()
        others = [o for o in range(i - 15, i + 16) if o != i]
        own = np.where(np.arange(40)[:, None, None] == i, srt, bg)
        assert np.array_equal(q[k], reference_offsets(own, i, others, 8))
    none = np.empty((3, 0))
    ro.row_offsets_group(srt, bg, 17, 15, mir, rj.network(17), c, none)  # no consistency
    assert c.tobytes() == q.tobytes()


def test_offsets_of_a_block_equal_row_by_row():
    """:func:`robust_scores.offsets` (groups of 3 rows, pairs, single rows near the
    volume's ends) equals each row's :func:`row_offsets` alone, bit for bit."""
    from nsgen.prep.robust_scores import _robust_scale, _window, offsets
    rng = np.random.default_rng(3)
    n_rows, n_i = 48, 301
    srt = np.sort(_signed_zero_ties(rng.normal(0, 0.01, (n_rows, 8, n_i)).astype(np.float32)),
                  axis=1)
    strong = np.zeros((n_rows, n_i), bool)
    strong[5, 40] = strong[22, 41:43] = True
    srt[5, :, 40] += 9.0
    srt[22, :, 41:43] -= 7.0
    bg = srt.copy()
    for r in (5, 22):
        from nsgen.prep.robust_scores import _interpolate
        _interpolate(bg[r], strong[r])
    mir = _mirror_table(n_i)
    for r0, r1 in ((0, 48), (14, 33), (16, 23), (15, 17), (30, 48)):
        cons = np.empty((r1 - r0, n_i))
        got = offsets(srt, strong, r0, r1, 0, 15, n_rows, cons)
        for n, i in enumerate(range(r0, r1)):
            others = _window(i, 15, n_rows)
            o_lo, o_hi = (others[0], others[-1] + 1) if others else (0, 0)
            want, want_c = np.empty(n_i), np.empty(n_i)
            ro.row_offsets(srt, bg, i, o_lo, o_hi, rj.network(len(others)), mir,
                           rj.network(17), want, want_c)
            assert got[n, :n_i].tobytes() == want.tobytes()
            assert cons[n].tobytes() == want_c.tobytes()
            assert got[n, n_i] == _robust_scale(want)
