"""Complex mode: no wasted pairs by default; the reference's defect density stays reachable."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import tifffile

from helpers import FOAM_PROJECTION, nsgen, python_output

SMALL = ("-N", "16", "-o", "3", "-s", "2", "-f", "2", "--no-preview")

#: sha256 of the concatenated TIFFs (sorted relative paths) of ``nsgen -m complex SMALL --seed
#: S`` made by commit 993091a, before --defect-density existed: the reference's density
#: (--defect-density 0) must keep reproducing these bytes.
REFERENCE_SHA256 = {
    0: "d0fecba914cdf804dbbdada328db5e0dee7dae3b059b79c8430e4e8f86712836",
    1: "e3fde677460ad774e5440f8b6334b419b8b5f74b501b03016310275e1c8e53f5",
}


def tiff_sha256(root) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.tif"), key=lambda p: str(p.relative_to(root))):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def identical_rows(sample) -> list[tuple[str, int]]:
    """(shift directory, row) of every input byte-identical to its clean target."""
    same = []
    for clean in sorted((sample / "clean").glob("*.tif")):
        target = tifffile.imread(clean)
        row = int(clean.stem.rsplit("_", 1)[1])
        for shift in sorted(sample.glob("shift*")):
            image = tifffile.imread(shift / f"{sample.name}_{shift.name}_{row:04d}.tif")
            if np.array_equal(image, target):
                same.append((shift.name, row))
    return same


def test_reference_density_reproduces_the_reference_bytes(tmp_path):
    wasted = []
    for seed, expected in REFERENCE_SHA256.items():
        root = tmp_path / f"seed{seed}"
        nsgen("-m", "complex", *SMALL, "--seed", str(seed), "--defect-density", "0",
              "-r", str(root))
        assert tiff_sha256(root) == expected
        wasted += identical_rows(root / "0000")
    # ... and that density leaves sinograms of a shift without a stripe
    assert wasted


def test_default_density_leaves_no_identical_pair(tmp_path):
    for seed in (0, 1, 2):
        root = tmp_path / f"seed{seed}"
        nsgen("-m", "complex", *SMALL, "--seed", str(seed), "-r", str(root))
        assert identical_rows(root / "0000") == []
        detector = json.loads((root / "0000" / "manifest.json").read_text())["detector"]
        assert detector["defect_density"] == 1.0


def test_density_out_of_range_is_one_line_exit_2(tmp_path):
    root = tmp_path / "data"
    r = nsgen("-m", "complex", *SMALL, "--defect-density", "100", "-r", str(root), check=False)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0
    assert "--defect-density must be a number of defective pixels per detector row in 0..22" \
        in r.stderr
    assert not root.exists()


def test_images_from_the_kept_transmission_equal_the_whole_volume_formula():
    """Pass two's images (from tau, clean extremes, defect pixels only) equal the model's
    whole volumes: ``to_uint16(complex_projections(tau, rolled maps), bounds)`` per shift,
    and pass one's bounds are those of all the volumes."""
    from nsgen.engine.pipeline import Chunk
    from nsgen.modes.complex import (DELTA, N_VARIATIONS, ComplexImages, ComplexRows,
                                     DetectorModel)
    from nsgen.prep.scaling import Bounds, to_uint16
    from nsgen.rng import generator
    from nsgen.sim.flats import complex_projections, neg_log
    from nsgen.sim.phantom import random_foam
    from nsgen.sim.projection import Geometry, project

    g = Geometry.for_size(16)
    p3 = project(random_foam(generator(4, "phantom", 0), 5), g)
    model = DetectorModel.simulate(4, 0, g, 3, 2, 4, 4e4, density=1.0)
    rows = ComplexRows(model, 4, 0, float(p3.max()))
    chunk = Chunk(0, 0, g.n_rows)
    tau = rows.transmission(chunk, p3)
    src = [(np.arange(g.n_rows) - o) % g.n_rows for o in model.offsets]
    volumes = [neg_log(tau)] + [
        complex_projections(tau, model.flat_mean[s], model.maps[:, s], model.sigma[i],
                            model.eps[i], DELTA, N_VARIATIONS) for i, s in enumerate(src)]
    bounds = rows.bounds(chunk, tau)
    assert bounds == Bounds(float(min(v.min() for v in volumes)),
                            float(max(v.max() for v in volumes)))
    images = dict(ComplexImages(rows, bounds)(chunk, tau))
    names = ["clean"] + [f"shift{i:02d}" for i in range(3)]
    assert len(images) == len(names) * g.n_rows
    for name, volume in zip(names, volumes):
        expected = to_uint16(volume, bounds)
        for v in range(g.n_rows):
            assert np.array_equal(images[f"0000/{name}/0000_{name}_{v:04d}.tif"], expected[v])


