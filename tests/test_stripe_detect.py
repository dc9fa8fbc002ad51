"""Tests for nsgen.prep.stripe_detect (Larix generation-2 STRIPES_DETECT / STRIPES_MERGE).

The reference implementations below (``bf_*``) are written plainly from docs/science.md B 5.2,
voxel by voxel, and the fast kernels must match them exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from nsgen.prep import _ratio_jit
from nsgen.prep import stripe_detect as sd
from nsgen.prep.detect_params import DetectParams
from nsgen.prep.stripe_detect import (
    detect_stripe_mask,
    detect_stripe_mask_rows,
    merge_stripes,
    rows_to_read,
    stripe_weights,
)

F32 = np.float32


# ------------------------------------------------------------------------------------------
# brute-force references
# ------------------------------------------------------------------------------------------


def mirror(c: int, m: int, n: int) -> int | None:
    """Neighbour at offset m of centre c: c+m if in range, else c-m if in range, else None."""
    t = c + m
    if 0 <= t < n:
        return t
    t = c - m
    if 0 <= t < n:
        return t
    return None


def bf_ratio_map(x: np.ndarray, radius: int) -> np.ndarray:
    x = np.asarray(x, F32)
    nk, nj, ni = x.shape
    a = np.zeros_like(x)
    for k, j, i in np.ndindex(x.shape):
        ip = i + 2 if i + 2 < ni else i - 2
        a[k, j, i] = abs(x[k, j, ip] - x[k, j, i])

    def ratio(p, q):
        lo, hi = min(p, q), max(p, q)
        return lo / hi if lo > 0 else F32(0)

    r3 = np.zeros_like(x)
    for k, j, i in np.ndindex(x.shape):
        mp = F32(0)  # summed over k offsets, then over j offsets
        for dj in range(-radius, radius + 1):
            inner = F32(0)
            for dk in range(-radius, radius + 1):
                inner = inner + a[mirror(k, dk, nk), mirror(j, dj, nj), i]
            mp = mp + inner
        mp = mp * F32(3 * radius)  # ratio(P/(2R+1)^2, S/3R) == ratio(3R P, (2R+1)^2 S)
        sides = []
        for offsets in (range(1, radius + 1), range(-radius, 0)):
            tot = F32(0)
            for dj in (-1, 0, 1):
                inner = F32(0)
                for di in offsets:
                    inner = inner + a[k, mirror(j, dj, nj), mirror(i, di, ni)]
                tot = tot + inner
            sides.append(tot * F32((2 * radius + 1) ** 2))
        r3[k, j, i] = min(ratio(mp, sides[0]), ratio(mp, sides[1]))
    return r3


def bf_order(r3: np.ndarray, size: int) -> np.ndarray:
    nk = r3.shape[0]
    out = np.empty_like(r3)
    for k in range(nk):
        idx = [mirror(k, m, nk) for m in range(-size, size + 1)]
        out[k] = np.sort(r3[idx], axis=0)[size - 1]
    return out


def bf_count(m: np.ndarray, axis: int, pos: tuple, lo: int, hi: int) -> int:
    total = 0
    for off in range(lo, hi + 1):
        t = mirror(pos[axis], off, m.shape[axis])
        if t is None:  # no neighbour on either side: skipped
            continue
        p = list(pos)
        p[axis] = t
        total += int(m[tuple(p)])
    return total


def bf_clean(m, length, depth, sens):
    s = F32(F32(0.01) * F32(sens))  # Larix: 0.01f * sens, float32 arithmetic
    hl, hd = length // 2, depth // 2
    t_v = int(F32(s * F32(length)))
    t_d = int(F32(s * F32(depth)))
    if depth > 0:
        new = m.copy()
        for p in np.ndindex(m.shape):
            if m[p] and bf_count(m, 1, p, -hd, hd) > t_d:
                new[p] = False
        m = new
    for thr in (t_v, hl):
        new = m.copy()
        for p in np.ndindex(m.shape):
            if m[p] and bf_count(m, 0, p, -hl, hl) < thr:
                new[p] = False
        m = new
    return m


def bf_fill(m, width):
    hw = width // 2
    for _ in range(width):
        new = m.copy()
        for p in np.ndindex(m.shape):
            if m[p]:
                continue
            if bf_count(m, 2, p, -hw, -1) and bf_count(m, 2, p, 1, hw):
                new[p] = True
            elif bf_count(m, 0, p, -2 * width, -1) and bf_count(m, 0, p, 1, 2 * width):
                new[p] = True
        m = new
    return m


def bf_merge(w, threshold, length, depth, width, sens):
    m = np.asarray(w, F32) <= F32(threshold)
    return bf_fill(bf_clean(m, length, depth, sens), width).astype(np.uint8)


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def column_volume(n_i: int, g: np.ndarray) -> np.ndarray:
    """(k, j, i) volume whose step-2 |gradient| is g[k, j, i] for i < n_i - 2 (x0 = x1 = 0)."""
    x = np.zeros(g.shape[:2] + (n_i,), F32)
    for i in range(n_i - 2):
        x[:, :, i + 2] = x[:, :, i] + g[:, :, i]
    return x


def smooth_volume(n_k=240, n_j=24, n_i=64, noise=0.001, seed=3):
    """Smooth sinograms (a sine profile drifting with angle), deep along detector rows."""
    rng = np.random.default_rng(seed)
    th = np.linspace(0, np.pi, n_k, endpoint=False)[:, None, None]
    i = np.arange(n_i)[None, None, :]
    j = np.arange(n_j)[None, :, None]
    x = 1 + 0.3 * np.sin(np.pi * i / n_i + 0.3 * np.cos(th)) + 0.002 * j
    return (x + noise * rng.standard_normal(x.shape)).astype(F32)


SMALL = dict(
    size=30,
    radius=3,
    threshold=0.63,
    min_stripe_length=80,
    min_stripe_depth=10,
    min_stripe_width=4,
    sensitivity_perc=85.0,
)  # the seed defaults (250, 3, 0.63, 600, 30, 22, 85) scaled to 240 x 24 x 64


# ------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------


def test_weights_rejects_non_3d():
    with pytest.raises(ValueError, match="3D"):
        stripe_weights(np.zeros((20, 20), F32))
    with pytest.raises(ValueError, match="3D"):
        merge_stripes(np.zeros((20, 20), F32))
    with pytest.raises(ValueError, match="3D"):
        detect_stripe_mask(np.zeros((4, 20, 20, 2), F32))


def test_weights_size_bounds():
    x = np.random.default_rng(0).random((21, 6, 8), dtype=F32)  # 21 // 2 = 10
    stripe_weights(x, size=10)
    stripe_weights(x, size=1)
    with pytest.raises(ValueError, match=r"size must be in 1\.\.10 \(half the 21 angles\)"):
        stripe_weights(x, size=11)
    for bad in (0, -1):
        with pytest.raises(ValueError, match=r"size must be in 1\.\.10"):
            stripe_weights(x, size=bad)
    with pytest.raises(TypeError):
        stripe_weights(x, size=2.5)


def test_weights_radius_and_shape_bounds():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="radius must be >= 1"):
        stripe_weights(rng.random((20, 8, 8), dtype=F32), size=2, radius=0)
    stripe_weights(rng.random((20, 6, 6), dtype=F32), size=2, radius=3)  # 2R rows/cols: ok
    with pytest.raises(ValueError, match="at least 6 detector rows"):
        stripe_weights(rng.random((20, 5, 8), dtype=F32), size=2, radius=3)
    with pytest.raises(ValueError, match="at least 6 detector columns"):
        stripe_weights(rng.random((20, 8, 5), dtype=F32), size=2, radius=3)
    with pytest.raises(ValueError, match="at least 4 detector columns"):
        stripe_weights(rng.random((20, 8, 3), dtype=F32), size=2, radius=1)


def test_non_finite_rejected():
    x = np.ones((20, 8, 8), F32)
    x[3, 2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        stripe_weights(x, size=2)
    with pytest.raises(ValueError, match="NaN or infinite"):
        detect_stripe_mask(x, size=2, min_stripe_length=5, min_stripe_depth=2, min_stripe_width=2)


@pytest.mark.parametrize(
    "name, ok, bad, bound",
    [
        ("min_stripe_length", [1, 9], [0, 10], r"min_stripe_length must be in 1\.\.9 "),
        ("min_stripe_depth", [0, 5], [-1, 6], r"min_stripe_depth must be in 0\.\.5 "),
        ("min_stripe_width", [1, 6], [0, 7], r"min_stripe_width must be in 1\.\.6 "),
        ("sensitivity_perc", [1e-6, 100.0], [0.0, 100.0001],
         r"sensitivity_perc must be in \(0, 100\]"),
    ],
)
def test_merge_validation_bounds(name, ok, bad, bound):
    w = np.random.default_rng(1).random((10, 6, 7), dtype=F32)  # angles 10, rows 6, cols 7
    base = dict(threshold=0.5, min_stripe_length=3, min_stripe_depth=2, min_stripe_width=2)
    for value in ok:
        merge_stripes(w, **{**base, name: value})
    for value in bad:
        with pytest.raises(ValueError, match=bound):
            merge_stripes(w, **{**base, name: value})


def test_detect_validates_both_stages():
    x = np.random.default_rng(2).random((20, 8, 8), dtype=F32)
    kw = dict(min_stripe_length=5, min_stripe_depth=2, min_stripe_width=2)
    with pytest.raises(ValueError, match=r"size must be in 1\.\.10 "):
        detect_stripe_mask(x, size=11, **kw)
    with pytest.raises(ValueError, match=r"min_stripe_length must be in 1\.\.19 "):
        detect_stripe_mask(x, size=3, **{**kw, "min_stripe_length": 20})


# ------------------------------------------------------------------------------------------
# hand-checkable pieces of STRIPES_DETECT
# ------------------------------------------------------------------------------------------


def gradient(plane: np.ndarray) -> np.ndarray:
    """|G| of a (rows, columns) plane by the compiled kernel (rows flat, columns apart)."""
    n_j, n_i = plane.shape
    flat = np.zeros(n_j * n_i + 2, F32)   # the kernel reads two values past the plane
    flat[:-2] = plane.ravel()
    out = np.empty(n_j * n_i, F32)
    _ratio_jit.gradient_plane(flat, out, n_j, n_i, n_i, n_i - 2)
    return out.reshape(n_j, n_i)


def test_gradient_border_rule():
    x = (np.arange(7, dtype=F32) ** 2)[None, :]  # 0 1 4 9 16 25 36
    g = gradient(x)[0]
    # x[i+2]-x[i] for i < 5; x[i-2]-x[i] for i = 5, 6 (absolute values)
    assert g.tolist() == [4, 8, 12, 16, 20, 16, 20]


def test_ratio_map_column_with_double_gradient():
    n_k, n_j, n_i, i0 = 12, 8, 16, 7
    g = np.ones((n_k, n_j, n_i - 2), F32)
    g[:, :, i0] = 2  # |G| = 1 everywhere except column i0 (= 2)
    x = column_volume(n_i, g)
    a = gradient(x[3])
    assert np.array_equal(a[:, :-2], g[3])
    r3 = sd._ratio_map(x, 3)
    # i0: plate 2 vs sides 1 -> 1/2; i0±1..3: plate 1 vs a side holding the 2 -> 3/4
    expected = {i0: 0.5, **{i0 + d: 0.75 for d in (-3, -2, -1, 1, 2, 3)}}
    for i in range(2, 13):
        assert np.allclose(r3[:, :, i], expected.get(i, 1.0)), i


def test_ratio_zero_rules():
    assert np.array_equal(sd._ratio_map(np.ones((8, 6, 10), F32), 2), np.zeros((8, 6, 10)))
    g = np.zeros((8, 6, 12), F32)
    g[:, :, 5] = 1.0  # plate of column 5 > 0, its side means 0 -> ratio 0
    r3 = sd._ratio_map(column_volume(14, g), 2)
    assert np.all(r3[:, :, 5] == 0)
    assert np.all(r3[:, :, 9] == 0)  # everything zero around column 9: both means 0 -> 0


def test_plate_mirror_is_centre_relative():
    """Out-of-range plate neighbour at +m is replaced by the one at -m (not scipy 'mirror')."""
    n_k, n_j, n_i, i0 = 12, 9, 14, 6
    g = np.ones((n_k, n_j, n_i - 2), F32)
    g[3, 4, i0] = 50.0
    r3 = sd._ratio_map(column_volume(n_i, g), 3)
    # centre k = 1: k-offsets -3..3 -> rows 4 3 0 1 2 3 4: row 3 counted twice.
    # plate = (47 + 2 * 50) / 49 = 3, side means 1 -> 1/3. (scipy 'mirror' would use rows
    # 2 1 0 1 2 3 4: plate 2 -> 1/2.)
    assert r3[1, 4, i0] == pytest.approx(1 / 3, rel=1e-6)
    assert r3[2, 4, i0] == pytest.approx(0.5, rel=1e-6)  # row 3 once: plate 2
    assert r3[7, 4, i0] == pytest.approx(1.0)  # out of reach


def test_vertical_order_statistic_index_and_borders():
    """Element size-1 of the sorted 2*size+1 window, centre-relative mirror at the ends."""
    col = np.arange(10, dtype=F32)
    r3 = np.repeat(col[:, None, None], 3, axis=2)
    w = sd._vertical_order_statistic(r3, 2)[:, 0, 0]
    # k=1: rows (3) 0 1 2 3 -> 1; k=8: 6 7 8 9 (6) -> 6; k=9: 7 8 9 (8) (7) -> 7
    assert w.tolist() == [1, 1, 1, 2, 3, 4, 5, 6, 6, 7]
    w_rev = sd._vertical_order_statistic(r3[::-1].copy(), 2)[:, 0, 0]
    assert w_rev.tolist() == [7, 6, 6, 5, 4, 3, 2, 1, 1, 1]  # k=0: 7 8 9 8 7 -> 7
    scipy_mirror = ndimage.rank_filter(col, 1, size=5, mode="mirror")
    assert scipy_mirror.tolist() != w.tolist()  # scipy's 'mirror' is a different rule


def test_linear_ramp_weights_are_one():
    k, j, i = np.meshgrid(np.arange(30), np.arange(8), np.arange(12), indexing="ij")
    x = (3 * i + 5 * j + 7 * k).astype(F32)  # |G| = 6 everywhere, exactly
    assert np.array_equal(stripe_weights(x, size=5, radius=2), np.ones(x.shape, F32))


# ------------------------------------------------------------------------------------------
# hand-checkable passes of STRIPES_MERGE
# ------------------------------------------------------------------------------------------


def weights_from_mask(m: np.ndarray) -> np.ndarray:
    return np.where(m, F32(0.1), F32(1.0))


def test_threshold_is_inclusive_float32():
    w = np.full((4, 2, 3), 0.9, F32)
    w[:, :, 1] = F32(0.63)
    m = merge_stripes(w, threshold=0.63, min_stripe_length=1, min_stripe_depth=0,
                      min_stripe_width=1)
    assert m.dtype == np.uint8
    assert np.array_equal(m[:, :, 1], np.ones((4, 2), np.uint8))
    assert m.sum() == 8


def test_merge_counts_follow_larix_float32():
    """Larix: (int)((0.01f * 85.0f) * 600) = 509; float64 rounding first would give 510."""
    def counts(length, depth, sens):
        return DetectParams(min_stripe_length=length, min_stripe_depth=depth,
                            sensitivity_perc=sens).merge_counts()

    assert counts(600, 30, 85.0) == (300, 509, 15, 25)
    assert int(F32(0.01 * 85.0) * F32(600)) == 510  # the rounding the port must not do
    # more cases where the two roundings differ (float32 products truncated)
    assert counts(20, 30, 30.0) == (10, 5, 15, 8)
    assert counts(1000, 0, 85.0) == (500, 849, 0, 0)


def test_length_pass_at_seed_parameters():
    """The seed's merge (600, 30, 22, 85) keeps a voxel whose window k +- 300 counts 509.

    A candidate run on angles 100..899 of one column: centre ``k`` near the start counts
    ``k + 201`` set voxels, so the length pass keeps ``k >= 308`` (count 509) and, by
    symmetry, ``k <= 691``. With the float64-rounded Tv = 510 it would keep 309..690.
    """
    w = np.ones((1000, 32, 64), F32)
    w[100:900, 7, 32] = 0  # one column of one row: not deep, nothing to merge with
    m = merge_stripes(w, threshold=0.63, min_stripe_length=600, min_stripe_depth=30,
                      min_stripe_width=22, sensitivity_perc=85.0)
    expected = np.zeros_like(m)
    expected[308:692, 7, 32] = 1
    assert np.array_equal(m, expected)
    cand = np.ascontiguousarray((w <= F32(0.63)).transpose(1, 0, 2)).view(np.uint8)
    rows = sd.merge_stripes_rows(cand[:24], 0, (0, 8), 32, DetectParams())
    assert np.array_equal(rows.transpose(1, 0, 2), expected[:, :8])


def test_depth_pass_by_hand():
    m = np.zeros((5, 9, 3), bool)
    m[:, 0:6, 1] = True  # 6 rows deep
    w = weights_from_mask(m)
    kw = dict(threshold=0.5, min_stripe_length=1, min_stripe_width=1)
    out = merge_stripes(w, min_stripe_depth=4, **kw)  # hd 2, Td int(0.85 * 4) = 3
    # counts in j-2..j+2 (mirrored): j=0: 5, j=3: 5, j=4: 4 -> > 3 cleared; j=5: 3 -> kept
    expected = np.zeros_like(m)
    expected[:, 5, 1] = True
    assert np.array_equal(out, expected)
    assert np.array_equal(merge_stripes(w, min_stripe_depth=0, **kw), m)  # pass skipped


def test_length_pass_by_hand():
    m = np.zeros((20, 1, 3), bool)
    m[0:9, 0, 1] = True
    m[15, 0, 1] = True
    out = merge_stripes(weights_from_mask(m), threshold=0.5, min_stripe_length=10,
                        min_stripe_depth=0, min_stripe_width=1)
    # hl 5, Tv int(0.85 * 10) = 8: k=0 sees rows 5..1,0..5 (11); k=6: 1..8 (8) kept;
    # k=7: 7, k=8: 6 and k=15: 1 -> cleared. Short pass (< 5) and merge change nothing.
    expected = np.zeros_like(m)
    expected[0:7, 0, 1] = True
    assert np.array_equal(out, expected)


def test_short_stripe_pass_by_hand():
    kw = dict(threshold=0.5, min_stripe_length=10, min_stripe_depth=0, min_stripe_width=1,
              sensitivity_perc=30.0)  # Tv = int(0.3 * 10) = 3 < hl = 5
    m = np.zeros((20, 1, 3), bool)
    m[8:12, 0, 1] = True  # 4 voxels: survive the length pass (>= 3), not the short one (< 5)
    assert merge_stripes(weights_from_mask(m), **kw).sum() == 0
    m[8:13, 0, 1] = True  # 5 voxels survive both
    assert np.array_equal(merge_stripes(weights_from_mask(m), **kw), m)


def test_horizontal_merge_by_hand():
    m = np.zeros((3, 1, 12), bool)
    m[:, 0, [2, 6]] = True
    out = merge_stripes(weights_from_mask(m), threshold=0.5, min_stripe_length=1,
                        min_stripe_depth=0, min_stripe_width=4)  # hw 2, 4 iterations
    # it 1: i=0 (left 1,2 / right 1,2 via mirror), i=4 -> {0,2,4,6}; it 2: i=1,3,5 -> {0..6}
    expected = np.zeros_like(m)
    expected[:, 0, 0:7] = True
    assert np.array_equal(out, expected)


def test_vertical_merge_is_one_jacobi_iteration_per_width():
    m = np.zeros((12, 1, 3), bool)
    m[[2, 6], 0, 1] = True
    out = merge_stripes(weights_from_mask(m), threshold=0.5, min_stripe_length=1,
                        min_stripe_depth=0, min_stripe_width=1)  # 1 iteration, k-2..k+2
    # k=0: above (mirrored) 1,2 and below 1,2 -> set; k=4: 2,3 / 5,6 -> set; k=5 would only
    # be set by reading k=4's new value (Gauss-Seidel), which Jacobi does not.
    expected = np.zeros_like(m)
    expected[[0, 2, 4, 6], 0, 1] = True
    assert np.array_equal(out, expected)


# ------------------------------------------------------------------------------------------
# fast == brute force
# ------------------------------------------------------------------------------------------


def test_ratio_map_matches_bruteforce():
    rng = np.random.default_rng(10)
    shapes = [((14, 6, 8), 3), ((17, 7, 9), 2), ((9, 4, 5), 1), ((10, 6, 6), 3), ((30, 7, 40), 3),
              ((25, 8, 9), 3)]
    for shape, radius in shapes:
        x = rng.random(shape, dtype=F32)
        x[:, :, 3] = 0  # zero gradients and ties exercise the zero and min/max rules
        x[:, 2] = x[:, 1]
        expected = bf_ratio_map(x, radius)
        assert np.array_equal(sd._ratio_map(x, radius), expected)
        for t in (0.3, 0.63, 1.0):
            assert np.array_equal(sd._below_threshold(x, radius, t), expected <= F32(t))
        rows = (1, shape[1] - 2)  # output rows only; the others are context
        assert np.array_equal(sd._ratio_map(x, radius, rows), expected[:, 1:-2])


def test_window_count_matches_bruteforce():
    rng = np.random.default_rng(16)
    for n, size in [(10, 5), (11, 5), (21, 3), (7, 1), (40, 20), (300, 7)]:
        b = rng.random((n, 3, 5)) < 0.5
        counts = np.array([[[bf_count(b, 0, (k, j, i), -size, size) for i in range(5)]
                            for j in range(3)] for k in range(n)])
        for need in (0, 1, size, size + 1, 2 * size + 1):
            got = sd._count_at_least(b, size, need)
            assert got.dtype == np.uint8
            assert np.array_equal(got, (counts >= need).transpose(1, 0, 2))


@pytest.mark.parametrize("scratch", [sd._EDGE_SCRATCH_BYTES, 1])
def test_order_statistic_matches_bruteforce(monkeypatch, scratch):
    monkeypatch.setattr(sd, "_EDGE_SCRATCH_BYTES", scratch)  # 1: one column per batch
    rng = np.random.default_rng(11)
    for n in range(2, 34):
        for size in range(1, n // 2 + 1):
            r3 = rng.integers(0, 5, (n, 2, 3)).astype(F32)  # many ties
            assert np.array_equal(sd._vertical_order_statistic(r3, size), bf_order(r3, size))
    r3 = rng.random((101, 2, 5), dtype=F32)
    for size in (1, 7, 25, 50):
        assert np.array_equal(sd._vertical_order_statistic(r3, size), bf_order(r3, size))


def test_weights_match_bruteforce():
    rng = np.random.default_rng(12)
    for shape, size, radius in [((24, 6, 8), 6, 3), ((15, 5, 7), 7, 2), ((10, 4, 5), 2, 1)]:
        x = rng.random(shape, dtype=F32)
        expected = bf_order(bf_ratio_map(x, radius), size)
        assert np.array_equal(stripe_weights(x, size, radius), expected)


def test_merge_matches_bruteforce():
    rng = np.random.default_rng(13)
    for _ in range(30):
        n_k, n_j, n_i = (int(v) for v in rng.integers((6, 2, 3), (17, 6, 9)))
        w = rng.random((n_k, n_j, n_i), dtype=F32)
        params = (
            float(rng.uniform(0.3, 0.9)),
            int(rng.integers(1, n_k)),
            int(rng.integers(0, n_j)),
            int(rng.integers(1, n_i)),
            float(rng.choice([30.0, 85.0, 100.0])),
        )
        assert np.array_equal(merge_stripes(w, *params), bf_merge(w, *params)), params


def test_detect_equals_merge_of_weights():
    """The mask path counts values <= threshold instead of forming W: same result."""
    rng = np.random.default_rng(14)
    for _ in range(8):
        n_k, n_j, n_i = (int(v) for v in rng.integers((12, 6, 6), (60, 16, 16)))
        x = rng.random((n_k, n_j, n_i), dtype=F32)
        size, radius = int(rng.integers(1, n_k // 2 + 1)), int(rng.integers(1, 4))
        kw = dict(
            threshold=float(rng.uniform(0.4, 0.9)),
            min_stripe_length=int(rng.integers(1, n_k)),
            min_stripe_depth=int(rng.integers(0, n_j)),
            min_stripe_width=int(rng.integers(1, n_i)),
        )
        expected = merge_stripes(stripe_weights(x, size, radius), **kw)
        assert np.array_equal(detect_stripe_mask(x, size, radius, **kw), expected)


def test_clean_passes_never_add_and_fill_never_removes():
    rng = np.random.default_rng(15)
    for _ in range(10):
        m = rng.random((40, 8, 12)) < rng.uniform(0.2, 0.8)
        p = DetectParams(min_stripe_length=int(rng.integers(1, 40)),
                         min_stripe_depth=int(rng.integers(0, 8)),
                         sensitivity_perc=float(rng.uniform(10, 100)))
        cleaned = sd._clean_passes(m.copy(), p)
        assert not (cleaned & ~m).any()
        filled = sd._fill_passes(cleaned.copy(), int(rng.integers(1, 12)))
        assert not (cleaned & ~filled).any()


# ------------------------------------------------------------------------------------------
# detection on synthetic stripes
# ------------------------------------------------------------------------------------------


def test_smooth_volume_gives_empty_mask():
    assert detect_stripe_mask(smooth_volume(), **SMALL).sum() == 0


@pytest.mark.parametrize("c0", [20, 45])
def test_injected_stripe_detected(c0):
    x = smooth_volume()
    rows, cols = slice(10, 14), slice(c0, c0 + 3)
    x[:, rows, cols] += 0.05 * x.max()  # full stripe (all angles), 4 rows x 3 columns, +5 %
    m = detect_stripe_mask(x, **SMALL)
    k, j, i = np.nonzero(m)
    r = SMALL["radius"]
    # only around the stripe: its rows +- R, its edge columns (c0-2, c0-1 | c0+1, c0+2) +- R
    assert j.min() >= 10 - r and j.max() <= 13 + r
    assert i.min() >= c0 - 2 - r and i.max() <= c0 + 2 + r
    # and there on every angle, in every stripe row
    assert m[:, rows, c0 - 2 : c0 + 3].any(axis=(1, 2)).all()
    assert m[:, rows, c0 - 2 : c0 + 3].any(axis=(0, 2)).all()
    w = stripe_weights(x, SMALL["size"], r)
    edge = w[:, rows, c0 - 2 : c0 + 3].min(axis=2)
    assert np.median(edge) < 0.5  # << 1 at the stripe edges


# ------------------------------------------------------------------------------------------
# chunking along detector rows
# ------------------------------------------------------------------------------------------


def test_halo_rows():
    assert DetectParams().halo == 18
    assert DetectParams(size=10, radius=2, min_stripe_depth=0, min_stripe_width=5).halo == 2
    assert DetectParams(size=10, radius=1, min_stripe_depth=7, min_stripe_width=5).halo == 4


def test_rows_to_read():
    assert rows_to_read(0, 10, 40, 5) == (0, 15)
    assert rows_to_read(10, 20, 40, 5) == (5, 25)
    assert rows_to_read(38, 40, 40, 5) == (33, 40)
    with pytest.raises(ValueError):
        rows_to_read(5, 5, 40, 5)


CHUNK_KW = dict(size=5, radius=2, threshold=0.7, min_stripe_length=6, min_stripe_depth=8,
                min_stripe_width=3)
CHUNK_P = DetectParams(**CHUNK_KW)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 24])
def test_chunked_equals_whole(chunk):
    x = np.random.default_rng(16).random((40, 24, 16), dtype=F32)
    whole = detect_stripe_mask(x, **CHUNK_KW)
    whole_w = stripe_weights(x, CHUNK_KW["size"], CHUNK_KW["radius"])
    assert 0.05 < whole.mean() < 0.95  # a non-trivial mask
    halo = CHUNK_P.halo
    parts, wparts = [], []
    for start in range(0, 24, chunk):
        stop = min(24, start + chunk)
        lo, hi = rows_to_read(start, stop, 24, halo)
        m, w = detect_stripe_mask_rows(x[:, lo:hi], lo, (start, stop), 24, CHUNK_P,
                                       return_weights=True)
        parts.append(m)
        wparts.append(w)
    assert np.array_equal(np.concatenate(parts, axis=1), whole)
    assert np.array_equal(np.concatenate(wparts, axis=1), whole_w)


@pytest.mark.parametrize("chunk_a, chunk_b", [(1, 24), (3, 2), (7, 5), (24, 1)])
def test_two_stages_chunked_equal_whole(chunk_a, chunk_b):
    """Candidates (halo R) then merge (halo depth // 2), each with its own chunking."""
    x = np.random.default_rng(16).random((40, 24, 16), dtype=F32)
    whole = detect_stripe_mask(x, **CHUNK_KW)
    cand = []
    work = np.full(40 * 24 * 16 + 5, 7, np.uint8)   # one dirty scratch reused by every chunk
    for start in range(0, 24, chunk_a):
        stop = min(24, start + chunk_a)
        lo, hi = rows_to_read(start, stop, 24, CHUNK_KW["radius"])
        cand.append(sd.stripe_candidates_rows(x[:, lo:hi], lo, (start, stop), 24, CHUNK_P,
                                              work=work))
    with pytest.raises(ValueError, match="work must be"):
        sd.stripe_candidates_rows(x, 0, (0, 24), 24, CHUNK_P, work=work[:100])
    cand = np.concatenate(cand)
    assert cand.shape == (24, 40, 16) and cand.dtype == np.uint8
    parts = []
    for start in range(0, 24, chunk_b):
        stop = min(24, start + chunk_b)
        lo, hi = rows_to_read(start, stop, 24, CHUNK_KW["min_stripe_depth"] // 2)
        parts.append(sd.merge_stripes_rows(cand[lo:hi], lo, (start, stop), 24, CHUNK_P))
    assert np.array_equal(np.concatenate(parts).transpose(1, 0, 2), whole)


def test_smaller_halo_is_not_enough():
    x = np.random.default_rng(17).random((40, 24, 16), dtype=F32)
    r, size, t = CHUNK_KW["radius"], CHUNK_KW["size"], CHUNK_KW["threshold"]
    whole_cand = sd.stripe_candidates_rows(x, 0, (0, 24), 24, CHUNK_P)
    # stage 1 with R - 1 rows of halo
    parts = []
    for start in range(0, 24, 4):
        lo, hi = max(0, start - (r - 1)), min(24, start + 4 + (r - 1))
        below = sd._below_threshold(x[:, lo:hi], r, t, (start - lo, start + 4 - lo))
        parts.append(sd._count_at_least(below, size, size))
    assert not np.array_equal(np.concatenate(parts), whole_cand)
    # stage 2 with depth // 2 - 1 rows of halo
    depth = CHUNK_KW["min_stripe_depth"]
    whole = sd.merge_stripes_rows(whole_cand, 0, (0, 24), 24, CHUNK_P)
    halo = depth // 2 - 1
    parts = []
    for start in range(0, 24, 4):
        lo, hi = max(0, start - halo), min(24, start + 4 + halo)
        m = whole_cand[lo:hi].astype(bool)
        sd._merge_passes(m, CHUNK_P)
        parts.append(m[start - lo:start + 4 - lo])
    assert not np.array_equal(np.concatenate(parts).view(np.uint8), whole)


def test_rows_block_checks():
    x = np.random.default_rng(18).random((40, 24, 16), dtype=F32)
    assert CHUNK_P.halo == 6
    with pytest.raises(ValueError, match=r"need rows \[0, 11\)"):
        detect_stripe_mask_rows(x[:, 0:10], 0, (0, 5), 24, CHUNK_P)
    with pytest.raises(ValueError, match=r"need rows \[1, 18\)"):
        detect_stripe_mask_rows(x[:, 3:20], 3, (7, 12), 24, CHUNK_P)
    # a larger block than needed is fine; validation uses the whole-volume row count
    part = detect_stripe_mask_rows(x, 0, (7, 12), 24, CHUNK_P)
    assert np.array_equal(part, detect_stripe_mask(x, **CHUNK_KW)[:, 7:12])
    with pytest.raises(ValueError, match=r"min_stripe_depth must be in 0\.\.23"):
        detect_stripe_mask_rows(x, 0, (0, 5), 24, DetectParams(**{**CHUNK_KW,
                                                                  "min_stripe_depth": 24}))
    single = detect_stripe_mask_rows(x[:, 0:7], 0, (0, 1), 24, CHUNK_P)  # 7 rows < depth
    assert np.array_equal(single, detect_stripe_mask(x, **CHUNK_KW)[:, 0:1])


def test_read_only_install_caches_compiled_kernels_in_the_user_cache(monkeypatch, tmp_path):
    import importlib
    import os

    import numba

    from nsgen.prep import _jit
    monkeypatch.setattr(numba.config, "CACHE_DIR", numba.config.CACHE_DIR)  # restored after
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(os, "access", lambda *a, **k: False)  # package directory read-only
    importlib.reload(_jit)
    assert numba.config.CACHE_DIR == str(tmp_path / "nsgen" / "numba")
