"""What the real-data modes share: scans per shift, stripe flags, bounds over interior rows.

A real scan is one sample; every shift file is one *unit* of work with its own completion
record, so an interrupted run resumes at the first unfinished shift. Within a shift:

* pass one streams detector-row chunks (raw projections plus that chunk's mean flat and
  dark) from the reader into shared memory (:mod:`nsgen.stages.scan_stages`); workers
  normalise (``-log``), apply the mode's transform, collect bounds over the interior rows
  and, for downsampling modes, keep the small result in a scratch volume;
* pass two writes every TIFF once with the scan's global bounds.

Compressed scans are read from a once-decompressed copy (:mod:`nsgen.stages.decompress`);
without ``--mask``, stripes are detected on the fly (:mod:`nsgen.stages.stripes`).
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nsgen.config import Config
from nsgen.engine import profile
from nsgen.engine.pipeline import Chunk, WorkResult
from nsgen.engine.sizing import Sizing
from nsgen.errors import NsgenError
from nsgen.io.spill import Spill
from nsgen.modes.range_check import low_range_warning
from nsgen.prep.bad_pixels import (
    BadPixels,
    excluded_outputs,
    find_bad_pixels,
    probe_frames,
    saturation_level,
)
from nsgen.prep.detect_params import DetectParams
from nsgen.prep.percentile import KeyCounts, exact_bounds, level_two
from nsgen.prep.scaling import EMPTY, Bounds
from nsgen.runner import SampleRecord, SampleRun, note_after_checks
from nsgen.scan import shift_files
from nsgen.scan.shifts import shift_note
from nsgen.stages.decompress import decompressed
from nsgen.stages.fused import Alongside
from nsgen.stages.scan_sizing import scan_sizing
from nsgen.stages.scan_source import ScanSource
from nsgen.stages.scan_stages import OUT_SHAPE
from nsgen.stages.spill import SpillStage
from nsgen.stages.stripes import band_flags, detect_stripes, mask_bands

__all__ = ["EDGE_ROWS", "ENGINE_PRELOAD", "OUT_SHAPE", "ShiftPlan", "add_range_used", "bad_pixels_of",
           "check_mask_source", "check_scans", "flags_and_pass_one", "interior", "interior_bounds", "interior_parts",
           "keep", "pair_counts", "run_shifts", "scan_bounds", "scan_files", "shift_flags",
           "sizing_for", "spill_bounds", "summarise", "union"]

#: what the engine's processes of a real mode import once, in the forkserver, while the
#: scans are checked (:class:`~nsgen.engine.pipeline.Engine` ``preload``): the stages, the
#: compiled kernels' modules (Numba's import alone took 0.15-0.4 s per process), Numba's CPU
#: target set up by loading one kernel (``_scaling_preload``: 0.28 CPU-s once, instead of
#: ~0.3 in each worker's first stage) and the SciPy modules that build the resize operators
#: (0.06 CPU-s once instead of in each worker)
ENGINE_PRELOAD = ("nsgen.modes.real", "nsgen.prep._resize_jit", "nsgen.prep._normalise_jit",
                  "nsgen.prep._scaling_jit", "nsgen.prep._scaling_preload", "scipy.sparse",
                  "scipy.ndimage")
#: a sample's source files get SHA-256s (up to 256 MiB each) when there are at most this many
MAX_HASHED_SOURCES = 16
#: detector rows at each edge left out of the scaling bounds (docs/science.md A.7)
EDGE_ROWS = 20
#: the on-the-fly detector whose first pass carries paired and patch modes' pass one
#: (:func:`flags_and_pass_one`; ``larix`` reads its chunks with a halo)
FUSED_DETECTOR = "robust"

#: ``plan(run, shift, source, shape, dtype) -> manifest entries`` of one shift of a mode
ShiftPlan = Callable[[SampleRun, int, ScanSource, tuple[int, int, int], str],
                     list[dict[str, Any]]]


def scan_files(config: Config) -> list[Path]:
    """The scan of every shift: the seed's numbering rule, or the explicit list."""
    files = list(config.hdf_root)
    if config.mode == "dynamic":
        if len(files) != 1:
            raise NsgenError("dynamic mode reads one scan; give one file to --hdf-root")
        return files
    if len(files) == 1:
        found = shift_files(files[0], config.shifts if config.shifts_given else None)
        if not config.shifts_given and not config.quiet:
            note_after_checks(f"nsgen: --shifts not given: using {shift_note(found)}")
        return [Path(p) for p in found]
    return files


