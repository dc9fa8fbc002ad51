"""``nsgen check ROOT``: verify a dataset against its manifests.

For every finished sample (``root/NNNN/manifest.json``) the check verifies, in parallel:

* the manifest follows the schema of :mod:`nsgen.io.manifest` and names its own sample;
* every listed file is present, a readable TIFF whose first page has the listed shape
  and dtype uint16, and is not truncated (file size >= end of the image data named by
  the strip/tile offsets and byte counts of page 0; pixels are never decoded);
* every pair is complete: each ``target`` is listed and its file is sound;
* no strays: no temporary files of interrupted writes, no ``.work``/``.nsgen`` scratch
  directories in finished samples, no ``.tif`` file that no manifest lists, no sample
  directory or output container (``NNNN.h5``, ``NNNN.zarr``) without a manifest
  (unfinished, or the manifest was deleted), no file listed by two manifests;
* the ``preview`` PNG the manifest names exists;
* the input files of a real-data sample (its ``sources``) are unchanged since
  (:func:`nsgen.rerun.changed_inputs`);
* with ``--deep`` only: every TIFF's pixels are decoded and their CRC-32 compared with the
  one the manifest recorded while writing (:func:`nsgen.io.tiff.pixel_crc32`), which
  catches pixel data corrupted in place (sizes and headers intact). A plain check never
  reads pixels, so it stays fast.

It prints a table per sample (files listed / present / bad) and every problem, and
returns 0 when the dataset is sound, 1 otherwise. A ROOT that is not a directory or has
no finished sample is a usage error (``NsgenError``, exit status 2).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence, TextIO

from nsgen.errors import NsgenError
from nsgen.io.manifest import (MANIFEST, SAMPLE_GLOB, manifest_paths, manifest_problems,
                               read_manifest)
from nsgen.io.formats import inspect_item, read_item
from nsgen.io.layout import CONTAINER_SUFFIXES, split_item
from nsgen.io.tiff import is_temporary, pixel_crc32

#: scratch directories a finished sample must not contain (see nsgen.runner)
SCRATCH_DIRS = (".work", ".nsgen")
TIFF_SUFFIXES = (".tif", ".tiff")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: a sample's output container (``--format hdf5|zarr``) directly under the root
_CONTAINER = re.compile(r"^(\d{4})(" + "|".join(re.escape(s) for s in CONTAINER_SUFFIXES.values()) + ")$")
#: files per task handed to a thread
BATCH = 256
#: the per-sample table lists every sample up to this many, else only the bad ones
TABLE_ROWS = 40


@dataclass
class SampleSummary:
    """One row of the table: a sample's file counts."""

    sample: int
    mode: str
    listed: int = 0
    present: int = 0
    bad: int = 0
    problems: int = 0


@dataclass
class CheckReport:
    """Everything :func:`check_dataset` found."""

    root: Path
    samples: list[SampleSummary] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, what)
    files: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems


_TYPES = {1: "B", 3: "H", 4: "I", 16: "Q"}   # TIFF field type -> struct code
_DTYPES = {(1, 8): "uint8", (1, 16): "uint16", (1, 32): "uint32", (2, 8): "int8",
           (2, 16): "int16", (2, 32): "int32", (3, 16): "float16", (3, 32): "float32",
           (3, 64): "float64"}
_WANTED = {256, 257, 258, 259, 273, 277, 279, 322, 323, 324, 325, 339}


