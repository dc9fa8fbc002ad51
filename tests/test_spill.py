"""nsgen.io.spill: scratch volumes kept partly in a memory file system, partly on disk."""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest

from nsgen.io.spill import MEMORY_SCRATCH_SHARE, Spill, memory_rows


@pytest.mark.parametrize("memory_rows", [0, 1, 4, 10, 99])
def test_rows_split_between_memory_and_disk_round_trip(tmp_path, memory_rows):
    """Any row range, across the boundary or not, reads back what was written; the memory
    file holds the first rows (clipped to the volume), the disk file the others."""
    (tmp_path / "shm").mkdir()
    s = Spill.create(tmp_path / "v.f32", (10, 3, 4), memory=tmp_path / "shm" / "v",
                     memory_rows=memory_rows)
    kept = min(memory_rows, 10)
    assert s.memory_rows == kept and s.memory_bytes == kept * 48
    assert s.path.stat().st_size == (10 - kept) * 48
    data = np.random.default_rng(0).random((10, 3, 4), dtype=np.float32)
    for a, b in ((3, 7), (0, 3), (7, 10)):   # any order: disjoint row ranges
        s.write_rows(a, data[a:b])
    for a, b in ((0, 10), (2, 5), (4, 4), (9, 10)):
        assert np.array_equal(s.read_rows(a, b), data[a:b])
    if kept:
        assert np.array_equal(np.fromfile(s.memory, np.float32).reshape(kept, 3, 4),
                              data[:kept])
    s.unlink()
    assert not any(tmp_path.rglob("v*"))


def test_bands_of_a_volume_partly_in_memory_are_refused(tmp_path):
    s = Spill.create(tmp_path / "v.u8", (5, 7, 3), "uint8", memory=tmp_path / "m",
                     memory_rows=2)
    with pytest.raises(ValueError, match="partly in memory"):
        s.write_band(0, np.zeros((1, 5, 3), np.uint8))


def test_bands_given_planes_first_fill_the_volume_as_rows_first_ones(tmp_path):
    vol = np.random.default_rng(3).integers(0, 255, (5, 7, 3)).astype(np.uint8)
    a = Spill.create(tmp_path / "a.u8", vol.shape, "uint8")
    b = Spill.create(tmp_path / "b.u8", vol.shape, "uint8")
    for start, stop in ((4, 7), (0, 1), (1, 4)):
        a.write_band(start, np.ascontiguousarray(vol[:, start:stop].transpose(1, 0, 2)))
        b.write_band(start, np.ascontiguousarray(vol[:, start:stop]), planes_first=True)
    assert a.path.read_bytes() == b.path.read_bytes() == vol.tobytes()
    with pytest.raises(ValueError, match="does not fit"):
        b.write_band(6, vol[:, :2], planes_first=True)


def test_fields_are_scattered_into_their_own_arrays_across_memory_and_disk(tmp_path):
    s = Spill.create(tmp_path / "v.f32", (9, 5, 3), memory=tmp_path / "m", memory_rows=4)
    data = np.random.default_rng(4).random((9, 5, 3), dtype=np.float32)
    s.write_rows(0, data)
    outs = [np.empty((6, n, 3), np.float32) for n in (2, 1, 2)]
    s.read_fields(2, 8, outs)
    assert np.array_equal(np.concatenate(outs, axis=1), data[2:8])
    with pytest.raises(ValueError, match="add up to 5"):
        s.read_fields(2, 8, outs[:2])


def test_mapped_rows_are_the_rows_and_never_change_the_file(tmp_path):
    """map_rows gives the rows of one file without a copy (copy on write), None where they
    lie in memory and on disk."""
    spill = Spill.create(tmp_path / "v.f32", (6, 2, 3), memory=tmp_path / "m.f32",
                         memory_rows=4)
    data = np.arange(36, dtype=np.float32).reshape(6, 2, 3)
    spill.write_rows(0, data)
    for lo, hi in ((0, 4), (1, 3), (4, 6), (5, 6)):
        rows = spill.map_rows(lo, hi)
        assert rows is not None and rows.flags.c_contiguous and rows.flags.writeable
        assert np.array_equal(rows, data[lo:hi])
        rows[...] = -1   # (copy on write: the file keeps its values)
    assert spill.map_rows(3, 5) is None
    assert np.array_equal(spill.read_rows(0, 6), data)
    spill.unlink()


def test_memory_rows_is_half_the_limit_where_the_file_system_has_room(tmp_path):
    # tmp_path's file system has far more than 3 x 10 MB free
    assert memory_rows(10 * 10**6, 10**5, 1000, tmp_path) == int(MEMORY_SCRATCH_SHARE * 100)
    assert memory_rows(10 * 10**6, 10**5, 30, tmp_path) == 30
    assert memory_rows(10 * 10**6, 10**5, 30, tmp_path / "missing") == 0


def test_memory_rows_take_half_the_limit_and_leave_the_rest_in_shared_memory(monkeypatch):
    def fs(free):
        monkeypatch.setattr(os, "statvfs",
                            lambda _: SimpleNamespace(f_bavail=free, f_frsize=1))
    fs(10**12)
    assert memory_rows(4 * 10**9, 5 * 10**6, 256) == 256
    assert memory_rows(4 * 10**9, 5 * 10**6, 2160) == 400   # 2 GB
    fs(3 * 10**9)   # 1 GB after the rest of the limit (2 GB) is left free
    assert memory_rows(4 * 10**9, 5 * 10**6, 2160) == 200
    fs(10**9)
    assert memory_rows(4 * 10**9, 5 * 10**6, 2160) == 0
