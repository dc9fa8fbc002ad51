"""I/O edges: atomic TIFFs, spill volumes, uint16 scaling."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from nsgen.io.spill import Spill
from nsgen.io.tiff import is_temporary, remove_temporaries, temporary_name, write_tiff
from nsgen.prep.scaling import Bounds, to_uint16


def test_tiff_round_trip_and_byte_identity(tmp_path):
    img = (np.arange(402 * 362) % 65536).astype(np.uint16).reshape(402, 362)
    n = write_tiff(tmp_path / "a.tif", img)
    write_tiff(tmp_path / "b.tif", img)
    assert (tmp_path / "a.tif").read_bytes() == (tmp_path / "b.tif").read_bytes()
    assert n == (tmp_path / "a.tif").stat().st_size
    back = tifffile.imread(tmp_path / "a.tif")
    assert back.dtype == np.uint16 and np.array_equal(back, img)
    assert list(tmp_path.iterdir()) == [tmp_path / "a.tif", tmp_path / "b.tif"] or \
        sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "b.tif"]


def test_tiff_rejects_wrong_types(tmp_path):
    with pytest.raises(ValueError):
        write_tiff(tmp_path / "a.tif", np.zeros((3, 3), np.float32))
    assert not any(tmp_path.iterdir())


def test_temporaries_are_recognised_and_removed(tmp_path):
    final = tmp_path / "sub" / "x.tif"
    final.parent.mkdir()
    tmp = temporary_name(final)
    tmp.write_bytes(b"partial")
    final.with_name("y.tif").write_bytes(b"done")
    assert is_temporary(tmp) and not is_temporary(final)
    assert remove_temporaries(tmp_path) == 1
    assert [p.name for p in final.parent.iterdir()] == ["y.tif"]


def test_spill_rows_round_trip(tmp_path):
    s = Spill.create(tmp_path / "v.f32", (10, 3, 4))
    data = np.random.default_rng(0).random((10, 3, 4), dtype=np.float32)
    s.write_rows(6, data[6:])
    s.write_rows(0, data[:6])
    out = np.empty((4, 3, 4), np.float32)
    assert s.read_rows(2, 6, out) is out
    assert np.array_equal(out, data[2:6])
    assert np.array_equal(s.read_rows(0, 10), data)
    with pytest.raises(ValueError):
        s.write_rows(8, data[:3])


def test_spill_rows_of_no_bytes_are_written_and_read_as_nothing(tmp_path):
    s = Spill.create(tmp_path / "e.f32", (4, 0, 5))
    assert s.row_bytes == 0 and (tmp_path / "e.f32").stat().st_size == 0
    s.write_rows(1, np.empty((2, 0, 5), np.float32))
    assert s.read_rows(1, 3).shape == (2, 0, 5)
    with pytest.raises(ValueError):
        s.write_rows(3, np.empty((2, 0, 5), np.float32))


def test_spill_at_an_offset_leaves_the_bytes_before_it_alone(tmp_path):
    """A volume stored from byte ``offset`` of a file (a data set written in place)."""
    path = tmp_path / "f.bin"
    head = bytes(range(256)) * 3
    path.write_bytes(head + bytes(2 * 3 * 4 * 4))
    s = Spill(path, (2, 3, 4), "float32", offset=len(head))
    data = np.random.default_rng(1).random((2, 3, 4), dtype=np.float32)
    s.write_rows(0, data)
    assert np.array_equal(s.read_rows(0, 2), data)
    band = np.zeros((1, 2, 4), np.float32)        # index 1 of the second axis, both rows
    s.write_band(1, band)
    data[:, 1] = 0
    assert np.array_equal(s.read_rows(0, 2), data)
    raw = path.read_bytes()
    assert raw[:len(head)] == head and raw[len(head):] == data.tobytes()


def test_uint16_scaling_round_trip_and_clipping():
    b = Bounds(-1.0, 3.0)
    x = np.linspace(-1, 3, 1001)
    u = to_uint16(x, b)
    assert u[0] == 0 and u[-1] == 65535
    assert np.max(np.abs(b.decode(u) - x)) <= 0.5 * 4 / 65535 + 1e-12
    assert to_uint16(np.array([-5.0, 5.0, np.nan]), b).tolist() == [0, 65535, 0]
    assert not to_uint16(np.ones(3), Bounds(1.0, 1.0)).any()


def test_bounds_of_ignores_non_finite():
    assert Bounds.of(np.array([np.nan, 2.0, -1.0, np.inf])) == Bounds(-1.0, 2.0)
    assert Bounds(0, 1).union(Bounds(-2, 0.5)) == Bounds(-2, 1)


def test_temporaries_of_other_samples_are_left_alone(tmp_path):
    mine = temporary_name(tmp_path / "0003_frame00_0001.tif")
    theirs = temporary_name(tmp_path / "0004_frame00_0001.tif")
    nested = tmp_path / "0003" / ".x.tif.nsgen-tmp1"
    nested.parent.mkdir()
    for p in (mine, theirs, nested):
        p.write_bytes(b"partial")
    assert remove_temporaries(tmp_path, "0003_", recursive=False) == 1
    assert not mine.exists() and theirs.exists() and nested.exists()
