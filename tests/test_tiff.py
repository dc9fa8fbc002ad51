"""TIFF output: nsgen's fast path writes exactly tifffile's bytes, atomically."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import tifffile

from nsgen.io.tiff import (Temporaries, TiffWriter, read_tiff, temporary_name, tiff_header,
                           write_tiff)


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


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (402, 362), (3000, 1), (1, 70000),
                                   (70000, 1), (5, 65536), (804, 724), (4000, 4097)])
def test_built_header_equals_tifffiles(shape):
    """The header built without tifffile is the one tifffile writes for the shape (found by
    encoding a zero image: _tifffile_header)."""
    from nsgen.io.tiff import _tifffile_header, strip_header
    assert strip_header(*shape) == _tifffile_header(shape)
    assert tiff_header(shape) == _tifffile_header(shape)


def test_writing_imports_no_tifffile():
    """A process that writes TIFFs of the usual shapes never imports tifffile (~0.09 CPU-s
    per worker before its first file)."""
    from helpers import python_output
    out = python_output(
        "import sys, tempfile, pathlib, numpy as np\n"
        "from nsgen.io.tiff import TiffWriter\n"
        "root = pathlib.Path(tempfile.mkdtemp())\n"
        "print(TiffWriter(root).write([('a.tif', np.ones((402, 362), np.uint16))])[:2],"
        " 'tifffile' in sys.modules)\n")
    assert out.strip() == "(1, 291224) False"


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


def test_files_whose_temporaries_were_created_ahead_are_the_same_bytes(tmp_path):
    images = {f"{k}.tif": np.full((3, 5), k, np.uint16) for k in range(4)}
    ahead = Temporaries(tmp_path)
    ahead.start(list(images)[:3])
    assert ahead.stop(finish=True) == 3
    assert all(os.path.getsize(p) == 0 for p in ahead.created)
    files, _, crc = TiffWriter(tmp_path, owner=ahead.owner).write(images.items())
    assert files == 4 and sorted(os.listdir(tmp_path)) == sorted(images)
    for name, image in images.items():
        assert (tmp_path / name).read_bytes() == tifffile_bytes(image)
    assert ahead.discard() == 0


def test_temporaries_leave_existing_files_alone_and_discard_what_is_not_written(tmp_path):
    ahead = Temporaries(tmp_path)
    taken = temporary_name(tmp_path / "b.tif", ahead.owner)
    taken.write_bytes(b"someone's")
    ahead.start(["a.tif", "b.tif", "c.tif"])
    assert ahead.stop(finish=True) == 2
    assert taken.read_bytes() == b"someone's"
    write_tiff(tmp_path / "a.tif", np.ones((2, 2), np.uint16), ahead.owner)
    assert ahead.discard() == 1      # c's; a's was written and renamed, b's not ours
    assert sorted(os.listdir(tmp_path)) == sorted(["a.tif", taken.name])


def test_temporaries_stop_at_the_first_error(tmp_path):
    ahead = Temporaries(tmp_path)
    ahead.start(["a.tif", "missing/b.tif", "c.tif"])
    assert ahead.stop(finish=True) == 1 and ahead.created == [
        temporary_name(tmp_path / "a.tif", ahead.owner)]
