"""Tests of nsgen.prep.resize.downsample against the direct scipy (= skimage) computation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from nsgen.prep.normalise import flat_field_log
from nsgen.prep.resize import _sigma, axis_operator, downsample, normalise_downsample


def direct(sino: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """skimage.transform.resize(sino, out_shape, anti_aliasing=True), spelled out in scipy."""
    x = np.asarray(sino, dtype=np.float64)
    factors = np.divide(x.shape, out_shape)
    sigma = np.maximum(0.0, (factors - 1) / 2)
    y = ndi.gaussian_filter(x, sigma, mode="mirror", truncate=4.0)
    y = ndi.zoom(y, 1 / factors, order=1, mode="mirror", grid_mode=True)
    return np.clip(y, x.min(), x.max())


def smooth_random(shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random(shape) + np.linspace(0, 2, shape[-1])).astype(np.float32)


@pytest.mark.parametrize("in_shape,out_shape", [
    ((181, 256), (40, 36)),
    ((97, 130), (97, 33)),     # angle axis untouched
    ((60, 50), (23, 50)),      # column axis untouched
    ((45, 40), (70, 64)),      # upsampling: sigma 0, mirror boundary
    ((33, 31), (32, 7)),       # factor barely above 1 on one axis
    ((7, 9), (1, 1)),
])
def test_agrees_with_direct_scipy(in_shape: tuple[int, int], out_shape: tuple[int, int]) -> None:
    x = smooth_random(in_shape, 1)
    got = downsample(x, out_shape)
    assert got.shape == out_shape and got.dtype == np.float32
    np.testing.assert_allclose(got, direct(x, out_shape), rtol=1e-5, atol=1e-6)


def test_i12_size() -> None:
    x = smooth_random((1801, 2560), 2)
    np.testing.assert_allclose(downsample(x, (402, 362)), direct(x, (402, 362)), rtol=1e-5, atol=1e-6)


def test_pixel_area_alignment_on_a_ramp() -> None:
    """Away from the borders the Gaussian keeps a ramp, so output o samples (o+0.5)f-0.5."""
    n_in, n_out = 400, 50
    f = n_in / n_out
    x = np.tile(np.arange(n_in, dtype=np.float32), (3, 1))
    y = downsample(x, (3, n_out))[1]
    o = np.arange(5, n_out - 5)
    np.testing.assert_allclose(y[o], (o + 0.5) * f - 0.5, rtol=1e-5)


def test_stack_equals_each_sinogram_and_clips_per_sinogram() -> None:
    rng = np.random.default_rng(3)
    stack = rng.random((4, 90, 120)).astype(np.float32)
    stack[1] *= 10.0
    stack[2, 45, 60] = 1e3  # a spike: the output must stay within this sinogram's own range
    got = downsample(stack, (30, 40))
    for v in range(4):
        np.testing.assert_array_equal(got[v], downsample(stack[v], (30, 40)))
        assert got[v].min() >= stack[v].min() and got[v].max() <= stack[v].max()
        np.testing.assert_allclose(got[v], direct(stack[v], (30, 40)), rtol=1e-5, atol=1e-5)


def test_constant_stays_constant() -> None:
    x = np.full((2, 181, 300), 3.7, dtype=np.float32)
    y = downsample(x, (50, 71))
    assert np.all(y == np.float32(3.7))


def test_operator_is_banded_convex_and_cached() -> None:
    a = axis_operator(1801, 402)
    assert a is axis_operator(1801, 402)
    dense = a.toarray()
    assert dense.shape == (402, 1801) and dense.min() >= 0
    np.testing.assert_allclose(dense.sum(axis=1), 1.0, rtol=1e-6)
    assert a.nnz < 402 * 20


def test_out_argument_and_errors() -> None:
    x = smooth_random((3, 40, 50), 4)
    buf = np.empty((3, 10, 10), np.float32)
    assert downsample(x, (10, 10), out=buf) is buf
    with pytest.raises(ValueError):
        downsample(x, (10, 10), out=np.empty((3, 10, 11), np.float32))
    with pytest.raises(ValueError):
        downsample(x[0, 0], (5, 5))
    with pytest.raises(ValueError):
        downsample(x, (0, 5))


@pytest.mark.parametrize("in_shape,out_shape", [
    ((1801, 2560), (402, 362)),  # the real modes' size
    ((45, 40), (70, 64)),        # upsampling
    ((97, 130), (97, 33)),       # one axis the identity
    ((19, 17), (5, 3)),          # fewer output rows than a transposition tile
    ((100, 5), (64, 3)),         # two whole tiles of output rows; fewer than 8 columns
    ((300, 203), (97, 41)),      # a partial last tile; columns not a multiple of 8
])
def test_equals_the_sparse_operator_products_bit_for_bit(
        in_shape: tuple[int, int], out_shape: tuple[int, int]) -> None:
    """The compiled band walk is the same float32 sums as ``A_p @ X @ A_d.T`` in SciPy."""
    rng = np.random.default_rng(5)
    x = (rng.random((2, *in_shape)) * 3 - 1).astype(np.float32)
    a_p, a_d = axis_operator(in_shape[0], out_shape[0]), axis_operator(in_shape[1], out_shape[1])
    got = downsample(x, out_shape)
    for v in range(2):
        ref = (a_d @ np.ascontiguousarray((a_p @ x[v]).T)).T
        np.testing.assert_array_equal(got[v], np.clip(ref, x[v].min(), x[v].max()))


def test_strided_input_equals_contiguous_input() -> None:
    """A view (dynamic mode's frame of angles) gives the same result as a copy of it."""
    x = smooth_random((3, 120, 90), 6)
    view = x[:, 30:100]
    np.testing.assert_array_equal(downsample(view, (20, 30)),
                                  downsample(np.ascontiguousarray(view), (20, 30)))


def filtered_identity(n_in: int, n_out: int) -> np.ndarray:
    """The operator by definition: the scipy steps applied to every column of the identity."""
    eye = np.eye(n_in)
    sigma = _sigma(n_in, n_out)
    if sigma > 0:
        eye = ndi.gaussian_filter1d(eye, sigma, axis=0, mode="mirror", truncate=4.0)
    if n_out != n_in:
        eye = ndi.zoom(eye, (n_out / n_in, 1.0), order=1, mode="mirror", grid_mode=True)
    eye[np.abs(eye) < 1e-12] = 0.0
    return eye.astype(np.float32)


def test_operator_from_impulse_combs_equals_the_filtered_identity() -> None:
    """The operator is built from a few combs of impulses instead of the whole identity;
    it is the same matrix, bit for bit, for large and small, down- and up-sampling sizes
    (including a Gaussian wider than the input, where the combs fall back to the identity)."""
    rng = np.random.default_rng(11)
    sizes = [(1801, 402), (2560, 362), (17, 3), (1000, 3), (3, 1000), (1, 1), (1, 5), (5, 1),
             (100, 99), (45, 70)]
    sizes += [(int(a), int(b)) for a, b in zip(rng.integers(1, 600, 25), rng.integers(1, 600, 25))]
    for n_in, n_out in sizes:
        got = axis_operator(n_in, n_out).toarray()
        ref = filtered_identity(n_in, n_out)
        assert np.array_equal(got, ref), (n_in, n_out)


def scan_like(shape: tuple[int, int, int], seed: int) -> tuple[np.ndarray, ...]:
    """uint16 counts with a few dead (below dark) and saturated pixels, flats, darks."""
    rng = np.random.default_rng(seed)
    n_p, n, n_d = shape
    flat = rng.uniform(30000, 45000, (n, n_d)).astype(np.float32)
    dark = rng.uniform(90, 110, (n, n_d)).astype(np.float32)
    trans = np.exp(-smooth_random((n_p, n, n_d), seed))
    raw = (dark + (flat - dark) * trans).astype(np.uint16)
    raw[rng.random(raw.shape) < 1e-3] = 0
    raw[rng.random(raw.shape) < 1e-3] = 65535
    return raw, flat, dark


@pytest.mark.parametrize("shape,out_shape", [
    ((1801, 3, 2560), (402, 362)),   # the real modes' size
    ((181, 4, 256), (40, 36)),
    ((45, 2, 40), (70, 64)),         # upsampling
    ((30, 1, 9), (1, 1)),
])
def test_fused_normalise_downsample_equals_the_two_steps_bit_for_bit(
        shape: tuple[int, int, int], out_shape: tuple[int, int]) -> None:
    raw, flat, dark = scan_like(shape, 7)
    got = normalise_downsample(raw, flat, dark, out_shape)
    np.testing.assert_array_equal(got, downsample(flat_field_log(raw, flat, dark), out_shape))


def test_fused_handles_bad_pixels_float_input_and_angle_ranges() -> None:
    raw, flat, dark = scan_like((120, 3, 50), 8)
    raw = raw.astype(np.float32)
    raw[5, 1, 7] = np.nan
    raw[6, 2, 8] = np.inf
    flat[0, 3] = np.nan     # a dead flat pixel: no signal
    flat[1, 4] = dark[1, 4]  # a degenerate one
    got = normalise_downsample(raw, flat, dark, (20, 10))
    assert np.all(np.isfinite(got))
    np.testing.assert_array_equal(got, downsample(flat_field_log(raw, flat, dark), (20, 10)))
    # a range of angles (dynamic mode's frame) is a view of the raw chunk, not a copy
    frame = raw[30:90]
    np.testing.assert_array_equal(normalise_downsample(frame, flat, dark, (15, 10)),
                                  downsample(flat_field_log(frame, flat, dark), (15, 10)))


def test_fused_out_argument_and_errors() -> None:
    raw, flat, dark = scan_like((40, 2, 30), 9)
    buf = np.empty((2, 10, 6), np.float32)
    assert normalise_downsample(raw, flat, dark, (10, 6), out=buf) is buf
    with pytest.raises(ValueError):
        normalise_downsample(raw, flat, dark, (10, 6), out=np.empty((2, 10, 7), np.float32))
    with pytest.raises(ValueError):
        normalise_downsample(raw, flat[:1], dark, (10, 6))
    with pytest.raises(ValueError):
        normalise_downsample(raw, flat, dark, (0, 6))
    with pytest.raises(ValueError):
        normalise_downsample(raw[:0], flat, dark, (10, 6))