def tiff_header(path: Path) -> tuple[tuple[int, int], str, int] | None:
    """Shape, dtype and end of the image data of page 0, from the first IFD only.

    A small struct-based reader (classic and BigTIFF, either byte order) for the plain
    single-sample, stripped images nsgen writes: about ten times faster than opening
    the file with :class:`tifffile.TiffFile`, which checks anything else.

    Returns
    -------
    ((height, width), dtype, end) or None
        ``end`` is the largest ``offset + bytecount`` of the strips. None when the file
        is anything unusual (tiles, several samples per pixel, unknown field types,
        short reads): the caller then asks tifffile.
    """
    import struct
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            order = {b"II": "<", b"MM": ">"}.get(head[:2])
            if order is None or len(head) < 16:
                return None
            (version,) = struct.unpack(order + "H", head[2:4])
            if version == 42:
                big, (ifd,) = False, struct.unpack(order + "I", head[4:8])
            elif version == 43:
                big, (ifd,) = True, struct.unpack(order + "Q", head[8:16])
            else:
                return None
            f.seek(ifd)
            # count size, entry size, bytes of an inline value (= offset size)
            nsize, esize, inline = (8, 20, 8) if big else (2, 12, 4)
            raw = f.read(nsize)
            (n,) = struct.unpack(order + ("Q" if big else "H"), raw)
            table = f.read(n * esize)
            if len(table) < n * esize:
                return None
            tags: dict[int, tuple[int, ...]] = {}
            cfmt = order + ("HHQ" if big else "HHI")
            for k in range(n):
                e = table[k * esize:(k + 1) * esize]
                code, typ, count = struct.unpack(cfmt, e[:esize - inline])
                if code not in _WANTED:
                    continue
                c = _TYPES.get(typ)
                if c is None:
                    return None
                size = struct.calcsize(c) * count
                if size <= inline:
                    data = e[esize - inline:esize - inline + size]
                else:
                    (off,) = struct.unpack(order + ("Q" if big else "I"), e[esize - inline:])
                    f.seek(off)
                    data = f.read(size)
                    if len(data) < size:
                        return None
                tags[code] = struct.unpack(f"{order}{count}{c}", data)
    except (OSError, struct.error):
        return None
    if any(t in tags for t in (322, 323, 324, 325)) or tags.get(277, (1,))[0] != 1:
        return None
    try:
        shape = (tags[257][0], tags[256][0])
        dtype = _DTYPES.get((tags.get(339, (1,))[0], tags.get(258, (1,))[0]))
        offsets, counts = tags[273], tags[279]
    except KeyError:
        return None
    if dtype is None or len(offsets) != len(counts):
        return None
    return shape, dtype, max((o + c for o, c in zip(offsets, counts)), default=0)


def inspect_tiff(path: Path, shape: Sequence[int], dtype: str = "uint16") -> tuple[bool, str]:
    """Check one TIFF without decoding its pixels.

    Parameters
    ----------
    path : Path
        The file.
    shape : sequence of int
        Expected shape of page 0.
    dtype : str
        Expected dtype of page 0.

    Returns
    -------
    (present, problem) : (bool, str)
        ``problem`` is ``""`` when the file is sound.
    """
    import tifffile
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return False, "missing"
    except OSError as exc:
        return False, f"cannot stat ({exc.strerror})"
    fast = tiff_header(path)
    got_shape: tuple[int, ...]
    if fast is not None:
        got_shape, got_dtype, end = fast
    else:
        try:
            with tifffile.TiffFile(path) as tf:
                page = tf.pages[0]
                got_shape = tuple(page.shape)
                got_dtype = str(page.dtype)
                end = max((o + n for o, n in zip(page.dataoffsets, page.databytecounts)),
                          default=0)
        except Exception as exc:  # tifffile raises many types for broken files
            return True, f"unreadable TIFF ({type(exc).__name__}: {str(exc)[:80]})"
    if end > size:
        return True, f"truncated: {size} bytes, image data ends at byte {end}"
    if got_dtype != dtype:
        return True, f"dtype {got_dtype}, expected {dtype}"
    if got_shape != tuple(shape):
        return True, f"shape {list(got_shape)}, manifest says {list(shape)}"
    return True, ""


