"""Reruns never mix runs: a sample is resumed only by the command that started it.

A sample records, when it starts (``NNNN/.nsgen/run.json``) and when it is finished (its
``manifest.json``), the options that decide its bytes and the identity of its inputs
(their absolute paths, size and modification time of every scan, flats, darks and mask
file: ``--hdf-root scan.nxs`` run from two directories names two inputs; the manifest
also keeps a SHA-256 of files up to 256 MiB when there are at most 16). A rerun into the same root compares them:

* same options and inputs: a finished sample is kept, an unfinished one resumed;
* different: the run stops before writing (``NsgenError``, exit status 2) naming the
  options (or input files) that differ, unless ``--overwrite`` is given, which removes
  the old sample (its directory and every file its manifest lists) and makes it anew.

The records also keep the :data:`OUTPUT_REVISION` of the nsgen that wrote them: a sample
of another revision (an nsgen whose bytes for the same options differ) is refused the same
way, so an upgrade never resumes, nor counts as finished, what an older release wrote.

Options that do not change the bytes (workers, memory, chunk size, progress, verbosity,
preview, the run's sample range) may differ freely.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from nsgen.errors import NsgenError
from nsgen.io.manifest import MANIFEST, sha256_file, write_json_atomic

#: options that never change a sample's bytes
NEUTRAL = frozenset({"root", "samples", "start", "verbose", "workers", "memory-limit",
                     "chunk-size", "progress", "preview", "config-file", "array-task",
                     "shifts-given", "patch-size-given", "frame-angles-given", "overwrite", "quiet"})
#: revision of what nsgen writes for given options and inputs, raised with every change
#: that alters the bytes of any mode's output (records without one are revision 1).
#: 2: fake stripes drawn on until one is applied; dead pixels found against their flats;
#: the robust detector's fifteenth round (the masks of paired and patch modes).
#: 3: the robust detector's sixteenth round (box sums of faint stripes over several rows
#: and columns: the masks of paired and patch modes)
#: 4: dynamic mode's frames, without --frame-angles, are the scan's projections per 180
#: degrees (they were 900 whatever the angle step)
OUTPUT_REVISION = 4
#: where an unfinished sample keeps its run record
RUN_RECORD = Path(".nsgen") / "run.json"


def options(config: Any) -> dict[str, Any]:
    """The options of ``config`` that decide a sample's bytes (long option names)."""
    return {k: v for k, v in config.to_dict().items() if k not in NEUTRAL}


def input_paths(config: Any) -> list[str]:
    """The input files named by ``config`` (scans, flats, darks, mask), absolute."""
    named = [*config.hdf_root, config.flats, config.darks, config.mask]
    out: list[str] = []
    for p in named:
        if p is None or str(p) == "zeros" or not Path(p).exists():
            continue
        path = Path(p).resolve()
        files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
        out += [str(f) for f in files]
    return out


