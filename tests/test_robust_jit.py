"""Tests for nsgen.prep._robust_jit: the ranking kernels (sorting networks along the angles,
the angle-bin means on the way) give the same numbers as the NumPy formulation of the robust
detector's step 1 (sort, ranks, pooled ranks, means over angle bins)."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.prep import _robust_jit as rj
from nsgen.prep.robust_scores import rank_index as _rank_index

NO_BINS = (np.zeros(1, np.intp), 0, np.empty((0, 0, 0), np.float32))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 17, 30, 31, 64, 300, 301])
def test_pruned_network_sorts_every_column(n):
    rng = np.random.default_rng(n)
    buf = rng.normal(size=(n, 37)).astype(np.float32)
    buf[:, 3] = 1.0  # ties
    want = np.sort(buf, axis=0)
    rj._sort_rows(buf, n, rj.network(n), 37)
    assert np.array_equal(buf, want)


@pytest.mark.parametrize("n", [1, 2, 5, 16, 17, 33, 192, 300, 301, 700])
def test_register_pass_sort_equals_numpy(n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 2, 300)).astype(np.float32)
    x[:, 1, :7] = np.round(x[:, 1, :7])  # ties
    idx = np.arange(n)
    out = np.empty((2, n, 300), np.float32)
    rj.ranked_rows(x, 0, n, *rj.sort_plan(n), idx, out, *NO_BINS)
    assert np.array_equal(out, np.sort(x, axis=0).transpose(1, 0, 2))


def bin_means(x: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Reference: means of ``x`` ``(angles, rows, columns)`` over the angle ``bins``,
    ``(rows, bins, columns)`` float32 from float64 sums."""
    out = np.empty((x.shape[1], bins.size - 1, x.shape[2]), np.float32)
    for n in range(bins.size - 1):
        out[:, n] = x[bins[n]:bins[n + 1]].sum(axis=0, dtype=np.float64) / (bins[n + 1]
                                                                           - bins[n])
    return out


def test_bin_means_on_the_way_equal_numpys():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 3, 300)).astype(np.float32)
    x[:, 1, 2] = -0.0
    bins = np.array([10, 17, 24, 30, 37])
    means = np.full((3, 6, 300), np.nan, np.float32)
    idx = np.arange(27)
    out = np.empty((3, 27, 300), np.float32)
    rj.ranked_rows(x, 10, 37, *rj.sort_plan(27), idx, out, bins, 2, means)
    want = bin_means(x, bins)
    assert np.array_equal(out, np.sort(x[10:37], axis=0).transpose(1, 0, 2))
    assert np.array_equal(means[:, 2:], want) and np.isnan(means[:, :2]).all()
    assert np.array_equal(np.signbit(means[:, 2:]), np.signbit(want))