def interior(n_rows: int) -> range:
    """Rows that count for the bounds: all but ``EDGE_ROWS`` at each edge (if any remain).

    Examples
    --------
    >>> interior(100), interior(40)
    (range(20, 80), range(0, 40))
    """
    return range(EDGE_ROWS, n_rows - EDGE_ROWS) if n_rows > 2 * EDGE_ROWS else range(n_rows)


def interior_bounds(chunk: Chunk, values: np.ndarray, n_rows: int) -> Bounds:
    """Bounds of the interior rows of a chunk (``values`` has the chunk's rows first)."""
    inside = interior(n_rows)
    lo, hi = max(chunk.start, inside.start), min(chunk.stop, inside.stop)
    if lo >= hi:
        return EMPTY
    return Bounds.of(values[lo - chunk.start:hi - chunk.start])


def interior_parts(chunk: Chunk, values: np.ndarray, n_rows: int,
                   bad: np.ndarray | None = None) -> list[np.ndarray]:
    """The values of a chunk that count for the bounds: its interior rows (``values`` has
    the chunk's rows first), without the columns (last axis) that a ``bad`` pixel
    (``(rows, columns)`` of the scan, full resolution) reaches."""
    inside = interior(n_rows)
    lo, hi = max(chunk.start, inside.start), min(chunk.stop, inside.stop)
    if lo >= hi:
        return []
    part = values[lo - chunk.start:hi - chunk.start]
    if bad is None or not bad[lo:hi].any():
        return [part]
    exclude = excluded_outputs(bad[lo:hi], values.shape[-1])
    return [row[..., ~gone] for row, gone in zip(part, exclude) if not gone.all()]


def summarise(parts: list[np.ndarray], percentile: float = 0.0,
              refine: tuple[int, ...] = ()) -> Bounds | KeyCounts:
    """Pass one's summary of a chunk: its bounds (``percentile`` 0, the seed's min/max) or
    the key counts of :mod:`nsgen.prep.percentile` (level two inside ``refine``'s bins)."""
    if percentile == 0 and not refine:
        return union([Bounds.of(p) for p in parts if p.size])
    counts = KeyCounts()
    for p in parts:
        counts.add(p, refine)
    return counts


def keep(spill: Spill | None, chunk: Chunk, values: np.ndarray, n_rows: int,
         bad: np.ndarray | None = None, percentile: float = 0.0) -> WorkResult:
    """Pass one of a downsampling mode: keep a chunk's result for pass two, return its
    summary (:func:`summarise`, without what the scan's ``bad`` pixels reach)."""
    assert spill is not None, "a downsampling pass needs its scratch volume"
    with profile.phase("scratch write"):
        spill.write_rows(chunk.start, values)
    with profile.phase("bounds"):
        return WorkResult(summarise(interior_parts(chunk, values, n_rows, bad), percentile))


def union(summaries: list[Any]) -> Any:
    """Union of per-chunk bounds or key counts (EMPTY when there are none)."""
    if not summaries:
        return EMPTY
    out = summaries[0]
    for b in summaries[1:]:
        out = out.union(b)
    return out


@dataclass
class RefineStage(SpillStage):
    """Level two of exact percentile bounds over a downsampling mode's scratch volume."""

    n_rows: int = 0
    bad: np.ndarray | None = None
    bins: tuple[int, ...] = ()
    label: str = "percentiles"

    def work(self, chunk: Chunk, data: np.ndarray) -> WorkResult:
        return WorkResult(summarise(interior_parts(chunk, data, self.n_rows, self.bad),
                                    refine=self.bins))


def scan_bounds(run: SampleRun, summary: Bounds | KeyCounts,
                refine: Callable[[tuple[int, ...]], KeyCounts]) -> Bounds:
    """The scan's bounds from pass one's summary: min/max as they are, or the exact
    percentiles (``run.config.bounds_percentile``) after ``refine(bins) -> KeyCounts``."""
    if isinstance(summary, Bounds):
        return summary
    if not summary.top.any():
        return EMPTY
    where = level_two(summary, run.config.bounds_percentile)
    lo, hi = exact_bounds(refine(tuple(dict.fromkeys(b for b, _ in where))), where)
    return Bounds(lo, hi)


def spill_bounds(run: SampleRun, spill: Spill, summary: Bounds | KeyCounts, n_rows: int,
                 bad: np.ndarray | None) -> Bounds:
    """:func:`scan_bounds` of a downsampling mode: level two over its scratch volume."""
    def refine(bins: tuple[int, ...]) -> KeyCounts:
        sizing = run.sizing(n_rows=n_rows, row_bytes=spill.row_bytes, work_factor=3)
        return union(run.run(RefineStage(spill, sizing.chunk_rows, n_rows=n_rows, bad=bad,
                                         bins=bins), sizing))
    return scan_bounds(run, summary, refine)