def identity(path: str) -> dict[str, Any]:
    """``{"path", "size", "mtime_ns"}`` of a file (what is compared on a rerun)."""
    st = os.stat(path)
    return {"path": path, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def changed_inputs(records: list[dict[str, Any]]) -> list[str]:
    """The recorded input files that are gone or differ now.

    A file whose size or modification time changed but whose recorded SHA-256 still
    matches (touched, not changed) counts as unchanged.
    """
    out = []
    for rec in records:
        path = rec["path"]
        try:
            now = identity(path)
        except OSError:
            out.append(f"{path} (gone)")
            continue
        if now["size"] == rec.get("size") and now["mtime_ns"] == rec.get("mtime_ns"):
            continue
        if now["size"] == rec.get("size") and "sha256" in rec and sha256_file(Path(path)) == rec["sha256"]:
            continue
        out.append(f"{path} (size/time changed)")
    return out


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``--name old -> new`` for every option recorded in both that differs (an option
    newer than the record is taken to have had its default).

    Examples
    --------
    >>> differences({"seed": 0, "mode": "raw"}, {"seed": 1, "mode": "raw"})
    ['--seed 0 -> 1']
    """
    keys = sorted((set(old) & set(new)) - NEUTRAL)
    return [f"--{k} {old[k]} -> {new[k]}" for k in keys
            if old[k] != new[k] and not _same_legacy_path(old[k], new[k])]


def _same_legacy_path(old: Any, new: Any) -> bool:
    """Whether ``old``, a relative input path recorded before inputs were made absolute,
    names the absolute ``new`` (which ends with it); lists element by element.

    >>> _same_legacy_path(["scan.nxs"], ["/data/scan.nxs"]), _same_legacy_path("a", "/b")
    (True, False)
    """
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(map(_same_legacy_path, old, new))
    if not (isinstance(old, str) and isinstance(new, str)):
        return False
    o, n = Path(old), Path(new)
    return (not o.is_absolute() and n.is_absolute() and ".." not in o.parts
            and n.parts[-len(o.parts):] == o.parts)


def _recorded(sample_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]], bool, int] | None:
    """(options, input records, finished, output revision) recorded in a sample directory,
    or None."""
    for name, finished in ((MANIFEST, True), (str(RUN_RECORD), False)):
        path = sample_dir / name
        if path.exists():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                return None
            opts = {k: v for k, v in data.get("config", {}).items() if k not in NEUTRAL}
            return (opts, list(data.get("sources", data.get("inputs", []))), finished,
                    int(data.get("output_revision", 1)))
    return None


def remove_sample(root: Path, sample_dir: Path) -> None:
    """Remove a sample: every file its manifest lists, and the files of its number that
    lie directly under the root (dynamic mode's layout: the listed ones, and those of an
    unfinished sample, which has no manifest yet, with their temporary files), its
    HDF5/Zarr container if any, then its directory."""
    from nsgen.io.formats import remove_containers
    from nsgen.io.layout import split_item
    from nsgen.io.tiff import TMP_MARK

    manifest = sample_dir / MANIFEST
    if manifest.exists():
        try:
            files = json.loads(manifest.read_text()).get("files", [])
        except (OSError, ValueError):
            files = []
        for f in files:
            if split_item(f["path"]) is None:   # a file, not an image in a container
                (root / f["path"]).unlink(missing_ok=True)
    for pattern in (f"{sample_dir.name}_*.tif", f".{sample_dir.name}_*.tif{TMP_MARK}*"):
        for path in root.glob(pattern):
            path.unlink(missing_ok=True)
    remove_containers(root, int(sample_dir.name))
    shutil.rmtree(sample_dir, ignore_errors=True)


def check_rerun(config: Any, samples: list[int]) -> list[int]:
    """Refuse samples made with other options or inputs; with ``--overwrite``, return them
    (to be removed with :func:`remove_samples` once the run is known to fit).

    Returns
    -------
    list of int
        The samples to remake (``--overwrite`` given), else empty.

    Raises
    ------
    NsgenError
        A sample of ``samples`` under the root was made (or started) with different
        options or inputs and ``--overwrite`` was not given.
    """
    root = Path(config.root)
    new = json.loads(json.dumps(options(config)))   # lists, as read back from JSON
    stale = []
    for s in samples:
        d = root / f"{s:04d}"
        got = _recorded(d)
        if got is None:
            continue
        old, inputs, finished, revision = got
        why = differences(old, new) + [f"input {p}" for p in changed_inputs(inputs)]
        if revision != OUTPUT_REVISION:
            why.insert(0, f"nsgen output revision {revision}, this nsgen writes "
                          f"{OUTPUT_REVISION}")
        if not why:
            continue
        if getattr(config, "overwrite", False):
            stale.append(s)
            continue
        state = "made" if finished else "started"
        raise NsgenError(f"sample {d} was {state} with other options or inputs ({'; '.join(why[:6])}"
                         f"{'; ...' if len(why) > 6 else ''}); rerun with the same options to "
                         f"{'keep' if finished else 'resume'} it, --overwrite to replace it, or "
                         f"choose another --root")
    return stale


def remove_samples(root: Path, samples: list[int]) -> None:
    """:func:`remove_sample` of each of ``samples`` under ``root``."""
    for s in samples:
        remove_sample(root, root / f"{s:04d}")


def record_start(config: Any, sample_dir: Path) -> None:
    """Record the options and inputs a sample is started with (``.nsgen/run.json``)."""
    path = sample_dir / RUN_RECORD
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"config": config.to_dict(), "output_revision": OUTPUT_REVISION,
                             "inputs": [identity(p) for p in input_paths(config)]})
