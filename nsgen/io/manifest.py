"""Per-sample manifests: what a finished sample contains, written atomically.

Every finished sample ``N`` has ``root/NNNN/manifest.json`` (also in dynamic mode, whose
TIFFs lie directly under ``root``). Its existence means "sample finished": it is written
last, by one process, through a temporary name and a rename, so concurrent SLURM tasks
never share a file and a reader never sees half a manifest.

Schema (``manifest_version`` 1)
-------------------------------
Top level, required (:data:`REQUIRED_KEYS`):

``manifest_version`` int, ``nsgen_version`` str, ``mode`` str, ``sample`` int,
``seed`` int, ``config`` dict (every resolved option, by long option name),
``files`` list of file entries.

Top level, optional: ``output_revision`` int (``nsgen.rerun.OUTPUT_REVISION``: absent
means 1), ``geometry``, ``objects`` (synthetic phantom object list),
``scale`` (text), ``projection_max``, ``detector`` (complex), ``sources`` (real data: list
of :func:`source_record` dicts), ``preview`` (path of the sample's contact sheet).

File entry, required (:data:`REQUIRED_FILE_KEYS`): ``path`` (POSIX, relative to the
dataset root), ``role`` (:data:`ROLES`), ``index`` (sinogram index), ``shape`` (list of
ints), ``bounds`` ``[lo, hi]``: the stored uint16 value ``u`` stands for
``lo + u * (hi - lo) / 65535`` in the units of the data before scaling (projection
values in simple mode, ``-log`` units otherwise).

File entry, optional: ``target`` (path of the clean file an input is paired with; an
entry with a target is a training input), ``shift``, ``offset`` (rows), ``frame``,
``patch``, ``artefact`` (``"fake"`` or ``"real"``), ``mask`` (path of a mask TIFF of the
same shape, nonzero = stripe).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from nsgen.errors import NsgenError

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
REQUIRED_KEYS: tuple[str, ...] = ("manifest_version", "nsgen_version", "mode", "sample",
                                  "seed", "config", "files")
REQUIRED_FILE_KEYS: tuple[str, ...] = ("path", "role", "index", "shape", "bounds")
#: roles of output files: targets (clean), inputs (stripe, raw, frame), masks
ROLES: frozenset[str] = frozenset({"clean", "stripe", "raw", "frame", "mask"})
#: files up to this size get a SHA-256 in :func:`source_record` ("checksum where cheap")
CHECKSUM_LIMIT = 256 * 2**20
SAMPLE_GLOB = "[0-9][0-9][0-9][0-9]"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via a temporary name and rename (never half-written).

    Parameters
    ----------
    path : Path
        Destination; its directory must exist.
    data : object
        Anything :func:`json.dump` accepts.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.nsgen-tmp{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def manifest_problems(data: Any) -> list[str]:
    """Schema problems of a manifest (empty list when it is well formed).

    Checks the required keys and types, every file entry's required keys, relative
    paths without ``..``, unique paths, finite ``lo <= hi`` bounds and that every
    ``target`` is a file of the same manifest.

    Parameters
    ----------
    data : object
        A parsed manifest.

    Returns
    -------
    list of str
        One short sentence per problem.

    Examples
    --------
    >>> manifest_problems({"files": []})[0]
    'missing key manifest_version'
    """
    if not isinstance(data, dict):
        return ["not a JSON object"]
    out = [f"missing key {k}" for k in REQUIRED_KEYS if k not in data]
    for key, typ in (("sample", int), ("seed", int), ("mode", str), ("config", dict),
                     ("files", list)):
        if key in data and not isinstance(data[key], typ):
            out.append(f"{key} is not a {typ.__name__}")
    files = data.get("files")
    if not isinstance(files, list):
        return out
    paths: set[str] = set()
    for i, f in enumerate(files):
        if not isinstance(f, dict):
            out.append(f"files[{i}] is not an object")
            continue
        where = f"files[{i}] ({f.get('path', '?')})"
        missing = [k for k in REQUIRED_FILE_KEYS if k not in f]
        if missing:
            out.append(f"{where} lacks {', '.join(missing)}")
            continue
        p = f["path"]
        if not isinstance(p, str) or not p or p.startswith("/") or ".." in p.split("/"):
            out.append(f"{where}: path must be relative to the dataset root")
        elif p in paths:
            out.append(f"{where}: listed twice")
        paths.add(p)
        if f["role"] not in ROLES:
            out.append(f"{where}: unknown role {f['role']!r}")
        shape = f["shape"]
        if not (isinstance(shape, list) and shape
                and all(isinstance(n, int) and n > 0 for n in shape)):
            out.append(f"{where}: shape must be a list of positive integers")
        b = f["bounds"]
        if not (isinstance(b, list) and len(b) == 2
                and all(isinstance(x, (int, float)) and math.isfinite(x) for x in b)
                and b[0] <= b[1]):
            out.append(f"{where}: bounds must be finite [lo, hi] with lo <= hi")
    for f in files:
        if isinstance(f, dict) and "target" in f and f["target"] not in paths:
            out.append(f"{f.get('path')}: target {f['target']} is not a file of this manifest")
    return out


def write_manifest(path: Path, data: dict[str, Any]) -> None:
    """Validate and atomically write a sample manifest.

    ``manifest_version`` is filled in when absent (and placed first).

    Raises
    ------
    ValueError
        When the manifest does not follow the schema (a programming error of a mode).
    """
    data = {"manifest_version": MANIFEST_VERSION, **data}
    problems = manifest_problems(data)
    if problems:
        raise ValueError(f"malformed manifest for {path}: {'; '.join(problems[:5])}")
    write_json_atomic(path, data)


def read_manifest(path: Path) -> dict[str, Any]:
    """Read one manifest.

    Raises
    ------
    NsgenError
        When the file cannot be read or is not valid JSON.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NsgenError(f"cannot read manifest {path} ({exc}); regenerate the sample "
                         f"(delete its directory and rerun nsgen)") from None
    if not isinstance(data, dict):
        raise NsgenError(f"manifest {path} is not a JSON object; regenerate the sample")
    return data


