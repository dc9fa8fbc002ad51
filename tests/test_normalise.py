"""Tests of nsgen.prep.normalise.flat_field_log: closed forms, NaN handling, layout."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.prep.normalise import RATIO_MAX, RATIO_MIN, flat_field_log

FLOOR = -np.log(RATIO_MIN)  # 13.8155...: zero counts / NaN


def reference(raw: np.ndarray, flat: np.ndarray, dark: np.ndarray) -> np.ndarray:
    """The documented formula in float64, (P, V, Dh) -> (V, P, Dh)."""
    den = np.maximum(flat.astype(np.float64) - dark, 1e-6)
    ratio = np.clip((raw.astype(np.float64) - dark) / den, RATIO_MIN, RATIO_MAX)
    return (-np.log(ratio)).transpose(1, 0, 2)


def test_hand_made_2x2x2() -> None:
    flat = np.array([[1100.0, 1100.0], [100.0, 50.0]], dtype=np.float32)  # row 1: F == D, F < D
    dark = np.full((2, 2), 100.0, dtype=np.float32)
    raw = np.array([[[1100, 600], [150, 150]],    # projection 0
                    [[100, 90], [100, 100]]], dtype=np.uint16)  # projection 1
    out = flat_field_log(raw, flat, dark)
    assert out.dtype == np.float32 and out.shape == (2, 2, 2)
    assert out[0, 0, 0] == 0.0                                # raw == flat: no attenuation
    np.testing.assert_allclose(out[0, 0, 1], np.log(2.0), rtol=1e-6)   # half the light
    assert out[0, 1, 0] == pytest.approx(FLOOR, rel=1e-6)     # raw == dark: zero counts -> floor
    assert out[0, 1, 1] == pytest.approx(FLOOR, rel=1e-6)     # raw < dark (negative numerator) -> floor
    # degenerate flats (F <= D): den = 1e-6, ratio 5e7 clipped to 1e6
    np.testing.assert_allclose(out[1, 0, :], -np.log(RATIO_MAX), rtol=1e-6)
    np.testing.assert_allclose(out[1, 1, :], FLOOR, rtol=1e-6)  # raw == dark on a degenerate flat


def test_more_light_than_the_flat_is_negative() -> None:
    out = flat_field_log(np.array([[[2100.0]]]), np.array([[1100.0]]), np.array([[100.0]]))
    np.testing.assert_allclose(out, [[[-np.log(2.0)]]], rtol=1e-6)


def test_nan_and_inf_handling() -> None:
    raw = np.array([[[np.nan, 600.0, 600.0, 600.0, np.inf, -np.inf]]], dtype=np.float32)
    flat = np.array([[1100.0, np.nan, 1100.0, np.inf, 1100.0, 1100.0]], dtype=np.float32)
    dark = np.array([[100.0, 100.0, np.nan, 100.0, 100.0, 100.0]], dtype=np.float32)
    out = flat_field_log(raw, flat, dark)[0, 0]
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[:4], FLOOR, rtol=1e-6)  # NaN raw, NaN flat, NaN dark, inf flat
    np.testing.assert_allclose(out[4], -np.log(RATIO_MAX), rtol=1e-6)
    np.testing.assert_allclose(out[5], FLOOR, rtol=1e-6)


def test_layout_and_agreement_with_formula() -> None:
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 50000, size=(37, 5, 23)).astype(np.uint16)
    flat = rng.uniform(30000, 45000, size=(5, 23)).astype(np.float32)
    dark = rng.uniform(90, 110, size=(5, 23)).astype(np.float32)
    out = flat_field_log(raw, flat, dark)
    assert out.shape == (5, 37, 23)
    np.testing.assert_allclose(out, reference(raw, flat, dark), rtol=1e-5, atol=3e-6)
    v, p, c = 3, 11, 7  # out[v, p, c] comes from raw[p, v, c]
    expected = -np.log((float(raw[p, v, c]) - dark[v, c]) / (flat[v, c] - dark[v, c]))
    assert out[v, p, c] == pytest.approx(expected, abs=3e-6) or raw[p, v, c] <= dark[v, c]


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.float64, np.int32])
def test_input_dtypes_give_float32(dtype: type) -> None:
    raw = np.full((3, 2, 4), 600, dtype=dtype)
    out = flat_field_log(raw, np.full((2, 4), 1100.0), np.full((2, 4), 100.0))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.log(2.0), rtol=1e-6)


def test_out_argument_and_errors() -> None:
    raw = np.full((3, 2, 4), 600, dtype=np.uint16)
    flat, dark = np.full((2, 4), 1100.0, np.float32), np.full((2, 4), 100.0, np.float32)
    buf = np.empty((2, 3, 4), np.float32)
    assert flat_field_log(raw, flat, dark, out=buf) is buf
    with pytest.raises(ValueError):
        flat_field_log(raw, flat, dark, out=np.empty((3, 2, 4), np.float32))
    with pytest.raises(ValueError):
        flat_field_log(raw, flat[:1], dark)
    with pytest.raises(ValueError):
        flat_field_log(raw[0], flat, dark)


def test_empty_input() -> None:
    out = flat_field_log(np.empty((0, 2, 3), np.uint16), np.ones((2, 3)), np.zeros((2, 3)))
    assert out.shape == (2, 0, 3)


def test_logarithm_within_two_ulp_over_the_whole_range() -> None:
    """The compiled, vectorised logarithm against float64 over 24 decades of ratios.

    With dark 0 and flat 1 the output is ``-ln(x)`` of the float32 count ``x`` itself, so
    the only error is the logarithm's: at most 2 ulp of the result (NumPy's float32 ``log``
    is allowed about as much), exact at 1.
    """
    rng = np.random.default_rng(4)
    x = (10.0 ** rng.uniform(-5.9, 5.9, 1_000_000)).astype(np.float32)
    x[:3] = [1.0, 2.0, 0.5]
    out = flat_field_log(x.reshape(-1, 1, 1), np.ones((1, 1)), np.zeros((1, 1)))[0, :, 0]
    ref = -np.log(x.astype(np.float64))
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(out - ref) / ulp) <= 2.0
    assert out[0] == 0.0
    np.testing.assert_allclose(out[1:3], [-np.log(2.0), np.log(2.0)], rtol=1e-7)


def test_every_uint16_count_the_same_in_vector_and_scalar_loops() -> None:
    """The pixel function gives the same bits whatever lane of whatever loop a pixel falls
    in: every uint16 count normalised in one row (the vectorised loop, as wide as the CPU
    allows: ``wide_vectors``) equals that count normalised alone (the scalar loop), for
    several pixel constants (one of them a degenerate flat), and with the extremes kept."""
    from nsgen.prep._normalise_jit import normalise_row, normalise_row_extremes
    from nsgen.prep.normalise import pixel_constants

    counts = np.arange(65536, dtype=np.uint16)
    for flat, dark in [(60000.0, 100.25), (1.0, 0.0), (4000.0, 37.7), (50.0, 65000.0)]:
        consts = [np.full(counts.size, c) for c in pixel_constants(np.full((1, 1), flat),
                                                                   np.full((1, 1), dark))]
        row = np.empty(counts.size, np.float32)
        normalise_row(counts, *consts, row)
        lows, highs = np.full(counts.size, np.inf, np.float32), np.full(counts.size, -np.inf,
                                                                         np.float32)
        again = np.empty_like(row)
        normalise_row_extremes(counts, *consts, again, lows, highs)
        alone = np.empty(1, np.float32)
        one = [c[:1] for c in consts]
        for k in range(counts.size):
            normalise_row(counts[k:k + 1], *one, alone)
            assert alone.view(np.uint32)[0] == row.view(np.uint32)[k], (flat, dark, k)
        assert np.array_equal(row.view(np.uint32), again.view(np.uint32))
        assert np.array_equal(lows, row) and np.array_equal(highs, row)
