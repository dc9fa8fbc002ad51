"""Scan layouts found without options: each written here by a small writer in that layout."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from nsgen.errors import NsgenError
from nsgen.scan import ScanLayout, open_scan

N_ROWS, N_COLS = 6, 10


def frames(n: int, level: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (level + rng.integers(0, 50, (n, N_ROWS, N_COLS))).astype(np.uint16)


PROJ, FLATS, DARKS = frames(12, 20000, 1), frames(4, 40000, 2), frames(3, 100, 3)
THETA = np.linspace(0.0, 180.0, 12)


def check(scan, *, angles: bool = True) -> None:
    """The scan reads the projections, flat and dark means and angles written."""
    rows = slice(1, 5)
    assert scan.shape == (12, N_ROWS, N_COLS)
    assert np.array_equal(scan.read_projections(rows), PROJ[:, rows])
    assert np.allclose(scan.flat_mean(rows), FLATS[:, rows].mean(axis=0))
    assert np.allclose(scan.dark_mean(rows), DARKS[:, rows].mean(axis=0))
    assert (scan.n_flats, scan.n_darks) == (4, 3)
    if angles:
        assert np.allclose(scan.angles, THETA)


def keyed() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Darks, flats, projections, flats again: frames, image_key, per-frame angles."""
    data = np.concatenate([DARKS, FLATS[:2], PROJ, FLATS[2:]])
    key = np.array([2] * 3 + [1] * 2 + [0] * 12 + [1] * 2, np.int8)
    angle = np.zeros(key.size)
    angle[key == 0] = THETA
    return data, key, angle


def test_aps_data_exchange(tmp_path: Path) -> None:
    path = tmp_path / "aps.h5"
    with h5py.File(path, "w") as f:
        ex = f.create_group("exchange")
        ex["data"], ex["data_white"], ex["data_dark"] = PROJ, FLATS, DARKS
        ex["theta"] = THETA
        ex["theta"].attrs["units"] = "degrees"
        f.create_dataset("measurement/instrument/detector/dark", data=DARKS)  # another 3D stack
    with open_scan(path) as scan:
        check(scan)
        assert scan.data_path == "/exchange/data" and "Data Exchange" in scan.how
        assert scan.flats_source.endswith("/exchange/data_white")


def test_nxtomo_any_entry_name(tmp_path: Path) -> None:
    data, key, angle = keyed()
    path = tmp_path / "nxtomo.nxs"
    with h5py.File(path, "w") as f:
        e = f.create_group("scan_0007")
        e.attrs["NX_class"] = "NXentry"
        e.attrs["definition"] = "NXtomo"
        e["instrument/detector/data"] = data
        e["instrument/detector/image_key"] = key
        e["sample/rotation_angle"] = np.radians(angle)
        e["sample/rotation_angle"].attrs["units"] = "rad"
        f["/other/stack"] = PROJ   # a second 3D dataset outside the entry
    with open_scan(path) as scan:
        check(scan)
        assert scan.data_path == "/scan_0007/instrument/detector/data"
        assert "NXtomo entry /scan_0007" in scan.how


def test_esrf_nxtomo_with_per_frame_image_key(tmp_path: Path) -> None:
    """nxtomomill's layout: entry0000 with a ``definition`` dataset, the detector data and
    per-frame image_key linked into an NXdata; an alignment projection taken after the
    scan (image_key 0, image_key_control -1) is not read as a projection."""
    data, key, angle = keyed()
    data = np.concatenate([data, PROJ[:1] + 7])              # the alignment frame
    key, angle = np.append(key, 0).astype(np.int8), np.append(angle, 90.0)
    path = tmp_path / "esrf.nx"
    with h5py.File(path, "w") as f:
        e = f.create_group("entry0000")
        e.attrs["NX_class"] = "NXentry"
        e["definition"] = "NXtomo"
        det = e.create_group("instrument/detector")
        det.attrs["NX_class"] = "NXdetector"
        det["data"], det["image_key"] = data, key
        control = key.copy()
        control[-1] = -1
        det["image_key_control"] = control
        e["sample/rotation_angle"] = angle
        e["sample/rotation_angle"].attrs["units"] = "degree"
        nxdata = e.create_group("data")
        nxdata.attrs.update(NX_class="NXdata", signal="data")
        nxdata["data"] = h5py.SoftLink("/entry0000/instrument/detector/data")
        nxdata["rotation_angle"] = h5py.SoftLink("/entry0000/sample/rotation_angle")
    with open_scan(path) as scan:
        check(scan)
        assert scan.image_key_path == "/entry0000/instrument/detector/image_key"
        assert scan.image_key[-1] == 3 and scan.n_frames == 20


def test_two_candidate_stacks_are_refused_and_listed(tmp_path: Path) -> None:
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        f["a/images"], f["b/images"] = PROJ, FLATS
    with pytest.raises(NsgenError) as e:
        open_scan(path)
    msg = str(e.value)
    assert "ambiguous" in msg and "/a/images (12, 6, 10)" in msg and "/b/images (4, 6, 10)" in msg
    assert "--data-path" in msg and "\n" not in msg
    with open_scan(path, ScanLayout(data_path="/a/images"), flats_path=f"{path}:/b/images",
                   darks_path="zeros") as scan:
        assert scan.shape == (12, N_ROWS, N_COLS)
