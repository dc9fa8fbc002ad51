"""Tests for nsgen.sim.projection (docs/science.md A.3, B 2.1-2.4, 8.1-8.2)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nsgen.rng import generator
from nsgen.sim.phantom import FoamRanges, random_foam, rasterise
from nsgen.sim.projection import Geometry, project


def _sphere(c0: float, x0: float, y0: float, z0: float, r: float) -> np.ndarray:
    return np.array([[c0, x0, y0, z0, r, r, r, 0.0]])


def _detector(g: Geometry) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Detector coordinates written out from B 2.1 (independent of Geometry helpers)."""
    n, dh_count, v_count = g.size, g.n_columns, g.n_rows
    hmax, vmax = dh_count / (n + 1), v_count / (n + 1)
    dh, dv = 2 * hmax / (dh_count - 1), 2 * vmax / (v_count - 1)
    return -hmax + np.arange(dh_count) * dh, -vmax + np.arange(v_count) * dv, dh, dv


def _literal_projection(objs: np.ndarray, g: Geometry) -> np.ndarray:
    """Full-detector evaluation of B 2.1-2.2 with the rotation applied to ray and centre.

    Every object is evaluated for every ray: p = (t, s sin th, s cos th), d = (0, cos th,
    -sin th), q = centre + H/2, sigma = (c, b, a); (x, y) components of p - q and d are
    rotated into the body frame (Y' = Y cos phi + X sin phi, X' = -Y sin phi + X cos phi).
    """
    s, t, _, _ = _detector(g)
    h = 2.0 / g.size
    th = np.deg2rad(g.angles_deg.astype(np.float64))[None, :, None]
    s = s[None, None, :]
    t = t[:, None, None]
    out = np.zeros(g.shape)
    for c0, x0, y0, z0, a, b, c, phi in objs:
        pz, px, py = t - (z0 + h / 2), s * np.sin(th) - (x0 + h / 2), s * np.cos(th) - (y0 + h / 2)
        dz, dx, dy = 0.0, np.cos(th), -np.sin(th)
        f = np.deg2rad(phi)
        pyb, pxb = py * np.cos(f) + px * np.sin(f), -py * np.sin(f) + px * np.cos(f)
        dyb, dxb = dy * np.cos(f) + dx * np.sin(f), -dy * np.sin(f) + dx * np.cos(f)
        w = (pz / c, pxb / b, pyb / a)
        u = (dz / c, dxb / b, dyb / a)
        qa = u[0] ** 2 + u[1] ** 2 + u[2] ** 2
        qb = u[0] * w[0] + u[1] * w[1] + u[2] * w[2]
        qc = w[0] ** 2 + w[1] ** 2 + w[2] ** 2 - 1
        disc = qb ** 2 - qa * qc
        chord = np.where(disc > 0, 2 * np.sqrt(np.maximum(disc, 0)) / qa, 0.0)
        out += chord * c0 * g.size / 2
    return out


# ----------------------------------------------------------------------------- geometry


def test_geometry_for_size_256() -> None:
    g = Geometry.for_size(256)
    assert (g.size, g.n_rows, g.n_angles, g.n_columns) == (256, 256, 402, 362)
    assert g.shape == (256, 402, 362)
    ang = g.angles_deg
    assert ang.dtype == np.float32 and ang.shape == (402,)
    assert ang[0] == 0 and ang[-1] == np.float32(179.9)
    np.testing.assert_allclose(np.diff(ang), 179.9 / 401, rtol=1e-4)
    s, t, _, _ = _detector(g)
    np.testing.assert_array_equal(g.column_coords, s)
    np.testing.assert_array_equal(g.row_coords, t)


def test_project_shape_n256() -> None:
    g = Geometry.for_size(256)
    h = g.voxel_size
    p = project(_sphere(1.0, -h / 2, -h / 2, 0.3, 0.02), g)
    assert p.shape == (256, 402, 362) and p.dtype == np.float32
    part = project(_sphere(1.0, -h / 2, -h / 2, 0.3, 0.02), g, rows=(160, 170))
    assert part.shape == (10, 402, 362)
    np.testing.assert_array_equal(part, p[160:170])
    assert p.any()


def test_geometry_validation() -> None:
    with pytest.raises(ValueError, match="n_columns"):
        Geometry(size=8, n_rows=8, n_angles=4, n_columns=1)
    with pytest.raises(ValueError, match="n_rows"):
        Geometry(size=8, n_rows=1, n_angles=4, n_columns=8)
    with pytest.raises(TypeError):
        Geometry(size=8.0, n_rows=8, n_angles=4, n_columns=8)  # type: ignore[arg-type]
    g = Geometry.for_size(16)
    with pytest.raises(ValueError, match="rows"):
        project(_sphere(1, 0, 0, 0, 0.1), g, rows=(4, 17))
    with pytest.raises(ValueError, match="rows"):
        project(_sphere(1, 0, 0, 0, 0.1), g, rows=(5, 4))


