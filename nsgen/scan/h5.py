"""HDF5 plumbing of the scan reader: opening files, following links, walking groups.

External links
--------------
Relative external links are resolved against the directory of the file holding
the link, whatever the working directory: HDF5 tries ``HDF5_EXT_PREFIX``, then the
link-access ``elink_prefix`` (which :class:`H5File` sets to the master file's
directory), then the directory of the linking file, then the working directory.
(``efile_prefix``/``HDF5_EXTFILE_PREFIX`` concern external *raw storage*, not
links.) A dangling link on a path the scan needs is an error that names the link
target; dangling links elsewhere in the file are never touched.

Compressed datasets: :mod:`hdf5plugin` is imported here, which registers the
Blosc, Blosc2, bitshuffle, LZ4, Zstd, ... filters with HDF5.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (registers the compression filters with HDF5)
import numpy as np

from nsgen.errors import NsgenError

#: at most this many datasets are listed in a message
MAX_LISTED = 8
_MAX_DEPTH = 16


# ----------------------------------------------------------------------------
# small HDF5 helpers (never raise on dangling links unless asked to resolve)
# ----------------------------------------------------------------------------


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def abs_path(path: str) -> str:
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
        raise NsgenError(f"cannot read {what} '{p}' ({one_line(exc)}); check its permissions") from exc
    if not is_h5:
        raise NsgenError(f"{what} '{p}' is not an HDF5/NeXus file or a TIFF; give the scan's "
                         f".nxs/.h5 file, a TIFF folder or a TIFF file")
    try:
        return h5py.File(os.path.abspath(p), "r", locking=False)
    except OSError as exc:
        raise NsgenError(
            f"cannot open {what} '{p}' ({one_line(exc)}); check that it is complete and readable"
        ) from exc


def _lapl(directory: str) -> h5py.h5p.PropLAID:
    lapl = h5py.h5p.create(h5py.h5p.LINK_ACCESS)
    lapl.set_elink_prefix(os.path.join(directory, "").encode())
    return lapl


def _open_object(f: h5py.File, path: str, lapl: h5py.h5p.PropLAID) -> h5py.Group | h5py.Dataset:
    """Open ``path`` with our link-access list; KeyError if absent or dangling."""
    oid = h5py.h5o.open(f.id, abs_path(path).encode(), lapl=lapl)
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


def attr_str(obj: h5py.HLObject, name: str) -> str | None:
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


def attr_list(obj: h5py.HLObject, name: str) -> list[str]:
    try:
        value = obj.attrs.get(name)
    except (OSError, RuntimeError, TypeError):
        return []
    if value is None:
        return []
    items = np.atleast_1d(np.asarray(value, dtype=object)).ravel().tolist()
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in items]


def definition(group: h5py.Group) -> str | None:
    text = attr_str(group, "definition")
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


def same_object(a: h5py.HLObject, b: h5py.HLObject) -> bool:
    try:
        return a.id == b.id
    except (TypeError, ValueError):
        return False


def walk(group: h5py.Group, prefix: str = "", depth: int = 0,
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
            if any(same_object(obj, s) for s in seen):
                continue
            seen.append(obj)
            yield from walk(obj, path, depth + 1, seen)


def is_image_stack(obj: object) -> bool:
    return (isinstance(obj, h5py.Dataset) and obj.ndim == 3
            and (np.issubdtype(obj.dtype, np.number) or obj.dtype == np.bool_))


def list_3d(f: h5py.File) -> str:
    stacks: list[tuple[str, h5py.Dataset]] = []
    for p, o in walk(f):
        if is_image_stack(o) and not any(same_object(o, s) for _q, s in stacks):
            stacks.append((p, o))
    found = [f"{p} {tuple(o.shape)}" for p, o in stacks]
    if not found:
        return "the file holds no 3D dataset"
    more = f" and {len(found) - MAX_LISTED} more" if len(found) > MAX_LISTED else ""
    return "3D datasets in the file: " + ", ".join(found[:MAX_LISTED]) + more


def describe_missing(f: h5py.File, path: str, lapl: h5py.h5p.PropLAID) -> tuple[str, str | None]:
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
                    return ((f"'{here}' is an external link to '{target}:{link.path}' and that file is "
                             f"missing (looked for {candidate})"), f"copy the linked file to {candidate}")
                return ((f"'{here}' is an external link to '{target}:{link.path}' and that object does "
                         f"not exist in {candidate}"), f"replace {candidate} by the complete file")
            if isinstance(link, h5py.SoftLink):
                return f"'{here}' is a soft link to '{link.path}', which does not exist", None
            return f"'{here}' cannot be opened", None
        current = here
    return f"'{abs_path(path)}' cannot be opened", None


def check_readable(dset: h5py.Dataset, label: str) -> None:
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


def split_spec(spec: str | os.PathLike[str]) -> tuple[str, str | None]:
    """``'file.h5:/a/b'`` -> ``('file.h5', '/a/b')``; ``'file.h5'`` -> ``('file.h5', None)``."""
    text = os.fspath(spec)
    if os.path.exists(text):
        return text, None
    head, sep, tail = text.rpartition(":")
    if sep and head and tail.startswith("/"):
        return head, tail
    return text, None


class H5File:
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
        listing = f"; {list_3d(self.h5)}" if role in ("data", "flats", "darks") else ""
        if isinstance(obj, h5py.Group):
            raise NsgenError(f"{role} path '{abs_path(path)}' in {self.name} is a group, not a dataset{listing}; "
                             f"give a dataset path with {option}")
        why, fix = describe_missing(self.h5, path, self.lapl)
        fix = f"{fix} or give another path with {option}" if fix else f"give the right path with {option}"
        raise NsgenError(f"{role} path '{abs_path(path)}' not found in {self.name}: {why}{listing}; {fix}")

    def close(self) -> None:
        with contextlib.suppress(Exception):   # closing must never mask the real error
            self.h5.close()