def inspect_png(path: Path) -> tuple[bool, str]:
    """Presence and PNG signature of a preview image."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(PNG_SIGNATURE))
    except FileNotFoundError:
        return False, "missing"
    except OSError as exc:
        return False, f"cannot read ({exc.strerror})"
    return True, "" if head == PNG_SIGNATURE else "not a PNG file"


@contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """Silence tifffile's log warnings about broken files (they become problems)."""
    log = logging.getLogger("tifffile")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def verify_pixels(root: Path, path: str, crc32: Any) -> str:
    """Decode the pixels of the manifest path ``path`` (a TIFF, or an image inside an
    HDF5/Zarr container) and compare their CRC-32 with the manifest's ``crc32``; return the
    problem, or ``""`` when they match."""
    if not isinstance(crc32, str):
        return "no pixel checksum (crc32) in the manifest: --deep cannot verify it"
    try:
        got = pixel_crc32(read_item(root, path))
    except Exception as exc:  # tifffile raises many types for broken files
        return f"pixels unreadable ({type(exc).__name__}: {str(exc)[:80]})"
    if got != crc32:
        return (f"pixel data corrupted: CRC-32 {got}, the manifest recorded {crc32} when it "
                f"was written; regenerate the sample")
    return ""


def _inspect_batch(root: str, batch: list[dict[str, Any]],
                   deep: bool = False) -> list[tuple[bool, str]]:
    out = []
    for entry in batch:
        path = Path(root) / entry["path"]
        if entry.get("role") == "preview":
            out.append(inspect_png(path))
            continue
        if split_item(entry["path"]) is not None:   # an image inside an HDF5/Zarr container
            present, what = inspect_item(Path(root), entry["path"], entry["shape"])
        else:
            present, what = inspect_tiff(path, entry["shape"])
        if deep and present and not what:
            what = verify_pixels(Path(root), entry["path"], entry.get("crc32"))
        out.append((present, what))
    return out


def default_workers() -> int:
    """Threads for header reads: I/O-bound on cluster file systems, so more than cores."""
    return min(32, 4 * (os.cpu_count() or 1))


def _strays(root: str, sample_dir: str, listed: set[str]) -> list[tuple[str, str]]:
    """Temporaries, scratch directories and unlisted TIFFs below a finished sample."""
    out = []
    skip = len(root) + 1
    for dirpath, dirnames, filenames in os.walk(sample_dir):
        reldir = dirpath[skip:].replace(os.sep, "/")
        for d in sorted(dirnames):
            if d in SCRATCH_DIRS:
                out.append((f"{reldir}/{d}/", "leftover scratch directory of an interrupted run"))
        dirnames[:] = [d for d in dirnames if d not in SCRATCH_DIRS]
        for name in filenames:
            rel = f"{reldir}/{name}"
            if name.startswith(".") and is_temporary(Path(name)):
                out.append((rel, "leftover temporary file of an interrupted write"))
            elif name.lower().endswith(TIFF_SUFFIXES) and rel not in listed:
                out.append((rel, "not in any manifest"))
    return out


def _rel(root: Path, p: Path) -> str:
    return p.relative_to(root).as_posix()


