"""Output formats (``--format tiff|hdf5|zarr``): writing, packing and reading samples.

``tiff`` (default) writes every image as its own file, as the seed does. ``hdf5`` and
``zarr`` store sample ``NNNN`` as one container ``root/NNNN.h5`` / ``root/NNNN.zarr``
(layout: :mod:`nsgen.io.layout`); its manifest (``root/NNNN/manifest.json``, which as
for TIFF marks the sample finished, next to ``preview.png``) names images inside it.

How a container is written: the write stage (:mod:`nsgen.stages.write`) hands its images
to the run's output backend (:func:`writer_for`). :class:`~nsgen.io.tiff.TiffWriter`
writes the files. :class:`StagedWriter`, used by the container formats, writes each
chunk's images, per dataset, as one part file in the
sample's scratch directory (atomically, from any worker process: one HDF5 file cannot
be written by several processes). When the sample is computed, :func:`pack_sample`
copies the parts into the container under a temporary name, stores the manifest as
attributes, and renames it into place; only then is the manifest written. A unit of
work (a shift of a real scan) is recorded complete after its parts are written, so an
interrupted sample resumes from its complete units, and whatever the interruption the
container's values are those of an uninterrupted run.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nsgen.errors import NsgenError
from nsgen.io.containers import WRITERS, ContainerReader, remove
from nsgen.io.layout import (
    CONTAINER_SUFFIXES,
    INDEX_SUFFIX,
    Key,
    container_name,
    is_dense,
    item_path,
    locate,
    split_item,
)
from nsgen.io.manifest import MANIFEST, SAMPLE_GLOB, read_manifest
from nsgen.io.tiff import TiffWriter, pixel_crc32, read_tiff, temporary_name

#: scratch subdirectory (of the sample's ``.work``) holding the staged parts
PARTS = "parts"
PART_SUFFIX = ".part.npy"
logger = logging.getLogger("nsgen")


@dataclass
class StagedWriter:
    """Output backend of the container formats: images grouped by dataset into atomic part
    files under ``parts`` (see :class:`nsgen.stages.write.ImageWriter`)."""

    parts: Path

    def write(self, items: Iterable[tuple[str, np.ndarray]]) -> tuple[int, int, dict[str, str]]:
        """Stage ``(TIFF-layout path relative to the root, uint16 image)`` items; return
        images and bytes written and the :func:`~nsgen.io.tiff.pixel_crc32` of each path."""
        groups: dict[str, tuple[list[Key], list[np.ndarray]]] = {}
        checksums: dict[str, str] = {}
        for path, image in items:
            checksums[path] = pixel_crc32(image)
            _, dataset, key = locate(path)
            keys, images = groups.setdefault(dataset, ([], []))
            keys.append(key)
            images.append(image)
        n = nbytes = 0
        for dataset, (keys, images) in groups.items():
            d = self.parts / _part_dir(dataset)
            d.mkdir(parents=True, exist_ok=True)
            part = d / f"{'_'.join(map(str, keys[0]))}+{len(keys)}{PART_SUFFIX}"
            tmp = temporary_name(part)
            try:
                with open(tmp, "wb") as f:   # two .npy records: keys, then the images
                    np.save(f, np.asarray(keys, dtype=np.int64))
                    np.save(f, np.stack(images))
                nbytes += tmp.stat().st_size
                os.replace(tmp, part)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            n += len(keys)
        return n, nbytes, checksums


def _part_dir(dataset: str) -> str:
    return dataset.replace("/", "~")


def writer_for(fmt: str, root: Path, work: Path) -> TiffWriter | StagedWriter:
    """The output backend of a sample in format ``fmt`` (``work``: its scratch directory)."""
    return TiffWriter(Path(root)) if fmt == "tiff" else StagedWriter(Path(work) / PARTS)


def _plan(files: list[dict[str, Any]]) -> dict[str, dict[Key, dict[str, Any]]]:
    plan: dict[str, dict[Key, dict[str, Any]]] = {}
    for entry in files:
        _, dataset, key = locate(entry["path"])
        plan.setdefault(dataset, {})[key] = entry
    return plan


def pack_sample(fmt: str, compression: str, root: Path, sample: int, work: Path,
                manifest: dict[str, Any]) -> dict[str, Any]:
    """Build ``root/NNNN.<ext>`` from the staged parts; return the relocated manifest.

    The manifest's TIFF-layout paths (``path``, ``target``, ``mask``) become paths
    inside the container (:func:`nsgen.io.layout.item_path`). Nothing happens for TIFF.
    """
    if fmt == "tiff":
        return manifest
    root = Path(root)
    t0 = time.monotonic()
    plan = _plan(manifest["files"])
    moved: dict[str, str] = {}
    writer = WRITERS[fmt](root / container_name(sample, fmt), compression)
    try:
        for dataset, entries in plan.items():
            keys = sorted(entries)
            position = {k: i for i, k in enumerate(keys)}
            writer.create(dataset, (len(keys), *entries[keys[0]]["shape"]))
            if not is_dense(keys):
                writer.index(dataset + INDEX_SUFFIX, np.asarray(keys))
            found: set[Key] = set()
            # oldest first: an image staged again by a rerun (other chunking) is overwritten
            for part in sorted((Path(work) / PARTS / _part_dir(dataset)).glob(f"*{PART_SUFFIX}"),
                               key=lambda p: (p.stat().st_mtime_ns, p.name)):
                with open(part, "rb") as f:
                    got = [tuple(int(x) for x in k) for k in np.load(f)]
                    images = np.load(f)
                at = [position[k] for k in got]
                if at == list(range(at[0], at[0] + len(at))):
                    writer.write(dataset, at[0], images)
                else:
                    for i, image in zip(at, images):
                        writer.write(dataset, i, image[None])
                found.update(got)
            if len(found) != len(keys):
                missing = sorted(set(keys) - found)
                raise RuntimeError(f"sample {sample:04d}: {len(missing)} images of {dataset} "
                                   f"were never staged (first {missing[0]})")
            for k, entry in entries.items():
                moved[entry["path"]] = item_path(sample, fmt, dataset, position[k])
        files = [{**e, **{k: moved[e[k]] for k in ("path", "target", "mask")
                          if isinstance(e.get(k), str) and e[k] in moved}}
                 for e in manifest["files"]]
        out = {**manifest, "format": fmt, "container": container_name(sample, fmt),
               "files": files}
        writer.commit(out)
    except BaseException:
        writer.abort()
        raise
    _remove_empty_dirs(root / f"{sample:04d}")
    logger.info(f"[{sample:04d}] packed {len(manifest['files'])} images into "
                f"{container_name(sample, fmt)} in {time.monotonic() - t0:.2f} s")
    return out


def _remove_empty_dirs(directory: Path) -> None:
    """Drop the image folders the modes created for TIFFs (empty for containers)."""
    for dirpath, _, _ in sorted(os.walk(directory), key=lambda w: -len(w[0])):
        if dirpath != str(directory) and not os.listdir(dirpath):
            os.rmdir(dirpath)


def remove_containers(root: Path, sample: int) -> None:
    """Delete the containers of ``sample`` (``--overwrite``), finished or not."""
    for fmt in CONTAINER_SUFFIXES:
        remove(Path(root) / container_name(sample, fmt))
    remove_stale_containers(root, sample)


def remove_stale_containers(root: Path, sample: int) -> int:
    """Delete temporary containers of ``sample`` left by an interrupted run."""
    n = 0
    for suffix in CONTAINER_SUFFIXES.values():
        for p in Path(root).glob(f".{sample:04d}{suffix}.nsgen-tmp*"):
            remove(p)
            n += 1
    return n


# ---------------------------------------------------------------------------- reading

_READERS: dict[tuple[int, int, str, int], ContainerReader] = {}


def reader(path: Path, fmt: str) -> ContainerReader:
    """An open reader of a container, cached per process and thread (a few at a time, so
    one thread never closes another's; a container replaced by a rerun is a new inode,
    hence a new reader)."""
    key = (os.getpid(), threading.get_ident(), str(Path(path).absolute()),
           os.stat(path).st_ino)
    got = _READERS.get(key)
    if got is None:
        mine = [k for k in list(_READERS) if k[:2] == key[:2]]
        if len(mine) >= 4:
            _READERS.pop(mine[0]).close()
        got = _READERS[key] = ContainerReader(path, fmt)
    return got


def read_item(root: Path, path: str) -> np.ndarray:
    """The uint16 image a manifest path names: a TIFF file or an image in a container."""
    where = split_item(path)
    if where is None:
        return read_tiff(Path(root) / path)
    fmt, container, dataset, position = where
    return reader(Path(root) / container, fmt).read(dataset, position)


def inspect_item(root: Path, path: str, shape: list[int]) -> tuple[bool, str]:
    """``(present, problem)`` of an image in a container (cf. ``check.inspect_tiff``)."""
    where = split_item(path)
    assert where is not None
    fmt, container, dataset, position = where
    try:
        info = reader(Path(root) / container, fmt).datasets().get(dataset)
    except (OSError, ValueError, KeyError) as exc:
        if not (Path(root) / container).exists():
            return False, "missing"
        return True, f"unreadable container ({type(exc).__name__}: {str(exc)[:80]})"
    if info is None:
        return False, f"no dataset {dataset} in {container}"
    got_shape, dtype = info
    if not 0 <= position < got_shape[0]:
        return False, f"{dataset} holds {got_shape[0]} images, not image {position}"
    if dtype != "uint16":
        return True, f"dtype {dtype}, expected uint16"
    if list(got_shape[1:]) != list(shape):
        return True, f"shape {list(got_shape[1:])}, manifest says {list(shape)}"
    return True, ""


@dataclass
class LoadedSample:
    """A generated sample read back: volumes by dataset name, and its manifest.

    ``volumes["clean"]`` is (rows, angles, columns) uint16; a volume whose images do not
    cover every row (paired/patch folders) stacks them in key order, its keys
    (``(row,)`` or ``(row, patch)``) in ``keys[name]``.
    """

    volumes: dict[str, np.ndarray]
    manifest: dict[str, Any]
    keys: dict[str, list[Key]] = field(default_factory=dict)


def load_sample(root: str | Path, sample: int) -> LoadedSample:
    """Read sample ``sample`` of a dataset in any output format.

    Raises
    ------
    NsgenError
        When the sample is missing or unfinished (one line naming the fix).

    Examples
    --------
    >>> load_sample("no/such/root", 0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    nsgen.errors.NsgenError: no sample 0000 under no/such/root (no finished samples there); ...
    """
    root = Path(root)
    path = root / f"{sample:04d}" / MANIFEST
    if not path.exists():
        started = (root / f"{sample:04d}").exists() or any(
            (root / container_name(sample, f)).exists() for f in CONTAINER_SUFFIXES)
        if started:
            raise NsgenError(f"sample {sample:04d} under {root} is unfinished (no manifest); "
                             f"rerun the same nsgen command to finish it")
        have = sorted(p.parent.name for p in root.glob(f"{SAMPLE_GLOB}/{MANIFEST}"))
        listing = (f"finished: {', '.join(have[:5])}{'...' if len(have) > 5 else ''}"
                   if have else "no finished samples there")
        raise NsgenError(f"no sample {sample:04d} under {root} ({listing}); give the --root "
                         f"and a sample number of a generated dataset")
    manifest = read_manifest(path)
    fmt = manifest.get("format", "tiff")
    out = LoadedSample({}, manifest)
    files = [f for f in manifest["files"] if f.get("role") != "preview"]
    if fmt == "tiff":
        for dataset, entries in _plan(files).items():
            keys = sorted(entries)
            out.volumes[dataset] = np.stack([read_tiff(root / entries[k]["path"]) for k in keys])
            if not is_dense(keys):
                out.keys[dataset] = keys
        return out
    r = ContainerReader(root / manifest["container"], fmt)
    try:
        for name in r.datasets():
            if name.endswith(INDEX_SUFFIX):
                out.keys[name[:-len(INDEX_SUFFIX)]] = [tuple(int(x) for x in k)
                                                       for k in r.read(name)]
            else:
                out.volumes[name] = r.read(name)
    finally:
        r.close()
    return out


def formats_in(root: Path) -> set[str]:
    """Output formats already present under ``root`` (finished or not), from the names
    alone (no manifest is read): containers ``NNNN.h5``/``NNNN.zarr`` (or their
    temporaries), TIFFs directly under the root (dynamic mode), and sample directories
    holding TIFFs or, finished, without a container (a finished container sample keeps
    only its manifest and preview in ``NNNN/``)."""
    root = Path(root)
    found: set[str] = set()
    if not root.is_dir():
        return found
    containers: set[str] = set()
    samples: list[os.DirEntry[str]] = []
    for e in os.scandir(root):
        name = e.name.lstrip(".")
        for fmt, suffix in CONTAINER_SUFFIXES.items():
            if name[:4].isdigit() and name[4:].startswith(suffix):
                found.add(fmt)
                containers.add(name[:4])
        if e.name.lower().endswith((".tif", ".tiff")):
            found.add("tiff")
        if e.is_dir() and Path(e.name).match(SAMPLE_GLOB):
            samples.append(e)
    for e in samples:
        if "tiff" in found:
            break
        finished = os.path.exists(os.path.join(e.path, MANIFEST))
        if (finished and e.name not in containers) or _holds_tiffs(e.path):
            found.add("tiff")
    return found


def _holds_tiffs(directory: str) -> bool:
    for _, dirnames, filenames in os.walk(directory):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if any(f.lower().endswith((".tif", ".tiff")) for f in filenames):
            return True
    return False


def check_root_format(root: Path, fmt: str) -> None:
    """Refuse to write format ``fmt`` into a root that holds another format."""
    other = sorted(formats_in(root) - {fmt})
    if other:
        raise NsgenError(f"--root {root} already holds a --format {other[0]} dataset; use "
                         f"--format {other[0]} to add to it, or another --root for "
                         f"--format {fmt}")
