"""Raw mode: normalised, downsampled sinograms of every shift, no pairs (seed: Raw).

Layout: ``root/NNNN/shiftSS/NNNN_shiftSS_VVVV.tif`` (402 x 362), one scale per shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from nsgen.config import Config
from nsgen.engine.pipeline import Chunk, WorkResult
from nsgen.io.spill import Spill
from nsgen.modes.real import ENGINE_PRELOAD as REAL_PRELOAD
from nsgen.modes.real import (OUT_SHAPE, add_range_used, check_scans, keep, run_shifts,
                              sizing_for, spill_bounds, union)
from nsgen.prep.scaling import Bounds, to_uint16
from nsgen.runner import SampleRecord, SampleRun, file_record
from nsgen.stages.scan_source import ScanSource
from nsgen.stages.scan_stages import ResizeStage
from nsgen.stages.spill import SpillStage
from nsgen.stages.write import WriteStage

__all__ = ["ENGINE_PRELOAD", "check", "run_sample"]

#: modules the engine's processes import before they start
#: (:data:`nsgen.modes.real.ENGINE_PRELOAD`)
ENGINE_PRELOAD = ("nsgen.modes.raw", *REAL_PRELOAD)


def check(config: Config) -> None:
    """Open every shift's scan (paths, links, flats) before anything is written."""
    check_scans(config)


@dataclass
class DownsampleStage(ResizeStage):
    """Pass one: normalise, downsample into the scratch volume, return interior bounds."""

    spill: Spill | None = None
    label: str = "normalise+downsample"

    def process(self, chunk: Chunk, small: np.ndarray) -> WorkResult:
        return keep(self.spill, chunk, small, self.shape[1], self.source.bad, self.percentile)


@dataclass(frozen=True)
class RawImages:
    """Pass two's images: every row of the scratch volume with the shift's bounds."""

    tag: str
    unit: str
    bounds: Bounds

    def path(self, v: int) -> str:
        """Where row ``v`` goes (relative to the dataset root).

        Examples
        --------
        >>> RawImages("0000", "shift01", Bounds(0, 1)).path(7)
        '0000/shift01/0000_shift01_0007.tif'
        """
        return f"{self.tag}/{self.unit}/{self.tag}_{self.unit}_{v:04d}.tif"

    def __call__(self, chunk: Chunk, rows: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
        for k, v in enumerate(range(chunk.start, chunk.stop)):
            yield self.path(v), to_uint16(rows[k], self.bounds)


def downsample_scan(run: SampleRun, unit: str, source: ScanSource, shape: tuple[int, int, int],
                    dtype: str) -> tuple[Spill, Bounds]:
    """Pass one of raw mode for one scan: scratch volume of small sinograms and bounds."""
    spill = Spill.create(run.work / f"{unit}.f32", (shape[1], *OUT_SHAPE))
    sizing = sizing_for(run, shape, dtype, work_factor=0.5)
    summary = union(run.run(DownsampleStage(source, shape, dtype, sizing.chunk_rows,
                                            spill=spill,
                                            percentile=run.config.bounds_percentile), sizing))
    return spill, spill_bounds(run, spill, summary, shape[1], source.bad)


def plan_shift(run: SampleRun, shift: int, source: ScanSource, shape: tuple[int, int, int],
               dtype: str) -> list[dict[str, Any]]:
    """Both passes of one shift; returns its manifest entries."""
    unit = f"shift{shift:02d}"
    spill, bounds = downsample_scan(run, unit, source, shape, dtype)
    run.log(f"[{run.tag}] {unit}: scale -log {bounds.lo:.5g} .. {bounds.hi:.5g}")
    (run.dir / unit).mkdir(parents=True, exist_ok=True)
    sizing = run.sizing(n_rows=shape[1], row_bytes=spill.row_bytes, work_factor=3)
    images = RawImages(run.tag, unit, bounds)
    written = run.run(WriteStage(SpillStage(spill, sizing.chunk_rows), images, run.writer()),
                      sizing)
    spill.path.unlink()
    files = [file_record(images.path(v), "raw", v, OUT_SHAPE, bounds, shift=shift)
             for v in range(shape[1])]
    add_range_used(files, written)
    return files


def run_sample(run: SampleRun) -> SampleRecord:
    """Generate the raw-mode sample of a scan (all shifts)."""
    return run_shifts(run, plan_shift)
