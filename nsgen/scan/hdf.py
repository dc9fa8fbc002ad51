"""Opening a NeXus/HDF5 scan (:func:`open_scan`) and copying its frames uncompressed.

Darks are taken, in this order, from ``darks_path``; from the darks of an
``image_key`` file given as ``flats_path``; from the scan itself. The special
value ``darks_path="zeros"`` (:data:`ZERO_DARKS`) states explicitly that the
detector has no dark offset (all-zero dark field); nothing else silently
assumes zero darks. Missing flats or darks are an error.
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from nsgen.errors import NsgenError
from nsgen.scan.frames import Frames, check_frame_shape, frames_from_spec, read_key
from nsgen.scan.h5 import H5File, attr_str, check_readable, list_3d, split_spec
from nsgen.scan.layout import (
    DARK,
    DEFAULT_DATA_PATH,
    DEFAULT_IMAGE_KEY_PATH,
    FLAT,
    INVALID,
    PROJECTION,
    ScanLayout,
    is_image_stack,
    locate,
)
from nsgen.scan.scan import Scan
from nsgen.scan.tiffscan import open_tiff_scan
from nsgen.scan.tiffstack import is_tiff

_DEFAULT_LAYOUT = ScanLayout()   # every path defaulted or discovered

#: ``darks_path`` value meaning "this detector has no dark offset".
ZERO_DARKS = "zeros"


def _read_angles(f: H5File, path: str, key: np.ndarray | None, n_frames: int, n_proj: int,
                 explicit: bool) -> np.ndarray | None:
    dset = f.get(path)
    if not isinstance(dset, h5py.Dataset) or dset.ndim != 1 or not np.issubdtype(dset.dtype, np.number):
        if explicit:
            raise NsgenError(f"angles '{path}' in {f.name} is not a 1D numeric dataset; "
                             f"give the right one with --angles-path")
        return None
    values = np.asarray(dset[()], dtype=np.float64)
    units = (attr_str(dset, "units") or "").strip().lower()
    if units in ("rad", "radian", "radians"):
        values = np.degrees(values)
    if values.size == n_frames:
        return values if key is None else values[key == PROJECTION]
    if values.size == n_proj:
        return values
    if explicit:
        raise NsgenError(
            f"angles '{path}' in {f.name} has {values.size} values but the scan has {n_frames} frames and "
            f"{n_proj} projections; give the matching angles with --angles-path"
        )
    return None


def _without_alignment(f: H5File, key_path: str, key: np.ndarray) -> np.ndarray:
    """``key`` with the frames an ``image_key_control`` beside it marks -1 (ESRF's
    alignment projections, taken after the scan) set to invalid: they are not part of the
    rotation."""
    control = f.get(key_path.rsplit("/", 1)[0] + "/image_key_control")
    if not isinstance(control, h5py.Dataset) or control.shape != key.shape \
            or not np.issubdtype(control.dtype, np.number):
        return key
    out = key.copy()
    out[np.asarray(control[()]) == -1] = INVALID
    return out


def _whole(f: H5File, path: str, role: str) -> Frames:
    """Every frame of the dataset ``path`` of the scan file (a 2D dataset is one frame)."""
    d = f.need(path, role, f"--{role} FILE:DATASET")
    check_readable(d, f"{role} dataset {f.name}:{path}")
    return Frames(d, np.arange(1 if d.ndim == 2 else d.shape[0]), f"{role} {f.name}:{path}")


def create_frame_copy(path: str | os.PathLike[str], scan: Scan) -> int:
    """Create an uncompressed NXtomo file to hold a copy of ``scan``'s frames.

    The data set (at the default i12 path, every frame of the original, same dtype) is
    stored contiguously and allocated now, without fill; the image key, if the scan has
    one, is copied. Returns the data set's byte offset in the file: whole frames are then
    written there directly (``offset + frame * frame_bytes``), in any order, by any process.
    Opened with :func:`open_scan` and the default layout, the filled copy reads exactly as
    the original (same frames, same flats and darks).
    """
    shape = (scan.n_frames, *scan.shape[1:])
    with h5py.File(path, "w") as f:
        group = f.require_group(DEFAULT_DATA_PATH.rsplit("/", 1)[0])
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.CONTIGUOUS)
        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
        dset = h5py.h5d.create(group.id, DEFAULT_DATA_PATH.rsplit("/", 1)[1].encode(),
                               h5py.h5t.py_create(scan.dtype), h5py.h5s.create_simple(shape),
                               dcpl=dcpl)
        offset = dset.get_offset()
        if scan.image_key is not None:
            f.create_dataset(DEFAULT_IMAGE_KEY_PATH, data=scan.image_key)
    if offset is None:  # pragma: no cover - HDF5 always places early-allocated data
        raise RuntimeError(f"HDF5 did not allocate the data of {path}")
    return int(offset)


def open_scan(path: str | os.PathLike[str], layout: ScanLayout = _DEFAULT_LAYOUT,
              flats_path: str | os.PathLike[str] | None = None,
              darks_path: str | os.PathLike[str] | None = None) -> Scan:
    """Open a tomography scan for reading: NeXus/HDF5, or TIFF (a folder or a TIFF file).

    Parameters
    ----------
    path : str or os.PathLike
        The scan file (``.nxs``/``.h5``); relative external links inside it are
        followed from its own directory, whatever the working directory. A folder of
        TIFF files or a TIFF file is opened by
        :func:`~nsgen.scan.tiffscan.open_tiff_scan` (``layout.angles_path`` is then a
        text file or ``START:STOP``).
    layout : ScanLayout, optional
        Dataset paths; ``None`` fields are defaulted or discovered (module doc).
    flats_path : str or os.PathLike, optional
        ``file`` or ``file:/dataset`` holding the flats (and, for an image_key
        file, the darks); overrides the scan's own flats.
    darks_path : str or os.PathLike, optional
        ``file`` or ``file:/dataset`` holding the darks, or ``"zeros"`` for an
        all-zero dark field; overrides every other source of darks.

    Returns
    -------
    Scan
        Use it as a context manager (``with open_scan(p) as scan: ...``).

    Raises
    ------
    NsgenError
        Missing file, not HDF5, dataset not found (the message lists the 3D
        datasets that exist), dangling external link on a needed path,
        image_key length mismatch, no projections, no flats or darks, flats or
        darks of another detector shape, unavailable compression filter.
    """
    if is_tiff(path):
        return open_tiff_scan(path, layout.angles_path, flats_path, darks_path)
    opened: list[H5File] = []
    try:
        f = H5File(path, "scan file")
        opened.append(f)
        located = locate(f, layout)
        data = f.need(located.data_path, "data", "--data-path")
        if not is_image_stack(data):
            raise NsgenError(
                f"data '{located.data_path}' in {f.name} has shape {data.shape} and type {data.dtype}; it must "
                f"be a numeric (frames, rows, columns) stack; {list_3d(f.h5)}; choose one with --data-path"
            )
        check_readable(data, f"data {f.name}:{located.data_path}")
        n_frames, n_rows, n_cols = (int(s) for s in data.shape)
        label = f"{f.name}:{located.data_path}"
        key = None if located.image_key_path is None else read_key(f, located.image_key_path, n_frames, label)
        if key is not None and located.image_key_path is not None:
            key = _without_alignment(f, located.image_key_path, key)
        n_proj = n_frames if key is None else int(np.count_nonzero(key == PROJECTION))
        if n_proj == 0:
            raise NsgenError(f"{label} holds no projections (image_key has no 0 frames); "
                             f"check --data-path and --image-key-path")
        angles = None
        if located.angles_path is not None:
            angles = _read_angles(f, located.angles_path, key, n_frames, n_proj, layout.angles_path is not None)

        why_none = "no image_key, so every frame is a projection" if key is None else None
        flats: Frames | None = None
        darks: Frames | None = None
        flats_file_darks: Frames | None = None
        if flats_path is not None:
            flats, flats_file_darks = frames_from_spec(flats_path, "flats", opened)
        elif key is not None and np.any(key == FLAT):
            flats = Frames(data, np.flatnonzero(key == FLAT), f"flats {label} (image_key 1)")
        elif located.flats_path is not None:
            flats = _whole(f, located.flats_path, "flats")
        if flats is None:
            raise NsgenError(
                f"no flat fields in {f.name} ({why_none or 'image_key has no 1 frames'}); "
                f"give a file holding flats and darks with --flats FILE[:DATASET]"
            )
        if darks_path is not None and os.fspath(darks_path) == ZERO_DARKS:
            darks = Frames(None, np.empty(0, dtype=np.int64), "zero darks (darks_path='zeros')")
        elif darks_path is not None:
            darks, _ = frames_from_spec(darks_path, "darks", opened)
        elif flats_file_darks is not None:
            darks = flats_file_darks
        elif key is not None and np.any(key == DARK):
            darks = Frames(data, np.flatnonzero(key == DARK), f"darks {label} (image_key 2)")
        elif located.darks_path is not None:
            darks = _whole(f, located.darks_path, "darks")
        if darks is None:
            where = f"{f.name} ({why_none or 'image_key has no 2 frames'})"
            if flats_path is not None:
                where += f" or in the flats file {split_spec(flats_path)[0]}"
            raise NsgenError(
                f"no dark fields in {where}; give them with --darks FILE[:DATASET], "
                f"or --darks {ZERO_DARKS} if the detector has no dark offset"
            )
        for frames in (flats, darks):
            if frames.dataset is not None and frames.dataset is not data:
                check_frame_shape(frames, n_rows, n_cols, frames.label)
        return Scan(file=f, located=located, data=data, key=key, angles=angles,
                    flats=flats, darks=darks, opened=opened)
    except BaseException:
        for g in opened:
            g.close()
        raise

