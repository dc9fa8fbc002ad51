"""Scans stored as TIFF files: which files are projections, flats and darks; the angles.

Input (``--hdf-root``) is a folder or a multi-page TIFF file:

* a folder holding TIFF files: the files are grouped by name with the frame number
  taken off (``proj_0001.tif`` -> ``proj``); a group whose name says ``dark`` holds
  darks, one that says ``flat``, ``white`` or ``bright`` holds flats, and the one
  other group holds the projections (two or more other groups: ambiguous, listed);
* a folder holding sub-folders (and no TIFF files): sub-folders named that way hold the
  darks and flats, the one other sub-folder with TIFF files holds the projections;
* a TIFF file: its pages are the projections; flats and darks are the sibling files or
  folders whose names say so.

``--flats`` and ``--darks`` (a folder or a TIFF file each; ``--darks zeros`` for a
detector without dark offset) override what is found. Angles (degrees) come from
``--angles-path``: a text file of one angle per projection, or ``START:STOP`` for
evenly spaced angles from START to STOP inclusive; without it, from a text file in
the folder whose name says ``angle``, ``theta`` or ``rotation``; else none.

Every frame set is read by one :class:`~nsgen.scan.tiffstack.TiffStack` over darks,
flats and projections in that order, with an ``image_key`` (2, 1, 0) made to match, so
the scan behaves exactly like an HDF5 scan with its flats and darks in the same file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nsgen.errors import NsgenError
from nsgen.scan.frames import Frames
from nsgen.scan.layout import DARK, FLAT, PROJECTION, Located
from nsgen.scan.scan import Scan
from nsgen.scan.tiffstack import TiffStack, is_tiff, natural_key, tiff_files

_KIND = {"darks": re.compile(r"dark|^df", re.IGNORECASE), "flats": re.compile(r"flat|white|bright|^ff", re.IGNORECASE)}
_ANGLES = re.compile(r"angle|theta|rotation", re.IGNORECASE)
_RANGE = re.compile(r"^\s*([-+]?[0-9.]+(?:e[-+]?\d+)?)\s*:\s*([-+]?[0-9.]+(?:e[-+]?\d+)?)\s*$", re.IGNORECASE)


@dataclass
class TiffLayout:
    """The files of each frame set of a TIFF scan, and where they were found (``how``)."""

    projections: list[Path]
    flats: list[Path] | None
    darks: list[Path] | None     # [] = zero darks
    angles: str | None
    how: str


def _group(name: str) -> str:
    """File name without its frame number and extension (``Proj_0001.tif`` -> ``proj``)."""
    stem = name.rsplit(".", 1)[0]
    return re.sub(r"[\s_.-]*\d+$", "", stem).lower() or "(numbers only)"


def _kind(name: str) -> str:
    for kind, pattern in _KIND.items():
        if pattern.search(name):
            return kind
    return "projections"


def _sources(spec: str | os.PathLike[str], role: str, option: str) -> list[Path]:
    """The TIFF files of ``--flats``/``--darks``: a folder's files or one file."""
    p = Path(spec)
    if p.is_dir():
        files = tiff_files(p)
        if not files:
            raise NsgenError(f"{option} folder {p} holds no TIFF files (.tif/.tiff); give the "
                             f"folder of the {role} or their multi-page TIFF file")
        return files
    if not p.exists():
        raise NsgenError(f"{option} {p} does not exist; give the folder or TIFF file of the {role}")
    return [p]


def discover(path: Path) -> TiffLayout:
    """Which files of a TIFF scan are projections, flats and darks (module docstring)."""
    if path.is_file():
        found: dict[str, list[Path]] = {}
        for sib in sorted(path.parent.iterdir(), key=lambda s: natural_key(s.name)):
            kind = _kind(sib.name)
            if sib != path and kind != "projections" and is_tiff(sib):
                found.setdefault(kind, []).extend(tiff_files(sib) if sib.is_dir() else [sib])
        return TiffLayout([path], found.get("flats"), found.get("darks"),
                          _angles_file(path.parent), f"TIFF stack {path.name} (pages = projections); "
                          f"flats/darks: sibling files or folders named flat*/dark*")
    groups: dict[str, list[Path]] = {}
    files = tiff_files(path)
    if files:
        for f in files:
            groups.setdefault(_group(f.name), []).append(f)
        how = "TIFF folder, files grouped by name"
    else:
        for sub in sorted((d for d in path.iterdir() if d.is_dir()), key=lambda d: natural_key(d.name)):
            if tiff_files(sub):
                groups[sub.name] = tiff_files(sub)
        how = "TIFF folder of sub-folders"
    by_kind: dict[str, list[str]] = {"projections": [], "flats": [], "darks": []}
    for name in groups:
        by_kind[_kind(name)].append(name)
    proj = by_kind["projections"]
    if len(proj) != 1:
        listed = ", ".join(f"{n} ({len(groups[n])} files)" for n in groups)
        what = "no group of projections" if not proj else "several candidate projection groups"
        raise NsgenError(f"TIFF folder {path}: {what} among {listed or 'no TIFF files'}; put the "
                         f"projections alone in a folder and give it to --hdf-root (flats and darks "
                         f"with --flats and --darks)")
    def pick(kind: str) -> list[Path] | None:
        return [f for n in by_kind[kind] for f in groups[n]] or None

    return TiffLayout(groups[proj[0]], pick("flats"), pick("darks"), _angles_file(path),
                      f"{how}: projections '{proj[0]}', flats {by_kind['flats'] or 'none'}, "
                      f"darks {by_kind['darks'] or 'none'}")


