"""Where a scan's datasets sit in its HDF5 file: explicit paths, defaults, discovery.

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
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import h5py
import numpy as np

from nsgen.errors import NsgenError
from nsgen.scan.h5 import (
    MAX_LISTED,
    H5File,
    abs_path,
    attr_list,
    attr_str,
    definition,
    describe_missing,
    is_image_stack,
    list_3d,
    same_object,
    walk,
)

DEFAULT_DATA_PATH = "entry1/tomo_entry/data/data"
DEFAULT_IMAGE_KEY_PATH = "entry1/tomo_entry/instrument/detector/image_key"
DEFAULT_ANGLES_PATH = "entry1/tomo_entry/data/rotation_angle"

#: ``image_key`` values: projection, flat, dark, invalid (ignored)
PROJECTION, FLAT, DARK, INVALID = 0, 1, 2, 3

_NXTOMO_DATA = ("data/data", "instrument/detector/data")
_NXTOMO_KEY = ("instrument/detector/image_key", "data/image_key")
_NXTOMO_ANGLES = ("sample/rotation_angle", "data/rotation_angle")
_ANGLE_NAME = re.compile(r"rotation_angle|theta|angle", re.IGNORECASE)


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
# locating the datasets of a file
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Located:
    """The datasets of a scan file, and which rule found them (``how``, for ``inspect``)."""

    data_path: str
    image_key_path: str | None
    angles_path: str | None
    #: flats and darks datasets of the same file, every frame of them (Data Exchange)
    flats_path: str | None = None
    darks_path: str | None = None
    how: str = "explicit --data-path"



def _image_key_for(f: H5File, data: h5py.Dataset, data_path: str,
                   keys: list[tuple[str, h5py.Dataset]]) -> str | None:
    n = data.shape[0]
    fits = [(p, k) for p, k in keys if k.ndim == 1 and k.shape[0] == n]
    if not fits:
        return None
    sibling = []
    for p, _k in fits:
        parent = f.get(p.rsplit("/", 1)[0] or "/")
        other = parent.get("data") if isinstance(parent, h5py.Group) and _safe_has(parent, "data") else None
        if other is not None and same_object(other, data):
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


def _angles_near(f: H5File, data_path: str, n_frames: int) -> str | None:
    """Rotation angles next to the data: the NXdata axis of dimension 0, or a
    sibling 1D dataset named like an angle."""
    parent_path = data_path.rsplit("/", 1)[0] or "/"
    parent = f.get(parent_path)
    if not isinstance(parent, h5py.Group):
        return None
    names: list[str] = []
    axes = attr_list(parent, "axes")
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


def _field(f: H5File, path: str, ndims: tuple[int, ...]) -> str | None:
    """``path`` if it is a numeric dataset of one of ``ndims`` dimensions."""
    d = f.get(path)
    ok = isinstance(d, h5py.Dataset) and d.ndim in ndims and np.issubdtype(d.dtype, np.number)
    return path if ok else None


def _data_exchange(f: H5File) -> Located | None:
    """APS Data Exchange: ``/exchange/data`` (projections), ``data_white`` (flats),
    ``data_dark`` (darks), ``theta`` (angles, degrees)."""
    if not is_image_stack(f.get("/exchange/data")):
        return None
    return Located("/exchange/data", None, _field(f, "/exchange/theta", (1,)),
                   _field(f, "/exchange/data_white", (2, 3)), _field(f, "/exchange/data_dark", (2, 3)),
                   "APS Data Exchange (/exchange/data, data_white, data_dark, theta)")


def _discover(f: H5File) -> Located | None:
    found = _data_exchange(f)
    if found is not None:
        return found
    items = list(walk(f.h5))
    # 2. NXtomo entries
    for path, obj in items:
        if (isinstance(obj, h5py.Group) and attr_str(obj, "NX_class") in ("NXentry", "NXsubentry")
                and (definition(obj) or "").lower() == "nxtomo"):
            data_path = next((f"{path}/{c}" for c in _NXTOMO_DATA if is_image_stack(f.get(f"{path}/{c}"))), None)
            if data_path is None:
                continue
            n = int(f.need(data_path, "data", "--data-path").shape[0])
            key_path = next((f"{path}/{c}" for c in _NXTOMO_KEY
                             if isinstance(k := f.get(f"{path}/{c}"), h5py.Dataset) and k.shape == (n,)), None)
            ang_path = next((f"{path}/{c}" for c in _NXTOMO_ANGLES
                             if isinstance(a := f.get(f"{path}/{c}"), h5py.Dataset) and a.ndim == 1), None)
            return Located(data_path, key_path, ang_path,
                           how=f"NXtomo entry {path} (definition NXtomo)")
    # 3. NXdata signals / NXdetector data, paired with an image_key
    candidates: list[tuple[str, h5py.Dataset]] = []
    dangling: list[str] = []
    for wanted in ("NXdata", "NXdetector"):
        for path, obj in items:
            if not isinstance(obj, h5py.Group) or attr_str(obj, "NX_class") != wanted:
                continue
            name = attr_str(obj, "signal") if wanted == "NXdata" else "data"
            if not name or not f.exists(f"{path}/{name}"):
                continue
            d = f.get(f"{path}/{name}")
            if d is None and wanted == "NXdata":
                dangling.append(f"{path}/{name}")
            if is_image_stack(d) and not any(same_object(d, c) for _p, c in candidates):
                candidates.append((f"{path}/{name}", d))
    keys = [(p, o) for p, o in items if isinstance(o, h5py.Dataset) and p.rsplit("/", 1)[-1] == "image_key"
            and np.issubdtype(o.dtype, np.integer)]
    only_stack = False
    if not candidates:
        stacks: list[tuple[str, h5py.Dataset]] = []
        for p, o in items:
            if is_image_stack(o) and not any(same_object(o, s) for _q, s in stacks):
                stacks.append((p, o))
        if len(stacks) > 1 and not dangling:
            names = ", ".join(f"{p} {tuple(d.shape)}" for p, d in stacks[:MAX_LISTED])
            raise NsgenError(f"{f.name} is ambiguous: it holds {len(stacks)} candidate 3D datasets "
                             f"({names}) and no NXtomo entry or image_key tells which holds the "
                             f"projections; choose one with --data-path")
        if len(stacks) != 1:
            if dangling:
                whys = "; ".join(describe_missing(f.h5, d, f.lapl)[0] for d in dangling[:3])
                raise NsgenError(f"no readable projection data in {f.name}, whose NXdata signals are "
                                 f"broken links: {whys}; put the linked files in place (same relative paths) "
                                 f"or give the data path with --data-path")
            return None
        candidates, only_stack = stacks, True
    paired = [(p, d, _image_key_for(f, d, p, keys)) for p, d in candidates]
    with_key = [c for c in paired if c[2] is not None]
    chosen = with_key if with_key else paired
    if len(chosen) > 1:
        names = ", ".join(f"{p} {tuple(d.shape)}" for p, d, _k in chosen[:MAX_LISTED])
        raise NsgenError(
            f"{f.name} holds several candidate projection datasets ({names}); choose one with --data-path"
        )
    data_path, data, key_path = chosen[0]
    how = "the only 3D dataset of the file" if only_stack else "the NXdata/NXdetector image stack"
    return Located(data_path, key_path, _angles_near(f, data_path, data.shape[0]),
                   how=how + (" with the image_key of matching length" if key_path else ""))


def locate(f: H5File, layout: ScanLayout, role: str = "data") -> Located:
    """Resolve the layout of ``f``: explicit paths, else i12 defaults, else discovery."""
    how = "explicit --data-path"
    if layout.data_path is not None:
        data_path = abs_path(layout.data_path)
        f.need(data_path, role, "--data-path")
        found = None
    elif f.exists(DEFAULT_DATA_PATH):
        data_path = abs_path(DEFAULT_DATA_PATH)
        f.need(data_path, role, "--data-path")  # present but dangling: a clear error
        found = None
        how = "Diamond i12/i13 default paths (entry1/tomo_entry)"
    else:
        found = _discover(f)
        if found is None:
            raise NsgenError(
                f"no projection data found in {f.name} (no '{abs_path(DEFAULT_DATA_PATH)}', no NXtomo entry, "
                f"no /exchange/data, no NXdata image stack); {list_3d(f.h5)}; give one with --data-path"
            )
        data_path, how = found.data_path, found.how
    key_path: str | None
    if layout.image_key_path is not None:
        key_path = abs_path(layout.image_key_path)
        f.need(abs_path(layout.image_key_path), "image_key", "--image-key-path")
    elif found is not None:
        key_path = found.image_key_path
    elif f.exists(DEFAULT_IMAGE_KEY_PATH):
        key_path = abs_path(DEFAULT_IMAGE_KEY_PATH)
        f.need(abs_path(DEFAULT_IMAGE_KEY_PATH), "image_key", "--image-key-path")
    else:  # explicit data path in a file without the default image_key: look for one
        keys = [(p, o) for p, o in walk(f.h5) if isinstance(o, h5py.Dataset)
                and p.rsplit("/", 1)[-1] == "image_key" and np.issubdtype(o.dtype, np.integer)]
        key_path = _image_key_for(f, f.need(data_path, role, "--data-path"), data_path, keys)
    ang_path: str | None
    if layout.angles_path is not None:
        ang_path = abs_path(layout.angles_path)
        f.need(abs_path(layout.angles_path), "angles", "--angles-path")
    elif found is not None:
        ang_path = found.angles_path
    elif isinstance(f.get(DEFAULT_ANGLES_PATH), h5py.Dataset):
        ang_path = abs_path(DEFAULT_ANGLES_PATH)
    else:
        ang_path = _angles_near(f, data_path, int(f.need(data_path, role, "--data-path").shape[0]))
    if found is not None and layout.image_key_path is None:
        return Located(data_path, key_path, ang_path, found.flats_path, found.darks_path, how)
    return Located(data_path, key_path, ang_path, how=how)

