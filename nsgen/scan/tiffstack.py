"""Frames stored as TIFF pages: one multi-page TIFF, a folder of TIFFs, or several of them.

A :class:`TiffStack` is a list of frames, each one page of one TIFF file, all of one
shape and data type. It reads detector rows of any run of frames, frame by frame, so a
read holds no more than the rows asked for:

* an uncompressed page stored in one contiguous run of strips (what detectors write)
  is read straight from the file: rows ``r0..r1`` are the bytes
  ``offset + r0 * row_bytes`` onwards (``os.preadv`` into the destination);
* any other page (compressed, tiled, planar) is decoded by :mod:`tifffile` and the rows
  are copied out; the stack then says how many rows each decoded piece
  holds (:meth:`TiffStack.row_span`), so that a reader of many row chunks can
  decompress the frames once first.

Its :meth:`TiffStack.read_direct` has the signature of :meth:`h5py.Dataset.read_direct`
for the selections :class:`~nsgen.scan.frames.Frames` makes (frames, rows, all columns),
so frame sets, means and the :class:`~nsgen.scan.scan.Scan` work on it unchanged.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from nsgen.errors import NsgenError
from nsgen.scan.direct import pread_into

#: file name endings read as TIFF
TIFF_SUFFIXES = (".tif", ".tiff")


def is_tiff(path: str | os.PathLike[str]) -> bool:
    """True for a TIFF file (by its first bytes), or a folder holding TIFF files (directly
    or in its sub-folders).

    Examples
    --------
    >>> import tempfile, numpy, tifffile
    >>> d = tempfile.mkdtemp()
    >>> tifffile.imwrite(f"{d}/p_0001.tif", numpy.zeros((2, 3), numpy.uint16))
    >>> is_tiff(d), is_tiff(f"{d}/p_0001.tif"), is_tiff(f"{d}/missing.tif")
    (True, True, False)
    """
    p = Path(path)
    if p.is_dir():
        return bool(tiff_files(p)) or any(tiff_files(d) for d in p.iterdir() if d.is_dir())
    try:
        with open(p, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def natural_key(name: str) -> list[object]:
    """Sort key that orders ``p_9.tif`` before ``p_10.tif``.

    Examples
    --------
    >>> sorted(["p_10.tif", "p_9.tif", "p_100.tif"], key=natural_key)
    ['p_9.tif', 'p_10.tif', 'p_100.tif']
    """
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def tiff_files(folder: Path) -> list[Path]:
    """The TIFF files directly inside ``folder``, in natural name order."""
    try:
        names = [e.name for e in os.scandir(folder) if e.is_file()]
    except OSError:
        return []
    return [folder / n for n in sorted(names, key=natural_key)
            if n.lower().endswith(TIFF_SUFFIXES) and not n.startswith(".")]


@dataclass(frozen=True)
class _Page:
    file: int          # index into TiffStack.files
    page: int          # page of that file
    start: int | None  # byte offset of row 0 when the page is read directly, else None
    span: int | None   # rows decoded together when it is not, else None


class _File:
    """The ``file`` attribute h5py datasets have (``filename``)."""

    def __init__(self, filename: str) -> None:
        self.filename = filename


class TiffStack:
    """Frames of one shape and dtype from TIFF pages (see the module docstring).

    Parameters
    ----------
    sources : list of path
        TIFF files, in frame order; every page of each is a frame.
    label : str
        What these frames are (for messages), e.g. ``"projections /data/proj"``.
    """

    ndim = 3
    chunks = None
    is_virtual = False

    def __init__(self, sources: list[Path], label: str) -> None:
        self.label = label
        self.files = [os.path.abspath(p) for p in sources]
        self.file = _File(self.files[0] if self.files else "")
        self.pages: list[_Page] = []
        shape: tuple[int, int] | None = None
        dtype: np.dtype | None = None
        first = ""
        for i, path in enumerate(self.files):
            try:
                with tifffile.TiffFile(path) as tif:
                    swap = tif.byteorder != "<"
                    for k, item in enumerate(tif.pages):
                        page = item if isinstance(item, tifffile.TiffPage) else item.aspage()
                        if page.samplesperpixel != 1 or len(page.shape) != 2:
                            raise NsgenError(f"{path} page {k} is not a grayscale image (shape "
                                             f"{page.shape}); give single-channel detector frames")
                        pdtype = np.dtype(page.dtype).newbyteorder("=")
                        if shape is None:
                            shape, dtype, first = (page.shape[0], page.shape[1]), pdtype, path
                        elif tuple(page.shape) != shape or pdtype != dtype:
                            raise NsgenError(
                                f"{label}: {path} page {k} is {page.shape[0]} x {page.shape[1]} "
                                f"{pdtype} but {first} is {shape[0]} x {shape[1]} {dtype}; every "
                                f"frame (darks, flats, projections) must have one shape and "
                                f"type: move the odd files out, or save them as {dtype}")
                        start = _direct_start(page, swap)
                        self.pages.append(_Page(i, k, start,
                                                None if start is not None else _decode_rows(page)))
            except NsgenError:
                raise
            except (OSError, ValueError, tifffile.TiffFileError) as exc:
                raise NsgenError(f"cannot read TIFF {path} ({' '.join(str(exc).split())}); "
                                 f"check that it is a complete TIFF file") from exc
        if shape is None or dtype is None:
            raise NsgenError(f"{label}: no TIFF frames found; give a folder or file holding them")
        if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
            raise NsgenError(f"{label}: frames of type {dtype} are not numeric detector counts")
        self.shape = (len(self.pages), *shape)
        self.dtype = dtype

    def row_span(self, frames: np.ndarray) -> int | None:
        """Rows decoded together for the given frames that are not read directly (the
        largest strip or tile height), or None when every one of them is read directly."""
        spans = [s for a in frames if (s := self.pages[int(a)].span) is not None]
        return max(spans) if spans else None

    def __len__(self) -> int:
        return len(self.pages)

    def close(self) -> None:
        """Nothing stays open between reads (for the scan's list of open files)."""

    @property
    def path(self) -> str:
        """The first file (for messages)."""
        return self.file.filename

    @property
    def name(self) -> str:
        """A short name for messages."""
        return self.label

    def describe(self, frames: np.ndarray) -> str:
        """Files and storage of the given frames (for ``nsgen inspect``)."""
        pages = [self.pages[int(a)] for a in frames]
        direct = sum(p.start is not None for p in pages)
        files = len({p.file for p in pages})
        text = f"TIFF, {len(pages)} pages in {files} file{'s' if files > 1 else ''}; "
        if direct == len(pages):
            return text + "uncompressed (rows read directly)"
        return (text + f"{len(pages) - direct} compressed or tiled (decoded in pieces of "
                f"{self.row_span(frames)} rows), {direct} uncompressed")

    def read_direct(self, out: np.ndarray, source_sel: Any = np.s_[...],
                    dest_sel: Any = np.s_[...]) -> None:
        """``self[source_sel]`` into ``out[dest_sel]`` for ``(frames[, rows[, :]])`` slices."""
        sel = source_sel if isinstance(source_sel, tuple) else (source_sel,)
        frames = range(*sel[0].indices(self.shape[0])) if sel and isinstance(sel[0], slice) \
            else range(self.shape[0])
        rows = sel[1] if len(sel) > 1 else slice(None)
        r0, r1, _ = rows.indices(self.shape[1])
        target = out[dest_sel]
        for k, a in enumerate(frames):
            self._read_rows(self.pages[a], r0, max(r0, r1), target[k])

    def _read_rows(self, page: _Page, r0: int, r1: int, dest: np.ndarray) -> None:
        path = self.files[page.file]
        try:
            if page.start is not None and dest.flags.c_contiguous and dest.dtype == self.dtype:
                _pread_into(path, page.start + r0 * self.shape[2] * self.dtype.itemsize, dest)
                return
            with tifffile.TiffFile(path) as tif:
                dest[...] = tif.pages[page.page].asarray()[r0:r1]
        except (OSError, ValueError, tifffile.TiffFileError) as exc:
            raise NsgenError(f"cannot read {self.label}: {path} page {page.page} "
                             f"({' '.join(str(exc).split())}); the file may be truncated or "
                             f"damaged") from exc


def _direct_start(page: tifffile.TiffPage, swap: bool) -> int | None:
    """Byte offset of row 0 of an uncompressed, contiguous, native-order page, else None."""
    if (page.compression != 1 or page.is_tiled or page.fillorder != 1
            or (swap and np.dtype(page.dtype).itemsize > 1)):
        return None
    offsets, counts = page.dataoffsets, page.databytecounts
    if not offsets:
        return None
    size = int(np.prod(page.shape)) * np.dtype(page.dtype).itemsize
    for a, n, b in zip(offsets, counts, list(offsets[1:]) + [None]):
        if b is not None and a + n != b:
            return None
    return int(offsets[0]) if sum(counts) >= size else None


def _decode_rows(page: tifffile.TiffPage) -> int:
    """Rows decoded together: a strip's, a tile's, or the page's."""
    if page.is_tiled:
        return int(page.shape[0])
    return int(min(page.rowsperstrip or page.shape[0], page.shape[0]))


def _pread_into(path: str, pos: int, dest: np.ndarray) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        pread_into(fd, pos, dest, f"{path} ends early")
    finally:
        os.close(fd)
