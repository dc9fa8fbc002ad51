"""nsgen.sim.scipy_free: SciPy's spherical_yn(1, .) and gaussian_filter(mode="reflect") in
NumPy, the same bits; complex mode's main process no longer imports SciPy."""

from __future__ import annotations


import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.special import spherical_yn

from nsgen.sim.flats import speckles
from nsgen.sim.scipy_free import gaussian_filter_reflect, spherical_y1

from helpers import python_output


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("n", [1, 2, 16, 32, 100, 255, 256, 257, 511, 512, 1000, 1024, 2048])
def test_spherical_y1_is_scipys_on_the_beam_arguments(n):
    u = np.linspace(1.0, 25.0, n)
    assert same_bits(spherical_y1(u), spherical_yn(1, u))


def test_spherical_y1_is_scipys_on_random_arguments():
    x = np.random.default_rng(3).uniform(1e-3, 1e3, 10000)
    assert same_bits(spherical_y1(x), spherical_yn(1, x))


@pytest.mark.parametrize("bad", [0.0, -1.0, np.inf, np.nan])
def test_spherical_y1_takes_positive_finite_arguments_only(bad):
    with pytest.raises(ValueError, match="finite arguments > 0"):
        spherical_y1(np.array([1.0, bad]))


@pytest.mark.parametrize("seed", range(12))
def test_gaussian_filter_reflect_is_scipys(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(9, 300)), int(rng.integers(9, 300)))
    sigma = float(rng.choice([0.5, 1.0, 1.5, 2.0, 2.3]))
    image = speckles(shape, rng, 1, 10.0, 0.03) if seed % 2 else rng.random(shape) * 7.0
    assert same_bits(gaussian_filter_reflect(image, sigma),
                     gaussian_filter(image, sigma, mode="reflect"))


@pytest.mark.parametrize("shape, sigma", [((256, 362), 2.0), ((16, 22), 2.0), ((7, 40), 2.0),
                                          ((3, 3), 1.0), ((12, 5), 0.0), ((20, 30, 9), 1.0)])
def test_gaussian_filter_reflect_is_scipys_at_the_edges(shape, sigma):
    # the detector's maps, a kernel as wide as the image (SciPy's own border), no blur, 3-D
    image = np.random.default_rng(7).random(shape)
    out = gaussian_filter_reflect(image, sigma)
    assert same_bits(out, gaussian_filter(image, sigma, mode="reflect"))
    assert out is not image


def test_drawing_the_detector_imports_no_scipy():
    code = ("import sys\n"
            "from nsgen.modes.complex import DetectorModel\n"
            "from nsgen.sim.projection import Geometry\n"
            "DetectorModel.simulate(0, 0, Geometry.for_size(64), 5, 2, 4, 40000.0, 1.0)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))\n")
    out = python_output(code)
    assert out == "[]"