# ----------------------------------------------------------------------------- closed forms


def test_single_sphere_closed_form() -> None:
    # B 2.2 sphere case: value = C0 * N/2 * 2 sqrt(r^2 - rho^2), with
    # rho^2 = (s - s_c(th))^2 + (t - z0 - H/2)^2, s_c = (y0 + H/2) cos th + (x0 + H/2) sin th.
    g = Geometry.for_size(64)
    h = 2.0 / 64
    c0, x0, y0, z0, r = 0.8, 0.21, -0.33, 0.12, 0.27
    p = project(_sphere(c0, x0, y0, z0, r), g)
    s, t, _, _ = _detector(g)
    th = np.deg2rad(g.angles_deg.astype(np.float64))
    sc = (y0 + h / 2) * np.cos(th) + (x0 + h / 2) * np.sin(th)
    rho2 = (s[None, None, :] - sc[None, :, None]) ** 2 + (t[:, None, None] - z0 - h / 2) ** 2
    expected = c0 * 32 * 2 * np.sqrt(np.maximum(r * r - rho2, 0))
    peak = c0 * r * 64
    np.testing.assert_allclose(p, expected, rtol=1e-6, atol=1e-5 * peak)
    # spot values at a few (row, angle, column) inside the footprint, written out
    k_c = int(np.argmin(np.abs(t - z0 - h / 2)))
    for k, a, dj in ((k_c, 0, 0), (k_c - 4, 50, 3), (k_c + 6, 99, -5), (k_c + 2, 77, 7)):
        j = int(np.argmin(np.abs(s - sc[a]))) + dj
        rho2_kaj = (s[j] - sc[a]) ** 2 + (t[k] - z0 - h / 2) ** 2
        value = c0 * (64 / 2) * 2 * math.sqrt(r * r - rho2_kaj)
        assert value > 0.3 * peak
        assert abs(p[k, a, j] - value) <= 1e-6 * peak
    # support: exactly the rays with rho < r (away from rounding at the rim)
    assert not p[rho2 > r * r * (1 + 1e-9)].any()
    assert (p[rho2 < r * r * (1 - 1e-6)] > 0).all()


def test_peak_value_is_c0_r_n() -> None:
    g = Geometry.for_size(64)
    s, t, _, _ = _detector(g)
    h = 2.0 / 64
    j, k = 52, 29
    c0, r = 0.6, 0.2
    # centre placed so that the ray (row k, column j) at th = 0 passes through it
    obj = _sphere(c0, 0.1, s[j] - h / 2, t[k] - h / 2, r)
    p = project(obj, g)
    assert p[k, 0, j] == pytest.approx(c0 * r * 64, rel=1e-6)
    assert p.max() <= c0 * r * 64 * (1 + 1e-6)


def test_matches_literal_quadratic_formula_for_rotated_ellipsoids() -> None:
    g = Geometry.for_size(32)
    objs = np.array([
        [0.9, 0.12, -0.25, 0.1, 0.35, 0.15, 0.22, 0.0],
        [0.5, -0.3, 0.2, -0.2, 0.1, 0.3, 0.18, 37.0],
        [0.7, 0.4, 0.45, 0.3, 0.25, 0.12, 0.3, 151.5],
        [0.3, -0.5, -0.5, -0.4, 0.17, 0.17, 0.17, 0.0],
        [0.4, 0.3, 0.9, 0.85, 0.6, 0.2, 0.3, 10.0],         # beyond the detector edges
        [0.2, 0.0, 0.0, 0.0, 1.8, 1.5, 0.3, 20.0],          # wider than the detector
    ])
    got = project(objs, g)
    np.testing.assert_allclose(got, _literal_projection(objs, g), rtol=2e-6, atol=2e-5)


# ----------------------------------------------------------------------------- invariants


def test_mass_conservation_per_angle() -> None:
    n = 128
    g = Geometry.for_size(n)
    _, _, dh, dv = _detector(g)
    c0, r = 0.7, 0.3
    p = project(_sphere(c0, 0.15, -0.2, 0.05, r), g)
    mass = p.sum(axis=(0, 2), dtype=np.float64) * dh * dv
    expected = c0 * (n / 2) * (4 / 3) * np.pi * r ** 3
    np.testing.assert_allclose(mass, expected, rtol=2e-3)
    assert mass.std() / mass.mean() < 1e-3