def test_numpy_submodules_that_threads_use_are_imported_with_nsgen():
    """NumPy 2 imports ``numpy.random`` and ``numpy.fft`` lazily, on first attribute use;
    two threads doing that at once recurse in NumPy's ``__getattr__`` (a CI failure of
    complex mode, whose detector is drawn on a thread while the phantom is drawn). The
    modules whose code runs on threads import them at import time instead."""
    code = ("import numpy, nsgen.modes.complex, nsgen.prep.robust_tall;"
            "print(sorted(k for k in ('random', 'fft') if k in vars(numpy)))")
    out = python_output(code)
    assert out.strip() == "['fft', 'random']"


def test_no_process_of_complex_mode_loads_numba():
    """Complex mode's forkserver preloads only its stages and the TIFF writer, and a worker's
    pass two (clean rows and defect pixels scaled to uint16) runs without Numba: loading it
    (~0.45 CPU-s) was the largest part of the mode's serial start-up."""
    from nsgen.modes.complex import ENGINE_PRELOAD
    assert ENGINE_PRELOAD == ("nsgen.modes.complex", "nsgen.io.tiff")
    code = (
        "import sys\n"
        "from nsgen.engine.pipeline import Chunk\n"
        "from nsgen.modes.complex import ComplexImages, ComplexRows, DetectorModel\n"
        + FOAM_PROJECTION +
        "rows = ComplexRows(DetectorModel.simulate(4, 0, g, 3, 2, 4, 4e4, density=20.0),"
        " 4, 0, float(p3.max()))\n"
        "chunk = Chunk(0, 0, g.n_rows)\n"
        "tau = rows.transmission(chunk, p3)\n"
        "images = list(ComplexImages(rows, rows.bounds(chunk, tau))(chunk, tau))\n"
        "print(len(images), 'numba' in sys.modules)\n")
    out = python_output(code)
    assert out.split() == [str(4 * 64), "False"]


def test_defect_values_scale_as_to_uint16():
    from nsgen.prep.scaling import Bounds, to_uint16, to_uint16_numpy
    values = np.random.default_rng(3).uniform(-0.5, 2.5, (40, 300)).astype(np.float32)
    values[3, 7] = np.nan
    bounds = Bounds(-0.1, 2.0)
    assert values.size >= 4096      # to_uint16 takes its compiled branch for this array
    assert np.array_equal(to_uint16_numpy(values, bounds), to_uint16(values, bounds))
    assert to_uint16_numpy(values[:, ::2], bounds).shape == (40, 150)


def test_the_forkserver_preload_leaves_out_the_main_process_modules():
    """What the engine's processes import for complex and simple mode (their forkserver
    preload, which runs before any worker starts) holds none of the main process's modules:
    the runner, the configuration, the sizing's psutil, the output formats."""
    code = ("import sys, importlib\n"
            "for mode in ('complex', 'simple'):\n"
            "    for name in importlib.import_module(f'nsgen.modes.{mode}').ENGINE_PRELOAD:\n"
            "        importlib.import_module(name)\n"
            "print(sorted(m for m in ('nsgen.runner', 'nsgen.config', 'psutil',"
            " 'nsgen.io.formats', 'nsgen.engine.sizing') if m in sys.modules))\n")
    out = python_output(code)
    assert out.strip() == "[]"


def test_a_stored_detector_model_travels_as_its_file(tmp_path):
    """Pass one's and pass two's stages carry the model as the name of the file it was
    stored to (the engine pickles each stage to the reader and every worker), and the rows
    they compute from the file's model are the same."""
    import pickle

    from nsgen.engine.pipeline import Chunk
    from nsgen.modes.complex import ComplexRows, DetectorModel
    from nsgen.rng import generator
    from nsgen.sim.phantom import random_foam
    from nsgen.sim.projection import Geometry, project

    g = Geometry.for_size(64)
    full = project(random_foam(generator(4, "phantom", 0), 5), g)
    p3 = full[8:20]
    model = DetectorModel.simulate(4, 0, g, 3, 2, 4, 4e4, density=5.0)
    stored = model.stored(tmp_path / "detector.npz")
    rows = ComplexRows(model, 4, 0, float(full.max()))
    data = pickle.dumps(ComplexRows(stored, 4, 0, float(full.max())))
    assert len(data) < 2000 < len(pickle.dumps(rows))
    back = pickle.loads(data)
    chunk = Chunk(0, 8, 20)
    tau = rows.transmission(chunk, p3)
    assert np.array_equal(back.transmission(chunk, p3), tau)
    for (r, c, v), (r2, c2, v2) in zip(rows.defects(chunk, tau), back.defects(chunk, tau)):
        assert np.array_equal(r, r2) and np.array_equal(c, c2) and np.array_equal(v, v2)
    assert pickle.loads(data).model is back.model      # read once per process
