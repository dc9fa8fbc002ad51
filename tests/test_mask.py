"""``nsgen mask``: streamed detection == whole-volume detection; archive handling; errors."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, nsgen
from nsgen.io.scan_writer import write_scan
from nsgen.prep.normalise import flat_field_log
from nsgen.prep.stripe_detect import detect_stripe_mask, stripe_weights
from nsgen.scan import open_scan

SMALL = ["--median-size", "40", "--min-stripe-length", "60", "--min-stripe-depth", "6",
         "--min-stripe-width", "4"]
PARAMS = dict(size=40, radius=3, threshold=0.63, min_stripe_length=60, min_stripe_depth=6,
              min_stripe_width=4, sensitivity_perc=85.0)


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    d = tmp_path_factory.mktemp("mask")
    write_scan(d / "4000.nxs", n_angles=121, n_rows=24, n_columns=64, seed=5)
    return d / "4000.nxs"


def whole_volume(path: Path) -> np.ndarray:
    with open_scan(str(path)) as s:
        rows = slice(0, s.shape[1])
        sinos = flat_field_log(s.read_projections(rows), s.flat_mean(rows), s.dark_mean(rows))
    return np.ascontiguousarray(sinos.transpose(1, 0, 2))


@pytest.mark.parametrize("chunk, piece", [("1", 2**20), ("5", 20_000), ("24", 1)])
def test_streamed_mask_equals_whole_volume(scan, tmp_path, monkeypatch, chunk, piece):
    """Two streamed passes, bit-packed scratch, entries deflated in pieces (1 plane each at
    piece=1): the archive holds exactly the whole-volume mask and weights."""
    from nsgen import mask as mask_command
    monkeypatch.setattr(mask_command, "DEFLATE_PIECE_BYTES", piece)
    archive = tmp_path / "masks.npz"
    assert mask_command.main(["--h5", str(scan), "-a", str(archive), "-w", "-C", chunk,
                              *SMALL]) == 0
    vol = whole_volume(scan)
    with np.load(archive) as npz:
        assert sorted(npz.files) == ["m4000", "m4000_weights"]
        mask, weights = npz["m4000"], npz["m4000_weights"]
    assert mask.dtype == np.uint8 and mask.shape == vol.shape == (121, 24, 64)
    assert np.array_equal(mask, detect_stripe_mask(vol, **PARAMS))
    assert np.array_equal(weights, stripe_weights(vol, PARAMS["size"], PARAMS["radius"]))
    with zipfile.ZipFile(archive) as z:
        assert z.testzip() is None  # every CRC-32 (combined from the pieces') is right


def test_compressed_scan_gives_the_same_mask(scan, tmp_path, capsys):
    """A Blosc-compressed copy of the scan (a frame per chunk) is decompressed once into
    the work directory, gives the same archive entry, and leaves no scratch behind."""
    from nsgen import mask as mask_command
    packed = tmp_path / "4000.nxs"
    write_scan(packed, n_angles=121, n_rows=24, n_columns=64, seed=5, chunks=(1, 24, 64),
               compression="blosc")
    with open_scan(str(packed)) as s:
        assert s.compressed_row_span == 24
    archive = tmp_path / "masks.npz"
    assert mask_command.main(["--h5", str(packed), "-a", str(archive), "-C", "5", "-v",
                              *SMALL]) == 0
    assert "decompressing 136 frames once" in capsys.readouterr().err
    with np.load(archive) as npz:
        assert np.array_equal(npz["m4000"], detect_stripe_mask(whole_volume(scan), **PARAMS))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["4000.nxs", "masks.npz"]


def test_append_keeps_existing_entries_and_refuses_duplicates(scan, tmp_path):
    """The appends run in process (``nsgen.cli.main``); the refusal's exit status and its one
    line on stderr come from ``python -m nsgen``."""
    from nsgen.cli import main as nsgen_main
    archive = tmp_path / "masks.npz"
    np.savez_compressed(archive, m1=np.ones((2, 2, 2), np.uint8))
    before = zipfile.ZipFile(archive).read("m1.npy")
    assert nsgen_main(["mask", "--h5", str(scan), "-a", str(archive), *SMALL]) == 0
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == ["m1.npy", "m4000.npy"]
        assert z.read("m1.npy") == before
    digest = hashlib.md5(archive.read_bytes()).hexdigest()
    r = nsgen("mask", "--h5", str(scan), "-a", str(archive), *SMALL, check=False)
    assert r.returncode == 2 and "already holds 'm4000'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert hashlib.md5(archive.read_bytes()).hexdigest() == digest
    assert nsgen_main(["mask", "--h5", str(scan), "-a", str(archive), *SMALL, "--overwrite",
                       "-f", "m4000"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["masks.npz"]


def test_every_bad_parameter_in_one_line_and_derived_ones_never_blamed(scan, tmp_path):
    r = nsgen("mask", "--h5", str(scan), "-a", str(tmp_path / "m.npz"), "--median-size", "61",
              "--min-stripe-depth", "24", "--radius", "13", check=False)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    for part in ("--median-size must be in 1..60", "--min-stripe-depth must be in 0..23",
                 "--radius 13 needs at least 26 detector rows"):
        assert part in r.stderr
    assert "length" not in r.stderr and "width" not in r.stderr
    assert not (tmp_path / "m.npz").exists()



def test_engine_and_detector_options_are_listed_with_the_parameters(scan, tmp_path):
    """Options of the engine, the detector's name and its parameters: every problem in
    the one line (the first alone was reported), before anything is written."""
    from nsgen import mask as mask_command
    from nsgen.errors import NsgenError
    with pytest.raises(NsgenError) as info:
        mask_command.main(["--h5", str(scan), "-a", str(tmp_path / "m.npz"), "--workers", "0",
                           "-C", "x", "--memory-limit", "lots", "--detector", "robust",
                           "--radius", "3", "--min-stripe-depth", "24"])
    message = str(info.value)
    for part in ("--workers must be an integer >= 1 or 'auto', got '0'",
                 "--chunk-size must be an integer >= 1 or 'auto', got 'x'",
                 "--memory-limit must be a size such as 4GB or 512MiB, got 'lots'",
                 "--radius: option(s) of --detector larix; --detector robust has none",
                 "--min-stripe-depth must be in 0..23"):
        assert message.count(part) == 1, part
    assert "\n" not in message and sorted(p.name for p in tmp_path.iterdir()) == []

def test_one_row_scan_robust_detects_larix_refuses_up_front(tmp_path):
    """A scan of one detector row: the default robust detector runs (no row comparison, so
    its parameters cannot be the cause of a refusal) and finds the scan's stripes; Larix
    needs 2 rows and says so in one line, naming the detector that can; a scan of one
    angle is refused by both."""
    from nsgen.prep.detect import detect_volume
    from nsgen.prep.detect_params import DetectParams

    path = tmp_path / "4100.nxs"
    write_scan(path, n_angles=121, n_rows=1, n_columns=64, seed=6, defect_rows={20: (0, 1, 1.5)})
    archive = tmp_path / "m.npz"
    r = nsgen("mask", "--h5", str(path), "-a", str(archive), check=False)
    assert r.returncode == 0, r.stderr
    with np.load(archive) as z:
        got = z["m4100"]
    vol = whole_volume(path)
    assert got.shape == (121, 1, 64) and got[:, 0, 20].all()
    assert np.array_equal(got, detect_volume(vol, "robust",
                                             DetectParams.for_scan(vol.shape, detector="robust")))
    for extra in (["--detector", "larix"], ["--median-size", "5"]):
        r = nsgen("mask", "--h5", str(path), "-a", str(tmp_path / "n.npz"), *extra, check=False)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "1 rows" in r.stderr and "at least 2 angles, 2 detector rows" in r.stderr
        assert "the robust detector, the default, needs 2 angles" in r.stderr
        assert "leave out those options" not in r.stderr   # the scan is the cause
        assert not (tmp_path / "n.npz").exists()
    one = tmp_path / "4101.nxs"
    write_scan(one, n_angles=1, n_rows=4, n_columns=32, seed=6)
    r = nsgen("mask", "--h5", str(one), "-a", str(tmp_path / "n.npz"), check=False)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "needs at least 2 angles" in r.stderr and not (tmp_path / "n.npz").exists()


def test_derived_parameters_fit_a_small_scan(scan, tmp_path):
    """No detection option given on a 121-angle, 24-row scan: derived, and it runs."""
    nsgen("mask", "--h5", str(scan), "-a", str(tmp_path / "m.npz"))
    with np.load(tmp_path / "m.npz") as z:
        assert z["m4000"].shape == (121, 24, 64)


@pytest.mark.parametrize("extra,message", [
    (["--median-size", "61"], "--median-size must be in 1..60"),
    (["--min-stripe-length", "121"], "--min-stripe-length must be in 1..120"),
    (["--min-stripe-depth", "24"], "--min-stripe-depth must be in 0..23"),
    (["--threshold", "1.5"], "--threshold must be in [0, 1]"),
    (["--sensitivity", "0"], "--sensitivity must be in (0, 100]"),
])
def test_bad_parameters_leave_the_archive_alone(scan, tmp_path, extra, message):
    archive = tmp_path / "masks.npz"
    np.savez_compressed(archive, m1=np.zeros((1, 1, 1), np.uint8))
    digest = hashlib.md5(archive.read_bytes()).hexdigest()
    r = nsgen("mask", "--h5", str(scan), "-a", str(archive), *SMALL, *extra, check=False)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert hashlib.md5(archive.read_bytes()).hexdigest() == digest
    assert sorted(os.listdir(tmp_path)) == ["masks.npz"]


def test_not_an_archive_is_refused(scan, tmp_path):
    bad = tmp_path / "masks.npz"
    bad.write_text("not a zip")
    r = nsgen("mask", "--h5", str(scan), "-a", str(bad), *SMALL, check=False)
    assert r.returncode == 2 and "is not a mask archive" in r.stderr
    assert bad.read_text() == "not a zip"


def test_missing_scan(tmp_path):
    r = nsgen("mask", "--h5", str(tmp_path / "nope.nxs"), "-a", str(tmp_path / "m.npz"),
              check=False)
    assert r.returncode == 2 and "nope.nxs" in r.stderr
    assert not (tmp_path / "m.npz").exists()


def test_paired_mode_with_mask_archive(scan, tmp_path):
    """An archive mask drives the fake/real split exactly as its rows say."""
    archive = tmp_path / "masks.npz"
    mask = np.zeros((121, 24, 64), np.uint8)
    striped = [3, 4, 17]
    mask[10:100, striped, 30] = 1
    np.savez_compressed(archive, m4000=mask, other=np.ones((5, 5, 5), np.uint8))
    root = tmp_path / "out"
    nsgen("-m", "paired", "--hdf-root", str(scan), "-s", "1", "--mask", str(archive),
          "-r", str(root))
    real = sorted(os.listdir(root / "0000" / "real_artifacts" / "stripe"))
    assert real == [f"0000_shift00_{v:04d}.tif" for v in striped]
    assert len(os.listdir(root / "0000" / "fake_artifacts" / "clean")) == 24 - 3
    m = json.loads((root / "0000" / "manifest.json").read_text())
    assert any(s["path"].endswith("masks.npz") for s in m["sources"])


def test_patch_mode_with_mask_archive(scan, tmp_path):
    archive = tmp_path / "masks.npz"
    mask = np.zeros((121, 24, 64), np.uint8)
    # 121 x 64 in 60 x 32 patches: crop 1 angle at the bottom; nh = 2, nw = 2
    mask[70, 5, 40] = 1          # row 5: angle block h = 1, column block w = 1 -> p = 3
    mask[120, 6, 0] = 1          # row 6: angle 120 is cropped away -> no stripe
    np.savez_compressed(archive, m4000=mask)
    root = tmp_path / "out"
    nsgen("-m", "patch", "--hdf-root", str(scan), "-s", "1", "--mask", str(archive),
          "--patch-size", "60", "32", "-r", str(root))
    assert os.listdir(root / "0000" / "real_artifacts" / "stripe") == ["0000_shift00_0005_w03.tif"]


@pytest.mark.parametrize("content,message", [
    ({"m9999": np.zeros((121, 24, 64), np.uint8)}, "has no key 'm4000'"),
    ({"m4000": np.zeros((121, 24, 63), np.uint8)}, "(121, 24, 64)"),
])
def test_mask_archive_problems_are_clear_errors(scan, tmp_path, content, message):
    archive = tmp_path / "masks.npz"
    np.savez_compressed(archive, **content)
    root = tmp_path / "out"
    r = nsgen("-m", "paired", "--hdf-root", str(scan), "-s", "1", "--mask", str(archive),
              "-r", str(root), check=False)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not root.exists()


def test_robust_detector_cli_equals_the_library(scan, tmp_path):
    from nsgen.prep.detect import detect_volume
    from nsgen.prep.detect_params import DetectParams

    archive = tmp_path / "m.npz"
    nsgen("mask", "--h5", str(scan), "-a", str(archive), "--detector", "robust", "-C", "5")
    vol = whole_volume(scan)
    with np.load(archive) as z:
        got = z["m4000"]
    assert np.array_equal(got, detect_volume(vol, "robust", DetectParams.for_scan(vol.shape)))
    for extra, message in ((["--detector", "vo"], "unknown --detector 'vo'"),
                           (["--detector", "robust", "-w"],
                            "--weights: option(s) of --detector larix; --detector robust has "
                            "none"),
                           (["--detector", "robust", "--threshold", "0.5", "--radius", "2"],
                            "--radius, --threshold: option(s) of --detector larix")):
        r = nsgen("mask", "--h5", str(scan), "-a", str(tmp_path / "n.npz"), *extra, check=False)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
        assert message in r.stderr
        assert not (tmp_path / "n.npz").exists()


def test_dead_pixel_is_flagged_at_every_angle_in_the_archive(tmp_path):
    """A pixel reading 0 in every flat, dark and projection is a stripe of its row at every
    angle in the archive, whatever the detector; the run warns once."""
    import h5py

    path = tmp_path / "7.nxs"
    write_scan(path, n_angles=121, n_rows=16, n_columns=48, seed=3)
    with h5py.File(path, "r+") as f:
        f["entry1/tomo_entry/data/data"][:, 5, 20] = 0
    for detector in ("larix", "robust"):
        archive = tmp_path / f"{detector}.npz"
        r = nsgen("mask", "--h5", str(path), "-a", str(archive), "--detector", detector)
        assert [line for line in r.stderr.splitlines() if "warning" in line] == [
            f"nsgen: warning: {path}: 1 dead and 0 saturated pixels: flagged as stripes at "
            f"every angle"]
        with np.load(archive) as z:
            assert z["m7"][:, 5, 20].all()



def test_constant_flats_are_warned_about_up_front(tmp_path, capsys, monkeypatch):
    """Flats that are constant (or saturated) everywhere are usable but correct nothing:
    nsgen mask says so in one warning line before detecting, as the generation modes do
    (the run is stopped where its engine would start)."""
    import h5py

    from nsgen import mask as mask_command
    path = tmp_path / "7.nxs"
    write_scan(path, n_angles=31, n_rows=4, n_columns=16, seed=3)
    with h5py.File(path, "r+") as f:
        keys = f["entry1/tomo_entry/instrument/detector/image_key"][...]
        frames = f["entry1/tomo_entry/data/data"][...]
        frames[keys == 1] = 30000
        frames[:, 2, 5] = 0                       # and a dead pixel: one line for both
        f["entry1/tomo_entry/data/data"][...] = frames
    def no_engine(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mask_command, "Engine", no_engine)
    with pytest.raises(KeyboardInterrupt):
        mask_command.main(["--h5", str(path), "-a", str(tmp_path / "m.npz"), "--workers", "1"])
    assert [line for line in capsys.readouterr().err.splitlines() if "warning" in line] == [
        f"nsgen: warning: {path}: 1 dead and 0 saturated pixels: flagged as stripes at every "
        f"angle; the flats are constant (30000 at every pixel), so they correct no beam or "
        f"detector pattern; check that they are real flat fields"]

def test_default_detector_is_robust_and_larix_options_select_larix(scan, tmp_path):
    """No --detector: the robust detector; Larix's own options (or --weights) given without
    --detector select larix (the seed's commands keep their meaning); the main job's INI
    (whose ``size`` is the phantom's) is no Larix option for ``nsgen mask``. In process:
    ``nsgen.cli.main`` parses the same command lines (the CLI's exit codes are other tests')."""
    from nsgen.cli import main as nsgen_main
    runs = {"default": [], "robust": ["--detector", "robust"],
            "larix-options": SMALL, "larix": ["--detector", "larix", *SMALL],
            "config": ["--config", str(REPO / "nsgen.ini")]}
    masks = {}
    for name, extra in runs.items():
        archive = tmp_path / f"{name}.npz"
        assert nsgen_main(["mask", "--h5", str(scan), "-a", str(archive), *extra]) == 0
        with np.load(archive) as z:
            masks[name] = z["m4000"]
    assert np.array_equal(masks["default"], masks["robust"])
    assert np.array_equal(masks["config"], masks["robust"])
    assert np.array_equal(masks["larix-options"], masks["larix"])
    assert not np.array_equal(masks["robust"], masks["larix"])


def test_workers_and_chunk_size_take_auto_like_the_main_command(scan, tmp_path):
    """An INI written for the main job (``workers = auto``, ``chunk-size = auto``) serves
    ``nsgen mask`` too; 0 workers is one error line, nothing written."""
    ini = tmp_path / "job.ini"
    ini.write_text("[nsgen]\nworkers = auto\nchunk-size = auto\nsize = 256\n")
    nsgen("mask", "--config", str(ini), "--h5", str(scan), "-a", str(tmp_path / "m.npz"))
    with np.load(tmp_path / "m.npz") as z:
        assert z["m4000"].shape == (121, 24, 64)
    r = nsgen("mask", "--h5", str(scan), "-a", str(tmp_path / "n.npz"), "--workers", "0",
              check=False)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "nsgen: error: --workers must be an integer >= 1 or 'auto', got '0'"]
    assert not (tmp_path / "n.npz").exists()
