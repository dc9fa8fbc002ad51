"""Tests for nsgen.sim.flats (docs/science.md B 3.4, 4.2, 4.3 and the complex-mode model, A.5)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.special import spherical_yn

from nsgen.sim.flats import (
    add_pixel_defects,
    beam_profile,
    bessel_background,
    complex_projections,
    defect_maps,
    defect_response,
    flat_fields,
    speckles,
    temporal_responses,
)
from nsgen.sim.noise import photon_counts


def _gen(*key: int) -> np.random.Generator:
    return np.random.default_rng([31, *key])


# --------------------------------------------------------------------------- Bessel background


def test_bessel_background_reference_range() -> None:
    b = bessel_background(256, 362)
    assert b.shape == (256, 362) and b.dtype == np.float64
    assert round(float(b.min()), 3) == 1.385
    assert round(float(b.max()), 3) == 2.996
    # varies along rows only, symmetric, minimum at the two edges (y1 minimum at u = 1)
    assert np.all(b == b[:, :1])
    np.testing.assert_allclose(b[:, 0], b[::-1, 0], rtol=0, atol=1e-15)
    assert b[0, 0] == b.min() == b[-1, 0]


def test_bessel_background_formula() -> None:
    v = 17
    u = np.linspace(2.0, 9.0, v)
    y = -np.cos(u) / u**2 - np.sin(u) / u  # closed form of y1
    np.testing.assert_allclose(y, spherical_yn(1, u), rtol=1e-12)
    f = y + abs(y.min())
    np.testing.assert_allclose(bessel_background(v, 3, 2.0, 9.0)[:, 1], f + f[::-1], rtol=1e-12)


# ------------------------------------------------------------------------------------ speckles


@pytest.mark.parametrize("shape, kbar", [((32, 40), 2.0), ((64, 90), 0.03), ((33, 47), 0.7)])
def test_speckle_total_count_exact(shape: tuple[int, int], kbar: float) -> None:
    s = speckles(shape, _gen(1), kbar=kbar)
    n = round(kbar * shape[0] * shape[1])
    assert s.shape == shape and s.dtype == np.float64
    assert s.sum() == n
    assert np.array_equal(s, np.round(s)) and s.min() >= 0
    assert abs(s.mean() - kbar) <= 0.5 / s.size  # mean = kbar up to the rounding of n


def test_speckle_size_zero_is_ones() -> None:
    rng = _gen(2)
    state = rng.bit_generator.state
    assert np.array_equal(speckles((5, 7), rng, speckle_size=0.0), np.ones((5, 7)))
    assert rng.bit_generator.state == state  # nothing drawn


@pytest.mark.parametrize("modes, tail", [(1, np.exp(-2.0)), (2, 5 * np.exp(-4.0))])
def test_speckle_statistics(modes: int, tail: float) -> None:
    # For kbar large the shot noise is negligible and counts/kbar follows the speckle law:
    # exponential (contrast 1, P(x > 2) = e^-2) for one mode, Gamma(2, 1/2) (contrast 1/2,
    # P(x > 2) = 5 e^-4) for two. About 5 760 independent grains (block 64 x 90) give a
    # standard error of ~0.06 on the contrast and ~0.005 on the tail fraction; tolerances are
    # roughly 3 standard errors.
    x = speckles((128, 180), _gen(3, modes), modes=modes, speckle_size=2.0, kbar=1000.0)
    x = x / x.mean()
    assert abs(x.var() - 1 / modes) < 0.15 / modes
    assert abs(np.mean(x > 2) - tail) < 0.015


def test_speckle_grain_grows_with_size() -> None:
    # Correlation between horizontally adjacent pixels rises with the grain size s.
    def neighbour_corr(s: float) -> float:
        x = speckles((96, 96), _gen(4), speckle_size=s, kbar=500.0)
        return float(np.corrcoef(x[:, :-1].ravel(), x[:, 1:].ravel())[0, 1])

    c1, c3, c8 = neighbour_corr(1.0), neighbour_corr(3.0), neighbour_corr(8.0)
    assert c1 < 0.1 < c3 < c8


def test_speckle_errors_and_determinism() -> None:
    bad = (dict(modes=0), dict(speckle_size=-1.0), dict(kbar=-1.0), dict(speckle_size=50.0))
    for kwargs in bad:
        with pytest.raises(ValueError):
            speckles((10, 12), _gen(), **kwargs)
    a = speckles((20, 30), _gen(5), modes=2)
    b = speckles((20, 30), _gen(5), modes=2)
    assert a.tobytes() == b.tobytes()


# --------------------------------------------------------------------------------- defect maps


def test_defect_maps_properties() -> None:
    shape = (48, 64)
    maps = defect_maps(shape, _gen(6))
    assert maps.shape == (3, 48, 64) and maps.dtype == np.float64
    assert maps.min() >= 0 and maps.max() == 1.0  # exactly 1 after the global division
    for m in maps:
        nz = m[m > 0]
        assert nz.size > 0
        assert nz.min() >= 0.6 * m.max()  # everything below 0.6 * (map max) is zeroed
        assert nz.size < 0.2 * m.size  # a few small blobs, not a background


def test_defect_maps_match_definition() -> None:
    # Same generator state -> the composition speckle -> blur -> threshold -> global max.
    shape = (40, 50)
    maps = defect_maps(
        shape, _gen(7), n_maps=2, speckle_size=8.0, kbar=0.05, sigma_smooth=1.5, threshold=0.5
    )
    rng = _gen(7)
    expected = []
    for _ in range(2):
        g = gaussian_filter(speckles(shape, rng, 1, 8.0, 0.05), 1.5)
        g[g < 0.5 * g.max()] = 0
        expected.append(g)
    expected = np.stack(expected)
    np.testing.assert_array_equal(maps, expected / expected.max())


def test_defect_maps_without_photons_are_zero() -> None:
    assert not defect_maps((8, 8), _gen(), kbar=0.0, speckle_size=2.0).any()


# -------------------------------------------------------------------------------- beam profile


@pytest.mark.parametrize("density", [1.0, 2.0, 1.5, 0.25])
def test_pixel_defects_per_row(density: float) -> None:
    clusters = defect_maps((40, 30), np.random.default_rng(3))
    out = add_pixel_defects(clusters, density, np.random.default_rng(4))
    added = (out != clusters).any(axis=0).sum(axis=1)   # new or raised pixels per row
    whole = int(density)
    assert added.max() <= whole + (density > whole)
    if density >= 1:   # every detector row has a defect, so every rolled row too
        assert (out != 0).any(axis=(0, 2)).all()
    else:
        assert 0 < (added > 0).sum() < 40
    assert (out >= clusters).all() and out.max() <= 1.0
    changed = out != clusters
    assert (out[changed] >= 0.5).all()


def test_pixel_defects_density_zero_draws_nothing() -> None:
    clusters = defect_maps((16, 22), np.random.default_rng(1))
    rng = np.random.default_rng(5)
    out = add_pixel_defects(clusters, 0.0, rng)
    assert np.array_equal(out, clusters) and out is not clusters
    assert rng.random() == np.random.default_rng(5).random()
    with pytest.raises(ValueError, match=r"density must be in \[0, 22\]"):
        add_pixel_defects(clusters, 23, rng)


def test_beam_profile_definition() -> None:
    shape = (40, 56)
    f0 = beam_profile(shape, _gen(8))
    s = speckles(shape, _gen(8), 1, 3.0, 2.0)
    expected = bessel_background(*shape) + 0.5 * s / s.max()
    np.testing.assert_array_equal(f0, expected / expected.max())
    assert f0.max() == 1.0 and f0.min() > 0.3
    flat = beam_profile(shape, _gen(8), speckle_size=0.0)
    b = bessel_background(*shape) + 0.5
    np.testing.assert_array_equal(flat, b / b.max())


# --------------------------------------------------------------------------------- flat fields


def test_flat_fields_are_independent_poisson_realisations() -> None:
    # 2 000 flats of a 16 x 20 profile: per pixel the mean has SE sqrt(i0 F0 / n); with 320
    # pixels a |z| < 5 bound fails with probability < 2e-4. The pooled variance/mean ratio has
    # SE ~ sqrt(2 / 640 000) = 0.18 %, so a 2 % tolerance is generous.
    i0, n = 500.0, 2000
    profile = beam_profile((16, 20), _gen(9))
    flats = flat_fields(profile, i0, n, _gen(10))
    assert flats.shape == (n, 16, 20) and flats.dtype == np.float32
    assert np.array_equal(flats, np.round(flats))
    expected = i0 * profile
    mean = flats.astype(np.float64).mean(axis=0)
    z = (mean - expected) / np.sqrt(expected / n)
    assert np.abs(z).max() < 5
    var = flats.astype(np.float64).var(axis=0, ddof=1)
    np.testing.assert_allclose(var.sum() / expected.sum(), 1.0, rtol=0.02)
    # independent: no two flats equal, noise of different flats uncorrelated
    assert not np.array_equal(flats[0], flats[1])
    r = np.corrcoef((flats[0] - expected).ravel(), (flats[1] - expected).ravel())[0, 1]
    assert abs(r) < 0.25  # SE 1/sqrt(320) = 0.056


def test_flat_fields_errors() -> None:
    with pytest.raises(ValueError):
        flat_fields(np.ones((2, 2)), 0.0, 3, _gen())
    with pytest.raises(ValueError):
        flat_fields(np.ones((2, 2)), 10.0, 0, _gen())
    with pytest.raises(ValueError):
        flat_fields(np.ones((2, 2, 2)), 10.0, 3, _gen())
    with pytest.raises(ValueError):
        flat_fields(-np.ones((2, 2)), 10.0, 3, _gen())


# -------------------------------------------------------------------------- temporal responses


@pytest.mark.parametrize("n_angles", [1, 2, 50])
def test_temporal_responses(n_angles: int) -> None:
    s, e = temporal_responses(n_angles, _gen(11))
    assert s.shape == e.shape == (n_angles,)
    assert s.max() == 1.0 and e.max() == 1.0
    rng = _gen(11)
    t = np.arange(n_angles) / max(n_angles - 1, 1)
    s_raw = np.sin(1.5 * np.pi * t) + 0.1 * rng.random(n_angles)
    e_raw = np.exp(np.pi * t) + 0.1 * rng.random(n_angles)
    np.testing.assert_array_equal(s, s_raw / s_raw.max())
    np.testing.assert_array_equal(e, e_raw / e_raw.max())


def test_temporal_response_shapes_of_curves() -> None:
    s, e = temporal_responses(400, _gen(12))
    # sigma: one and a half half-periods of a sine -> negative in the last third
    assert s[-1] < -0.8 and s[130:136].max() > 0.9
    # eps: exponential drift from ~e^-pi to 1
    assert e[0] < 0.1 and e[-1] > 0.95


# ----------------------------------------------------------------------------- defect response


def _hand_maps(rows: int = 6, dh: int = 8) -> np.ndarray:
    maps = np.zeros((3, rows, dh))
    maps[0, 1, 2] = 1.0
    maps[1, 3, 4:6] = 0.5
    maps[2, 4, 6] = 0.8
    maps[2, 1, 2] = 0.25  # overlaps M0
    return maps


def test_defect_response_terms() -> None:
    maps = _hand_maps()
    s, e = temporal_responses(5, _gen(13))
    delta = 0.07
    d = defect_response(maps, s, e, delta)
    assert d.shape == (6, 5, 8) and d.dtype == np.float32
    expected = delta * (
        -maps[0][:, None, :]
        + s[None, :, None] * maps[1][:, None, :]
        + e[None, :, None] * maps[2][:, None, :]
    )
    np.testing.assert_allclose(d, expected, rtol=1e-6, atol=0)
    # constant, negative under-response from M0 alone
    d1 = defect_response(maps, s, e, delta, n_variations=1)
    np.testing.assert_allclose(d1[1, :, 2], -delta, rtol=1e-6)
    assert np.count_nonzero(d1) == 5
    d2 = defect_response(maps, s, e, delta, n_variations=2)
    np.testing.assert_allclose(d2[3, :, 4], delta * 0.5 * s, rtol=1e-6)
    assert not d2[4].any()  # M2 unused
    assert not defect_response(maps, s, e, delta, n_variations=0).any()
    assert not defect_response(maps, s, e, delta, n_variations=-1).any()
    assert np.array_equal(defect_response(maps, s, e, delta, n_variations=7), d)


def test_defect_response_errors() -> None:
    s, e = temporal_responses(5, _gen())
    with pytest.raises(ValueError):
        defect_response(_hand_maps()[:2], s, e, 0.1, n_variations=3)
    with pytest.raises(ValueError):
        defect_response(_hand_maps()[0], s, e, 0.1)
    with pytest.raises(ValueError):
        defect_response(_hand_maps(), s, e[:3], 0.1)


# ------------------------------------------------------------------------ complex projections


V, P, DH, I0 = 40, 24, 48, 40000.0


def _scene(seed: int = 0):
    """A small complete complex-mode sample: tau, relative mean flat, maps, responses."""
    rng_p = _gen(20, seed)
    pn = rng_p.random((V, P, DH))
    f0 = beam_profile((V, DH), _gen(21, seed))
    expected = I0 * f0[:, None, :] * np.exp(-pn)
    tau = photon_counts(expected, _gen(22, seed)) / (I0 * f0[:, None, :])
    fbar = flat_fields(f0, I0, 20, _gen(23, seed)).astype(np.float64).mean(axis=0) / I0
    maps = defect_maps((V, DH), _gen(24, seed), kbar=0.05, speckle_size=6.0)
    s, e = temporal_responses(P, _gen(25, seed))
    return tau, fbar, maps, s, e


def _clean(tau: np.ndarray) -> np.ndarray:
    return (-np.log(np.maximum(tau.astype(np.float64), 1e-6))).astype(np.float32)


def test_complex_delta_zero_is_clean_target_exactly() -> None:
    tau, fbar, maps, s, e = _scene()
    out = complex_projections(tau, fbar, maps, s, e, 0.0)
    assert out.dtype == np.float32 and out.shape == (V, P, DH)
    assert out.tobytes() == _clean(tau).tobytes()
    no_defects = complex_projections(tau, fbar, maps, s, e, 0.07, n_variations=-1)
    assert no_defects.tobytes() == out.tobytes()
    # floor before the log
    t = np.zeros((1, 2, 3), dtype=np.float32)
    z = complex_projections(t, np.ones((1, 3)), np.zeros((3, 1, 3)), np.ones(2), np.ones(2), 0.0)
    np.testing.assert_allclose(z, -np.log(1e-6), rtol=1e-7)


def test_complex_difference_supported_exactly_on_maps() -> None:
    tau, fbar, maps, s, e = _scene(1)
    clean = complex_projections(tau, fbar, maps, s, e, 0.0)
    stripe = complex_projections(tau, fbar, maps, s, e, 0.07)
    support = (maps != 0).any(axis=0)  # (V, Dh)
    assert 0 < support.sum() < 0.5 * support.size
    diff = stripe.astype(np.float64) - clean
    assert not diff[~support[:, None, :].repeat(P, axis=1)].any()  # exactly zero elsewhere
    assert np.all(diff.transpose(0, 2, 1)[support] != 0)  # every angle on every support pixel
    # closed form of the non-zero part
    d = defect_response(maps, s, e, 0.07).astype(np.float64)
    expected = -np.log(tau + d / fbar[:, None, :]) + np.log(tau)
    np.testing.assert_allclose(diff, expected, atol=2e-6)
    # only M0 with nv = 1: stripes constant along angles in relative terms (a darkening)
    only0 = complex_projections(tau, fbar, maps, s, e, 0.07, n_variations=1) - clean
    sup0 = maps[0] != 0
    assert not only0[~sup0[:, None, :].repeat(P, axis=1)].any()
    assert np.all(only0.transpose(0, 2, 1)[sup0] > 0)  # less signal -> larger -log


@pytest.mark.parametrize("offset", [-4, 2, 5])
def test_complex_rolling_moves_support(offset: int) -> None:
    tau, fbar, maps, s, e = _scene(2)
    clean = complex_projections(tau, fbar, maps, s, e, 0.0)

    def support_of(o: int) -> np.ndarray:
        out = complex_projections(
            tau, np.roll(fbar, o, axis=0), np.roll(maps, o, axis=1), s, e, 0.07
        )
        return (out != clean).any(axis=1)  # (V, Dh)

    base, moved = support_of(0), support_of(offset)
    assert base.any()
    assert np.array_equal(base, (maps != 0).any(axis=0))
    assert np.array_equal(moved, np.roll(base, offset, axis=0))


def test_complex_block_of_rows_matches_whole() -> None:
    # A block of rows computed alone equals the same rows of the whole volume.
    tau, fbar, maps, s, e = _scene(3)
    whole = complex_projections(tau, fbar, maps, s, e, 0.07)
    block = complex_projections(tau[10:17], fbar[10:17], maps[:, 10:17], s, e, 0.07)
    assert block.tobytes() == whole[10:17].tobytes()


def test_complex_errors() -> None:
    tau, fbar, maps, s, e = _scene(4)
    with pytest.raises(ValueError):
        complex_projections(tau[0], fbar, maps, s, e, 0.07)
    with pytest.raises(ValueError):
        complex_projections(tau, fbar[:, :-1], maps, s, e, 0.07)
    with pytest.raises(ValueError):
        complex_projections(tau, fbar, maps[:, :-1], s, e, 0.07)
    with pytest.raises(ValueError):
        complex_projections(tau, fbar, maps, s[:-1], e[:-1], 0.07)
    bad = fbar.copy()
    bad[0, 0] = 0.0
    with pytest.raises(ValueError):
        complex_projections(tau, bad, maps, s, e, 0.07)