def test_sphere_on_rotation_axis_is_angle_independent() -> None:
    g = Geometry.for_size(64)
    h = 2.0 / 64
    p = project(_sphere(1.0, -h / 2, -h / 2, 0.1, 0.3), g)
    ref = np.broadcast_to(p[:, :1, :], p.shape)
    np.testing.assert_allclose(p, ref, rtol=0, atol=1e-5 * 0.3 * 64)
    # centred at (0, 0) instead: the trace moves by (H/2)(cos th + sin th)
    q = project(_sphere(1.0, 0.0, 0.0, 0.1, 0.3), g)
    s, _, _, _ = _detector(g)
    th = np.deg2rad(g.angles_deg.astype(np.float64))
    dh = s[1] - s[0]
    centroid = (q.sum(axis=0) * s).sum(axis=1) / q.sum(axis=(0, 2))
    # sampling error of a centroid is a few % of a column; the shift is ~half a column
    np.testing.assert_allclose(centroid, (h / 2) * (np.cos(th) + np.sin(th)), atol=0.1 * dh)
    assert centroid[0] > 0.35 * dh and centroid[-1] < -0.35 * dh     # +H/2 at 0, -H/2 at 180


def test_off_centre_sphere_follows_sinusoid() -> None:
    g = Geometry.for_size(64)
    h = 2.0 / 64
    x0, y0 = 0.45, -0.3
    p = project(_sphere(1.0, x0, y0, -0.2, 0.15), g)
    s, _, dh, _ = _detector(g)
    th = np.deg2rad(g.angles_deg.astype(np.float64))
    sino = p.sum(axis=0, dtype=np.float64)
    centroid = (sino * s).sum(axis=1) / sino.sum(axis=1)
    s_c = (y0 + h / 2) * np.cos(th) + (x0 + h / 2) * np.sin(th)
    np.testing.assert_allclose(centroid, s_c, atol=0.1 * dh)
    # the trace really moves: amplitude of the sinusoid
    assert np.ptp(centroid) > 0.5


def test_linearity() -> None:
    g = Geometry.for_size(48)
    objs = random_foam(generator(1, "phantom", 3), 12, "ellipsoid")
    assert objs.shape[0] == 12
    total = project(objs, g)
    singles = sum(project(o[None], g).astype(np.float64) for o in objs)
    np.testing.assert_allclose(total, singles, rtol=1e-6, atol=1e-6 * total.max())


