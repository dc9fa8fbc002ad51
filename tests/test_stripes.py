"""Tests for nsgen.sim.stripes (docs/science.md B 3.1 with the A.4 fixes)."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.sim.stripes import (PAIRED, PATCH, SIMPLE, StripeParams, add_stripes, stripe_count,
                               stripe_spans)

P, DH = 40, 100


def _sino(rng_seed: int = 0) -> np.ndarray:
    """A float32 sinogram with non-zero values everywhere (so every column qualifies)."""
    rng = np.random.default_rng(rng_seed)
    return (0.5 + rng.random((P, DH))).astype(np.float32)


def _diff(out: np.ndarray, sino: np.ndarray) -> np.ndarray:
    return out.astype(np.float64) - sino.astype(np.float64)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs [start, stop) of True in a 1D boolean array."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _gen(seed: int) -> np.random.Generator:
    return np.random.default_rng([2024, seed])


def test_presets() -> None:
    assert SIMPLE == StripeParams(1.2, 3, 0.25, "mix", 0.0)
    assert PAIRED == StripeParams(1.0, 2, 0.2, "mix", 0.005)
    assert PATCH == StripeParams(0.4, 6, 0.2, "full", 0.0)
    with pytest.raises(AttributeError):
        SIMPLE.percentage = 2.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(percentage=0.0),
        dict(percentage=-1.0),
        dict(percentage=100.5),
        dict(max_thickness=-1),
        dict(max_thickness=11),
        dict(max_thickness=2.5),
        dict(kind="Full"),
        dict(kind="both"),
        dict(variability=-0.01),
        dict(variability=float("nan")),
    ],
)
def test_invalid_params_raise(kwargs: dict) -> None:
    base = dict(percentage=1.0, max_thickness=2, intensity=0.2, kind="full", variability=0.0)
    base.update(kwargs)
    with pytest.raises(ValueError):
        StripeParams(**base)


def test_boundary_params_accepted() -> None:
    StripeParams(100.0, 0, 0.1, "partial", 0.0)
    StripeParams(0.01, 10, 0.1, "mix", 1.0)


def test_rejects_non_2d() -> None:
    with pytest.raises(ValueError):
        add_stripes(np.ones((2, 3, 4)), _gen(0), SIMPLE)


def test_single_full_stripe_geometry_and_value() -> None:
    # percentage 1 % of 100 columns -> exactly one stripe, so no overlaps: every applied
    # stripe is one band of odd width <= 2*3+1, constant along angles, inside 1..Dh-1, with
    # value in [-vmax*thr, 0.5*vmax*thr].
    params = StripeParams(1.0, 3, 0.25, "full", 0.0)
    vmax = 4.0
    widths = set()
    applied = 0
    for seed in range(200):
        sino = _sino(seed)
        out = add_stripes(sino, _gen(seed), params, vmax=vmax)
        assert out.dtype == np.float32 and out.shape == sino.shape
        d = _diff(out, sino)
        assert np.all(d[:, 0] == 0)  # column 0 never changes
        cols = np.flatnonzero((d != 0).any(axis=0))
        if cols.size == 0:
            continue  # dropped at the edge (h < c < Dh - h violated)
        applied += 1
        runs = _runs((d != 0).any(axis=0))
        assert len(runs) == 1
        start, stop = runs[0]
        width = stop - start
        widths.add(width)
        assert width % 2 == 1 and width <= 7
        assert start >= 1 and stop <= DH
        # full stripe: every angle, value constant along angles and across the band
        band = d[:, start:stop]
        value = band[0, 0]
        np.testing.assert_allclose(band, value, rtol=0, atol=1e-6)
        assert -vmax * 0.25 - 1e-6 <= value <= 0.5 * vmax * 0.25 + 1e-6
    assert applied >= 180  # edge drops are rare (at most ~4 % of columns per width)
    assert widths == {1, 3, 5, 7}


def test_many_full_stripes_band_structure() -> None:
    # n_s = int(100 * 5 / 100) = 5 stripes; overlaps add, so check what survives overlaps:
    # out - in constant along angles, the column profile is a sum of <= n_s boxes (so it has
    # <= 2 n_s jumps and <= n_s non-zero runs), total width <= n_s * 7 and bounded values.
    params = StripeParams(5.0, 3, 0.25, "full", 0.0)
    vmax, n_s = 2.0, 5
    max_boxes = 0
    for seed in range(100):
        sino = _sino(seed)
        d = _diff(add_stripes(sino, _gen(seed), params, vmax=vmax), sino)
        np.testing.assert_allclose(d, np.broadcast_to(d[:1], d.shape), rtol=0, atol=1e-6)
        profile = np.where(np.abs(d[0]) > 1e-6, d[0], 0.0)
        assert profile[0] == 0
        jumps = np.count_nonzero(np.abs(np.diff(np.concatenate([[0.0], profile, [0.0]]))) > 1e-6)
        assert jumps <= 2 * n_s
        assert len(_runs(profile != 0)) <= n_s
        assert np.count_nonzero(profile) <= n_s * 7
        assert profile.min() >= -n_s * vmax * 0.25 - 1e-5
        assert profile.max() <= n_s * 0.5 * vmax * 0.25 + 1e-5
        max_boxes = max(max_boxes, len(_runs(profile != 0)))
    assert max_boxes == n_s  # all five stripes visible and separate at least once


def test_stripe_count_truncates() -> None:
    # int(99 * 1.2 / 100) = int(1.188) = 1 stripe, thickness 0 -> exactly one changed column
    # unless it is dropped at the edge (with h = 0 only c = 0 is dropped: 0 < c < 99).
    sino = np.ones((10, 99), dtype=np.float32)
    params = StripeParams(1.2, 0, 0.3, "full", 0.0)
    counts = {
        np.count_nonzero((add_stripes(sino, _gen(s), params) != sino).any(axis=0))
        for s in range(50)
    }
    assert counts <= {0, 1} and 1 in counts
    # fewer columns than one stripe: still one stripe (a pair without stripes teaches
    # nothing), unless its column falls on the edge where it is dropped
    small = np.ones((5, 50), dtype=np.float32)
    counts = {np.count_nonzero((add_stripes(small, _gen(s), StripeParams(1.0, 0, 0.3, "full",
                                                                         0.0)) != small).any(0))
              for s in range(30)}
    assert counts <= {0, 1} and 1 in counts
    assert stripe_count(50, 1.0) == 1 and stripe_count(362, 1.2) == 4


def test_default_vmax_is_sinogram_max() -> None:
    sino = _sino(3)
    params = StripeParams(5.0, 2, 0.25, "full", 0.0)
    a = add_stripes(sino, _gen(7), params)
    b = add_stripes(sino, _gen(7), params, vmax=float(sino.max()))
    assert np.array_equal(a, b)
    # offsets scale linearly with vmax
    z = np.ones_like(sino)
    d1 = _diff(add_stripes(z, _gen(7), params, vmax=1.0), z)
    d3 = _diff(add_stripes(z, _gen(7), params, vmax=3.0), z)
    np.testing.assert_allclose(d3, 3 * d1, atol=1e-5)


def test_column_search_prefers_nonzero_first_angle() -> None:
    # Only columns 40..59 are non-zero at the first angle: with 20 tries the chance of missing
    # them is 0.8**20 ~ 1 % per stripe; over 100 single-stripe runs allow a couple of misses.
    sino = np.zeros((P, DH), dtype=np.float32)
    sino[:, 40:60] = 1.0
    params = StripeParams(1.0, 0, 0.25, "full", 0.0)
    hits = 0
    for seed in range(100):
        cols = np.flatnonzero((add_stripes(sino, _gen(seed), params) != sino).any(axis=0))
        assert cols.size <= 1
        hits += int(cols.size == 1 and 40 <= cols[0] < 60)
    assert hits >= 95


def test_partial_stripes_nonempty_contiguous() -> None:
    # First-angle values non-zero only in columns 20..79 so that every stripe lands strictly
    # inside (h <= 3 < c < Dh - 3) and is applied: every one must cover a non-empty, contiguous
    # range of angles [a1, a2), identical for all its columns, constant in value.
    sino = np.zeros((P, DH), dtype=np.float32)
    sino[:, 20:80] = 1.0
    params = StripeParams(1.0, 3, 0.25, "partial", 0.0)
    starts, stops = [], []
    for seed in range(200):
        d = _diff(add_stripes(sino, _gen(seed), params, vmax=1.0), sino)
        changed = d != 0
        cols = np.flatnonzero(changed.any(axis=0))
        assert cols.size >= 1, "partial stripe vanished"
        assert len(_runs(changed.any(axis=0))) == 1
        rows = changed[:, cols[0]]
        (run,) = _runs(rows)
        for c in cols:
            assert np.array_equal(changed[:, c], rows)
        a1, a2 = run
        assert 0 <= a1 < a2 <= P
        np.testing.assert_allclose(d[a1:a2, cols], d[a1, cols[0]], atol=1e-6)
        starts.append(a1)
        stops.append(a2)
    # ranges are genuinely partial and varied
    assert min(starts) == 0 and max(stops) == P
    assert len(set(zip(starts, stops))) > 100


def test_mix_gives_both_kinds() -> None:
    sino = np.zeros((P, DH), dtype=np.float32)
    sino[:, 20:80] = 1.0
    params = StripeParams(1.0, 0, 0.25, "mix", 0.0)
    full = partial = 0
    for seed in range(200):
        d = _diff(add_stripes(sino, _gen(seed), params), sino)
        cols = np.flatnonzero((d != 0).any(axis=0))
        assert cols.size == 1
        n_rows = np.count_nonzero(d[:, cols[0]])
        # a partial stripe covers all P angles only if (a1, a2) = (0, P): probability 1/820
        if n_rows == P:
            full += 1
        else:
            partial += 1
    # Binomial(200, 1/2): 60..140 is > 8 standard deviations wide
    assert 60 <= full <= 140 and 60 <= partial <= 140


def test_full_kind_never_partial() -> None:
    params = StripeParams(3.0, 1, 0.25, "full", 0.0)
    for seed in range(30):
        sino = _sino(seed)
        d = _diff(add_stripes(sino, _gen(seed), params), sino)
        changed_cols = (d != 0).any(axis=0)
        assert np.all((d != 0)[:, changed_cols])


def test_random_walk_steps() -> None:
    # variability v: in every stripe column the k-th angle gets offset + v*vmax*(1 + sum of k
    # signs), so the first value is offset + v*vmax (equal across the band) and successive
    # differences along angles are exactly +-v*vmax, independently per column.
    vmax, var = 1.0, 0.01
    params = StripeParams(1.0, 3, 0.25, "full", var)
    sino = np.zeros((200, DH), dtype=np.float32)
    sino[0, 20:80] = 1.0
    seen_independent = False
    for seed in range(20):
        d = _diff(add_stripes(sino, _gen(seed), params, vmax=vmax), sino)
        cols = np.flatnonzero((d != 0).any(axis=0))
        band = d[:, cols]
        steps = np.diff(band, axis=0)
        np.testing.assert_allclose(np.abs(steps), var * vmax, atol=1e-5)
        # the first angle is offset + step for every column of the band (the 1.0 at angle 0
        # on the chosen columns is removed by _diff)
        np.testing.assert_allclose(band[0], band[0, 0], atol=1e-6)
        offset = band[0, 0] - var * vmax
        assert -0.25 * vmax - 1e-6 <= offset <= 0.125 * vmax + 1e-6
        if cols.size > 1 and not np.allclose(band[:, 0], band[:, 1]):
            seen_independent = True
    assert seen_independent


def test_same_generator_state_same_output() -> None:
    sino = _sino(1)
    for params in (SIMPLE, PAIRED, PATCH, StripeParams(10.0, 4, 0.3, "mix", 0.01)):
        a = add_stripes(sino, _gen(5), params, vmax=2.0)
        b = add_stripes(sino, _gen(5), params, vmax=2.0)
        assert a.tobytes() == b.tobytes()
    c = add_stripes(sino, _gen(6), StripeParams(10.0, 4, 0.3, "mix", 0.01), vmax=2.0)
    assert not np.array_equal(a, c)


def test_input_not_modified_and_dtype() -> None:
    sino = _sino(2).astype(np.float64)
    before = sino.copy()
    out = add_stripes(sino, _gen(0), StripeParams(10.0, 2, 0.3, "mix", 0.01))
    assert np.array_equal(sino, before)
    assert out.dtype == np.float32



def _reference_add_stripes(sino, rng, params, vmax=None):
    """add_stripes as it was before it touched only the striped columns: every pixel
    through float64 (the outputs of earlier nsgen versions; kept as the oracle), with
    rule 7: while no stripe is applied, up to 100 more are drawn."""
    out = np.asarray(sino).astype(np.float64, copy=True)
    n_angles, n_cols = out.shape
    m = float(out.max()) if vmax is None else float(vmax)
    step = params.variability * m
    n_s, drawn, applied = max(1, int(n_cols * params.percentage / 100.0)), 0, 0
    while drawn < n_s or (not applied and drawn < n_s + 100):
        drawn += 1
        for _try in range(20):
            c = int(rng.integers(0, n_cols))
            if sino[0][c] != 0:
                break
        partial = bool(rng.random() < 0.5) if params.kind == "mix" else params.kind == "partial"
        if partial:
            a1, a2 = (int(a) for a in np.sort(rng.choice(n_angles + 1, size=2, replace=False)))
        else:
            a1, a2 = 0, n_angles
        h = int(rng.integers(0, params.max_thickness + 1))
        offset = m * rng.uniform(-1.0, 0.5) * params.intensity
        if not (h < c < n_cols - h):
            continue
        applied += 1
        if params.variability > 0:
            signs = 2 * rng.integers(0, 2, size=(a2 - a1 - 1, 2 * h + 1)) - 1
            walk = np.empty((a2 - a1, 2 * h + 1))
            walk[0] = 0.0
            np.cumsum(signs, axis=0, out=walk[1:])
            walk += 1.0
            walk *= step
            out[a1:a2, c - h:c + h + 1] += offset + walk
        else:
            out[a1:a2, c - h:c + h + 1] += offset
    return out.astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16])
@pytest.mark.parametrize("params", [SIMPLE, PAIRED, PATCH,
                                    StripeParams(30.0, 10, 0.7, "mix", 0.3)])
def test_stripes_are_the_whole_float64_sum_and_spans_are_what_changes(dtype, params):
    for seed in range(20):
        r = np.random.default_rng(seed)
        x = r.random((int(r.integers(1, 40)), int(r.integers(2, 90)))) * 3 - 0.5
        x = (x * 1000).clip(0).astype(dtype) if dtype == np.uint16 else x.astype(dtype)
        y = add_stripes(x, np.random.default_rng(seed), params)
        assert y.tobytes() == _reference_add_stripes(x, np.random.default_rng(seed),
                                                     params).tobytes()
        touched = np.zeros(x.shape[1], bool)
        for left, block in stripe_spans(x, np.random.default_rng(seed), params):
            assert np.array_equal(y[:, left:left + block.shape[1]], block)
            touched[left:left + block.shape[1]] = True
        assert y[:, ~touched].tobytes() == x[:, ~touched].astype(np.float32).tobytes()


def test_a_stripe_is_always_applied() -> None:
    """Patch mode's one stripe per 64-column patch fell on the edge (rule 5) in 40 of 468
    fake pairs of a 361x32x256 scan (--patch-size 180 64): input identical to target. Now
    stripes are drawn on until one is applied; where one was, nothing changes."""
    sino = np.ones((4, 64), dtype=np.float32)
    changed, same_as_before = 0, 0
    for seed in range(400):
        out = add_stripes(sino, _gen(seed), PATCH, vmax=1.0)
        changed += bool((out != sino).any())
        first = _gen(seed)   # the first stripe's draws: column, half thickness, offset
        c = int(first.integers(0, 64))
        h = int(first.integers(0, PATCH.max_thickness + 1))
        if h < c < 64 - h:   # applied at the first draw: the same bytes as always
            expect = sino.astype(np.float64)
            expect[:, c - h:c + h + 1] += first.uniform(-1.0, 0.5) * PATCH.intensity
            assert np.array_equal(out, expect.astype(np.float32))
            same_as_before += 1
    assert changed == 400 and 300 < same_as_before < 400
