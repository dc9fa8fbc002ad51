"""Patch mode's pieces (nsgen.modes.patch): stripe spans, bounds without stripe images,
scaled images pasted, and the flags applied after a pass run without them; a whole run with
a mask archive is the same bytes whatever the chunks and workers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import nsgen, tree_digest

from nsgen.modes.artefacts import synthetic_stripes
from nsgen.engine.pipeline import Chunk
from nsgen.io.scan_writer import write_scan
from nsgen.modes.patch import (PatchCutter, PatchImages, RawChunk, flagged_summary,
                               image_bounds, image_paths, paste, patch_bounds)
from nsgen.modes.real import summarise, union
from nsgen.prep.normalise import flat_field_log, pixel_constants
from nsgen.prep.patches import column_extremes
from nsgen.prep.scaling import Bounds, to_uint16
from nsgen.rng import generator
from nsgen.sim.stripes import PATCH
from nsgen.stages.write import WriteStage, range_used


def _sinogram(seed: int) -> np.ndarray:
    r = np.random.default_rng(seed)
    return (r.random((60, 90)) * 2 - 0.3).astype(np.float32)


def _raw_chunk(seeds) -> tuple[RawChunk, np.ndarray]:
    """Raw counts whose normalised sinograms are about the :func:`_sinogram` of each seed
    (as pass two's source delivers them), and those normalised sinograms."""
    flat, dark = np.full((len(seeds), 90), 20000.0), np.full((len(seeds), 90), 100.0)
    x = np.stack([_sinogram(s) for s in seeds], axis=1)      # angles, rows, columns
    raw = np.rint(100 + np.exp(-x.astype(np.float64)) * 19900).astype(np.uint16)
    return RawChunk(raw, pixel_constants(flat, dark)), flat_field_log(raw, flat, dark)


@pytest.mark.parametrize("seed", range(5))
def test_patches_paste_to_the_synthetic_stripes(seed):
    cutter = PatchCutter((30, 30), None, seed, 0, 0)
    for p, patch, spans in cutter.patches(3, _sinogram(seed)):
        want = synthetic_stripes(patch, generator(seed, "stripes", 0, 0, 3, p), PATCH)
        assert spans is not None and paste(patch, spans).tobytes() == want.tobytes()


@pytest.mark.parametrize("seed", range(5))
def test_patch_bounds_are_the_images_bounds_over_the_good_columns(seed):
    r = np.random.default_rng(100 + seed)
    cutter = PatchCutter((30, 30), None, seed, 0, 0)
    for _, patch, spans in cutter.patches(0, _sinogram(seed)):
        good = r.random(patch.shape[1]) < 0.8
        for cols in (None, good, np.zeros(patch.shape[1], bool)):
            keep = slice(None) if cols is None else cols
            clean, stripe = patch_bounds(patch, spans, cols)
            assert clean == image_bounds(patch[:, keep])
            assert stripe == image_bounds(paste(patch, spans)[:, keep])
            assert patch_bounds(patch, None, cols) == (clean, None)


def test_patch_bounds_leave_out_values_that_are_not_finite():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    x[1, 2] = np.nan
    clean, stripe = patch_bounds(x, [(0, np.full((3, 1), -5, np.float32))], None)
    assert clean == Bounds.of(x) == Bounds(0.0, 11.0) and stripe == Bounds(-5.0, 11.0)


def test_scaling_a_patch_then_pasting_its_scaled_stripes_is_scaling_the_stripe_image():
    bounds = Bounds(-0.2, 1.4)
    for _, patch, spans in PatchCutter((30, 45), None, 7, 0, 0).patches(1, _sinogram(7)):
        pasted = paste(to_uint16(patch, bounds), [(c, to_uint16(v, bounds)) for c, v in spans])
        assert pasted.tobytes() == to_uint16(paste(patch, spans), bounds).tobytes()


def test_flagged_summary_is_the_summary_with_the_flags_known():
    sinos = [_sinogram(s) for s in range(3)]
    # (0, 4) holds the highest fake stripe: flagged, its stripes leave the summary
    flags = np.array([[False, True, False, True, True, False],
                      [True, True, False, False, False, True],
                      [False] * 6])
    found, parts = [], []
    for v, sino in enumerate(sinos):
        unknown = PatchCutter((30, 30), None, 1, 0, 0).patches(v, sino)
        known = PatchCutter((30, 30), flags, 1, 0, 0).patches(v, sino)
        for (p, patch, spans), (_, _, kept) in zip(unknown, known):
            found.append((v, p, *patch_bounds(patch, spans, None)))
            parts += [patch] if kept is None else [patch, paste(patch, kept)]
    assert flagged_summary(found, flags) == summarise(parts)
    assert flagged_summary(found, flags) != union([b for *_, a, b in found])


@pytest.mark.parametrize("seed", range(3))
def test_known_column_extremes_and_maxima_give_the_same_stripes_and_bounds(seed):
    sino = _sinogram(seed)
    lo, hi = column_extremes(sino, (30, 30))
    cutter = PatchCutter((30, 30), None, seed, 0, 0)
    for (p, patch, spans), (_, _, again) in zip(cutter.patches(2, sino),
                                                cutter.patches(2, sino, hi.max(axis=1))):
        assert spans is not None and again is not None
        assert [(c, v.tobytes()) for c, v in spans] == [(c, v.tobytes()) for c, v in again]
        assert patch_bounds(patch, spans, None, (lo[p], hi[p])) == patch_bounds(patch, spans,
                                                                                 None)


def _wanted_images(cutter, bounds, rows, first):
    """``{path: (image, range_used)}`` of every patch image of ``rows`` (row ``first`` on),
    made the plain way: each patch and stripe image scaled whole."""
    want = {}
    for k, v in enumerate(range(first, first + len(rows))):
        for p, patch, spans in cutter.patches(v, rows[k]):
            name = f"0000_shift01_{v:04d}_w{p:02d}.tif"
            if spans is None:
                images = [(f"0000/real_artifacts/stripe/{name}", to_uint16(patch, bounds))]
            else:
                images = [(f"0000/fake_artifacts/clean/{name}", to_uint16(patch, bounds)),
                          (f"0000/fake_artifacts/stripe/{name}",
                           to_uint16(paste(patch, spans), bounds))]
            want.update((path, (img, range_used(img))) for path, img in images)
    return want


def _cutter():
    flags = np.zeros((5, 6), bool)
    flags[3, [1, 4]] = True
    return PatchCutter((30, 30), flags, 4, 0, 1)


@pytest.mark.parametrize("bounds", [Bounds(-0.2, 1.4), Bounds(0.2, 0.5), Bounds(1.0, 1.0)])
def test_patch_images_are_the_scaled_images_with_their_range_used(bounds):
    chunk, rows = _raw_chunk(range(3))
    cutter = _cutter()
    got = list(PatchImages(cutter, "0000", bounds)(Chunk(1, 2, 5), chunk))
    want = _wanted_images(cutter, bounds, rows, 2)
    assert len(got) == len(want) == 3 * 6 * 2 - 2
    assert {path: (image.tobytes(), used) for path, image, used in got} == {
        path: (image.tobytes(), used) for path, (image, used) in want.items()}
    order = [(int(path[-12:-8]), "fake_artifacts/stripe" in path) for path, *_ in got]
    assert order == sorted(order)          # per row: the clean and real images, then stripes


def test_image_paths_are_the_paths_written_in_their_order():
    cutter = _cutter()
    chunk, _ = _raw_chunk(range(5))
    got = [path for path, *_ in PatchImages(cutter, "0000", Bounds(0.0, 1.0))(Chunk(0, 0, 5),
                                                                                 chunk)]
    assert got == list(image_paths("0000", 1, cutter.flags))


class _Releasing:
    """A writer done with each image when it asks for the next: keeps a copy of each."""

    releases_images = True

    def __init__(self):
        self.images = {}

    def write(self, items):
        for path, image in items:
            self.images[path] = image.tobytes()
        return len(self.images), 0, {}


@pytest.mark.parametrize("bounds", [Bounds(-0.2, 1.4), Bounds(1.0, 1.0)])
def test_patch_images_in_reused_buffers_are_the_same_images(bounds):
    chunk, rows = _raw_chunk(range(4))
    cutter = _cutter()
    want = _wanted_images(cutter, bounds, rows, 1)
    images = PatchImages(cutter, "0000", bounds, reuse=True)
    for _ in range(2):                       # the second chunk takes the first's buffers
        writer = _Releasing()
        stage = WriteStage(_RowsAsGiven(), images, writer)
        result = stage.work(Chunk(0, 1, 5), chunk)
        assert writer.images == {path: image.tobytes() for path, (image, _) in want.items()}
        assert result.value == {path: used for path, (_, used) in want.items()}


class _RowsAsGiven:
    label = "rows"

    def values(self, chunk, data):
        return data


def test_reused_buffers_need_a_writer_that_releases_its_images():
    class Keeping(_Releasing):
        releases_images = False

    images = PatchImages(_cutter(), "0000", Bounds(0.0, 1.0), reuse=True)
    chunk, _ = _raw_chunk(range(3))
    with pytest.raises(TypeError, match="keeps its images"):
        WriteStage(_RowsAsGiven(), images, Keeping()).work(Chunk(0, 0, 3), chunk)


def test_a_run_with_a_mask_is_the_same_bytes_whatever_the_chunks_and_workers(tmp_path):
    scan = tmp_path / "4000.nxs"
    write_scan(scan, n_angles=121, n_rows=24, n_columns=70, seed=5)
    mask = np.zeros((121, 24, 70), np.uint8)
    mask[70, [5, 9], [40, 3]] = 1     # 121 x 70 in 60 x 32: nh = nw = 2, columns 3..66
    np.savez_compressed(tmp_path / "masks.npz", m4000=mask)
    digests = []
    for extra in (["--workers", "2"], ["--workers", "1", "-C", "5"], ["-C", "7"]):
        root = tmp_path / f"out{len(digests)}"
        nsgen("-m", "patch", "--hdf-root", str(scan), "-s", "1", "--mask",
              str(tmp_path / "masks.npz"), "--patch-size", "60", "32", "--no-preview", "-r",
              str(root), *extra)
        files = json.loads((root / "0000" / "manifest.json").read_text())["files"]
        digests.append((tree_digest(root), files))
    assert len(digests[0][0]) == 24 * 4 * 2 - 2 and digests[1] == digests[0] == digests[2]
    # the temporaries created ahead of the write pass were all written and renamed
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]