def test_bin_means_of_a_volume_equal_numpys():
    """The volume's bin means (each bin by the kernel's angle-bin mean) are the reference's
    bytes, signs of zeros included."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(37, 3, 300)).astype(np.float32)
    x[:, 2, 5] = -0.0
    bins = np.array([0, 7, 14, 20, 29, 37])
    means = np.empty((3, bins.size - 1, 300), np.float32)
    rj.bin_means(x, bins, means)
    assert means.tobytes() == bin_means(x, bins).tobytes()


@pytest.mark.parametrize("n_r, n_i", [(1, 17), (30, 40), (32, 2563)])
def test_bin_mean_into_float64_is_numpys_mean_bit_for_bit(n_r, n_i):
    """Into a float64 row, the angle-bin mean is NumPy's ``mean(axis=0, dtype=float64)``
    (the row-alone path's mean over the ranks)."""
    rng = np.random.default_rng(n_i)
    srt = np.sort(rng.normal(0, 1, (n_r, n_i)) ** 3, axis=0).astype(np.float32)
    srt[:, 3] = -0.0                    # a column of negative zeros: NumPy's mean is +0.0
    out = np.empty(n_i)
    rj._bin_mean(srt, np.empty(n_i), out)
    assert out.tobytes() == srt.mean(axis=0, dtype=np.float64).tobytes()


def test_pooled_ranks_equal_numpy():
    from nsgen.prep.robust_scores import pooled
    rng = np.random.default_rng(5)
    blocks = [np.sort(rng.normal(size=(2, 32, 50)).astype(np.float32), axis=1) for _ in range(6)]
    pool = np.sort(np.concatenate(blocks, axis=1), axis=1)
    idx = np.unique(np.linspace(0, 191, 32).round().astype(np.intp))
    assert np.array_equal(pooled(blocks), pool[:, idx])


def reference_raw_ranks(raw, flat, dark, edges):
    """NumPy form of step 1 from raw projections: normalise (flat_field_log), sort each
    angle block along the angles and keep its ranks, then the blocks' ranks pooled and
    sorted again (with more blocks than one)."""
    from nsgen.prep.normalise import flat_field_log
    x = flat_field_log(raw, flat, dark, sinograms_first=False)
    sets = [np.sort(x[e0:e1], axis=0)[_rank_index(int(e1 - e0))].transpose(1, 0, 2)
            for e0, e1 in zip(edges[:-1], edges[1:])]
    if len(sets) > 1:
        pool = np.sort(np.concatenate(sets, axis=1), axis=1)
        sets.append(pool[:, np.unique(np.linspace(0, pool.shape[1] - 1, 32).round()
                                      .astype(np.intp))])
    return sets


@pytest.mark.parametrize("n_k, n_i, dtype", [(1801, 300, "<u2"), (187, 45, "<u2"),
                                             (97, 40, "<f4"), (360, 513, "<u2"), (181, 1281, "<u2"),
                                             (181, 300, "<f4"), (200, 37, "<i2")])
def test_ranks_from_raw_projections_equal_numpys(n_k, n_i, dtype):
    from nsgen.prep.normalise import pixel_constants
    from nsgen.prep.robust_scores import raw_ranks
    from nsgen.prep.robust_features import block_edges
    rng = np.random.default_rng(n_k)
    flat = rng.uniform(3e4, 5e4, (3, n_i)).astype(np.float32)
    dark = rng.uniform(90, 110, (3, n_i)).astype(np.float32)
    raw = rng.uniform(0, 6e4 if dtype != "<i2" else 3e4, (n_k, 3, n_i)).astype(dtype)
    raw[:, 0, 8] = -5 if dtype != "<u2" else 0    # negative counts (signed and float scans)
    raw[:, 1, :5] = 0                 # below the dark: clipped to the lowest ratio
    raw[: n_k // 2, 2, 7] = 1e4       # ties
    flat[0, 3] = np.nan               # a pixel without signal
    edges = block_edges(n_k)
    got = raw_ranks(raw, pixel_constants(flat, dark), edges)
    want = reference_raw_ranks(raw, flat, dark, edges)
    assert len(got) == len(want) == (7 if n_k >= 180 else 1)
    for g, w in zip(got, want):
        assert g.flags.c_contiguous and np.array_equal(g, w)
    if len(got) > 1:   # the bin means in the same pass: raw_bin_means', the same ranks
        from nsgen.prep.robust_angles import angle_bins
        from nsgen.prep.robust_features import raw_bin_means
        bins = angle_bins(edges, n_k)
        means = np.full((3, bins.size - 1, n_i), np.nan, np.float32)
        again = raw_ranks(raw, pixel_constants(flat, dark), edges, bins, means)
        assert means.tobytes() == raw_bin_means(raw, flat, dark).tobytes()
        assert all(a.tobytes() == g.tobytes() for a, g in zip(again, got))


def test_normalisation_is_monotone_in_the_clipped_difference():
    """ranked_int_sets sorts raw counts and normalises only the ranks it keeps: right when
    the computed -log is non-increasing in ``min(max(raw - dark, lo), hi)``, checked for
    every float32 from below the smallest ``lo`` (1e-12) to the largest finite value."""
    from nsgen.prep._normalise_jit import flat_field_log_rows
    start = int(np.float32(1e-13).view(np.uint32))
    stop = int(np.finfo(np.float32).max.view(np.uint32)) + 1
    n = 1 << 24
    zero = np.zeros((1, n), np.float32)
    lo, hi = np.full((1, n), 1e-30, np.float32), np.full((1, n), np.finfo(np.float32).max)
    out = np.empty((1, 1, n), np.float32)
    last = np.float32(np.inf)
    for b0 in range(start, stop, n):
        bits = np.arange(b0, min(b0 + n, stop), dtype=np.uint32)
        m = bits.size
        x = bits.view(np.float32).reshape(1, 1, m)
        flat_field_log_rows(x, zero[:, :m], lo[:, :m], hi[:, :m], zero[:, :m],
                            out[:, :, :m], False)
        y = out[0, 0, :m]
        assert y[0] <= last and bool((y[1:] <= y[:-1]).all()), b0
        last = y[-1]
