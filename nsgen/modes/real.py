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

from pathlib import Path
from typing import Any, Callable

import numpy as np

from nsgen.config import Config
from nsgen.engine.pipeline import Chunk, WorkResult
from nsgen.engine.sizing import Sizing
from nsgen.errors import NsgenError
from nsgen.io.nexus import shift_files
from nsgen.io.spill import Spill
from nsgen.prep.scaling import EMPTY, Bounds
from nsgen.runner import SampleRecord, SampleRun
from nsgen.stages.decompress import decompressed
from nsgen.stages.scan_sizing import scan_sizing
from nsgen.stages.scan_source import ScanSource
from nsgen.stages.scan_stages import OUT_SHAPE
from nsgen.stages.stripes import MASK_PARAMS, detect_stripes, mask_flags

__all__ = ["EDGE_ROWS", "OUT_SHAPE", "ShiftPlan", "check_mask_source", "check_scans",
           "interior", "interior_bounds", "keep", "run_shifts", "scan_files", "shift_flags",
           "sizing_for", "union"]

#: detector rows at each edge left out of the scaling bounds (docs/science.md A.7)
EDGE_ROWS = 20

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
        return [Path(p) for p in shift_files(files[0], config.shifts)]
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


def keep(spill: Spill | None, chunk: Chunk, values: np.ndarray, n_rows: int) -> WorkResult:
    """Pass one of a downsampling mode: keep a chunk's result for pass two, return bounds."""
    assert spill is not None, "a downsampling pass needs its scratch volume"
    spill.write_rows(chunk.start, values)
    return WorkResult(interior_bounds(chunk, values, n_rows))


def union(bounds: list[Bounds]) -> Bounds:
    """Union of per-chunk bounds (EMPTY when there are none)."""
    out = EMPTY
    for b in bounds:
        out = out.union(b)
    return out


def scan_info(config: Config, path: Path) -> tuple[tuple[int, int, int], str, list[str]]:
    """Open a scan once in the main process (validates it): shape, dtype, files read."""
    with ScanSource.of(config, path).open_new() as scan:
        a, v, c = (int(x) for x in scan.shape)
        return (a, v, c), np.dtype(scan.dtype).str, scan.source_files


def check_scans(config: Config) -> list[tuple[Path, tuple[int, int, int], str, list[str]]]:
    """Validate every shift's scan before anything is written.

    Returns ``(path, shape, dtype, files read)`` per shift.
    """
    if config.samples != 1:
        raise NsgenError(f"--samples {config.samples}: a real scan is one sample; choose its "
                         f"number with --start, and run one job per scan (see nsgen submit)")
    return [(p, *scan_info(config, p)) for p in scan_files(config)]


def check_mask_source(config: Config, path: Path, shape: tuple[int, int, int]) -> None:
    """The ``--mask`` archive holds this scan's key at full resolution; or, without one,
    the scan is large enough for on-the-fly detection with the seed's parameters."""
    if config.mask is not None:
        from nsgen.io.mask_archive import check_mask, mask_key
        check_mask(config.mask, mask_key(path), shape)
        return
    n_angles = shape[0]
    need = max(2 * MASK_PARAMS["size"], MASK_PARAMS["min_stripe_length"] + 1)
    if n_angles < need or shape[2] <= MASK_PARAMS["min_stripe_width"] \
            or shape[1] <= MASK_PARAMS["min_stripe_depth"]:
        raise NsgenError(f"{path} ({n_angles} angles x {shape[1]} rows x {shape[2]} columns) is "
                         f"too small for on-the-fly stripe detection with the seed's parameters "
                         f"(at least {need} angles, {MASK_PARAMS['min_stripe_depth'] + 1} rows, "
                         f"{MASK_PARAMS['min_stripe_width'] + 1} columns); give a mask with "
                         f"--mask (see nsgen mask)")


def sizing_for(run: SampleRun, shape: tuple[int, int, int], dtype: str,
               work_factor: float) -> Sizing:
    """:func:`scan_sizing` of a run's scan (``work_factor`` float32 copies per row)."""
    return scan_sizing(run, shape, dtype, work_factor)


def shift_flags(run: SampleRun, config: Config, shift: int, source: ScanSource,
                shape: tuple[int, int, int], dtype: str,
                patch_shape: tuple[int, int] | None) -> np.ndarray:
    """Stripe flags of a shift: from ``--mask`` when given, else detected on the fly."""
    if config.mask is not None:
        from nsgen.io.mask_archive import mask_key, read_mask_flags
        return read_mask_flags(config.mask, mask_key(source.path), shape,
                               lambda block: mask_flags(block, patch_shape))
    run.say(f"shift {shift}: no --mask, detecting stripes on the fly")
    return detect_stripes(run, source, shape, dtype, dict(MASK_PARAMS),
                          run.work / f"shift{shift:02d}", patch_shape=patch_shape)


def run_shifts(run: SampleRun, plan: ShiftPlan) -> SampleRecord:
    """Run ``plan(run, shift, source, shape, dtype) -> list of file records`` per shift.

    Each shift is a unit: a finished one (from an interrupted earlier run) is not redone.
    Returns the sample's :class:`~nsgen.runner.SampleRecord` with the source files.
    """
    from nsgen.io.manifest import source_record

    scans = check_scans(run.config)
    files = [f for *_, read in scans for f in read]
    if run.config.mask is not None:
        files.append(str(run.config.mask))
    record = SampleRecord(extra={"sources": [source_record(Path(f))
                                             for f in dict.fromkeys(files)],
                                 "bounds_rows": [interior(scans[0][1][1]).start,
                                                 interior(scans[0][1][1]).stop]})
    for shift, (path, shape, dtype, _) in enumerate(scans):
        unit = f"shift{shift:02d}"
        done = run.unit_done(unit)
        if done is None:
            run.log(f"[{run.tag}] {unit}: {path} {shape[0]} angles x {shape[1]} rows x "
                    f"{shape[2]} columns")
            source = decompressed(run, ScanSource.of(run.config, path), shape, dtype,
                                  run.work / unit)
            entries = plan(run, shift, source, shape, dtype)
            if source.copy is not None:   # done with it: free the space for the next shift
                Path(source.copy).unlink(missing_ok=True)
            run.finish_unit(unit, {"files": entries})
        else:
            run.log(f"[{run.tag}] {unit}: finished earlier, kept")
            entries = done["files"]
        record.files.extend(entries)
    return record
