"""Simple mode: no process loads Numba, and its images are those of the compiled scaling."""

from __future__ import annotations

import numpy as np

from helpers import FOAM_PROJECTION, python_output


def test_no_process_of_simple_mode_loads_numba():
    """Simple mode's forkserver preloads only its stages and the TIFF writer, and a worker's
    pass two (clean and stripe images scaled to uint16) runs without Numba: loading it
    (~0.45 CPU-s) was the forkserver's serial preload that the workers waited for."""
    from nsgen.modes.simple import ENGINE_PRELOAD
    assert ENGINE_PRELOAD == ("nsgen.modes.simple", "nsgen.io.tiff")
    code = (
        "import importlib, sys\n"
        "for name in ('nsgen.modes.simple', 'nsgen.io.tiff'):\n"
        "    importlib.import_module(name)\n"
        "from nsgen.engine.pipeline import Chunk\n"
        "from nsgen.modes.simple import SimpleImages\n"
        + FOAM_PROJECTION +
        "images = list(SimpleImages(4, 0, float(p3.min()), float(p3.max()))"
        "(Chunk(0, 0, g.n_rows), p3))\n"
        "print(len(images), 'numba' in sys.modules)\n")
    out = python_output(code)
    assert out.split() == [str(2 * 64), "False"]


def test_images_equal_the_compiled_scaling():
    """Every image is ``to_uint16`` (the compiled kernel, for images this size) of the
    rescaled row and of its stripe sinogram."""
    from nsgen.engine.pipeline import Chunk
    from nsgen.modes.simple import SimpleImages, rescale, stripe_sinogram
    from nsgen.prep.scaling import COMPILED_SIZE, Bounds, to_uint16
    from nsgen.rng import generator
    from nsgen.sim.phantom import random_foam
    from nsgen.sim.projection import Geometry, project

    g = Geometry.for_size(64)
    p3 = project(random_foam(generator(2, "phantom", 1), 8), g, (10, 16))
    lo, hi = float(p3.min()), float(p3.max())
    assert p3[0].size >= COMPILED_SIZE
    images = list(SimpleImages(2, 1, lo, hi)(Chunk(0, 10, 16), p3))
    x = rescale(p3, lo, hi)
    unit = Bounds(0.0, 1.0)
    assert [p for p, _ in images[:2]] == ["0001/clean/0001_clean_0010.tif",
                                          "0001/stripe/0001_stripe_0010.tif"]
    for k in range(6):
        stripe = stripe_sinogram(x[k], generator(2, "stripes", 1, 0, 10 + k))
        assert np.array_equal(images[2 * k][1], to_uint16(x[k], unit))
        assert np.array_equal(images[2 * k + 1][1], to_uint16(stripe, unit))