def test_row_ranges_are_byte_identical() -> None:
    g = Geometry.for_size(64)
    objs = random_foam(generator(0, "phantom", 4), 60)
    objs = np.concatenate([objs, random_foam(generator(0, "phantom", 5), 10, "ellipsoid")])
    full = project(objs, g)
    bounds = [0, 1, 17, 18, 40, 63, 64]
    parts = [project(objs, g, rows=(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]
    np.testing.assert_array_equal(np.concatenate(parts), full)
    assert project(objs, g, rows=(10, 10)).shape == (0, g.n_angles, g.n_columns)
    assert full[17:18].any()


def test_internal_row_blocking_does_not_change_values(monkeypatch: pytest.MonkeyPatch) -> None:
    import nsgen.sim.projection as projection

    g = Geometry.for_size(40)
    objs = random_foam(generator(2, "phantom", 6), 20, "ellipsoid")
    ref = project(objs, g)
    monkeypatch.setattr(projection, "_BLOCK_ELEMENTS", 1)          # one row at a time
    np.testing.assert_array_equal(project(objs, g), ref)


def test_theta0_agrees_with_rasterised_sum() -> None:
    # B 2.4 / 8.1: at th = 0 the rays run along axis 1 and columns along axis 2. Sample the
    # projection at voxel centres s = -1 + (i + 1/2)H, t = -1 + (k + 1/2)H and compare with
    # vol.sum(axis=1) (both in C0 * voxels). Without the H/2 centring it is much worse.
    n = 128
    g = Geometry.for_size(n)
    h = 2.0 / n
    objs = random_foam(generator(5, "phantom", 0), 40, ranges=FoamRanges(radius=(0.05, 0.25)))
    objs = np.concatenate([objs, [[0.8, 0.1, -0.3, 0.2, 0.3, 0.12, 0.2, 40.0]]])
    vol_sum = rasterise(objs, n).sum(axis=1, dtype=np.float64)      # (z, y)
    s, t, _, _ = _detector(g)
    centres = -1 + (np.arange(n) + 0.5) * h

    def sampled(objects: np.ndarray) -> np.ndarray:
        p0 = project(objects, g)[:, 0, :].astype(np.float64)       # (rows, columns)
        cols = np.array([np.interp(centres, s, row) for row in p0])
        return np.array([np.interp(centres, t, col) for col in cols.T]).T

    err = np.abs(sampled(objs) - vol_sum).mean()
    shifted = objs.copy()
    shifted[:, 1:4] -= h / 2                                         # undo the centring
    err_unshifted = np.abs(sampled(shifted) - vol_sum).mean()
    assert err < 0.5 * err_unshifted
    assert err < 0.02 * vol_sum.max()


def test_rotated_ellipsoid_equals_unrotated_at_theta_minus_phi() -> None:
    g = Geometry.for_size(48)
    h = 2.0 / 48
    step = 179.9 / (g.n_angles - 1)
    m = 17
    phi = m * step
    base = np.array([[0.9, -h / 2, -h / 2, 0.05, 0.4, 0.15, 0.25, 0.0]])
    rotated = base.copy()
    rotated[0, 7] = phi
    p_rot = project(rotated, g)
    p_base = project(base, g)
    peak = p_base.max()
    np.testing.assert_allclose(p_rot[:, m:, :], p_base[:, :-m, :], rtol=0, atol=1e-4 * peak)
    # an off-axis centre is not rotated: the shape turns, the trace stays s_c(theta)
    off = rotated.copy()
    off[0, 1:3] = (0.2, -0.3)
    p_off = project(off, g)
    s, _, dh, _ = _detector(g)
    th = np.deg2rad(g.angles_deg.astype(np.float64))
    sino = p_off.sum(axis=0, dtype=np.float64)
    centroid = (sino * s).sum(axis=1) / sino.sum(axis=1)
    s_c = (-0.3 + h / 2) * np.cos(th) + (0.2 + h / 2) * np.sin(th)
    np.testing.assert_allclose(centroid, s_c, atol=0.1 * dh)
    th_phi = th - np.deg2rad(phi)          # where a (wrongly) rotated centre would be
    s_c_rotated = (-0.3 + h / 2) * np.cos(th_phi) + (0.2 + h / 2) * np.sin(th_phi)
    assert np.abs(centroid - s_c_rotated).max() > dh
    _, _, dh, dv = _detector(g)
    mass = sino.sum(axis=1) * dh * dv                   # sampling error is ~1 % per angle
    expected = 0.9 * (48 / 2) * (4 / 3) * np.pi * 0.4 * 0.15 * 0.25
    assert abs(mass.mean() / expected - 1) < 3e-3
    assert np.abs(mass / expected - 1).max() < 0.03


def test_empty_object_list() -> None:
    g = Geometry.for_size(16)
    p = project(np.empty((0, 8)), g)
    assert p.shape == g.shape and not p.any()
    assert project(np.empty((0, 8)), g, rows=(3, 9)).shape == (6, g.n_angles, g.n_columns)


def test_rotation_convention_matches_rasteriser() -> None:
    # Axis sums cannot see the sign of phi (mirror symmetry), so compare moments at every
    # angle: the projected profile at theta has mean e.mu and variance e^T Sigma e, with
    # e = (cos th, sin th) in the (y, x) plane and mu, Sigma the first two moments of the
    # rasterised voxels at their effective positions g + H/2.
    n = 96
    g = Geometry.for_size(n)
    h = 2.0 / n
    obj = np.array([[0.8, 0.15, -0.1, 0.0, 0.45, 0.12, 0.2, 35.0]])
    img = rasterise(obj, n).sum(axis=0, dtype=np.float64)            # (x, y)
    pos = -1 + np.arange(n) * h + h / 2
    w = img / img.sum()
    mu_x, mu_y = (w.sum(axis=1) * pos).sum(), (w.sum(axis=0) * pos).sum()
    dx, dy = pos[:, None] - mu_x, pos[None, :] - mu_y
    sxx, syy, sxy = (w * dx * dx).sum(), (w * dy * dy).sum(), (w * dx * dy).sum()
    assert abs(sxy) > 0.005                                          # visibly tilted

    prof = project(obj, g).sum(axis=0, dtype=np.float64)             # (angles, columns)
    s = g.column_coords
    wp = prof / prof.sum(axis=1, keepdims=True)
    mean = (wp * s).sum(axis=1)
    var = (wp * (s - mean[:, None]) ** 2).sum(axis=1)
    th = np.deg2rad(g.angles_deg.astype(np.float64))
    c, sn = np.cos(th), np.sin(th)
    np.testing.assert_allclose(mean, mu_y * c + mu_x * sn, atol=0.1 * h)
    expected = syy * c * c + sxx * sn * sn + 2 * sxy * sn * c
    np.testing.assert_allclose(var, expected, rtol=0.04)          # voxelisation error
    flipped = syy * c * c + sxx * sn * sn - 2 * sxy * sn * c         # phi -> -phi
    assert np.abs(var / flipped - 1).max() > 0.5
