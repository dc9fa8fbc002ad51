"""Dead and saturated detector pixels: found from flats and darks, flagged, left out of the
bounds, listed, warned about; flats that cannot normalise are refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import nsgen

from nsgen.errors import NsgenError
from nsgen.io.scan_writer import write_scan
from nsgen.prep.bad_pixels import excluded_outputs, find_bad_pixels, saturation_level
from nsgen.prep.normalise import RATIO_MIN
from nsgen.prep.resize import axis_operator

DATA = "entry1/tomo_entry/data/data"
DEAD = (16, 30)          # (row, column) of the dead pixel
FLOOR = -np.log(RATIO_MIN)   # the -log of a pixel without signal (13.8)


def test_dead_and_saturated_pixels_are_found():
    flat = np.full((3, 5), 30000.0)
    dark = np.full((3, 5), 100.0)
    flat[0, 0] = 0.0           # reads nothing
    flat[1, 1] = 90.0          # below its dark
    flat[2, 2] = np.nan        # no flat value at all
    flat[2, 4] = 65535.0       # every flat clipped
    bad = find_bad_pixels(flat, dark, saturation_level(np.uint16))
    assert np.argwhere(bad.dead).tolist() == [[0, 0], [1, 1], [2, 2]]
    assert np.argwhere(bad.saturated).tolist() == [[2, 4]]
    assert bad.rows().tolist() == [True, True, True] and bad.count == 4
    assert bad.record() == {"dead": [[0, 0], [1, 1], [2, 2]], "saturated": [[2, 4]]}
    line = bad.warning("s.nxs")
    assert "\n" not in line
    assert line.startswith("s.nxs: 3 dead pixels (no signal above dark) at (row, column) (0, 0) (1, 1) "
                           "(2, 2); 1 saturated pixel (at saturation) at (row, column) (2, 4): "
                           "flagged as stripes")
    assert find_bad_pixels(np.full((3, 5), 1000.0) + np.arange(5), dark, 65535.0).warning(
        "s") is None
    # float data: no saturation level
    assert not find_bad_pixels(flat, dark, saturation_level(np.float32)).saturated.any()


def test_pixels_dead_or_saturated_in_the_data_alone_are_found():
    flat, dark = np.full((2, 4), 30000.0), np.full((2, 4), 100.0)
    probes = np.full((3, 2, 4), 20000, np.uint16)
    probes[:, 0, 1] = 0            # reads nothing at every probed angle
    probes[:2, 1, 0] = 0           # ... at some angles only: an object, not a dead pixel
    probes[:, 1, 3] = 65535        # stuck at saturation
    probes[1:, 0, 2] = 65535
    bad = find_bad_pixels(flat, dark, 65535.0, probes=probes)
    assert np.argwhere(bad.dead).tolist() == [[0, 1]]
    assert np.argwhere(bad.saturated).tolist() == [[1, 3]]



def test_a_dead_pixel_reading_the_darks_noise_is_found():
    """A dead pixel reads its dark plus read noise, above the dark's mean at some angles
    (the <= dark test missed the labelled scans' dead columns; their -log of 8-13.8 then
    set the bounds); an object that lets a few per cent through somewhere is not dead."""
    rng = np.random.default_rng(0)
    flat, dark = np.full((1, 4), 17000.0), np.full((1, 4), 100.0)
    probes = np.full((16, 1, 4), 9000.0)
    probes[:, 0, 0] = 100 + rng.normal(0, 4, 16)     # dead: the dark's read noise
    assert (probes[:, 0, 0] > 100).any()
    probes[:, 0, 1] = 100 + 0.005 * 16900            # 0.5 % everywhere ...
    probes[3, 0, 1] = 100 + 0.05 * 16900             # ... 5 % at one angle: an object
    probes[:, 0, 2] = np.nan                          # no finite value at all
    bad = find_bad_pixels(flat, dark, 65535.0, probes=probes)
    assert np.argwhere(bad.dead).tolist() == [[0, 0], [0, 2]]


def test_a_dense_object_dark_at_every_probe_is_not_dead():
    """A dense sample's core lets under 2 % through at every probed angle (real scans of
    metal or thick rock do): it darkens its neighbours too, so it is no dead pixel, while a
    dead column cluster of up to 5 columns beside lit columns is."""
    n = 200
    x = np.arange(n) - 100.0
    core = np.clip(1 - (x / 40) ** 2, 0, None)                # a disc 80 columns wide
    through = np.exp(-6.0 * np.sqrt(core))[None, None, :]     # 0.25 % at its centre
    angles = np.linspace(0.9, 1.1, 16)[:, None, None]          # the same at every angle
    flat, dark = np.full((1, n), 20100.0), np.full((1, n), 100.0)
    probes = 100 + 20000 * through * angles
    probes[:, :, 150:155] = 100 + np.random.default_rng(1).normal(0, 3, (16, 1, 5))
    assert (probes[:, 0, 90:110] - 100 < 0.02 * 20000).all()   # the core reads as dead did
    bad = find_bad_pixels(flat, dark, 65535.0, probes=probes)
    assert np.flatnonzero(bad.dead[0]).tolist() == list(range(150, 155))


def test_the_labelled_scans_dead_columns_are_found(tmp_path):
    from nsgen.modes.real import bad_pixels_of
    from nsgen.scan import ScanLayout
    from nsgen.stages.scan_source import ScanSource

    path = tmp_path / "l.nxs"
    write_scan(path, n_angles=181, n_rows=8, n_columns=256, seed=2, labelled=True)
    with h5py.File(str(path) + ".truth.h5", "r") as f:
        kinds = f["mask"][0]                          # (rows, columns) codes at angle 0
    bad = bad_pixels_of(ScanSource(str(path), ScanLayout(None, None, None)))
    assert np.array_equal(bad.dead, kinds == 4) and bad.dead.any()
    assert np.array_equal(bad.saturated, kinds == 5) and bad.saturated.any()

def test_whole_flat_problems_warn_and_impossible_flats_are_refused():
    dark = np.full((2, 3), 100.0)
    bad = find_bad_pixels(np.full((2, 3), 65535.0), dark, 65535.0)
    assert bad.count == 0 and "every flat pixel is saturated (65535)" in bad.flats_problem
    assert bad.warning("f.h5") == f"f.h5: {bad.flats_problem}"
    assert bad.record()["flats"] == bad.flats_problem
    bad = find_bad_pixels(np.full((2, 3), 500.0), dark, 65535.0)
    assert bad.count == 0 and "the flats are constant (500 at every pixel)" in bad.flats_problem
    with pytest.raises(NsgenError) as info:
        find_bad_pixels(dark.copy(), dark, 65535.0, "s.nxs")
    assert str(info.value) == ("s.nxs: no detector pixel has a flat above its dark (flat "
                               "100..100, dark 100..100), so the projections cannot be "
                               "normalised; give the right flats and darks (--flats, --darks)")


def test_excluded_outputs_are_the_resize_operators_reach():
    bad = np.zeros((3, 2560), bool)
    bad[1, 1000] = True
    bad[2, [0, 2559]] = True
    ex = excluded_outputs(bad, 362)
    op = axis_operator(2560, 362).toarray()
    assert not ex[0].any()
    assert np.array_equal(ex[1], op[:, 1000] != 0)
    assert np.array_equal(ex[2], (op[:, 0] != 0) | (op[:, 2559] != 0))
    assert 0 < ex[1].sum() < 10


@pytest.fixture(scope="module")
def dead_scan(tmp_path_factory):
    """A made scan whose pixel DEAD reads 0 in every flat, dark and projection."""
    path = tmp_path_factory.mktemp("dead") / "7.nxs"
    write_scan(path, n_angles=601, n_rows=32, n_columns=64, seed=3)
    with h5py.File(path, "r+") as f:
        f[DATA][:, DEAD[0], DEAD[1]] = 0
    return path


def test_dead_pixel_is_warned_listed_and_left_out_of_the_bounds(dead_scan, tmp_path):
    r = nsgen("-m", "raw", "--hdf-root", str(dead_scan), "-s", "1", "-r", str(tmp_path))
    warnings = [line for line in r.stderr.splitlines() if "warning" in line]
    assert warnings == [(f"nsgen: warning: {dead_scan}: 1 dead pixel (no signal above dark) at (row, "
                        f"column) (16, 30): flagged as stripes, left out of the scaling "
                        f"bounds, listed in the manifest")]
    m = json.loads((tmp_path / "0000" / "manifest.json").read_text())
    assert m["bad_pixels"] == {"shift00": {"dead": [list(DEAD)], "saturated": []}}
    lo, hi = m["files"][0]["bounds"]
    assert np.isfinite([lo, hi]).all() and hi < FLOOR / 4   # the dead pixel's 13.8 is out
    # without the dead pixel's own value, the bounds would have been set by it
    good = tmp_path / "good"
    os.makedirs(good)
    write_scan(good / "7.nxs", n_angles=601, n_rows=32, n_columns=64, seed=3)
    nsgen("-m", "raw", "--hdf-root", str(good / "7.nxs"), "-s", "1", "-r", str(good / "out"))
    ref = json.loads((good / "out" / "0000" / "manifest.json").read_text())
    assert ref["bad_pixels"] == {"shift00": {"dead": [], "saturated": []}}
    rlo, rhi = ref["files"][0]["bounds"]
    assert rlo <= lo and hi <= rhi            # the dead pixel's neighbourhood is left out


def test_dead_pixel_is_a_stripe_in_paired_and_patch_masks(dead_scan, tmp_path):
    nsgen("-m", "paired", "--hdf-root", str(dead_scan), "-s", "1", "-r", str(tmp_path / "p"),
          "--no-preview")
    real = os.listdir(tmp_path / "p" / "0000" / "real_artifacts" / "stripe")
    assert f"0000_shift00_{DEAD[0]:04d}.tif" in real
    m = json.loads((tmp_path / "p" / "0000" / "manifest.json").read_text())
    assert m["pairs"]["real"] == len(real) and m["pairs"]["fake"] == 32 - len(real)
    nsgen("-m", "patch", "--hdf-root", str(dead_scan), "-s", "1", "-r", str(tmp_path / "q"),
          "--patch-size", "300", "20", "--no-preview")
    # 601 x 64 -> columns 2..61 in three 20-column blocks; column 30 is in block 1,
    # whose two patches (p = 1 * 2 + h) hold the stripe
    real = set(os.listdir(tmp_path / "q" / "0000" / "real_artifacts" / "stripe"))
    assert {f"0000_shift00_{DEAD[0]:04d}_w{p:02d}.tif" for p in (2, 3)} <= real


def test_a_pixel_dead_in_the_projections_alone_is_found(tmp_path):
    path = tmp_path / "7.nxs"
    write_scan(path, n_angles=61, n_rows=8, n_columns=32, seed=1)
    with h5py.File(path, "r+") as f:
        keys = f["entry1/tomo_entry/instrument/detector/image_key"][...]
        frames = f[DATA][...]
        frames[keys == 0, 3, 7] = 0          # flats and darks are fine there
        frames[keys == 0, 5, 9] = 65535
        f[DATA][...] = frames
    nsgen("-m", "raw", "--hdf-root", str(path), "-s", "1", "-r", str(tmp_path / "out"),
          "--no-preview")
    m = json.loads((tmp_path / "out" / "0000" / "manifest.json").read_text())
    assert m["bad_pixels"]["shift00"] == {"dead": [[3, 7]], "saturated": [[5, 9]]}


def test_flats_that_cannot_normalise_are_refused(tmp_path):
    path = tmp_path / "7.nxs"
    write_scan(path, n_angles=31, n_rows=8, n_columns=32, seed=1)
    with h5py.File(path, "r+") as f:
        keys = f["entry1/tomo_entry/instrument/detector/image_key"][...]
        frames = f[DATA][...]
        frames[(keys == 1) | (keys == 2)] = 100      # flats at the dark level
        f[DATA][...] = frames
    root = tmp_path / "out"
    r = nsgen("-m", "raw", "--hdf-root", str(path), "-s", "1", "-r", str(root), check=False)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        (f"nsgen: error: {path}: no detector pixel has a flat above its dark (flat 100..100, dark "
        f"100..100), so the projections cannot be normalised; give the right flats and darks "
        f"(--flats, --darks)")]
    assert not root.exists()


def test_saturated_separate_flats_are_warned_about(tmp_path):
    """The real i12 flats are all 65535: usable, with one warning line."""
    i12 = Path(__file__).parents[2] / "shared" / "data" / "i12-separate-flats-darks"
    scan = tmp_path / "5000.nxs"
    with h5py.File(scan, "w") as f:
        f.create_dataset(DATA, data=np.random.default_rng(0).integers(
            1000, 60000, (31, 10, 192), dtype=np.uint16))
    r = nsgen("-m", "raw", "--hdf-root", str(scan), "-s", "1", "--flats",
              str(i12 / "flat_field.h5"), "--darks", str(i12 / "dark_field.h5"),
              "-r", str(tmp_path / "out"), "--no-preview")
    warnings = [line for line in r.stderr.splitlines() if "warning" in line]
    assert warnings == [(f"nsgen: warning: {scan}: every flat pixel is saturated (65535): "
                        f"normalised values are biased low; use flats taken below saturation")]
    m = json.loads((tmp_path / "out" / "0000" / "manifest.json").read_text())
    assert m["bad_pixels"]["shift00"]["flats"].startswith("every flat pixel is saturated")
