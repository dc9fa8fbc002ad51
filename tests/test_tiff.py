"""TIFF output: nsgen's fast path writes exactly tifffile's bytes, atomically."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import tifffile

from nsgen.io.tiff import read_tiff, temporary_name, tiff_header, write_tiff


def tifffile_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, image, photometric="minisblack", metadata=None, software=False)
    return buf.getvalue()


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (402, 362), (3000, 1), (1, 4097),
                                   (700, 600)])
def test_bytes_equal_tifffile_for_every_shape(tmp_path, shape):
    rng = np.random.default_rng(sum(shape))
    image = rng.integers(0, 65536, shape, dtype=np.uint16)
    path = tmp_path / "a.tif"
    size = write_tiff(path, image)
    assert path.read_bytes() == tifffile_bytes(image)
    assert size == path.stat().st_size
    assert np.array_equal(read_tiff(path), image)


def test_non_contiguous_image_is_written_as_its_values(tmp_path):
    image = np.arange(60, dtype=np.uint16).reshape(6, 10)[::2, ::3]
    write_tiff(tmp_path / "a.tif", image)
    assert (tmp_path / "a.tif").read_bytes() == tifffile_bytes(np.ascontiguousarray(image))


def test_header_is_the_shape_only():
    assert tiff_header((5, 7)) == tifffile_bytes(np.zeros((5, 7), np.uint16))[:-70]
    assert tiff_header((5, 7)) == tifffile_bytes(np.full((5, 7), 9, np.uint16))[:-70]


def test_replaces_an_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.tif"
    path.write_bytes(b"old")
    write_tiff(path, np.ones((4, 4), np.uint16))
    assert read_tiff(path).sum() == 16
    assert os.listdir(tmp_path) == ["a.tif"]
    assert not temporary_name(path).exists()


def test_wrong_dtype_is_refused(tmp_path):
    with pytest.raises(ValueError, match="expected a 2D uint16 image"):
        write_tiff(tmp_path / "a.tif", np.zeros((2, 2), np.float32))
    assert not any(tmp_path.iterdir())