def check_dataset(root: Path, workers: int | None = None, deep: bool = False) -> CheckReport:
    """Verify a dataset against its manifests.

    Parameters
    ----------
    root : Path
        Dataset root (the ``--root`` of the runs that wrote it).
    workers : int, optional
        Threads reading file headers (default :func:`default_workers`).
    deep : bool
        Also decode every TIFF and verify its pixels' CRC-32 against the manifest.

    Returns
    -------
    CheckReport

    Raises
    ------
    NsgenError
        When ``root`` is not a directory or holds no sample manifest.
    """
    t0 = time.monotonic()
    root = Path(root)
    if _CONTAINER.match(root.name) and root.exists():
        raise NsgenError(f"{root} is the output container of sample {root.name[:4]}, not a dataset "
                         f"root; check the dataset it belongs to: nsgen check {root.parent}")
    if not root.is_dir():
        raise NsgenError(f"{root} is not a directory; give the --root of a generated dataset")
    paths = manifest_paths(root)
    if not paths:
        orphans = sorted(e.name for e in os.scandir(root) if _CONTAINER.match(e.name))
        if orphans:
            raise NsgenError(f"{root} holds output containers ({', '.join(orphans[:3])}"
                             f"{', ...' if len(orphans) > 3 else ''}) but no sample manifest "
                             f"(NNNN/{MANIFEST}): the samples are unfinished or their manifests "
                             f"were deleted; rerun the same nsgen command to finish them")
        raise NsgenError(f"no sample manifest (NNNN/{MANIFEST}) under {root}; give the --root "
                         f"of a generated dataset (unfinished samples have none yet)")
    report = CheckReport(root)
    problems = report.problems
    entries: list[dict[str, Any]] = []     # every listed file (and preview)
    owner: list[SampleSummary] = []        # its sample's row
    first_listed: dict[str, int] = {}
    targets: dict[str, list[str]] = {}     # target path -> inputs pointing at it
    finished_dirs: list[Path] = []
    for mpath in paths:
        rel = _rel(root, mpath)
        tag = int(mpath.parent.name)
        try:
            m = read_manifest(mpath)
        except NsgenError as exc:
            problems.append((rel, str(exc)))
            report.samples.append(SampleSummary(tag, "?", problems=1))
            continue
        row = SampleSummary(tag, str(m.get("mode", "?")))
        report.samples.append(row)
        finished_dirs.append(mpath.parent)
        bad_schema = manifest_problems(m)
        for what in bad_schema:
            problems.append((rel, f"manifest: {what}"))
        row.problems += len(bad_schema)
        if m.get("sample") != tag:
            problems.append((rel, f"manifest: sample {m.get('sample')!r} in directory "
                                  f"{mpath.parent.name}"))
            row.problems += 1
        from nsgen.rerun import changed_inputs
        for what in changed_inputs([s for s in m.get("sources", []) if isinstance(s, dict)
                                    and isinstance(s.get("path"), str)]):
            problems.append((rel, f"input changed since the sample was made: {what}; "
                                  f"remake it with --overwrite"))
            row.problems += 1
        files = [f for f in m.get("files", []) if isinstance(f, dict)
                 and isinstance(f.get("path"), str) and isinstance(f.get("shape"), list)]
        if isinstance(m.get("preview"), str):
            files = files + [{"path": m["preview"], "role": "preview"}]
        for f in files:
            p = f["path"]
            if p in first_listed:      # twice in one manifest: a schema problem above
                if first_listed[p] != tag:
                    problems.append((p, f"listed by the manifests of samples "
                                        f"{first_listed[p]:04d} and {tag:04d}"))
                    row.problems += 1
                continue
            first_listed[p] = tag
            entries.append(f)
            owner.append(row)
            row.listed += 1
            if isinstance(f.get("target"), str):
                targets.setdefault(f["target"], []).append(p)

    # header reads in parallel batches; meanwhile, strays of the finished samples
    listed = set(first_listed)
    batches = [entries[i:i + BATCH] for i in range(0, len(entries), BATCH)]
    with _quiet_tifffile(), ThreadPoolExecutor(workers or default_workers()) as pool:
        strays = [pool.submit(_strays, str(root), str(d), listed) for d in finished_dirs]
        results = [r for batch in pool.map(lambda b: _inspect_batch(str(root), b, deep), batches)
                   for r in batch]
        rows = {r.sample: r for r in report.samples}
        for d, fut in zip(finished_dirs, strays):
            found = fut.result()
            rows[int(d.name)].problems += len(found)
            problems.extend(found)
    for f, row, (present, what) in zip(entries, owner, results):
        row.present += present
        if not what:
            continue
        row.bad += present
        row.problems += 1
        n_in = len(targets.get(f["path"], ()))
        if n_in:
            what += f" (target of {n_in} input{'s' if n_in > 1 else ''}: pair incomplete)"
        problems.append((f["path"], what))
    report.files = len(entries)

    # the root: unfinished samples, and strays of dynamic mode (its TIFFs lie here)
    finished = {d.name for d in finished_dirs} | {p.parent.name for p in paths}
    containers = {item[1] for item in map(split_item, listed) if item is not None}
    with os.scandir(root) as it:
        for e in sorted(it, key=lambda e: e.name):
            p = Path(e.path)
            container = _CONTAINER.match(e.name)
            if container and e.name not in containers:
                if container.group(1) in finished:
                    problems.append((e.name, "output container not in any manifest"))
                else:
                    problems.append((e.name, f"output container without its manifest "
                                     f"({container.group(1)}/{MANIFEST} missing: the sample is "
                                     f"unfinished or its manifest was deleted; rerun the same "
                                     f"nsgen command to finish it)"))
            elif e.is_dir():
                if p.match(SAMPLE_GLOB) and e.name not in finished:
                    problems.append((e.name + "/", "sample directory without manifest "
                                     "(unfinished: rerun the same nsgen command to finish it)"))
            elif is_temporary(p):
                problems.append((e.name, "leftover temporary file of an interrupted write"))
            elif e.name.lower().endswith(TIFF_SUFFIXES) and e.name not in listed:
                problems.append((e.name, "not in any manifest"))
    report.problems.sort()
    report.seconds = time.monotonic() - t0
    return report