def add_range_used(files: list[dict[str, Any]], written: list[Any]) -> None:
    """Record each written file's fraction of the 16-bit range (the write stage's values,
    :func:`nsgen.stages.write.range_used`) in its manifest entry as ``range_used``."""
    used: dict[str, float] = {}
    for chunk in written:
        used.update(chunk or {})
    for f in files:
        if f["path"] in used:
            f["range_used"] = used[f["path"]]


def bounds_method(percentile: float) -> str:
    """How a real scan's bounds were chosen, for the manifest.

    Examples
    --------
    >>> bounds_method(0.0), bounds_method(0.5)
    ('min/max of the interior rows', 'exact percentiles 0.5 and 99.5 of the interior rows')
    """
    if percentile == 0:
        return "min/max of the interior rows"
    return f"exact percentiles {percentile:g} and {100 - percentile:g} of the interior rows"


def scan_info(config: Config, path: Path) -> tuple[tuple[int, int, int], str, list[str]]:
    """Open a scan once in the main process (validates it): shape, dtype, files read."""
    with ScanSource.of(config, path).open_new() as scan:
        a, v, c = (int(x) for x in scan.shape)
        return (a, v, c), np.dtype(scan.dtype).str, scan.source_files


#: ``(path, shape, dtype, files read)`` of each shift's scan (:func:`check_scans`)
Scans = list[tuple[Path, tuple[int, int, int], str, list[str]]]
#: the last :func:`check_scans`: its config, its scans and their files' :func:`_stamps`
_CHECKED: list[tuple[Config, Scans, list[tuple[str, int, int]]]] = []


def _stamps(scans: Scans) -> list[tuple[str, int, int]]:
    """Size and modification time (ns) of every file ``scans`` read (-1, -1: gone)."""
    return file_stamps([f for *_, files in scans for f in files])


