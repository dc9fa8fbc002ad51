"""TIFF scans: layouts found without options, bad input, and the same TIFFs as HDF5 input."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile

from helpers import nsgen, tree_digest
from nsgen.errors import NsgenError
from nsgen.io.scan_writer import write_scan
from nsgen.scan import ScanLayout, open_scan

RNG = np.random.default_rng(7)
PROJ = RNG.integers(10000, 30000, (9, 6, 10)).astype(np.uint16)
FLATS = RNG.integers(40000, 50000, (4, 6, 10)).astype(np.uint16)
DARKS = RNG.integers(90, 110, (3, 6, 10)).astype(np.uint16)


def write_folder(folder: Path, name: str, frames: np.ndarray, **kw) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, x in enumerate(frames):
        tifffile.imwrite(folder / f"{name}_{i:04d}.tif", x, **kw)


def check(scan) -> None:
    rows = slice(1, 5)
    assert scan.shape == PROJ.shape and (scan.n_flats, scan.n_darks) == (4, 3)
    assert np.array_equal(scan.read_projections(rows), PROJ[:, rows])
    assert np.allclose(scan.flat_mean(rows), FLATS[:, rows].mean(axis=0))
    assert np.allclose(scan.dark_mean(rows), DARKS[:, rows].mean(axis=0))


def test_one_folder_files_grouped_by_name(tmp_path: Path) -> None:
    write_folder(tmp_path, "Proj", PROJ)
    write_folder(tmp_path, "flat", FLATS)
    write_folder(tmp_path, "dark", DARKS)
    np.savetxt(tmp_path / "rotation_angles.txt", np.linspace(0, 160, 9))
    with open_scan(tmp_path) as scan:
        check(scan)
        assert np.allclose(scan.angles, np.linspace(0, 160, 9))
        assert "projections 'proj'" in scan.how


def test_folder_of_sub_folders_and_angle_range(tmp_path: Path) -> None:
    write_folder(tmp_path / "tomo", "img", PROJ)
    write_folder(tmp_path / "flats", "img", FLATS)
    write_folder(tmp_path / "darks", "img", DARKS)
    with open_scan(tmp_path, ScanLayout(angles_path="0:180")) as scan:
        check(scan)
        assert np.allclose(scan.angles, np.linspace(0, 180, 9))


def test_multipage_stack_with_sibling_flats_and_darks(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "sample.tif", PROJ, photometric="minisblack")
    tifffile.imwrite(tmp_path / "flat.tif", FLATS, photometric="minisblack")
    write_folder(tmp_path / "darks", "d", DARKS)
    with open_scan(tmp_path / "sample.tif") as scan:
        check(scan)


def test_explicit_flats_and_darks_override(tmp_path: Path) -> None:
    write_folder(tmp_path / "p", "p", PROJ)
    write_folder(tmp_path / "elsewhere", "f", FLATS)
    tifffile.imwrite(tmp_path / "d.tiff", DARKS, photometric="minisblack")
    with open_scan(tmp_path / "p", flats_path=tmp_path / "elsewhere",
                   darks_path=tmp_path / "d.tiff") as scan:
        check(scan)
    with open_scan(tmp_path / "p", flats_path=tmp_path / "elsewhere", darks_path="zeros") as scan:
        assert not scan.dark_mean(slice(0, 6)).any()


@pytest.mark.parametrize("case", ["mixed", "angles", "empty-flats", "no-flats", "ambiguous"])
def test_bad_tiff_input_is_one_line(tmp_path: Path, case: str) -> None:
    write_folder(tmp_path, "proj", PROJ)
    write_folder(tmp_path, "flat", FLATS)
    write_folder(tmp_path, "dark", DARKS)
    kw: dict = {}
    if case == "mixed":
        tifffile.imwrite(tmp_path / "proj_0003.tif", PROJ[3].astype(np.float32))
        want = "proj_0003.tif"
    elif case == "angles":
        np.savetxt(tmp_path / "theta.txt", np.arange(5.0))
        want = "matches no frame set"
    elif case == "empty-flats":
        (tmp_path / "none").mkdir()
        kw["flats_path"] = tmp_path / "none"
        want = "holds no TIFF files"
    elif case == "no-flats":
        for f in tmp_path.glob("flat_*"):
            f.unlink()
        want = "--flats"
    else:
        write_folder(tmp_path, "other", PROJ)
        want = "several candidate projection groups"
    with pytest.raises(NsgenError) as e:
        open_scan(tmp_path, **kw)
    assert want in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_tiff_folder_gives_the_bytes_of_the_same_scan_in_hdf5(tmp_path: Path, compression) -> None:
    """A raw run on a scan's frames exported as TIFFs (plain, or compressed and so first
    decompressed once) writes the same files as the run on the NeXus scan."""
    write_scan(tmp_path / "1000.nxs", n_angles=41, n_rows=16, n_columns=40, seed=2,
               flats_after=True)
    with h5py.File(tmp_path / "1000.nxs") as f:
        data = f["entry1/tomo_entry/data/data"][()]
        key = f["entry1/tomo_entry/instrument/detector/image_key"][()]
    for name, k in (("proj", 0), ("flat", 1), ("dark", 2)):
        write_folder(tmp_path / "tiffs", name, data[key == k],
                     **({"compression": compression} if compression else {}))
    digests = []
    for src, out in ((tmp_path / "1000.nxs", "h5"), (tmp_path / "tiffs", "tif")):
        nsgen("-m", "raw", "--hdf-root", str(src), "-r", str(tmp_path / out), "--workers", "2",
              "--no-preview", "-C", "4")
        digests.append(tree_digest(tmp_path / out))
    assert len(digests[0]) == 16 and digests[0] == digests[1]


def test_tiff_sources_are_identified_without_hashing_every_file(tmp_path: Path) -> None:
    """A TIFF folder's many files are recorded by size and time (no SHA-256 of the whole
    scan); a changed file is still noticed by the rerun check."""
    import json

    write_folder(tmp_path / "s", "proj", np.tile(PROJ, (3, 1, 1)))
    write_folder(tmp_path / "s", "flat", FLATS)
    write_folder(tmp_path / "s", "dark", DARKS)
    args = ("-m", "raw", "--hdf-root", str(tmp_path / "s"), "-r", str(tmp_path / "o"),
            "--workers", "1", "--no-preview")
    nsgen(*args)
    sources = json.loads((tmp_path / "o" / "0000" / "manifest.json").read_text())["sources"]
    assert len(sources) == 27 + 4 + 3 and not any("sha256" in s for s in sources)
    tifffile.imwrite(tmp_path / "s" / "proj_0005.tif", PROJ[0] + 1)
    r = nsgen(*args, check=False)
    assert r.returncode == 2 and "proj_0005.tif (size/time changed)" in r.stderr
