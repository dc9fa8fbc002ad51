"""TIFF frames read by rows: directly for plain pages, decoded otherwise; same values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from nsgen.errors import NsgenError
from nsgen.scan.tiffstack import TiffStack

FRAMES = np.random.default_rng(5).integers(0, 65535, (5, 11, 13)).astype(np.uint16)


@pytest.mark.parametrize("how", ["plain", "strips", "zlib", "tiles", "bigendian", "stack"])
def test_rows_read_equal_the_frames_written(tmp_path: Path, how: str) -> None:
    opts = {"plain": {}, "strips": {"rowsperstrip": 3}, "zlib": {"compression": "zlib",
            "rowsperstrip": 4}, "tiles": {"tile": (16, 16)}, "bigendian": {"byteorder": ">"},
            "stack": {}}[how]
    if how == "stack":
        tifffile.imwrite(tmp_path / "all.tif", FRAMES)
        files = [tmp_path / "all.tif"]
    else:
        files = [tmp_path / f"p_{i}.tif" for i in range(len(FRAMES))]
        for f, x in zip(files, FRAMES):
            tifffile.imwrite(f, x, **opts)
    stack = TiffStack(files, "test")
    assert stack.shape == FRAMES.shape and stack.dtype == np.uint16
    for rows in (slice(0, 11), slice(2, 3), slice(4, 10)):
        out = np.zeros((3, rows.stop - rows.start, 13), np.uint16)
        stack.read_direct(out, np.s_[1:4, rows, :], np.s_[...])
        assert np.array_equal(out, FRAMES[1:4, rows])
    direct = all(p.start is not None for p in stack.pages)
    assert direct == (how in ("plain", "strips", "stack"))
    assert stack.row_span(np.arange(5)) == {"zlib": 4, "tiles": 11, "bigendian": 11}.get(how)


def test_mixed_shapes_or_types_are_one_line_errors(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "p_0.tif", FRAMES[0])
    tifffile.imwrite(tmp_path / "p_1.tif", FRAMES[1, :10])
    with pytest.raises(NsgenError) as e:
        TiffStack([tmp_path / "p_0.tif", tmp_path / "p_1.tif"], "projections")
    assert "p_1.tif" in str(e.value) and "10 x 13" in str(e.value) and "\n" not in str(e.value)
    tifffile.imwrite(tmp_path / "p_1.tif", FRAMES[1].astype(np.float32))
    with pytest.raises(NsgenError) as e:
        TiffStack([tmp_path / "p_0.tif", tmp_path / "p_1.tif"], "projections")
    assert "float32" in str(e.value) and "move the odd files out, or save them as uint16" in str(e.value)
    assert str(e.value).startswith("projections: ")   # not wrapped as an unreadable file
    tifffile.imwrite(tmp_path / "p_1.tif", np.zeros((11, 13, 3), np.uint8), photometric="rgb")
    with pytest.raises(NsgenError, match=r"^\S+p_1.tif page 0 is not a grayscale image"):
        TiffStack([tmp_path / "p_0.tif", tmp_path / "p_1.tif"], "projections")
