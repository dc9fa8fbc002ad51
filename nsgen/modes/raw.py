"""Raw mode: normalised, downsampled sinograms of every shift, no pairs (seed: Raw).

Layout: ``root/NNNN/shiftSS/NNNN_shiftSS_VVVV.tif`` (402 x 362), one scale per shift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nsgen.config import Config
from nsgen.engine.pipeline import Chunk, WorkResult
from nsgen.io.spill import Spill
from nsgen.io.formats import Sink, TiffSink
from nsgen.modes.real import (OUT_SHAPE, ResizeStage, ScanSource, check_scans,
                              keep, run_shifts, sizing_for, union)
from nsgen.modes.synthetic import SpillStage
from nsgen.prep.scaling import EMPTY, Bounds, to_uint16
from nsgen.runner import SampleRecord, SampleRun, file_record

__all__ = ["check", "run_sample"]


def check(config: Config) -> None:
    """Open every shift's scan (paths, links, flats) before anything is written."""
    check_scans(config)


@dataclass
class DownsampleStage(ResizeStage):
    """Pass one: normalise, downsample into the scratch volume, return interior bounds."""

    spill: Spill | None = None
    label: str = "normalise+downsample"

    def process(self, chunk: Chunk, small: np.ndarray) -> WorkResult:
        return keep(self.spill, chunk, small, self.shape[1])


@dataclass
class WriteStage(SpillStage):
    """Pass two: scale every row of the scratch volume with the scan's bounds and write it."""

    bounds: Bounds = EMPTY
    out: Path = Path(".")
    prefix: str = ""
    sink: Sink = field(default_factory=TiffSink)
    label: str = "write"

    def work(self, chunk: Chunk, data: np.ndarray) -> WorkResult:
        return WorkResult(None, *self.sink.write(
            (self.out / f"{self.prefix}_{v:04d}.tif", to_uint16(data[k], self.bounds))
            for k, v in enumerate(range(chunk.start, chunk.stop))))


def downsample_scan(run: SampleRun, unit: str, source: ScanSource, shape: tuple[int, int, int],
                    dtype: str) -> tuple[Spill, Bounds]:
    """Pass one of raw mode for one scan: scratch volume of small sinograms and bounds."""
    spill = Spill.create(run.work / f"{unit}.f32", (shape[1], *OUT_SHAPE))
    sizing = sizing_for(run, shape, dtype, work_factor=0.5)
    bounds = union(run.run(DownsampleStage(source, shape, dtype, sizing.chunk_rows,
                                           spill=spill), sizing))
    return spill, bounds


def plan_shift(run: SampleRun, shift: int, source: ScanSource, shape: tuple[int, int, int],
               dtype: str) -> list[dict[str, Any]]:
    """Both passes of one shift; returns its manifest entries."""
    unit = f"shift{shift:02d}"
    spill, bounds = downsample_scan(run, unit, source, shape, dtype)
    run.log(f"[{run.tag}] {unit}: scale -log {bounds.lo:.5g} .. {bounds.hi:.5g}")
    out = run.dir / unit
    out.mkdir(parents=True, exist_ok=True)
    sizing = run.sizing(n_rows=shape[1], row_bytes=spill.row_bytes, work_factor=3)
    prefix = f"{run.tag}_{unit}"
    run.run(WriteStage(spill, sizing.chunk_rows, bounds=bounds, out=out, prefix=prefix,
                       sink=run.sink), sizing)
    spill.path.unlink()
    return [file_record(f"{run.tag}/{unit}/{prefix}_{v:04d}.tif", "raw", v, OUT_SHAPE, bounds,
                        shift=shift) for v in range(shape[1])]


def run_sample(run: SampleRun) -> SampleRecord:
    """Generate the raw-mode sample of a scan (all shifts)."""
    return run_shifts(run, plan_shift)