def manifest_paths(root: Path) -> list[Path]:
    """``root/NNNN/manifest.json`` of every finished sample, in sample order."""
    return sorted(Path(root).glob(f"{SAMPLE_GLOB}/{MANIFEST}"))


def load_manifests(root: Path) -> list[dict[str, Any]]:
    """Every sample manifest of a dataset, sorted by sample number.

    Parameters
    ----------
    root : Path
        The dataset root (``--root`` of the run).

    Returns
    -------
    list of dict
        Parsed manifests (possibly empty).

    Raises
    ------
    NsgenError
        When ``root`` is not a directory or a manifest is unreadable or malformed.
    """
    root = Path(root)
    if not root.is_dir():
        raise NsgenError(f"dataset root {root} is not a directory; give the --root of a run")
    out = []
    for p in manifest_paths(root):
        data = read_manifest(p)
        problems = manifest_problems(data)
        if problems:
            raise NsgenError(f"manifest {p} is malformed ({problems[0]}); run 'nsgen check "
                             f"{root}' and regenerate the sample")
        out.append(data)
    return sorted(out, key=lambda m: m["sample"])


def sha256_file(path: Path, block: int = 8 * 2**20) -> str:
    """Hex SHA-256 of a file, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def source_record(path: Path, checksum_limit: int = CHECKSUM_LIMIT) -> dict[str, Any]:
    """Provenance of one input file of a real-data sample.

    Parameters
    ----------
    path : Path
        A source file (NeXus scan, flats file, mask archive).
    checksum_limit : int
        Files up to this many bytes also get a SHA-256 (default 256 MiB); larger ones
        are identified by size and modification time only.

    Returns
    -------
    dict
        ``{"path": absolute path, "size": bytes, "mtime": ISO-8601 UTC,
        "mtime_ns": int[, "sha256": hex]}``.
    """
    p = Path(path).resolve()
    st = p.stat()
    ns = st.st_mtime_ns
    mtime = (_dt.datetime.fromtimestamp(ns // 10**9, tz=_dt.timezone.utc)
             + _dt.timedelta(microseconds=(ns % 10**9) // 1000))
    rec: dict[str, Any] = {"path": str(p), "size": st.st_size,
                           "mtime": mtime.isoformat(timespec="microseconds").replace("+00:00",
                                                                                     "Z"),
                           "mtime_ns": st.st_mtime_ns}
    if st.st_size <= checksum_limit:
        rec["sha256"] = sha256_file(p)
    return rec