def format_report(report: CheckReport, out: TextIO | None = None) -> None:
    """Print the per-sample table, the totals and every problem (default: stdout)."""
    out = sys.stdout if out is None else out
    rows = report.samples
    shown = rows if len(rows) <= TABLE_ROWS else [r for r in rows if r.problems]
    print(f"{'sample':>6}  {'mode':<8} {'files':>7} {'present':>7} {'bad':>5} "
          f"{'problems':>8}", file=out)
    for r in shown:
        print(f"  {r.sample:04d}  {r.mode:<8} {r.listed:>7} {r.present:>7} {r.bad:>5} "
              f"{r.problems:>8}", file=out)
    if len(shown) < len(rows):
        print(f"  ({len(rows) - len(shown)} samples without problems not shown)", file=out)
    total = (sum(r.listed for r in rows), sum(r.present for r in rows),
             sum(r.bad for r in rows))
    print(f"{'total':>6}  {len(rows):<8} {total[0]:>7} {total[1]:>7} {total[2]:>5} "
          f"{len(report.problems):>8}", file=out)
    rate = report.files / report.seconds if report.seconds > 0 else float("inf")
    print(f"checked {report.files} files of {len(rows)} samples in {report.seconds:.2f} s "
          f"({rate:.0f} files/s)", file=out)
    if report.ok:
        print(f"{report.root}: OK", file=out)
        return
    print(f"{report.root}: {len(report.problems)} problems", file=out)
    for path, what in report.problems:
        print(f"  {path}: {what}", file=out)


def main(argv: Sequence[str]) -> int:
    """``nsgen check ROOT [--workers N] [--deep]``: exit 0 when sound, 1 with problems."""
    from nsgen.config import OneLineParser
    p = OneLineParser(prog="nsgen check",
                       description="Verify a generated dataset against its manifests.")
    p.add_argument("root", metavar="ROOT", nargs="?",
                   help="dataset root (the --root of the run; default: --root, NSGEN_ROOT "
                        "or the root of --config)")
    p.add_argument("--root", "-r", dest="root_option", help="the dataset root, as ROOT")
    p.add_argument("--workers", type=int, default=None,
                   help=f"threads reading file headers (default {default_workers()})")
    p.add_argument("--deep", action="store_true",
                   help="also decode every TIFF and verify the pixel checksum its manifest "
                        "recorded when it was written (catches corruption in place; slower)")
    ns = p.parse_args(list(argv))
    ns.root = ns.root or ns.root_option
    if ns.root is None:
        raise NsgenError("no dataset root; give it: nsgen check ROOT")
    if ns.workers is not None and ns.workers < 1:
        raise NsgenError(f"--workers must be >= 1, got {ns.workers}")
    report = check_dataset(Path(ns.root), ns.workers, ns.deep)
    format_report(report)
    return 0 if report.ok else 1
