"""Tests for nsgen.sim.phantom (docs/science.md A.2, B 1.2-1.4)."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.rng import generator
from nsgen.sim.phantom import (
    OBJECT_FIELDS,
    FoamRanges,
    random_foam,
    rasterise,
    validate_objects,
)


def _pairwise_ok(objs: np.ndarray, excl: np.ndarray) -> bool:
    centres = objs[:, 1:4]
    diff = centres[:, None, :] - centres[None, :, :]
    dist = np.sqrt((diff ** 2).sum(axis=2))
    need = excl[:, None] + excl[None, :]
    off = ~np.eye(len(objs), dtype=bool)
    return bool((dist[off] >= need[off]).all())


def _corner_ok(objs: np.ndarray, excl: np.ndarray) -> bool:
    corner = ((np.abs(objs[:, 1:4]) + excl[:, None]) ** 2).sum(axis=1)
    return bool((corner <= 1.0).all())


def _literal_raster(obj: np.ndarray, n: int) -> np.ndarray:
    """Whole-grid evaluation of B 1.3 for one object (no bounding box)."""
    c0, x0, y0, z0, a, b, c, phi = obj
    g = -1.0 + np.arange(n) * (2.0 / n)
    zz, xx, yy = np.meshgrid(g, g, g, indexing="ij")
    p = np.deg2rad(phi)
    dy, dx = yy - y0, xx - x0
    yb = dy * np.cos(p) + dx * np.sin(p)
    xb = -dy * np.sin(p) + dx * np.cos(p)
    t = (yb / a) ** 2 + (xb / b) ** 2 + ((zz - z0) / c) ** 2
    return np.where(t <= 1.0, np.float32(c0), np.float32(0)).astype(np.float32)


# ----------------------------------------------------------------------------- foam


@pytest.fixture(scope="module")
def foam300() -> np.ndarray:
    return random_foam(generator(0, "phantom", 0), 300)


def test_object_fields() -> None:
    assert OBJECT_FIELDS == ("C0", "x0", "y0", "z0", "a", "b", "c", "phi")


def test_foam_ranges_defaults() -> None:
    r = FoamRanges()
    assert (r.x0, r.y0, r.z0, r.C0, r.radius) == (
        (-0.9, 0.9), (-0.9, 0.9), (-0.8, 0.8), (0.01, 1.0), (0.01, 0.25))
    with pytest.raises(ValueError, match="radius"):
        FoamRanges(radius=(0.0, 0.1))
    with pytest.raises(ValueError, match="low <= high"):
        FoamRanges(C0=(1.0, 0.5))


def test_sphere_foam_fields_and_ranges(foam300: np.ndarray) -> None:
    o = foam300
    assert o.dtype == np.float64 and o.ndim == 2 and o.shape[1] == 8
    assert 0 < o.shape[0] <= 300
    assert (o[:, 4] == o[:, 5]).all() and (o[:, 4] == o[:, 6]).all()
    assert (o[:, 7] == 0).all()
    r = FoamRanges()
    for col, (lo, hi) in ((0, r.C0), (1, r.x0), (2, r.y0), (3, r.z0), (4, r.radius)):
        assert (o[:, col] >= lo).all() and (o[:, col] < hi).all()
    # no degenerate placeholder objects (A.2)
    assert o[:, 4].min() >= r.radius[0]


def test_sphere_foam_non_overlap_and_inside_ball(foam300: np.ndarray) -> None:
    excl = foam300[:, 4]
    assert _pairwise_ok(foam300, excl)
    assert _corner_ok(foam300, excl)


def test_sphere_foam_statistics(foam300: np.ndarray) -> None:
    # B 1.2: essentially all requested objects are placed and acceptance biases radii
    # towards small values (mean ~0.054 against a prior mean of 0.13).
    assert foam300.shape[0] >= 295
    assert 0.04 < foam300[:, 4].mean() < 0.08
    assert 0.08 < (foam300[:, 4] ** 3).sum() < 0.25


def test_foam_reproducible_and_seed_dependent() -> None:
    a = random_foam(generator(3, "phantom", 1), 120)
    b = random_foam(generator(3, "phantom", 1), 120)
    c = random_foam(generator(4, "phantom", 1), 120)
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)
    # the same generator state, not merely the same seed, fixes the result
    rng = np.random.default_rng(7)
    state = rng.bit_generator.state
    d = random_foam(rng, 40, "ellipsoid")
    rng.bit_generator.state = state
    np.testing.assert_array_equal(d, random_foam(rng, 40, "ellipsoid"))


def test_first_candidate_is_tested_and_accepted() -> None:
    # Candidate i uses consecutive doubles x0, y0, z0, C0, r. With a tiny radius and a
    # centre range well inside the ball the very first candidate must be accepted as is.
    ranges = FoamRanges(x0=(-0.1, 0.1), y0=(-0.1, 0.1), z0=(-0.1, 0.1), radius=(0.001, 0.002))
    objs = random_foam(np.random.default_rng(5), 1, ranges=ranges)
    u = np.random.default_rng(5).random(5)
    low = np.array([-0.1, -0.1, -0.1, 0.01, 0.001])
    high = np.array([0.1, 0.1, 0.1, 1.0, 0.002])
    x0, y0, z0, c0, r = low + (high - low) * u
    np.testing.assert_array_equal(objs, [[c0, x0, y0, z0, r, r, r, 0.0]])


def test_foam_drops_objects_that_do_not_fit() -> None:
    big = FoamRanges(radius=(0.2, 0.25))
    objs = random_foam(generator(0, "phantom", 2), 100, ranges=big, max_attempts=200)
    assert 0 < objs.shape[0] < 100          # packing cannot hold 100 such spheres
    assert _pairwise_ok(objs, objs[:, 4]) and _corner_ok(objs, objs[:, 4])
    # condition (b) alone forbids radius > 1/sqrt(3): nothing can be placed
    none = random_foam(generator(0, "phantom", 2), 5, ranges=FoamRanges(radius=(0.6, 0.7)),
                       max_attempts=50)
    assert none.shape == (0, 8)
    assert random_foam(generator(0, "phantom", 2), 0).shape == (0, 8)


def test_ellipsoid_foam() -> None:
    o = random_foam(generator(1, "phantom", 0), 150, "ellipsoid")
    r = FoamRanges()
    assert 0 < o.shape[0] <= 150
    axes = o[:, 4:7]
    assert (axes >= r.radius[0]).all() and (axes < r.radius[1]).all()
    assert (axes[:, 0] != axes[:, 1]).all() and (axes[:, 1] != axes[:, 2]).all()
    assert (o[:, 7] >= 0).all() and (o[:, 7] < 180).all()
    assert o[:, 7].std() > 30                   # spread over [0, 180)
    excl = axes.max(axis=1)
    assert _pairwise_ok(o, excl)
    assert _corner_ok(o, excl)


def test_foam_bad_arguments() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="object_type"):
        random_foam(rng, 10, "cube")
    with pytest.raises(ValueError, match="n_objects"):
        random_foam(rng, -1)
    with pytest.raises(ValueError, match="max_attempts"):
        random_foam(rng, 3, max_attempts=0)


# ----------------------------------------------------------------------------- rasterise


def test_rasterise_mass_matches_sphere_volumes() -> None:
    n = 128
    objs = random_foam(generator(2, "phantom", 0), 300)
    vol = rasterise(objs, n)
    assert vol.dtype == np.float32 and vol.shape == (n, n, n)
    h = 2.0 / n
    expected = (objs[:, 0] * (4.0 / 3.0) * np.pi * objs[:, 4] ** 3).sum() / h ** 3
    assert abs(vol.sum(dtype=np.float64) / expected - 1) < 0.02
    # spheres do not overlap, so every voxel holds at most one C0
    assert vol.max() <= np.float32(objs[:, 0].max())


def test_rasterise_inclusive_grid_points() -> None:
    # B 1.4: a sphere centred on a grid point with r = m*H contains the grid points at
    # distance exactly r; the voxel count equals the lattice-point count |i|^2 <= m^2.
    n, m = 64, 5
    h = 2.0 / n
    ci, cj, ck = 20, 33, 40                      # grid indices of the centre
    g = -1.0 + np.arange(n) * h
    obj = np.array([[0.5, g[cj], g[ci], g[ck], m * h, m * h, m * h, 0.0]])
    vol = rasterise(obj, n)
    assert vol[ck, cj, ci + m] == np.float32(0.5)
    assert vol[ck + m, cj, ci] == np.float32(0.5)
    assert vol[ck, cj - m, ci] == np.float32(0.5)
    assert vol[ck, cj, ci + m + 1] == 0
    r = np.arange(-m, m + 1)
    lattice = ((r[:, None, None] ** 2 + r[None, :, None] ** 2 + r[None, None, :] ** 2)
               <= m * m).sum()
    assert (vol > 0).sum() == lattice


def test_rasterise_axis_mapping_and_bounding_box() -> None:
    # axis 0 <-> z0/c, axis 1 <-> x0/b, axis 2 <-> y0/a; equal to a whole-grid evaluation
    n = 48
    obj = np.array([0.7, 0.31, -0.42, 0.13, 0.37, 0.19, 0.27, 0.0])
    vol = rasterise(obj[None], n)
    np.testing.assert_array_equal(vol, _literal_raster(obj, n))
    h = 2.0 / n
    k, j, i = np.nonzero(vol)
    for idx, centre, semi in ((k, 0.13, 0.27), (j, 0.31, 0.19), (i, -0.42, 0.37)):
        coords = -1.0 + idx * h
        assert coords.min() >= centre - semi and coords.max() <= centre + semi
        assert coords.max() - coords.min() > 2 * semi - 2 * h


def test_rasterise_rotated_and_clipped_objects_match_whole_grid() -> None:
    n = 40
    objs = np.array([
        [0.9, 0.1, -0.2, 0.05, 0.45, 0.15, 0.3, 30.0],
        [0.4, -0.3, 0.35, -0.1, 0.12, 0.33, 0.2, 125.0],
        [0.6, 0.95, -0.9, 0.9, 0.3, 0.2, 0.25, 71.0],      # partly outside the grid
    ])
    expected = sum(_literal_raster(o, n) for o in objs)
    np.testing.assert_array_equal(rasterise(objs, n), expected)
    # phi rotates in the (axis-2, axis-1) plane: 90 degrees swaps the roles of a and b
    a = rasterise(np.array([[1.0, 0, 0, 0, 0.4, 0.2, 0.3, 90.0]]), 32)
    b = rasterise(np.array([[1.0, 0, 0, 0, 0.2, 0.4, 0.3, 0.0]]), 32)
    np.testing.assert_array_equal(a, b)


def test_rasterise_adds_overlapping_objects() -> None:
    n = 32
    objs = np.array([[0.25, 0, 0, 0, 0.3, 0.3, 0.3, 0], [0.5, 0.1, 0, 0, 0.3, 0.3, 0.3, 0]])
    vol = rasterise(objs, n)
    both = (rasterise(objs[:1], n) > 0) & (rasterise(objs[1:], n) > 0)
    assert both.any()
    np.testing.assert_array_equal(vol[both], np.float32(0.25) + np.float32(0.5))
    assert not rasterise(np.empty((0, 8)), 8).any()


def test_validate_objects() -> None:
    with pytest.raises(ValueError, match="shape"):
        validate_objects(np.zeros((3, 7)))
    with pytest.raises(ValueError, match="positive"):
        validate_objects(np.array([[1.0, 0, 0, 0, 0.1, 0.0, 0.1, 0]]))
    with pytest.raises(ValueError, match="non-finite"):
        validate_objects(np.array([[np.nan, 0, 0, 0, 0.1, 0.1, 0.1, 0]]))
