"""Sets of frames (projections, flats or darks) of one dataset, and their means.

Separate flats and darks
------------------------
``flats_path`` and ``darks_path`` are each ``"file.h5"`` or
``"file.h5:/path/to/dataset"``:

* with a dataset path, every frame of that dataset (3D ``(frames, rows,
  columns)``, or one 2D frame) is a flat (resp. dark);
* without one, the file is located like a scan: if it has an ``image_key``, its
  key-1 frames are the flats and its key-2 frames the darks (a single NXtomo file
  with both); otherwise its only 3D dataset holds flats (resp. darks).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from nsgen.errors import NsgenError
from nsgen.scan.direct import DirectRows, frame_runs
from nsgen.scan.h5 import H5File, check_readable, one_line, split_spec
from nsgen.scan.layout import DARK, FLAT, INVALID, PROJECTION, ScanLayout, locate
from nsgen.scan.tiffstack import TiffStack, is_tiff, tiff_files

_BLOCK_BYTES = 64 * 2**20  # at most this much raw flat/dark data in memory at once


def read_selection(dataset: Any, label: str, sel: Any, out: np.ndarray, dest: Any) -> None:
    """``dataset[sel]`` into ``out[dest]``; an HDF5 failure becomes one clear line."""
    try:
        dataset.read_direct(out, source_sel=sel, dest_sel=dest)
    except (OSError, RuntimeError) as exc:
        raise NsgenError(
            f"cannot read {label} ({one_line(exc)}); the file may be truncated or damaged, "
            f"or need a compression filter that hdf5plugin does not provide"
        ) from exc


_DIRECT_LOCK = threading.Lock()


class Frames:
    """Some frames of one dataset (or an all-zero field)."""

    def __init__(self, dataset: h5py.Dataset | None, indices: np.ndarray, label: str) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        self.label = label
        self.runs = frame_runs(self.indices)
        self._mean: np.ndarray | None = None

    @property
    def count(self) -> int:
        return int(self.indices.size)

    def _read(self, sel: Any, out: np.ndarray, dest: Any) -> None:
        assert self.dataset is not None
        read_selection(self.dataset, self.label, sel, out, dest)

    def read(self, rows: slice, out: np.ndarray) -> np.ndarray:
        direct = self._direct_rows()
        if direct is not None and (out.dtype != direct.dtype or not out.flags.c_contiguous):
            direct = None
        for start, stop, offset in self.runs:
            n = stop - start
            if direct is not None:
                try:
                    direct.read(range(start, stop), rows, out, offset)
                    continue
                except OSError as exc:
                    raise NsgenError(f"cannot read {self.label} ({one_line(exc)}); the file "
                                     f"may be truncated or damaged") from exc
            self._read(np.s_[start:stop, rows, :], out, np.s_[offset:offset + n])
        return out

    def _direct_rows(self) -> DirectRows | None:
        """The dataset's direct-read path, or None (worked out once)."""
        with _DIRECT_LOCK:   # a reader's read and its hint thread may both ask first
            if not hasattr(self, "_direct"):
                self._direct = (DirectRows.of(self.dataset)
                                if isinstance(self.dataset, h5py.Dataset) else None)
        return self._direct

    def close(self) -> None:
        """Close the direct-read path's file descriptor, if it was opened."""
        direct = getattr(self, "_direct", None)
        if direct is not None:
            direct.close()

    def advise(self, rows: slice, wait: bool = False) -> None:
        """Hint that ``rows`` of every frame will be read soon (direct path only); with
        ``wait``, return once they have about arrived (:meth:`DirectRows.advise`)."""
        direct = self._direct_rows()
        if direct is not None:
            try:
                for start, stop, _offset in self.runs:
                    direct.advise(range(start, stop), rows, wait)
            except OSError:
                pass  # only a hint: the read reports any real problem

    def mean(self, rows: slice, n_columns: int) -> np.ndarray:
        """Mean over the frames for detector ``rows``, float32 (accumulated in float64).

        The mean of every row is worked out on first use and kept (one float32 frame): a
        pass over row chunks asks for each chunk's rows, and a small read of every frame
        per chunk costs far more than one read of the whole frames.
        """
        n_rows = len(range(rows.start, rows.stop))
        if self.dataset is None or n_rows == 0 or n_columns == 0:
            return np.zeros((n_rows, n_columns), dtype=np.float32)
        if self._mean is None:
            self._mean = self._mean_of(slice(0, self.dataset.shape[-2]), n_columns)
            self._mean.setflags(write=False)
        return self._mean[rows]

    def _mean_of(self, rows: slice, n_columns: int) -> np.ndarray:
        assert self.dataset is not None
        dtype = self.dataset.dtype
        n_rows = len(range(rows.start, rows.stop))
        acc = np.zeros((n_rows, n_columns), dtype=np.float64)
        if self.dataset.ndim == 2:
            buf = np.empty((n_rows, n_columns), dtype=dtype)
            self._read(np.s_[rows, :], buf, np.s_[...])
            return buf.astype(np.float32)
        frame_bytes = max(1, n_rows * n_columns * dtype.itemsize)
        block = max(1, _BLOCK_BYTES // frame_bytes)
        for start, stop, _offset in self.runs:
            for a in range(start, stop, block):
                b = min(stop, a + block)
                buf = np.empty((b - a, n_rows, n_columns), dtype=dtype)
                self._read(np.s_[a:b, rows, :], buf, np.s_[...])
                acc += buf.sum(axis=0, dtype=np.float64)
        acc /= self.count
        return acc.astype(np.float32)


def read_key(f: H5File, path: str, n_frames: int, data_label: str) -> np.ndarray:
    dset = f.need(path, "image_key", "--image-key-path")
    if dset.ndim != 1 or not (np.issubdtype(dset.dtype, np.integer) or np.issubdtype(dset.dtype, np.floating)):
        raise NsgenError(
            f"image_key '{path}' in {f.name} is not a 1D numeric dataset (shape {dset.shape}); "
            f"give the right one with --image-key-path"
        )
    if dset.shape[0] != n_frames:
        raise NsgenError(
            f"image_key '{path}' in {f.name} has {dset.shape[0]} entries but {data_label} has {n_frames} frames; "
            f"give the matching image_key with --image-key-path"
        )
    key = np.asarray(dset[()])
    if np.issubdtype(key.dtype, np.floating) and (not np.all(np.isfinite(key))
                                                  or np.any(key != np.round(key))):
        raise NsgenError(f"image_key '{path}' in {f.name} holds non-integer values; give the right one "
                         f"with --image-key-path")
    key = key.astype(np.int64)
    bad = np.setdiff1d(np.unique(key), [PROJECTION, FLAT, DARK, INVALID])
    if bad.size:
        raise NsgenError(
            f"image_key '{path}' in {f.name} holds values {bad.tolist()[:5]} (allowed: 0 projection, 1 flat, "
            f"2 dark, 3 invalid); give the right one with --image-key-path"
        )
    return key


def check_frame_shape(frames: Frames, rows: int, cols: int, spec: str) -> None:
    assert frames.dataset is not None
    shape = frames.dataset.shape[-2:]
    if tuple(shape) != (rows, cols):
        raise NsgenError(
            f"{spec} frames are {shape[0]} x {shape[1]} (rows x columns) but the projections are "
            f"{rows} x {cols}; give flats/darks recorded with the same detector region"
        )


def frames_from_spec(spec: str | os.PathLike[str], role: str, opened: list[H5File]
                      ) -> tuple[Frames, Frames | None]:
    """Frames of ``role`` ('flats' or 'darks') from ``file[:dataset]``; for an image_key
    file also the other kind (darks when role is flats), if present."""
    file_name, dset_path = split_spec(spec)
    option = "--flats" if role == "flats" else "--darks"
    if dset_path is None and is_tiff(file_name):
        path = Path(file_name)
        stack = TiffStack(tiff_files(path) if path.is_dir() else [path], f"{role} {path}")
        return Frames(stack, np.arange(len(stack)), f"{role} {path} (TIFF)"), None
    f = H5File(file_name, f"{role} file")
    opened.append(f)
    if dset_path is not None:
        d = f.need(dset_path, role, option)
        if d.ndim not in (2, 3) or not np.issubdtype(d.dtype, np.number):
            raise NsgenError(f"{role} dataset '{dset_path}' in {f.name} has shape {d.shape}; "
                             f"it must be (frames, rows, columns); give another with {option} FILE:DATASET")
        check_readable(d, f"{role} dataset {f.name}:{dset_path}")
        n = 1 if d.ndim == 2 else d.shape[0]
        return Frames(d, np.arange(n), f"{role} {f.name}:{dset_path}"), None
    try:
        loc = locate(f, ScanLayout(), role)
    except NsgenError as exc:
        raise NsgenError(f"cannot tell which dataset of {f.name} holds the {role} ({exc}); "
                         f"name it as {option} {file_name}:/path/to/dataset") from exc
    d = f.need(loc.data_path, role, option)
    check_readable(d, f"{role} dataset {f.name}:{loc.data_path}")
    label = f"{f.name}:{loc.data_path}"
    if loc.image_key_path is None:
        return Frames(d, np.arange(d.shape[0]), f"{role} {label}"), None
    key = read_key(f, loc.image_key_path, d.shape[0], label)
    own, other = (FLAT, DARK) if role == "flats" else (DARK, FLAT)
    mine = np.flatnonzero(key == own)
    if mine.size == 0:
        raise NsgenError(f"{role} file {f.name} has no {role} (image_key {loc.image_key_path} has no {own}); "
                         f"name the dataset as {option} {file_name}:/path/to/dataset")
    extra = np.flatnonzero(key == other)
    other_frames = Frames(d, extra, f"{'darks' if role == 'flats' else 'flats'} {label}") if extra.size else None
    return Frames(d, mine, f"{role} {label}"), other_frames

