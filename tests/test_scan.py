"""Tests of nsgen.scan (HDF5 scans): real k11 and i12 files in place, synthetic scans, errors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from helpers import SHARED
from nsgen.errors import NsgenError
from nsgen.io.scan_writer import write_scan
from nsgen.scan import ScanLayout, open_scan, shift_files

DATA = SHARED / "data"
K11 = DATA / "k11-18014" / "k11-18014.nxs"
K11_IMAGING = DATA / "k11-18014" / "k11-18014" / "k11-18014-imaging.h5"
I12 = DATA / "i12-separate-flats-darks"

needs_k11 = pytest.mark.shared_data("data/k11-18014/k11-18014.nxs")
needs_i12 = pytest.mark.shared_data("data/i12-separate-flats-darks")


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


@pytest.fixture(scope="module")
def k11_truth() -> dict:
    """The k11 frames read directly (without nsgen): 3.6 MB."""
    with h5py.File(K11_IMAGING, "r") as f:
        data = f["/entry/detector/detector"][()]
    with h5py.File(K11, "r") as f:
        key = f["/entry/instrument/imaging/image_key"][()]
        theta = f["/entry/imaging/gts_theta_value"][()]
    return {"data": data, "key": key, "theta": theta}


@pytest.fixture(scope="module")
def small_scan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    path = tmp_path_factory.mktemp("scan") / "1000.nxs"
    truth = write_scan(path, n_angles=31, n_rows=8, n_columns=40, n_flats=4, n_darks=3, flats_after=True, seed=3)
    return path, truth


# ---------------------------------------------------------------------------- k11


@needs_k11
def test_k11_discovery_from_another_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, k11_truth: dict) -> None:
    monkeypatch.chdir(tmp_path)  # relative external links must not depend on the cwd
    with open_scan(K11) as scan:
        assert scan.data_path == "/entry/imaging/data"
        assert scan.image_key_path == "/entry/instrument/imaging/image_key"
        assert scan.angles_path == "/entry/imaging/gts_theta_value"
        assert scan.shape == (3001, 22, 26)
        assert scan.dtype == np.uint16
        assert (scan.n_flats, scan.n_darks) == (100, 100)
        np.testing.assert_array_equal(scan.projection_indices, np.arange(100, 3101))
        np.testing.assert_allclose(scan.angles, k11_truth["theta"][k11_truth["key"] == 0])


@needs_k11
def test_k11_relative_path_from_data_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA)
    with open_scan(os.path.join("k11-18014", "k11-18014.nxs")) as scan:
        assert scan.shape == (3001, 22, 26)
        assert scan.read_projections(slice(0, 1)).shape == (3001, 1, 26)


@needs_k11
def test_k11_flats_darks_before_and_after_never_read_as_projections(k11_truth: dict) -> None:
    data, key = k11_truth["data"], k11_truth["key"]
    assert np.flatnonzero(key != 0).max() > np.flatnonzero(key == 0).max()  # some after the projections
    with open_scan(K11) as scan:
        proj = scan.read_projections(slice(5, 12))
        np.testing.assert_array_equal(proj, data[key == 0][:, 5:12])
        assert proj.shape == (3001, 7, 26)
        flat = scan.flat_mean(slice(5, 12))
        dark = scan.dark_mean(slice(5, 12))
    assert flat.dtype == dark.dtype == np.float32
    np.testing.assert_allclose(flat, data[key == 1][:, 5:12].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(dark, data[key == 2][:, 5:12].mean(axis=0), rtol=1e-6)
    assert 40000 < flat.mean() < 50000 and 90 < dark.mean() < 110


@needs_k11
def test_k11_explicit_layout_and_out_buffer(k11_truth: dict) -> None:
    layout = ScanLayout(data_path="entry/instrument/imaging/data",
                        image_key_path="/entry/instrument/imaging/image_key")
    with open_scan(K11, layout) as scan:
        out = np.zeros(scan.shape[:1] + (3, 26), dtype=scan.dtype)
        got = scan.read_projections(slice(19, None), out=out)
        assert got is out
        np.testing.assert_array_equal(out, k11_truth["data"][k11_truth["key"] == 0][:, 19:])
        with pytest.raises(ValueError):
            scan.read_projections(slice(0, 3), out=np.zeros((3001, 3, 26), dtype=np.float32))
        with pytest.raises(ValueError):
            scan.read_projections(slice(0, 10, 2))


@needs_k11
def test_k11_dangling_link_on_needed_path_names_the_target() -> None:
    with pytest.raises(NsgenError) as e:
        open_scan(K11, ScanLayout(data_path="/entry/EtherCAT/data"))
    msg = one_line_error(e)
    assert "external link" in msg and "k11-18014/k11-18014-EtherCAT.h5" in msg and "--data-path" in msg
    assert "/entry/imaging/data (3201, 22, 26)" in msg  # the 3D datasets that do exist
    with pytest.raises(NsgenError) as e:  # the target file exists but the object does not
        open_scan(K11, ScanLayout(angles_path="/entry/imaging/gts_theta_value_set"))
    assert "k11-18014-EtherCAT.h5" in one_line_error(e)


@needs_k11
def test_k11_master_without_its_linked_files(tmp_path: Path) -> None:
    shutil.copy(K11, tmp_path / K11.name)
    with pytest.raises(NsgenError) as e:
        open_scan(tmp_path / K11.name)
    msg = one_line_error(e)
    assert "k11-18014/k11-18014-imaging.h5" in msg and "missing" in msg


# ---------------------------------------------------------------------------- i12 separate flats/darks


@needs_i12
@pytest.mark.parametrize("darks", ["dark_field.h5", "dark_field_different_path.h5",
                                   "dark_field_different_path.h5:/tomo/data"])
@pytest.mark.parametrize("flats", ["flat_field.h5", "flat_field.h5:/1-NoProcessPlugin-tomo/data"])
def test_i12_separate_flat_and_dark_files(tmp_path: Path, flats: str, darks: str) -> None:
    scan_path = tmp_path / "scan.nxs"
    write_scan(scan_path, n_angles=5, n_rows=10, n_columns=192, n_flats=0, n_darks=0)
    name, _, dset = flats.partition(":")
    with h5py.File(I12 / name, "r") as f:
        expected_flat = f["/1-NoProcessPlugin-tomo/data"][()].mean(axis=0)
    with h5py.File(I12 / "dark_field.h5", "r") as f:
        expected_dark = f["/1-NoProcessPlugin-tomo/data"][()].mean(axis=0)
    with open_scan(scan_path, flats_path=f"{I12}/{flats}", darks_path=f"{I12}/{darks}") as scan:
        assert (scan.n_flats, scan.n_darks) == (20, 20)
        np.testing.assert_allclose(scan.flat_mean(slice(2, 6)), expected_flat[2:6], rtol=1e-6)
        np.testing.assert_allclose(scan.dark_mean(slice(0, 10)), expected_dark, rtol=1e-5, atol=1e-3)
        assert scan.read_projections(slice(0, 10)).shape == (5, 10, 192)


@needs_i12
def test_i12_flats_shape_mismatch(small_scan: tuple[Path, object]) -> None:
    path, _ = small_scan
    with pytest.raises(NsgenError) as e:
        open_scan(path, flats_path=I12 / "flat_field.h5")
    msg = one_line_error(e)
    assert "10 x 192" in msg and "8 x 40" in msg


@needs_i12
def test_i12_missing_dataset_in_flats_file_lists_3d_datasets(small_scan: tuple[Path, object]) -> None:
    path, _ = small_scan
    with pytest.raises(NsgenError) as e:
        open_scan(path, flats_path=f"{I12}/flat_field.h5:/entry/flats")
    msg = one_line_error(e)
    assert "/entry/flats" in msg and "/1-NoProcessPlugin-tomo/data (20, 10, 192)" in msg


def test_separate_nxtomo_file_gives_flats_and_darks(tmp_path: Path) -> None:
    scan_path, ref_path = tmp_path / "scan.nxs", tmp_path / "flats.nxs"
    write_scan(scan_path, n_angles=7, n_rows=6, n_columns=24, n_flats=0, n_darks=0, seed=1)
    write_scan(ref_path, n_angles=3, n_rows=6, n_columns=24, n_flats=5, n_darks=4, seed=2)
    with open_scan(ref_path) as ref:
        flat, dark = ref.flat_mean(slice(0, 6)), ref.dark_mean(slice(0, 6))
    with open_scan(scan_path, flats_path=ref_path) as scan:
        assert (scan.n_flats, scan.n_darks) == (5, 4)
        np.testing.assert_array_equal(scan.flat_mean(slice(0, 6)), flat)
        np.testing.assert_array_equal(scan.dark_mean(slice(0, 6)), dark)


def test_zero_darks_must_be_explicit(tmp_path: Path) -> None:
    path = tmp_path / "nodarks.nxs"
    write_scan(path, n_angles=4, n_rows=4, n_columns=16, n_flats=3, n_darks=0)
    with pytest.raises(NsgenError) as e:
        open_scan(path)
    msg = one_line_error(e)
    assert "no dark fields" in msg and "--darks" in msg
    with open_scan(path, darks_path="zeros") as scan:
        assert scan.n_darks == 0
        np.testing.assert_array_equal(scan.dark_mean(slice(1, 3)), np.zeros((2, 16), np.float32))


# ---------------------------------------------------------------------------- synthetic scans


@pytest.mark.parametrize("compression", [None, "gzip", "blosc", "bitshuffle"])
def test_compressed_scan_with_flats_after(tmp_path: Path, compression: str | None) -> None:
    path = tmp_path / "scan.nxs"
    truth = write_scan(path, n_angles=21, n_rows=6, n_columns=32, n_flats=3, n_darks=2, flats_after=True,
                       compression=compression, seed=5)
    with h5py.File(path, "r") as f:
        raw = f["entry1/tomo_entry/data/data"][()]
        key = f["entry1/tomo_entry/instrument/detector/image_key"][()]
    assert list(key[-5:]) == [1, 1, 1, 2, 2]
    with open_scan(path) as scan:
        assert scan.shape == (21, 6, 32) and (scan.n_flats, scan.n_darks) == (6, 4)
        np.testing.assert_array_equal(scan.projection_indices, truth.projection_indices)
        np.testing.assert_array_equal(scan.read_projections(slice(1, 5)), raw[key == 0][:, 1:5])
        np.testing.assert_allclose(scan.flat_mean(slice(0, 6)), raw[key == 1].mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(scan.angles, np.linspace(0, 180, 21))


def _hand_made(path: Path, key: list[int], *, data_path: str = "entry1/tomo_entry/data/data",
               key_path: str | None = "entry1/tomo_entry/instrument/detector/image_key",
               shape: tuple[int, int] = (3, 5)) -> np.ndarray:
    frames = np.arange(len(key) * shape[0] * shape[1], dtype=np.float32).reshape(len(key), *shape)
    frames += 1000.0 * np.asarray(key, dtype=np.float32)[:, None, None]
    with h5py.File(path, "w") as f:
        f.create_dataset(data_path, data=frames, chunks=(1, *shape))
        if key_path is not None:
            f.create_dataset(key_path, data=np.asarray(key, dtype=np.int32))
    return frames


def test_projections_interleaved_with_flats_are_read_in_runs(tmp_path: Path) -> None:
    key = [2, 1, 0, 0, 1, 0, 0, 0, 3, 0, 2, 1]
    frames = _hand_made(tmp_path / "x.h5", key)
    with open_scan(tmp_path / "x.h5") as scan:
        np.testing.assert_array_equal(scan.projection_indices, [2, 3, 5, 6, 7, 9])
        np.testing.assert_array_equal(scan.read_projections(slice(1, 3)), frames[[2, 3, 5, 6, 7, 9], 1:3])
        np.testing.assert_allclose(scan.flat_mean(slice(0, 3)), frames[[1, 4, 11]].mean(axis=0))
        np.testing.assert_allclose(scan.dark_mean(slice(0, 3)), frames[[0, 10]].mean(axis=0))
        assert scan.angles is None


def test_custom_paths(tmp_path: Path) -> None:
    frames = _hand_made(tmp_path / "x.h5", [1, 2, 0, 0], data_path="/scan/frames", key_path="/scan/keys")
    with pytest.raises(NsgenError):  # no default, no NXtomo/NXdata, one 3D dataset but no image_key -> no flats
        open_scan(tmp_path / "x.h5")
    with open_scan(tmp_path / "x.h5", ScanLayout(data_path="/scan/frames", image_key_path="/scan/keys")) as scan:
        np.testing.assert_array_equal(scan.read_projections(slice(0, 3)), frames[2:])


def test_nxtomo_entry_discovery_and_radians(tmp_path: Path) -> None:
    path = tmp_path / "nxtomo.nxs"
    key = np.array([2, 1, 0, 0, 0, 1], dtype=np.int32)
    with h5py.File(path, "w") as f:
        entry = f.create_group("scan_7")
        entry.attrs["NX_class"] = "NXentry"
        entry.create_dataset("definition", data="NXtomo")
        det = entry.create_group("instrument/detector")
        det.attrs["NX_class"] = "NXdetector"
        det.create_dataset("data", data=np.ones((6, 2, 3), dtype=np.uint16))
        det.create_dataset("image_key", data=key)
        rot = entry.create_dataset("sample/rotation_angle", data=np.linspace(0, np.pi, 6))
        rot.attrs["units"] = "rad"
        f.create_dataset("other/stack", data=np.zeros((4, 4, 4)))
    with open_scan(path) as scan:
        assert scan.data_path == "/scan_7/instrument/detector/data"
        assert scan.shape == (3, 2, 3)
        np.testing.assert_allclose(scan.angles, np.degrees(np.linspace(0, np.pi, 6))[2:5])


def test_two_candidate_stacks_is_ambiguous(tmp_path: Path) -> None:
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        for name in ("a", "b"):
            g = f.create_group(name)
            g.attrs["NX_class"] = "NXdata"
            g.attrs["signal"] = "data"
            g.create_dataset("data", data=np.zeros((3, 2, 2)))
    with pytest.raises(NsgenError) as e:
        open_scan(path)
    msg = one_line_error(e)
    assert "/a/data" in msg and "/b/data" in msg and "--data-path" in msg


# ---------------------------------------------------------------------------- errors


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NsgenError) as e:
        open_scan(tmp_path / "nope.nxs")
    assert "does not exist" in one_line_error(e)


def test_directory_and_not_hdf5(tmp_path: Path) -> None:
    with pytest.raises(NsgenError) as e:
        open_scan(tmp_path)
    assert "directory" in one_line_error(e)
    (tmp_path / "notes.nxs").write_text("not hdf5")
    with pytest.raises(NsgenError) as e:
        open_scan(tmp_path / "notes.nxs")
    assert "not an HDF5" in one_line_error(e)


def test_dataset_path_not_found_lists_3d_datasets(small_scan: tuple[Path, object]) -> None:
    path, _ = small_scan
    with pytest.raises(NsgenError) as e:
        open_scan(path, ScanLayout(data_path="/entry1/tomo_entry/data/projections"))
    msg = one_line_error(e)
    assert "/entry1/tomo_entry/data/projections" in msg and "--data-path" in msg
    assert "/entry1/tomo_entry/data/data (45, 8, 40)" in msg


def test_image_key_length_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "x.h5"
    _hand_made(path, [2, 1, 0, 0])
    with h5py.File(path, "a") as f:
        del f["entry1/tomo_entry/instrument/detector/image_key"]
        f["entry1/tomo_entry/instrument/detector/image_key"] = np.array([2, 1, 0], dtype=np.int32)
    with pytest.raises(NsgenError) as e:
        open_scan(path)
    msg = one_line_error(e)
    assert "3 entries" in msg and "4 frames" in msg


def test_image_key_bad_values(tmp_path: Path) -> None:
    _hand_made(tmp_path / "x.h5", [2, 1, 0, 7])
    with pytest.raises(NsgenError) as e:
        open_scan(tmp_path / "x.h5")
    assert "[7]" in one_line_error(e)


def test_no_flats(tmp_path: Path) -> None:
    path = tmp_path / "noflats.nxs"
    write_scan(path, n_angles=4, n_rows=4, n_columns=16, n_flats=0, n_darks=2)
    with pytest.raises(NsgenError) as e:
        open_scan(path)
    msg = one_line_error(e)
    assert "no flat fields" in msg and "--flats" in msg


def test_no_image_key_means_no_flats(tmp_path: Path) -> None:
    _hand_made(tmp_path / "x.h5", [0, 0, 0], key_path=None)
    with pytest.raises(NsgenError) as e:
        open_scan(tmp_path / "x.h5")
    assert "no image_key" in one_line_error(e)


# ---------------------------------------------------------------------------- shift files


def test_shift_files_rule(tmp_path: Path) -> None:
    for name in ("1000.nxs", "1001.nxs", "1002.nxs", "0007.nxs", "0008.nxs", "0999.nxs", "1000.h5", "scan.nxs"):
        (tmp_path / name).touch()
    assert shift_files(str(tmp_path / "1000.nxs"), 3) == [str(tmp_path / f"100{i}.nxs") for i in range(3)]
    assert shift_files(str(tmp_path / "0007.nxs"), 2) == [str(tmp_path / "0007.nxs"), str(tmp_path / "0008.nxs")]
    assert shift_files(str(tmp_path / "0999.nxs"), 2)[1] == str(tmp_path / "1000.nxs")
    assert shift_files(str(tmp_path / "scan.nxs"), 1) == [str(tmp_path / "scan.nxs")]


def test_shift_files_errors(tmp_path: Path) -> None:
    for name in ("1000.nxs", "1001.nxs", "scan.nxs"):
        (tmp_path / name).touch()
    with pytest.raises(NsgenError) as e:
        shift_files(str(tmp_path / "1000.nxs"), 3)
    msg = one_line_error(e)
    assert "1002.nxs" in msg and "--shifts 2" in msg
    with pytest.raises(NsgenError) as e:
        shift_files(str(tmp_path / "scan.nxs"), 2)
    assert "explicitly" in one_line_error(e)
    with pytest.raises(NsgenError) as e:
        shift_files(str(tmp_path / "4.nxs"), 1)
    assert "does not exist" in one_line_error(e)
    with pytest.raises(NsgenError):
        shift_files(str(tmp_path / "1000.nxs"), 0)


@pytest.mark.parametrize("layout", ["contiguous", "frames", "blocks", "partial-width", "gzip"])
def test_direct_row_reads_equal_hdf5_reads(tmp_path, layout):
    """The unfiltered fast path returns exactly what h5py returns, for every row range."""
    import h5py

    from nsgen import scan as nexus

    rng = np.random.default_rng(0)
    n_frames, n_rows, n_cols = 23, 13, 17
    data = rng.integers(0, 65535, (n_frames, n_rows, n_cols), dtype=np.uint16)
    key = np.zeros(n_frames, np.int32)
    key[:2], key[2:4], key[-3:] = 2, 1, 1          # darks, flats, flats after
    opts = {"contiguous": {}, "frames": {"chunks": (1, n_rows, n_cols)},
            "blocks": {"chunks": (4, 5, n_cols)}, "partial-width": {"chunks": (1, 5, 8)},
            "gzip": {"chunks": (1, n_rows, n_cols), "compression": "gzip"}}[layout]
    path = tmp_path / "scan.nxs"
    with h5py.File(path, "w") as f:
        f.create_dataset("entry1/tomo_entry/data/data", data=data, **opts)
        f.create_dataset("entry1/tomo_entry/instrument/detector/image_key", data=key)
    with nexus.open_scan(str(path)) as scan:
        proj = np.flatnonzero(key == 0)
        for rows in [slice(0, n_rows), slice(3, 4), slice(4, 11), slice(12, 13)]:
            got = scan.read_projections(rows)
            assert np.array_equal(got, data[proj][:, rows])
        fast = scan._projections._direct is not None
    assert fast == (layout in ("contiguous", "frames", "blocks"))


def _union(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merged byte intervals ``[start, end)``."""
    out: list[list[int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


@pytest.mark.parametrize("layout", ["contiguous", "frames", "blocks", "gzip"])
def test_advise_asks_for_exactly_the_bytes_the_read_reads(tmp_path, layout, monkeypatch):
    """The prefetch hint covers the bytes of those rows, no more (no wasted readahead)."""
    rng = np.random.default_rng(1)
    n_frames, n_rows, n_cols = 19, 11, 16
    data = rng.integers(0, 65535, (n_frames, n_rows, n_cols), dtype=np.uint16)
    key = np.zeros(n_frames, np.int32)
    key[:2], key[-2:] = 2, 1
    opts = {"contiguous": {}, "frames": {"chunks": (1, n_rows, n_cols)},
            "blocks": {"chunks": (4, 5, n_cols)},
            "gzip": {"chunks": (1, n_rows, n_cols), "compression": "gzip"}}[layout]
    path = tmp_path / "scan.nxs"
    with h5py.File(path, "w") as f:
        f.create_dataset("entry1/tomo_entry/data/data", data=data, **opts)
        f.create_dataset("entry1/tomo_entry/instrument/detector/image_key", data=key)
    advised: list[tuple[int, int]] = []
    read: list[tuple[int, int]] = []
    real_preadv = os.preadv
    monkeypatch.setattr(os, "posix_fadvise",
                        lambda fd, off, n, advice: advised.append((off, off + n)))

    def preadv(fd: int, buffers: list, pos: int) -> int:
        n = real_preadv(fd, buffers, pos)
        read.append((pos, pos + n))
        return n

    monkeypatch.setattr(os, "preadv", preadv)
    with open_scan(str(path)) as scan:
        for rows in [slice(0, n_rows), slice(3, 9), slice(10, 11)]:
            advised.clear()
            read.clear()
            scan.advise_projections(rows)
            got = scan.read_projections(rows)
            assert np.array_equal(got, data[2:-2, rows])
            if layout == "gzip":   # HDF5 decompresses: no direct path, nothing to advise
                assert advised == [] and read == []
            else:
                assert advised and _union(advised) == _union(read)
