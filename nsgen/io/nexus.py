"""NeXus/HDF5 scan reader: projections, flats and darks by ``image_key``.

This is the only place that knows how a tomography scan sits in an HDF5 file.
It reads detector-row ranges of the projections (never the whole scan) and the
mean flat and dark fields for the same rows. SCIENCE.md Part A.6 and B 6.1.

Where the data are
------------------
Paths are given by a :class:`ScanLayout`; a ``None`` field means "find it":

1. the i12/i13 layout (``entry1/tomo_entry/...``, see the ``DEFAULT_*``
   constants), if the data path exists;
2. otherwise an NXtomo entry (an ``NXentry``/``NXsubentry`` whose ``definition``
   is ``NXtomo``) with the standard ``data/data``, ``instrument/detector/...``
   and ``sample/rotation_angle`` fields;
3. otherwise a 3D dataset that is the ``signal`` of an ``NXdata`` group or the
   ``data`` of an ``NXdetector`` group, paired with an ``image_key`` dataset of
   matching length anywhere in the file (preferring the ``image_key`` whose
   sibling ``data`` is the same dataset). This finds ``/entry/imaging/data`` and
   ``/entry/instrument/imaging/image_key`` in a DIAD (k11) file;
4. otherwise the only 3D dataset of the file.

Without an ``image_key`` every frame is a projection (as in the reference), so
the flats (and darks) must then come from a separate file.

Frames are classified by ``image_key``: 0 projection, 1 flat, 2 dark, 3 invalid
(ignored). Flats and darks are found wherever they sit (before, between or after
the projections) and are never read as projections.

External links
--------------
Relative external links are resolved against the directory of the file holding
the link, whatever the working directory: HDF5 tries ``HDF5_EXT_PREFIX``, then the
link-access ``elink_prefix`` (which this module sets to the master file's
directory), then the directory of the linking file, then the working directory.
(``efile_prefix``/``HDF5_EXTFILE_PREFIX`` concern external *raw storage*, not
links.) A dangling link on a path the scan needs is an error that names the link
target; dangling links elsewhere in the file are never touched.

Separate flats and darks
------------------------
``flats_path`` and ``darks_path`` are each ``"file.h5"`` or
``"file.h5:/path/to/dataset"``:

* with a dataset path, every frame of that dataset (3D ``(frames, rows,
  columns)``, or one 2D frame) is a flat (resp. dark);
* without one, the file is located like a scan: if it has an ``image_key``, its
  key-1 frames are the flats and its key-2 frames the darks (a single NXtomo file
  with both); otherwise its only 3D dataset holds flats (resp. darks).

Darks are taken, in this order, from ``darks_path``; from the darks of an
``image_key`` file given as ``flats_path``; from the scan itself. The special
value ``darks_path="zeros"`` (:data:`ZERO_DARKS`) states explicitly that the
detector has no dark offset (all-zero dark field); nothing else silently
assumes zero darks. Missing flats or darks are an error.

Compressed datasets: :mod:`hdf5plugin` is imported here, which registers the
Blosc, Blosc2, bitshuffle, LZ4, Zstd, ... filters with HDF5.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Iterator

import h5py
import hdf5plugin  # noqa: F401  (registers the compression filters with HDF5)
import numpy as np

from nsgen.errors import NsgenError

__all__ = [
    "DEFAULT_ANGLES_PATH",
    "DEFAULT_DATA_PATH",
    "DEFAULT_IMAGE_KEY_PATH",
    "ZERO_DARKS",
    "Scan",
    "ScanLayout",
    "create_frame_copy",
    "open_scan",
    "shift_files",
]

DEFAULT_DATA_PATH = "entry1/tomo_entry/data/data"
DEFAULT_IMAGE_KEY_PATH = "entry1/tomo_entry/instrument/detector/image_key"
DEFAULT_ANGLES_PATH = "entry1/tomo_entry/data/rotation_angle"

#: ``darks_path`` value meaning "this detector has no dark offset".
ZERO_DARKS = "zeros"

PROJECTION, FLAT, DARK, INVALID = 0, 1, 2, 3

_NXTOMO_DATA = ("data/data", "instrument/detector/data")
_NXTOMO_KEY = ("instrument/detector/image_key", "data/image_key")
_NXTOMO_ANGLES = ("sample/rotation_angle", "data/rotation_angle")
_ANGLE_NAME = re.compile(r"rotation_angle|theta|angle", re.IGNORECASE)
_MAX_LISTED = 8
_MAX_DEPTH = 16
_BLOCK_BYTES = 64 * 2**20  # at most this much raw flat/dark data in memory at once


@dataclass(frozen=True)
class ScanLayout:
    """Where a scan's datasets are inside its HDF5 file.

    Parameters
    ----------
    data_path : str or None
        3D dataset ``(frames, rows, columns)``; ``None`` = default i12 path or
        discovery.
    image_key_path : str or None
        1D integer ``image_key`` (0 projection, 1 flat, 2 dark, 3 invalid), one per
        frame; ``None`` = default path or discovery.
    angles_path : str or None
        Rotation angles (degrees, or radians if the ``units`` attribute says so),
        one per frame or one per projection; ``None`` = default path or discovery.
    """

    data_path: str | None = None
    image_key_path: str | None = None
    angles_path: str | None = None


# ----------------------------------------------------------------------------
# small HDF5 helpers (never raise on dangling links unless asked to resolve)
# ----------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _abs(path: str) -> str:
    return "/" + path.strip("/")


def _open_h5(path: str | os.PathLike[str], what: str) -> h5py.File:
    p = Path(path)
    if not p.exists():
        raise NsgenError(f"{what} '{p}' does not exist; check the file name and directory")
    if p.is_dir():
        raise NsgenError(f"{what} '{p}' is a directory; give the .nxs/.h5 file inside it")
    try:
        is_h5 = h5py.is_hdf5(p)
    except OSError as exc:
        raise NsgenError(f"cannot read {what} '{p}' ({_one_line(exc)}); check its permissions") from exc
    if not is_h5:
        raise NsgenError(f"{what} '{p}' is not an HDF5/NeXus file; give the scan's .nxs or .h5 file")
    try:
        return h5py.File(os.path.abspath(p), "r", locking=False)
    except OSError as exc:
        raise NsgenError(
            f"cannot open {what} '{p}' ({_one_line(exc)}); check that it is complete and readable"
        ) from exc


def _lapl(directory: str) -> h5py.h5p.PropLAID:
    lapl = h5py.h5p.create(h5py.h5p.LINK_ACCESS)
    lapl.set_elink_prefix(os.path.join(directory, "").encode())
    return lapl


def _open_object(f: h5py.File, path: str, lapl: h5py.h5p.PropLAID) -> h5py.Group | h5py.Dataset:
    """Open ``path`` with our link-access list; KeyError if absent or dangling."""
    oid = h5py.h5o.open(f.id, _abs(path).encode(), lapl=lapl)
    kind = h5py.h5i.get_type(oid)
    if kind == h5py.h5i.DATASET:
        return h5py.Dataset(oid)
    if kind == h5py.h5i.GROUP:
        return h5py.Group(oid)
    raise KeyError(path)


def _try(f: h5py.File, path: str, lapl: h5py.h5p.PropLAID) -> h5py.Group | h5py.Dataset | None:
    try:
        return _open_object(f, path, lapl)
    except (KeyError, OSError, RuntimeError, ValueError):
        return None


def _attr_str(obj: h5py.HLObject, name: str) -> str | None:
    try:
        value = obj.attrs.get(name)
    except (OSError, RuntimeError, TypeError):
        return None
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        if value.size != 1:
            return None
        value = value.reshape(-1)[0]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _attr_list(obj: h5py.HLObject, name: str) -> list[str]:
    try:
        value = obj.attrs.get(name)
    except (OSError, RuntimeError, TypeError):
        return []
    if value is None:
        return []
    items = np.atleast_1d(np.asarray(value, dtype=object)).ravel().tolist()
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in items]


def _definition(group: h5py.Group) -> str | None:
    text = _attr_str(group, "definition")
    if text is None:
        try:
            d = group.get("definition")
            if isinstance(d, h5py.Dataset) and d.shape in ((), (1,)):
                v = d[()]
                v = v.reshape(-1)[0] if isinstance(v, np.ndarray) else v
                text = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        except (KeyError, OSError, RuntimeError, TypeError, ValueError):
            return None
    return text.strip() if text is not None else None


def _same(a: h5py.HLObject, b: h5py.HLObject) -> bool:
    try:
        return a.id == b.id
    except (TypeError, ValueError):
        return False


def _walk(group: h5py.Group, prefix: str = "", depth: int = 0,
          seen: list[h5py.Group] | None = None) -> Iterator[tuple[str, h5py.Group | h5py.Dataset]]:
    """Yield ``(path, object)`` for every resolvable object; skip dangling links."""
    if seen is None:
        seen = [group]
    try:
        names = list(group.keys())
    except (OSError, RuntimeError):
        return
    for name in names:
        path = f"{prefix}/{name}"
        try:
            obj = group[name]
        except (KeyError, OSError, RuntimeError, ValueError):
            continue  # dangling (soft or external) link: not our business here
        yield path, obj
        if isinstance(obj, h5py.Group) and depth < _MAX_DEPTH:
            if any(_same(obj, s) for s in seen):
                continue
            seen.append(obj)
            yield from _walk(obj, path, depth + 1, seen)


def _is_image_stack(obj: object) -> bool:
    return (isinstance(obj, h5py.Dataset) and obj.ndim == 3
            and (np.issubdtype(obj.dtype, np.number) or obj.dtype == np.bool_))


def _list_3d(f: h5py.File) -> str:
    stacks: list[tuple[str, h5py.Dataset]] = []
    for p, o in _walk(f):
        if _is_image_stack(o) and not any(_same(o, s) for _q, s in stacks):
            stacks.append((p, o))
    found = [f"{p} {tuple(o.shape)}" for p, o in stacks]
    if not found:
        return "the file holds no 3D dataset"
    more = f" and {len(found) - _MAX_LISTED} more" if len(found) > _MAX_LISTED else ""
    return "3D datasets in the file: " + ", ".join(found[:_MAX_LISTED]) + more


def _describe_missing(f: h5py.File, path: str, lapl: h5py.h5p.PropLAID) -> tuple[str, str | None]:
    """Why ``path`` cannot be opened (missing component or dangling link), and a fix
    for a dangling external link (``None`` otherwise)."""
    parts = [p for p in path.split("/") if p]
    current = "/"
    for name in parts:
        here = current.rstrip("/") + "/" + name
        try:
            parent = _open_object(f, current, lapl)
            link = parent.get(name, getlink=True)
        except (KeyError, OSError, RuntimeError, ValueError):
            link = None
        if link is None:
            return f"'{here}' does not exist", None
        if _try(f, here, lapl) is None:
            if isinstance(link, h5py.ExternalLink):
                holder_dir = os.path.dirname(parent.file.filename)
                target = link.filename
                candidate = target if os.path.isabs(target) else os.path.join(holder_dir, target)
                if not os.path.exists(candidate):
                    return (f"'{here}' is an external link to '{target}:{link.path}' and that file is "
                            f"missing (looked for {candidate})", f"copy the linked file to {candidate}")
                return (f"'{here}' is an external link to '{target}:{link.path}' and that object does "
                        f"not exist in {candidate}", f"replace {candidate} by the complete file")
            if isinstance(link, h5py.SoftLink):
                return f"'{here}' is a soft link to '{link.path}', which does not exist", None
            return f"'{here}' cannot be opened", None
        current = here
    return f"'{_abs(path)}' cannot be opened", None


def _check_readable(dset: h5py.Dataset, label: str) -> None:
    """Fail early if a compression filter is unavailable or virtual sources are missing."""
    try:
        plist = dset.id.get_create_plist()
        for i in range(plist.get_nfilters()):
            code, _flags, _values, name = plist.get_filter(i)
            if not h5py.h5z.filter_avail(code):
                nm = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
                raise NsgenError(
                    f"{label} is compressed with HDF5 filter {code} ({nm}), which is not available; "
                    f"install a hdf5plugin version that provides it"
                )
    except (OSError, RuntimeError, AttributeError):
        pass
    if dset.is_virtual:
        base = os.path.dirname(dset.file.filename)
        for src in dset.virtual_sources():
            name = src.file_name
            if name == ".":
                continue
            if not any(os.path.exists(c) for c in (name, os.path.join(base, name))):
                raise NsgenError(
                    f"{label} is a virtual dataset whose source file '{name}' is missing "
                    f"(looked next to {dset.file.filename}); copy the source files next to it"
                )


def _split_spec(spec: str | os.PathLike[str]) -> tuple[str, str | None]:
    """``'file.h5:/a/b'`` -> ``('file.h5', '/a/b')``; ``'file.h5'`` -> ``('file.h5', None)``."""
    text = os.fspath(spec)
    if os.path.exists(text):
        return text, None
    head, sep, tail = text.rpartition(":")
    if sep and head and tail.startswith("/"):
        return head, tail
    return text, None


# ----------------------------------------------------------------------------
# locating the datasets of a file
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Located:
    data_path: str
    image_key_path: str | None
    angles_path: str | None


class _File:
    """An open HDF5 file plus the link-access list used for every lookup."""

    def __init__(self, path: str | os.PathLike[str], what: str) -> None:
        self.h5 = _open_h5(path, what)
        self.path = self.h5.filename
        self.name = os.path.basename(self.path)
        self.lapl = _lapl(os.path.dirname(self.path))

    def get(self, path: str) -> h5py.Group | h5py.Dataset | None:
        return _try(self.h5, path, self.lapl)

    def exists(self, path: str) -> bool:
        """True if the final link (or object) exists, even if it dangles."""
        parts = [p for p in path.split("/") if p]
        if not parts:
            return True
        parent = self.get("/".join(parts[:-1]) or "/")
        if not isinstance(parent, h5py.Group):
            return False
        try:
            return parent.get(parts[-1], getlink=True) is not None
        except (KeyError, OSError, RuntimeError):
            return False

    def need(self, path: str, role: str, option: str) -> h5py.Dataset:
        """Open the dataset ``path`` that the scan needs, or raise a one-line NsgenError."""
        obj = self.get(path)
        if isinstance(obj, h5py.Dataset):
            return obj
        listing = f"; {_list_3d(self.h5)}" if role in ("data", "flats", "darks") else ""
        if isinstance(obj, h5py.Group):
            raise NsgenError(f"{role} path '{_abs(path)}' in {self.name} is a group, not a dataset{listing}; "
                             f"give a dataset path with {option}")
        why, fix = _describe_missing(self.h5, path, self.lapl)
        fix = f"{fix} or give another path with {option}" if fix else f"give the right path with {option}"
        raise NsgenError(f"{role} path '{_abs(path)}' not found in {self.name}: {why}{listing}; {fix}")

    def close(self) -> None:
        try:
            self.h5.close()
        except Exception:  # noqa: BLE001 - closing must never mask the real error
            pass


def _image_key_for(f: _File, data: h5py.Dataset, data_path: str,
                   keys: list[tuple[str, h5py.Dataset]]) -> str | None:
    n = data.shape[0]
    fits = [(p, k) for p, k in keys if k.ndim == 1 and k.shape[0] == n]
    if not fits:
        return None
    sibling = []
    for p, _k in fits:
        parent = f.get(p.rsplit("/", 1)[0] or "/")
        other = parent.get("data") if isinstance(parent, h5py.Group) and _safe_has(parent, "data") else None
        if other is not None and _same(other, data):
            sibling.append(p)
    if sibling:
        return sibling[0]
    values = [k[()] for _p, k in fits]
    if all(np.array_equal(values[0], v) for v in values[1:]):
        return fits[0][0]
    names = ", ".join(p for p, _k in fits)
    raise NsgenError(
        f"several different image_key datasets fit {data_path} in {f.name} ({names}); "
        f"choose one with --image-key-path"
    )


def _safe_has(group: h5py.Group, name: str) -> bool:
    try:
        return isinstance(group[name], h5py.Dataset)
    except (KeyError, OSError, RuntimeError, ValueError):
        return False


def _angles_near(f: _File, data_path: str, n_frames: int) -> str | None:
    """Rotation angles next to the data: the NXdata axis of dimension 0, or a
    sibling 1D dataset named like an angle."""
    parent_path = data_path.rsplit("/", 1)[0] or "/"
    parent = f.get(parent_path)
    if not isinstance(parent, h5py.Group):
        return None
    names: list[str] = []
    axes = _attr_list(parent, "axes")
    if axes and axes[0] not in (".", ""):
        names.append(axes[0])
    try:
        children = list(parent.keys())
    except (OSError, RuntimeError):
        children = []
    names += [c for c in children if _ANGLE_NAME.search(c) and c not in names]
    for name in names:
        obj = f.get(f"{parent_path.rstrip('/')}/{name}")
        if (isinstance(obj, h5py.Dataset) and obj.ndim == 1 and obj.shape[0] == n_frames
                and np.issubdtype(obj.dtype, np.number)):
            return f"{parent_path.rstrip('/')}/{name}"
    return None


def _discover(f: _File) -> _Located | None:
    items = list(_walk(f.h5))
    # 2. NXtomo entries
    for path, obj in items:
        if (isinstance(obj, h5py.Group) and _attr_str(obj, "NX_class") in ("NXentry", "NXsubentry")
                and (_definition(obj) or "").lower() == "nxtomo"):
            data_path = next((f"{path}/{c}" for c in _NXTOMO_DATA if _is_image_stack(f.get(f"{path}/{c}"))), None)
            if data_path is None:
                continue
            n = f.h5[data_path].shape[0]
            key_path = next((f"{path}/{c}" for c in _NXTOMO_KEY
                             if isinstance(k := f.get(f"{path}/{c}"), h5py.Dataset) and k.shape == (n,)), None)
            ang_path = next((f"{path}/{c}" for c in _NXTOMO_ANGLES
                             if isinstance(a := f.get(f"{path}/{c}"), h5py.Dataset) and a.ndim == 1), None)
            return _Located(data_path, key_path, ang_path)
    # 3. NXdata signals / NXdetector data, paired with an image_key
    candidates: list[tuple[str, h5py.Dataset]] = []
    dangling: list[str] = []
    for wanted in ("NXdata", "NXdetector"):
        for path, obj in items:
            if not isinstance(obj, h5py.Group) or _attr_str(obj, "NX_class") != wanted:
                continue
            name = _attr_str(obj, "signal") if wanted == "NXdata" else "data"
            if not name or not f.exists(f"{path}/{name}"):
                continue
            d = f.get(f"{path}/{name}")
            if d is None and wanted == "NXdata":
                dangling.append(f"{path}/{name}")
            if _is_image_stack(d) and not any(_same(d, c) for _p, c in candidates):
                candidates.append((f"{path}/{name}", d))
    keys = [(p, o) for p, o in items if isinstance(o, h5py.Dataset) and p.rsplit("/", 1)[-1] == "image_key"
            and np.issubdtype(o.dtype, np.integer)]
    if not candidates:
        stacks: list[tuple[str, h5py.Dataset]] = []
        for p, o in items:
            if _is_image_stack(o) and not any(_same(o, s) for _q, s in stacks):
                stacks.append((p, o))
        if len(stacks) != 1:
            if dangling:
                whys = "; ".join(_describe_missing(f.h5, d, f.lapl)[0] for d in dangling[:3])
                raise NsgenError(f"no readable projection data in {f.name}, whose NXdata signals are "
                                 f"broken links: {whys}; put the linked files in place (same relative paths) "
                                 f"or give the data path with --data-path")
            return None
        candidates = stacks
    paired = [(p, d, _image_key_for(f, d, p, keys)) for p, d in candidates]
    with_key = [c for c in paired if c[2] is not None]
    chosen = with_key if with_key else paired
    if len(chosen) > 1:
        names = ", ".join(f"{p} {tuple(d.shape)}" for p, d, _k in chosen[:_MAX_LISTED])
        raise NsgenError(
            f"{f.name} holds several candidate projection datasets ({names}); choose one with --data-path"
        )
    data_path, data, key_path = chosen[0]
    return _Located(data_path, key_path, _angles_near(f, data_path, data.shape[0]))


def _locate(f: _File, layout: ScanLayout, role: str = "data") -> _Located:
    """Resolve the layout of ``f``: explicit paths, else i12 defaults, else discovery."""
    if layout.data_path is not None:
        data_path = _abs(layout.data_path)
        f.need(data_path, role, "--data-path")
        found = None
    elif f.exists(DEFAULT_DATA_PATH):
        data_path = _abs(DEFAULT_DATA_PATH)
        f.need(data_path, role, "--data-path")  # present but dangling: a clear error
        found = None
    else:
        found = _discover(f)
        if found is None:
            raise NsgenError(
                f"no projection data found in {f.name} (no '{_abs(DEFAULT_DATA_PATH)}', no NXtomo entry, "
                f"no NXdata image stack); {_list_3d(f.h5)}; give one with --data-path"
            )
        data_path = found.data_path
    key_path: str | None
    if layout.image_key_path is not None:
        key_path = _abs(layout.image_key_path)
        f.need(key_path, "image_key", "--image-key-path")
    elif found is not None:
        key_path = found.image_key_path
    elif f.exists(DEFAULT_IMAGE_KEY_PATH):
        key_path = _abs(DEFAULT_IMAGE_KEY_PATH)
        f.need(key_path, "image_key", "--image-key-path")
    else:  # explicit data path in a file without the default image_key: look for one
        keys = [(p, o) for p, o in _walk(f.h5) if isinstance(o, h5py.Dataset)
                and p.rsplit("/", 1)[-1] == "image_key" and np.issubdtype(o.dtype, np.integer)]
        key_path = _image_key_for(f, f.need(data_path, role, "--data-path"), data_path, keys)
    ang_path: str | None
    if layout.angles_path is not None:
        ang_path = _abs(layout.angles_path)
        f.need(ang_path, "angles", "--angles-path")
    elif found is not None:
        ang_path = found.angles_path
    elif isinstance(f.get(DEFAULT_ANGLES_PATH), h5py.Dataset):
        ang_path = _abs(DEFAULT_ANGLES_PATH)
    else:
        ang_path = _angles_near(f, data_path, int(f.need(data_path, role, "--data-path").shape[0]))
    return _Located(data_path, key_path, ang_path)


# ----------------------------------------------------------------------------
# frame sets
# ----------------------------------------------------------------------------


def _runs(indices: np.ndarray) -> list[tuple[int, int, int]]:
    """Contiguous runs of sorted frame indices as ``(start, stop, offset_in_indices)``."""
    if indices.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    starts = np.concatenate(([0], breaks))
    stops = np.concatenate((breaks, [indices.size]))
    return [(int(indices[a]), int(indices[b - 1]) + 1, int(a)) for a, b in zip(starts, stops)]


class _DirectRows:
    """Fast path for unfiltered datasets: read detector rows straight from the file.

    HDF5 spends ~0.2 ms of bookkeeping per chunk on a partial-chunk hyperslab read, which
    caps reading a few rows of every frame at a few hundred MB/s. When a 3D dataset is
    stored without filters, either contiguously or in chunks spanning whole detector rows,
    the bytes of rows ``r0..r1`` of frame ``a`` are one contiguous run in the file per row
    chunk, so they can be read with ``os.preadv`` directly into the destination (the same
    bytes HDF5 would return). Anything else (filters, partial-width chunks, virtual or
    external storage, unallocated chunks) returns None from :meth:`of` and uses h5py.
    """

    def __init__(self, path: str, dtype: np.dtype, shape: tuple[int, ...],
                 frame_chunk: int, row_chunk: int, offsets: dict[tuple[int, int], int]) -> None:
        self.path, self.dtype, self.shape = path, dtype, shape
        self.frame_chunk, self.row_chunk, self.offsets = frame_chunk, row_chunk, offsets
        self._fd: int | None = None
        self._fd_lock = threading.Lock()   # the reader hints from a second thread

    @classmethod
    def of(cls, dset: h5py.Dataset) -> "_DirectRows | None":
        try:
            if dset.ndim != 3 or dset.is_virtual or dset.external:
                return None
            dcpl = dset.id.get_create_plist()
            if dcpl.get_nfilters() != 0:
                return None
            layout = dcpl.get_layout()
            n_frames, n_rows, n_cols = dset.shape
            path = os.path.abspath(dset.file.filename)
            if layout == h5py.h5d.CONTIGUOUS:
                off = dset.id.get_offset()
                if off is None:
                    return None
                return cls(path, dset.dtype, dset.shape, n_frames, n_rows, {(0, 0): off})
            if layout != h5py.h5d.CHUNKED or dset.chunks[2] != n_cols:
                return None
            cf, cr, _ = dset.chunks
            offsets = {}
            for i in range(dset.id.get_num_chunks()):
                info = dset.id.get_chunk_info(i)
                offsets[(info.chunk_offset[0], info.chunk_offset[1])] = info.byte_offset
            need = -(-n_frames // cf) * -(-n_rows // cr)
            if len(offsets) != need:      # unallocated chunks read as fill values: use HDF5
                return None
            return cls(path, dset.dtype, dset.shape, cf, cr, offsets)
        except Exception:  # noqa: BLE001 - any doubt: the ordinary h5py path
            return None

    def _fd_open(self) -> int:
        with self._fd_lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY)
            return self._fd

    def _pieces(self, frames: range, rows: slice) -> Iterator[tuple[int, int, int, int]]:
        """``(k, r, r_end, pos)``: rows ``r..r_end`` of frame ``frames[k]`` start at byte
        ``pos`` of the file, one contiguous run each."""
        n_cols, item = self.shape[2], self.dtype.itemsize
        cf, cr = self.frame_chunk, self.row_chunk
        for k, a in enumerate(frames):
            fa = a % cf
            r = rows.start
            while r < rows.stop:
                r0 = r - r % cr
                r_end = min(rows.stop, r0 + cr)
                base = self.offsets[(a - fa, r0)]
                yield k, r, r_end, base + ((fa * cr + (r - r0)) * n_cols) * item
                r = r_end

    def close(self) -> None:
        """Close the file descriptor (a later read opens it again)."""
        with self._fd_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def advise(self, frames: range, rows: slice, wait: bool = False) -> None:
        """Start reading these rows of these frames into the page cache, asynchronously.

        ``posix_fadvise(WILLNEED)`` on the exact byte runs (adjacent runs merged): the disk
        works on the next chunk while the reader process waits for a free slot or is
        preempted by the workers, and no readahead beyond the rows asked for is wasted.
        With ``wait``, return once the last of those bytes is in memory (a one-byte
        read): the runs arrive about in file order, so the request is then about done.
        """
        if not hasattr(os, "posix_fadvise"):  # pragma: no cover - not Linux
            return
        fd = self._fd_open()
        row_bytes = self.shape[2] * self.dtype.itemsize
        start = end = -1
        for _, r, r_end, pos in self._pieces(frames, rows):
            if pos != end:
                if end > start:
                    os.posix_fadvise(fd, start, end - start, os.POSIX_FADV_WILLNEED)
                start = pos
            end = pos + (r_end - r) * row_bytes
        if end > start:
            os.posix_fadvise(fd, start, end - start, os.POSIX_FADV_WILLNEED)
            if wait:
                os.pread(fd, 1, end - 1)

    def read(self, frames: range, rows: slice, out: np.ndarray, first: int) -> None:
        """Rows ``rows`` of ``frames`` into ``out[first:first + len(frames)]``."""
        fd = self._fd_open()
        for k, r, r_end, pos in self._pieces(frames, rows):
            dest = out[first + k, r - rows.start:r_end - rows.start]
            view = dest.data.cast("B")
            while view:
                n = os.preadv(fd, [view], pos)
                if n <= 0:
                    raise OSError(f"{self.path} ends before frame {frames[k]} row {r}")
                view, pos = view[n:], pos + n


def _read_selection(dataset: h5py.Dataset, label: str, sel: Any, out: np.ndarray,
                    dest: Any) -> None:
    """``dataset[sel]`` into ``out[dest]``; an HDF5 failure becomes one clear line."""
    try:
        dataset.read_direct(out, source_sel=sel, dest_sel=dest)
    except (OSError, RuntimeError) as exc:
        raise NsgenError(
            f"cannot read {label} ({_one_line(exc)}); the file may be truncated or damaged, "
            f"or need a compression filter that hdf5plugin does not provide"
        ) from exc


_DIRECT_LOCK = threading.Lock()


class _Frames:
    """Some frames of one dataset (or an all-zero field)."""

    def __init__(self, dataset: h5py.Dataset | None, indices: np.ndarray, label: str) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        self.label = label
        self.runs = _runs(self.indices)
        self._mean: np.ndarray | None = None

    @property
    def count(self) -> int:
        return int(self.indices.size)

    def _read(self, sel: Any, out: np.ndarray, dest: Any) -> None:
        assert self.dataset is not None
        _read_selection(self.dataset, self.label, sel, out, dest)

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
                    raise NsgenError(f"cannot read {self.label} ({_one_line(exc)}); the file "
                                     f"may be truncated or damaged") from exc
            self._read(np.s_[start:stop, rows, :], out, slice(offset, offset + n))
        return out

    def _direct_rows(self) -> "_DirectRows | None":
        """The dataset's direct-read path, or None (worked out once)."""
        with _DIRECT_LOCK:   # a reader's read and its hint thread may both ask first
            if not hasattr(self, "_direct"):
                self._direct = None if self.dataset is None else _DirectRows.of(self.dataset)
        return self._direct

    def close(self) -> None:
        """Close the direct-read path's file descriptor, if it was opened."""
        direct = getattr(self, "_direct", None)
        if direct is not None:
            direct.close()

    def advise(self, rows: slice, wait: bool = False) -> None:
        """Hint that ``rows`` of every frame will be read soon (direct path only); with
        ``wait``, return once they have about arrived (:meth:`_DirectRows.advise`)."""
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
        n_rows = len(range(rows.start, rows.stop))
        acc = np.zeros((n_rows, n_columns), dtype=np.float64)
        dataset = self.dataset
        assert dataset is not None  # the caller returned zeros when there is none
        if dataset.ndim == 2:
            buf = np.empty((n_rows, n_columns), dtype=dataset.dtype)
            self._read((rows, slice(None)), buf, ...)
            return buf.astype(np.float32)
        frame_bytes = max(1, n_rows * n_columns * dataset.dtype.itemsize)
        block = max(1, _BLOCK_BYTES // frame_bytes)
        for start, stop, _offset in self.runs:
            for a in range(start, stop, block):
                b = min(stop, a + block)
                buf = np.empty((b - a, n_rows, n_columns), dtype=dataset.dtype)
                self._read((slice(a, b), rows, slice(None)), buf, ...)
                acc += buf.sum(axis=0, dtype=np.float64)
        acc /= self.count
        return acc.astype(np.float32)


def _read_key(f: _File, path: str, n_frames: int, data_label: str) -> np.ndarray:
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
    if np.issubdtype(key.dtype, np.floating):
        if not np.all(np.isfinite(key)) or np.any(key != np.round(key)):
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


def _check_frame_shape(frames: _Frames, rows: int, cols: int, spec: str) -> None:
    assert frames.dataset is not None
    shape = frames.dataset.shape[-2:]
    if tuple(shape) != (rows, cols):
        raise NsgenError(
            f"{spec} frames are {shape[0]} x {shape[1]} (rows x columns) but the projections are "
            f"{rows} x {cols}; give flats/darks recorded with the same detector region"
        )


def _frames_from_spec(spec: str | os.PathLike[str], role: str, opened: list[_File]
                      ) -> tuple[_Frames, _Frames | None]:
    """Frames of ``role`` ('flats' or 'darks') from ``file[:dataset]``; for an image_key
    file also the other kind (darks when role is flats), if present."""
    file_name, dset_path = _split_spec(spec)
    option = "--flats" if role == "flats" else "--darks"
    f = _File(file_name, f"{role} file")
    opened.append(f)
    if dset_path is not None:
        d = f.need(dset_path, role, option)
        if d.ndim not in (2, 3) or not np.issubdtype(d.dtype, np.number):
            raise NsgenError(f"{role} dataset '{dset_path}' in {f.name} has shape {d.shape}; "
                             f"it must be (frames, rows, columns); give another with {option} FILE:DATASET")
        _check_readable(d, f"{role} dataset {f.name}:{dset_path}")
        n = 1 if d.ndim == 2 else d.shape[0]
        return _Frames(d, np.arange(n), f"{role} {f.name}:{dset_path}"), None
    try:
        loc = _locate(f, ScanLayout(), role)
    except NsgenError as exc:
        raise NsgenError(f"cannot tell which dataset of {f.name} holds the {role} ({exc}); "
                         f"name it as {option} {file_name}:/path/to/dataset") from exc
    d = f.need(loc.data_path, role, option)
    _check_readable(d, f"{role} dataset {f.name}:{loc.data_path}")
    label = f"{f.name}:{loc.data_path}"
    if loc.image_key_path is None:
        return _Frames(d, np.arange(d.shape[0]), f"{role} {label}"), None
    key = _read_key(f, loc.image_key_path, d.shape[0], label)
    own, other = (FLAT, DARK) if role == "flats" else (DARK, FLAT)
    mine = np.flatnonzero(key == own)
    if mine.size == 0:
        raise NsgenError(f"{role} file {f.name} has no {role} (image_key {loc.image_key_path} has no {own}); "
                         f"name the dataset as {option} {file_name}:/path/to/dataset")
    extra = np.flatnonzero(key == other)
    other_frames = _Frames(d, extra, f"{'darks' if role == 'flats' else 'flats'} {label}") if extra.size else None
    return _Frames(d, mine, f"{role} {label}"), other_frames


# ----------------------------------------------------------------------------
# the scan
# ----------------------------------------------------------------------------


class Scan:
    """An open tomography scan; use :func:`open_scan` to create one.

    Attributes
    ----------
    path : str
        Absolute path of the scan file.
    data_path, image_key_path, angles_path : str or None
        The dataset paths actually used (after defaults and discovery).
    flats_source, darks_source : str
        Where the flats and darks come from (for logs).
    """

    def __init__(self, *, file: _File, located: _Located, data: h5py.Dataset, key: np.ndarray | None,
                 angles: np.ndarray | None, flats: _Frames, darks: _Frames, opened: list[_File]) -> None:
        self._file = file
        self._data = data
        self._opened = opened
        self._key = key
        self._flats = flats
        self._darks = darks
        self._angles = angles
        self.path = file.path
        self.data_path = located.data_path
        self.image_key_path = located.image_key_path
        self.angles_path = located.angles_path
        self.flats_source = flats.label
        self.darks_source = darks.label
        n_frames = data.shape[0]
        proj = np.arange(n_frames) if key is None else np.flatnonzero(key == PROJECTION)
        self._projections = _Frames(data, proj, f"projections {file.name}:{located.data_path}")
        self._projection_indices = proj
        self._projection_indices.setflags(write=False)

    # -- context manager ------------------------------------------------------
    def __enter__(self) -> Scan:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the scan file and any separate flats/darks files."""
        if hasattr(self, "_projections"):   # not set when opening failed
            self._projections.close()
        for f in self._opened:
            f.close()
        self._opened = []

    def __repr__(self) -> str:
        return (f"Scan({self.path!r}, data={self.data_path!r}, shape={self.shape}, dtype={self.dtype}, "
                f"flats={self.n_flats}, darks={self.n_darks})")

    # -- properties -----------------------------------------------------------
    @property
    def n_frames(self) -> int:
        """Number of frames in the data set (projections, flats, darks, invalid)."""
        return int(self._data.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_projections, n_rows, n_columns)`` of the projections only."""
        return (int(self._projection_indices.size), int(self._data.shape[1]), int(self._data.shape[2]))

    @property
    def dtype(self) -> np.dtype:
        """Data type of the projections in the file."""
        return self._data.dtype

    @property
    def angles(self) -> np.ndarray | None:
        """Projection angles in degrees (float64, one per projection), or ``None``."""
        return None if self._angles is None else self._angles.copy()

    @property
    def n_flats(self) -> int:
        """Number of flat-field frames averaged by :meth:`flat_mean`."""
        return self._flats.count

    @property
    def n_darks(self) -> int:
        """Number of dark-field frames averaged by :meth:`dark_mean` (0 for zero darks)."""
        return self._darks.count

    @property
    def projection_indices(self) -> np.ndarray:
        """Frame indices (into the data set) of the projections, ascending (read-only)."""
        return self._projection_indices

    @property
    def image_key(self) -> np.ndarray | None:
        """The scan's image_key per frame, or ``None`` if it has none."""
        return None if self._key is None else self._key.copy()

    # -- reading --------------------------------------------------------------
    def _rows(self, rows: slice) -> slice:
        if not isinstance(rows, slice):
            raise TypeError(f"rows must be a slice, got {type(rows).__name__}")
        start, stop, step = rows.indices(self.shape[1])
        if step != 1:
            raise ValueError(f"rows must be a contiguous slice (step 1), got step {step}")
        return slice(start, max(start, stop))

    def flat_mean(self, rows: slice) -> np.ndarray:
        """Mean flat field over the flat frames for detector ``rows``.

        Parameters
        ----------
        rows : slice
            Contiguous detector rows.

        Returns
        -------
        numpy.ndarray
            ``(n_rows, n_columns)`` float32 (accumulated in float64).
        """
        return self._flats.mean(self._rows(rows), self.shape[2])

    def dark_mean(self, rows: slice) -> np.ndarray:
        """Mean dark field for detector ``rows``: ``(n_rows, n_columns)`` float32.

        All zeros if the scan was opened with ``darks_path="zeros"``.
        """
        return self._darks.mean(self._rows(rows), self.shape[2])

    @property
    def compressed_row_span(self) -> int | None:
        """Detector rows each compressed HDF5 chunk of the projections spans, or None.

        None for unfiltered data. Reading fewer rows than this decompresses whole chunks
        and keeps only some of their rows, so a scan read in row chunks is decompressed
        about ``span / chunk rows`` times.
        """
        try:
            if self._data.chunks is None or self._data.id.get_create_plist().get_nfilters() == 0:
                return None
        except Exception:  # noqa: BLE001 - virtual or unusual storage: no advice
            return None
        return int(min(self._data.chunks[1], self._data.shape[1]))

    @property
    def source_files(self) -> list[str]:
        """Every file the scan's data, flats and darks are read from (external links
        resolved), the scan file first, without repeats."""
        files = [self.path]
        for ds in (self._data, self._flats.dataset, self._darks.dataset):
            if ds is not None:
                name = os.path.abspath(ds.file.filename)
                if name not in files:
                    files.append(name)
        return files

    def advise_projections(self, rows: slice, wait: bool = False) -> None:
        """Hint that the projections of detector ``rows`` will be read next.

        Where the reader reads the file directly (unfiltered data, see
        :meth:`read_projections`), the kernel starts fetching those bytes in the
        background (``posix_fadvise``); elsewhere, and once a read has chosen the h5py
        path, it does nothing. With ``wait``, return only once the bytes have about
        arrived (so that a following request does not compete with this one). Never
        raises for a bad file: the read reports it.
        """
        self._projections.advise(self._rows(rows), wait)

    def read_frames(self, frames: slice, out: np.ndarray) -> np.ndarray:
        """Read whole frames (every row; projections, flats and darks alike) into ``out``.

        Reading whole frames decompresses each compressed chunk once, in file order.

        Parameters
        ----------
        frames : slice
            Contiguous frame indices of the data set (step 1).
        out : numpy.ndarray
            C-contiguous ``(n_frames, n_rows, n_columns)`` array of :attr:`dtype`.
        """
        a, b, _ = frames.indices(self.n_frames)
        _read_selection(self._data, f"frames {a}-{b - 1} of {self.path}", slice(a, b), out, ...)
        return out

    def read_projections(self, rows: slice, out: np.ndarray | None = None) -> np.ndarray:
        """Read the projections for detector ``rows``, in the file's dtype.

        Only those rows are read (HDF5 hyperslabs), one read per contiguous run
        of projection frames: a single read when the projections are one block.
        Flats, darks and invalid frames are never included.

        Parameters
        ----------
        rows : slice
            Contiguous detector rows.
        out : numpy.ndarray, optional
            C-contiguous ``(n_projections, n_rows, n_columns)`` array of
            :attr:`dtype` to read into.

        Returns
        -------
        numpy.ndarray
            ``(n_projections, n_rows, n_columns)``, the raw layout of SCIENCE B 0.2.
        """
        r = self._rows(rows)
        shape = (self.shape[0], r.stop - r.start, self.shape[2])
        if out is None:
            out = np.empty(shape, dtype=self.dtype)
        elif out.shape != shape or out.dtype != self.dtype or not out.flags.c_contiguous:
            raise ValueError(
                f"out must be a C-contiguous {shape} {self.dtype} array, got {out.shape} {out.dtype}"
            )
        if out.size:
            self._projections.read(r, out)
        return out


def _read_angles(f: _File, path: str, key: np.ndarray | None, n_frames: int, n_proj: int,
                 explicit: bool) -> np.ndarray | None:
    dset = f.get(path)
    if not isinstance(dset, h5py.Dataset) or dset.ndim != 1 or not np.issubdtype(dset.dtype, np.number):
        if explicit:
            raise NsgenError(f"angles '{path}' in {f.name} is not a 1D numeric dataset; "
                             f"give the right one with --angles-path")
        return None
    values = np.asarray(dset[()], dtype=np.float64)
    units = (_attr_str(dset, "units") or "").strip().lower()
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


def open_scan(path: str | os.PathLike[str], layout: ScanLayout = ScanLayout(),
              flats_path: str | os.PathLike[str] | None = None,
              darks_path: str | os.PathLike[str] | None = None) -> Scan:
    """Open a NeXus/HDF5 tomography scan for reading.

    Parameters
    ----------
    path : str or os.PathLike
        The scan file (``.nxs``/``.h5``); relative external links inside it are
        followed from its own directory, whatever the working directory.
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
    opened: list[_File] = []
    try:
        f = _File(path, "scan file")
        opened.append(f)
        located = _locate(f, layout)
        data = f.need(located.data_path, "data", "--data-path")
        if not _is_image_stack(data):
            raise NsgenError(
                f"data '{located.data_path}' in {f.name} has shape {data.shape} and type {data.dtype}; it must "
                f"be a numeric (frames, rows, columns) stack; {_list_3d(f.h5)}; choose one with --data-path"
            )
        _check_readable(data, f"data {f.name}:{located.data_path}")
        n_frames, n_rows, n_cols = (int(s) for s in data.shape)
        label = f"{f.name}:{located.data_path}"
        key = None if located.image_key_path is None else _read_key(f, located.image_key_path, n_frames, label)
        n_proj = n_frames if key is None else int(np.count_nonzero(key == PROJECTION))
        if n_proj == 0:
            raise NsgenError(f"{label} holds no projections (image_key has no 0 frames); "
                             f"check --data-path and --image-key-path")
        angles = None
        if located.angles_path is not None:
            angles = _read_angles(f, located.angles_path, key, n_frames, n_proj, layout.angles_path is not None)

        why_none = "no image_key, so every frame is a projection" if key is None else None
        flats: _Frames | None = None
        darks: _Frames | None = None
        flats_file_darks: _Frames | None = None
        if flats_path is not None:
            flats, flats_file_darks = _frames_from_spec(flats_path, "flats", opened)
        elif key is not None and np.any(key == FLAT):
            flats = _Frames(data, np.flatnonzero(key == FLAT), f"flats {label} (image_key 1)")
        if flats is None:
            raise NsgenError(
                f"no flat fields in {f.name} ({why_none or 'image_key has no 1 frames'}); "
                f"give a file holding flats and darks with --flats FILE[:DATASET]"
            )
        if darks_path is not None and os.fspath(darks_path) == ZERO_DARKS:
            darks = _Frames(None, np.empty(0, dtype=np.int64), "zero darks (darks_path='zeros')")
        elif darks_path is not None:
            darks, _ = _frames_from_spec(darks_path, "darks", opened)
        elif flats_file_darks is not None:
            darks = flats_file_darks
        elif key is not None and np.any(key == DARK):
            darks = _Frames(data, np.flatnonzero(key == DARK), f"darks {label} (image_key 2)")
        if darks is None:
            where = f"{f.name} ({why_none or 'image_key has no 2 frames'})"
            if flats_path is not None:
                where += f" or in the flats file {_split_spec(flats_path)[0]}"
            raise NsgenError(
                f"no dark fields in {where}; give them with --darks FILE[:DATASET], "
                f"or --darks {ZERO_DARKS} if the detector has no dark offset"
            )
        for frames in (flats, darks):
            if frames.dataset is not None and frames.dataset is not data:
                _check_frame_shape(frames, n_rows, n_cols, frames.label)
        return Scan(file=f, located=located, data=data, key=key, angles=angles,
                    flats=flats, darks=darks, opened=opened)
    except BaseException:
        for g in opened:
            g.close()
        raise


def shift_files(first: str | os.PathLike[str], n_shifts: int) -> list[str]:
    """File names of the vertical shifts of a scan (seed rule, SCIENCE A.6).

    ``1000.nxs`` -> ``1000.nxs, 1001.nxs, ...``: the numeric file stem is
    incremented by the shift index, keeping its zero padding (``0007.nxs`` ->
    ``0008.nxs``) and its directory.

    Parameters
    ----------
    first : str or os.PathLike
        The file of shift 0.
    n_shifts : int
        Number of shifts (>= 1).

    Returns
    -------
    list of str
        One existing file per shift.

    Raises
    ------
    NsgenError
        ``n_shifts < 1``, a missing file, or a non-numeric stem with
        ``n_shifts > 1``.

    Examples
    --------
    >>> shift_files("0007.nxs", 2)  # doctest: +SKIP
    ['0007.nxs', '0008.nxs']
    """
    if int(n_shifts) != n_shifts or n_shifts < 1:
        raise NsgenError(f"the number of shifts must be a positive integer, got {n_shifts}; set --shifts >= 1")
    p = Path(first)
    text = os.fspath(first)
    if not p.is_file():
        raise NsgenError(f"scan file '{text}' (shift 0) does not exist; check the file name and directory")
    if n_shifts == 1:
        return [text]
    stem, suffix = p.stem, p.suffix
    if not re.fullmatch(r"[0-9]+", stem):
        raise NsgenError(
            f"cannot number {n_shifts} shift files from '{p.name}': its name before '{suffix}' is not a "
            f"number; list the shift files explicitly, one per shift"
        )
    width = len(stem)
    names = [text] + [str(p.with_name(f"{int(stem) + s:0{width}d}{suffix}")) for s in range(1, int(n_shifts))]
    for s, name in enumerate(names):
        if not os.path.isfile(name):
            raise NsgenError(
                f"shift {s} file '{name}' does not exist (shift files are numbered on from '{p.name}'); "
                f"use --shifts {s} or list the shift files explicitly"
            )
    return names