def _angles_file(folder: Path) -> str | None:
    found = [p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in (".txt", ".csv",
             ".dat") and _ANGLES.search(p.name)]
    return str(found[0]) if len(found) == 1 else None


def read_angles(spec: str, counts: dict[str, int]) -> np.ndarray:
    """Projection angles (degrees) from ``START:STOP`` or a text file of one per projection.

    Examples
    --------
    >>> read_angles("0:180", {"projections": 5, "flats": 2, "darks": 1})
    array([  0.,  45.,  90., 135., 180.])
    """
    n = counts["projections"]
    m = _RANGE.match(spec)
    if m:
        return np.linspace(float(m.group(1)), float(m.group(2)), n)
    try:
        values = np.loadtxt(spec, ndmin=2, delimiter=None if not spec.endswith(".csv") else ",")
    except (OSError, ValueError) as exc:
        raise NsgenError(f"cannot read the angles file {spec} ({' '.join(str(exc).split())}); give a "
                         f"text file of one angle (degrees) per line, or --angles-path START:STOP") from exc
    values = values[:, -1] if values.shape[1] > 1 else values[:, 0]   # "index angle" lines
    if values.size != n:
        sets = ", ".join(f"{v} {k}" for k, v in counts.items())
        raise NsgenError(f"the angles file {spec} has {values.size} values, which matches no frame set "
                         f"of the scan ({sets}); give one angle per projection, or --angles-path "
                         f"START:STOP for evenly spaced angles")
    return values.astype(np.float64)


def _label(files: list[Path], why: str) -> str:
    """``TIFF a/flat_0.tif .. flat_9.tif (10 files, found by name)`` for messages."""
    if len(files) == 1:
        return f"TIFF {files[0]} ({why})"
    return f"TIFF {files[0]} .. {files[-1].name} ({len(files)} files, {why})"


class _Input:
    """The scan's input path as the open 'file' of a :class:`Scan`."""

    def __init__(self, path: Path) -> None:
        self.path = str(path.absolute())
        self.name = path.name

    def close(self) -> None:
        """Nothing is held open."""


def open_tiff_scan(path: str | os.PathLike[str], angles: str | None = None,
                   flats_path: str | os.PathLike[str] | None = None,
                   darks_path: str | os.PathLike[str] | None = None) -> Scan:
    """Open a TIFF scan (a folder or a multi-page TIFF; module docstring).

    Raises
    ------
    NsgenError
        No projections or several candidates, no flats or darks, an empty
        ``--flats``/``--darks`` folder, frames of mixed shapes or types, an angles
        file whose count matches no frame set.
    """
    p = Path(path)
    found = discover(p)
    flats = _sources(flats_path, "flats", "--flats") if flats_path is not None else found.flats
    zero = darks_path is not None and os.fspath(darks_path) == "zeros"
    darks = [] if zero else (_sources(darks_path, "darks", "--darks") if darks_path is not None
                             else found.darks)
    if not flats:
        raise NsgenError(f"no flat fields found for TIFF scan {p} (no file or folder named flat*, white* "
                         f"or bright*); give their folder or TIFF file with --flats")
    if darks is None:
        raise NsgenError(f"no dark fields found for TIFF scan {p} (no file or folder named dark*); give "
                         f"their folder or TIFF file with --darks, or --darks zeros if the detector has "
                         f"no dark offset")
    roles = [("darks", darks), ("flats", flats), ("projections", found.projections)]
    data = TiffStack([f for _role, files in roles for f in files or []], f"frames of {p}")
    role_of = [role for role, files in roles for _f in files or []]       # per file
    kinds = np.array([role_of[page.file] for page in data.pages])
    counts = {role: int(np.count_nonzero(kinds == role)) for role in ("projections", "flats", "darks")}
    key = np.select([kinds == "darks", kinds == "flats"], [DARK, FLAT], PROJECTION).astype(np.int64)
    spec = angles if angles is not None else found.angles
    values = None if spec is None else read_angles(spec, counts)
    located = Located(str(p.absolute()), None, spec, how=found.how)
    flat_frames = Frames(data, np.flatnonzero(key == FLAT),
                         _label(flats, "--flats" if flats_path is not None else "found by name"))
    dark_frames = Frames(None if zero else data, np.flatnonzero(key == DARK),
                         "zero darks (--darks zeros)" if zero else
                         _label(darks or [], "--darks" if darks_path is not None else "found by name"))
    return Scan(file=_Input(p), located=located, data=data, key=key, angles=values,  # type: ignore[arg-type]
                flats=flat_frames, darks=dark_frames, opened=[])