def file_stamps(files: list[str]) -> list[tuple[str, int, int]]:
    """Size and modification time (ns) of each of ``files`` (-1, -1: gone).

    Examples
    --------
    >>> file_stamps(["/nonexistent/scan.nxs"])
    [('/nonexistent/scan.nxs', -1, -1)]
    """
    out = []
    for f in files:
        try:
            st = os.stat(f)
            out.append((f, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((f, -1, -1))
    return out


def check_scans(config: Config) -> Scans:
    """Validate every shift's scan before anything is written.

    Returns ``(path, shape, dtype, files read)`` per shift. A mode's ``check`` and its
    ``run_sample`` both ask (with the same ``config``): the scans are opened once, and
    checked again only when a file they read has changed (size or modification time).
    """
    if config.samples != 1:
        raise NsgenError(f"--samples {config.samples}: a real scan is one sample; choose its "
                         f"number with --start, and run one job per scan (see nsgen submit)")
    if _CHECKED and _CHECKED[0][0] is config and _stamps(_CHECKED[0][1]) == _CHECKED[0][2]:
        return _CHECKED[0][1]
    with profile.phase("scan checks"):
        scans = [(p, *scan_info(config, p)) for p in scan_files(config)]
        for p, *_ in scans:
            bad_pixels_of(ScanSource.of(config, p))   # refuses flats that cannot normalise
    _CHECKED[:] = [(config, scans, _stamps(scans))]
    return scans


#: per scan: the stamps of the files it read and its bad pixels (:func:`bad_pixels_of`)
_BAD: dict[ScanSource, tuple[list[tuple[str, int, int]], BadPixels]] = {}


def bad_pixels_of(source: ScanSource) -> BadPixels:
    """Dead and saturated pixels of a scan, from its mean flat and dark and
    :data:`~nsgen.prep.bad_pixels.PROBE_PROJECTIONS` projections (cached per scan, found
    again when a file it read has changed: size or modification time).

    Raises
    ------
    NsgenError
        When no pixel's flat is above its dark (normalisation impossible).
    """
    key = replace(source, copy=None, bad=None)
    known = _BAD.get(key)
    if known is not None and file_stamps([f for f, *_ in known[0]]) == known[0]:
        return known[1]
    with key.open_new() as scan:
        stamps = file_stamps(scan.source_files)   # before reading: a change meanwhile shows
        every = slice(0, scan.shape[1])
        bad = find_bad_pixels(scan.flat_mean(every), scan.dark_mean(every),
                              saturation_level(scan.dtype), source.path, probe_frames(scan))
    _BAD[key] = (stamps, bad)
    return bad


def check_mask_source(config: Config, path: Path, shape: tuple[int, int, int]) -> None:
    """The ``--mask`` archive holds this scan's key at full resolution; or, without one,
    the scan is large enough for on-the-fly detection (parameters derived from its size)."""
    if config.mask is not None:
        from nsgen.io.mask_archive import check_mask, mask_key
        check_mask(config.mask, mask_key(path), shape)
        return
    scan_detect_params(path, shape, config.detector)


def scan_detect_params(path: Path, shape: tuple[int, int, int],
                       detector: str = "larix") -> DetectParams:
    """Parameters of ``detector`` derived from the scan's size
    (:meth:`DetectParams.for_scan`); a scan too small for it: one line naming the fix."""
    try:
        return DetectParams.for_scan(shape, detector=detector)
    except ValueError as exc:
        raise NsgenError(f"{path}: {exc}; give a mask with --mask (see nsgen mask)") from None


def sizing_for(run: SampleRun, shape: tuple[int, int, int], dtype: str,
               work_factor: float) -> Sizing:
    """:func:`scan_sizing` of a run's scan (``work_factor`` float32 copies per row)."""
    return scan_sizing(run, shape, dtype, work_factor)


def shift_flags(run: SampleRun, config: Config, shift: int, source: ScanSource,
                shape: tuple[int, int, int], dtype: str,
                patch_shape: tuple[int, int] | None,
                alongside: Alongside | None = None) -> np.ndarray:
    """Stripe flags of a shift: from ``--mask`` when given, else detected on the fly
    (the ``robust`` detector running ``alongside`` with its first pass, when given:
    :func:`~nsgen.stages.robust.detect_robust`)."""
    if config.mask is not None:
        from nsgen.io.mask_archive import mask_key, read_mask_bands
        banded = read_mask_bands(config.mask, mask_key(source.path), shape,
                                 mask_bands(shape[0], patch_shape))
        return band_flags(banded, patch_shape)
    run.say(f"shift {shift}: no --mask, detecting stripes on the fly")
    params = scan_detect_params(Path(source.path), shape, config.detector)
    work = run.work / f"shift{shift:02d}"
    if alongside is not None and config.detector == FUSED_DETECTOR:
        from nsgen.stages.robust import detect_robust
        return detect_robust(run, source, shape, dtype, params, work, patch_shape=patch_shape,
                             alongside=alongside)
    return detect_stripes(run, source, shape, dtype, params, work, patch_shape=patch_shape,
                          detector=config.detector)


def flags_and_pass_one(run: SampleRun, read_flags: Callable[[Alongside | None], np.ndarray],
                       stage: Callable[[np.ndarray | None], Any], sizing: Sizing,
                       flagged: Callable[[list[Any], np.ndarray], Bounds],
                       work_factor: float,
                       recount: Callable[[np.ndarray], Any] | None = None
                       ) -> tuple[np.ndarray, Any]:
    """A shift's stripe flags and pass one's summary (paired and patch modes).

    ``stage(flags)`` is pass one (``work_factor`` float32 copies of a row per worker);
    ``read_flags(alongside)`` the flags (:func:`shift_flags`). With min/max bounds, pass
    one runs as ``stage(None)`` before the flags are known, and ``flagged(items, flags)``
    then makes the summary from its per-item results: detected on the fly (``robust``),
    on the chunks the detector's first pass reads (one read of the scan for both:
    :class:`~nsgen.stages.fused.Alongside`); with ``--mask``, while the flags are read
    from the archive (a serial decompression of the whole mask) on a thread. Percentile
    bounds (key counts of the values the flags keep) on the fly: ``recount(flags)``, when
    the mode has one, makes the summary from what ``stage(None)`` kept. Otherwise
    (percentile bounds without ``recount`` or with ``--mask``; ``larix``) the flags come
    first and the stage summarises itself.
    """
    cfg = run.config
    if cfg.mask is None and cfg.detector == FUSED_DETECTOR and \
            (cfg.bounds_percentile == 0 or recount is not None):
        alongside = Alongside(stage(None), work_factor)
        flags = read_flags(alongside)
        if alongside.values is None:   # did not fit together: pass one with the flags
            return flags, union(run.run(stage(flags), sizing))
        if cfg.bounds_percentile != 0:
            assert recount is not None
            return flags, recount(flags)
        return flags, flagged([item for chunk in alongside.values for item in chunk], flags)
    if cfg.mask is None or cfg.bounds_percentile != 0:
        flags = read_flags(None)
        return flags, union(run.run(stage(flags), sizing))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nsgen-flags") as pool:
        future = pool.submit(read_flags, None)
        try:
            items = [item for chunk in run.run(stage(None), sizing) for item in chunk]
        except BaseException:
            future.cancel()
            raise
        flags = future.result()
    return flags, flagged(items, flags)


def run_shifts(run: SampleRun, plan: ShiftPlan) -> SampleRecord:
    """Run ``plan(run, shift, source, shape, dtype) -> list of file records`` per shift.

    Each shift is a unit: a finished one (from an interrupted earlier run) is not redone.
    Returns the sample's :class:`~nsgen.runner.SampleRecord` with the source files.
    """
    from nsgen.io.manifest import CHECKSUM_LIMIT, source_record

    scans = check_scans(run.config)
    files = [f for *_, read in scans for f in read]
    if run.config.mask is not None:
        files.append(str(run.config.mask))
    unique = list(dict.fromkeys(files))
    # a TIFF scan is thousands of files: identify them by size and time, not by hashing
    # the whole scan (nsgen.rerun compares those)
    limit = CHECKSUM_LIMIT if len(unique) <= MAX_HASHED_SOURCES else 0
    record = SampleRecord(extra={"sources": [source_record(Path(f), checksum_limit=limit)
                                             for f in unique],
                                 "bounds_rows": [interior(scans[0][1][1]).start,
                                                 interior(scans[0][1][1]).stop],
                                 "bounds_method": bounds_method(run.config.bounds_percentile)})
    for shift, (path, shape, dtype, _) in enumerate(scans):
        unit = f"shift{shift:02d}"
        done = run.unit_done(unit)
        if done is None:
            run.log(f"[{run.tag}] {unit}: {path} {shape[0]} angles x {shape[1]} rows x "
                    f"{shape[2]} columns")
            source = decompressed(run, ScanSource.of(run.config, path), shape, dtype,
                                  run.work / unit)
            bad = bad_pixels_of(source)
            source = replace(source, bad=bad.mask if bad.count else None)
            entries = plan(run, shift, source, shape, dtype)
            if source.copy is not None:   # done with it: free the space for the next shift
                Path(source.copy).unlink(missing_ok=True)
            run.finish_unit(unit, {"files": entries})
        else:
            run.log(f"[{run.tag}] {unit}: finished earlier, kept")
            entries = done["files"]
        record.files.extend(entries)
        bad = bad_pixels_of(ScanSource.of(run.config, path))
        warning = bad.warning(str(path))
        if warning:
            print(f"nsgen: warning: {warning}", file=sys.stderr, flush=True)
        record.extra.setdefault("bad_pixels", {})[unit] = bad.record()
    if run.config.mode in ("paired", "patch"):
        pairs = record.extra["pairs"] = pair_counts(record.files, run.config.mode)
        if "reason" in pairs:
            print(f"nsgen: warning: sample {run.tag} made no {pairs['missing']}: "
                  f"{pairs['reason']}", file=sys.stderr, flush=True)
    low_range = low_range_warning(run.tag, record.files, run.config.bounds_percentile)
    if low_range:
        print(f"nsgen: warning: {low_range}", file=sys.stderr, flush=True)
    profile.flush("main", "outside stages")
    return record


def pair_counts(files: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    """Fake pairs and real-artefact inputs of a paired/patch sample, and, when either is
    zero, why (the manifest's ``pairs`` record).

    Examples
    --------
    >>> real = {"role": "stripe", "artefact": "real"}
    >>> pair_counts([real, real], "paired")["reason"]  # doctest: +ELLIPSIS
    'the stripe mask flagged 100 % of sinograms (2 of 2) as holding real stripes; ...'
    """
    fake = sum(1 for f in files if f.get("artefact") == "fake" and "target" in f)
    real = sum(1 for f in files if f.get("artefact") == "real" and f.get("role") != "clean")
    unit = "patches" if mode == "patch" else "sinograms"
    out: dict[str, Any] = {"fake": fake, "real": real, "unit": unit}
    if fake == 0 and real:
        out["missing"] = "fake pairs"
        out["reason"] = (f"the stripe mask flagged 100 % of {unit} ({real} of {real}) as "
                         f"holding real stripes; see --detector, or give a mask that flags "
                         f"fewer with --mask")
    elif real == 0 and fake:
        out["missing"] = "real-artefact inputs"
        out["reason"] = (f"the stripe mask flagged none of the {fake} {unit}; every input is "
                         f"a fake pair (see --detector if the scan has stripes)")
    return out
