"""Dynamic mode: frames of a long scan, each downsampled (seed: Dynamic; docs/science.md A.8).

Frame ``f`` is the block of ``frame-angles`` angles starting at ``b * frame-angles`` with
``b = f * frame-stride``; a frame is used only when its whole stride group lies inside the
scan, so ``--frame-stride 2`` reproduces the reference (``angles // (2 * frame-angles)``
frames from the even blocks) and the default stride 1 uses every complete block.
Layout: ``root/NNNN_frameFF_VVVV.tif`` directly under the root; one scale per scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from nsgen.config import Config
from nsgen.engine import profile
from nsgen.engine.pipeline import Chunk, WorkResult
from nsgen.errors import NsgenError
from nsgen.io.spill import Spill
from nsgen.modes.real import ENGINE_PRELOAD as REAL_PRELOAD
from nsgen.modes.real import (OUT_SHAPE, add_range_used, check_scans, keep, run_shifts,
                              sizing_for, spill_bounds, union)
from nsgen.prep.resize import normalise_downsample
from nsgen.prep.scaling import Bounds, to_uint16
from nsgen.runner import SampleRecord, SampleRun, file_record, note_after_checks
from nsgen.stages.scan_source import ScanSource
from nsgen.stages.scan_stages import ResizeStage
from nsgen.stages.spill import SpillStage
from nsgen.stages.write import WriteStage

__all__ = ["ENGINE_PRELOAD", "check", "frame_angles_of", "frame_ranges", "half_turn", "run_sample"]

#: modules the engine's processes import before they start
#: (:data:`nsgen.modes.real.ENGINE_PRELOAD`)
ENGINE_PRELOAD = ("nsgen.modes.dynamic", *REAL_PRELOAD)


def frame_ranges(n_angles: int, frame_angles: int, stride: int = 1) -> list[tuple[int, int]]:
    """Angle ranges ``[a0, a1)`` of the frames of a dynamic scan.

    Examples
    --------
    >>> frame_ranges(3600, 900)
    [(0, 900), (900, 1800), (1800, 2700), (2700, 3600)]
    >>> frame_ranges(3600, 900, stride=2)     # the reference: first half of each turn
    [(0, 900), (1800, 2700)]
    >>> frame_ranges(2700, 900, stride=2)
    [(0, 900)]
    """
    blocks = n_angles // frame_angles
    return [(b * frame_angles, (b + 1) * frame_angles) for b in range(0, blocks, stride)
            if (b + stride) * frame_angles <= n_angles]


def half_turn(angles: np.ndarray | None) -> int | None:
    """Projections per 180 degrees of rotation (a frame's sinogram) at the scan's angle step
    (the median step, so a wrap at 360 degrees does not count), or None when the angles do
    not give one (absent, constant, or covering less than 180 degrees).

    Examples
    --------
    >>> half_turn(np.arange(3600) * 0.2)            # continuous rotation, 0.2 degree steps
    900
    >>> half_turn(np.linspace(0, 180, 361))         # one 180 degree scan (0 to 180 inclusive)
    360
    >>> half_turn(np.arange(3600) * 0.2 % 360)      # the angles wrap at 360 degrees
    900
    >>> half_turn(np.linspace(0, 90, 181)) is None  # less than 180 degrees
    True
    """
    if angles is None or angles.size < 2:
        return None
    step = float(np.median(np.abs(np.diff(angles))))
    if not np.isfinite(step) or step <= 0:
        return None
    n = int(round(180.0 / step))
    return n if 2 <= n <= angles.size else None


def frame_angles_of(config: Config, path: Path) -> int:
    """Angles per frame of the scan at ``path``: ``--frame-angles``, or without it the
    projections per 180 degrees of its angles (:func:`half_turn`; the default 900 when the
    angles give none)."""
    if config.frame_angles_given:
        return config.frame_angles
    with ScanSource.of(config, path).open_new() as scan:
        return half_turn(scan.angles) or config.frame_angles


def check(config: Config) -> None:
    """The scan opens and holds at least one frame."""
    for path, shape, *_ in check_scans(config):
        n = frame_angles_of(config, path)
        if not frame_ranges(shape[0], n, config.frame_stride):
            raise NsgenError(f"--frame-angles {n} x --frame-stride {config.frame_stride} is "
                             f"more than the {shape[0]} projections of {path}"
                             + ("" if config.frame_angles_given else
                                " (its angles give no 180 degree frame)")
                             + "; lower --frame-angles")
        if n != config.frame_angles and not config.quiet:
            note_after_checks(f"nsgen: --frame-angles not given: {path} turns 180 degrees in "
                              f"{n} projections, so its frames are {n} angles each")


@dataclass
class FrameStage(ResizeStage):
    """Pass one: normalise, cut frames, downsample each into the scratch volume."""

    frames: tuple[tuple[int, int], ...] = ()
    spill: Spill | None = None
    label: str = "normalise+frames"

    def resized_shapes(self) -> set[tuple[int, int]]:
        return {(a1 - a0, self.shape[2]) for a0, a1 in self.frames}

    def work(self, chunk: Chunk, data: Any) -> WorkResult:
        raw, flat, dark = data
        small = np.empty((chunk.rows, len(self.frames), *OUT_SHAPE), np.float32)
        with profile.phase("normalise+downsample"):
            for f, (a0, a1) in enumerate(self.frames):
                small[:, f] = normalise_downsample(raw[a0:a1], flat, dark, OUT_SHAPE)
        return keep(self.spill, chunk, small, self.shape[1], self.source.bad, self.percentile)


@dataclass(frozen=True)
class FrameImages:
    """Pass two's images: one per (frame, row) with the scan's bounds."""

    tag: str
    bounds: Bounds

    def path(self, f: int, v: int) -> str:
        """Where frame ``f`` of row ``v`` goes: directly under the dataset root.

        Examples
        --------
        >>> FrameImages("0003", Bounds(0, 1)).path(2, 17)
        '0003_frame02_0017.tif'
        """
        return f"{self.tag}_frame{f:02d}_{v:04d}.tif"

    def __call__(self, chunk: Chunk, rows: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
        for k, v in enumerate(range(chunk.start, chunk.stop)):
            for f in range(rows.shape[1]):
                yield self.path(f, v), to_uint16(rows[k, f], self.bounds)


def plan_scan(run: SampleRun, shift: int, source: ScanSource, shape: tuple[int, int, int],
              dtype: str) -> list[dict[str, Any]]:
    """Both passes over the dynamic scan; returns its manifest entries."""
    cfg = run.config
    n = frame_angles_of(cfg, check_scans(cfg)[0][0])
    frames = tuple(frame_ranges(shape[0], n, cfg.frame_stride))
    run.log(f"[{run.tag}] {len(frames)} frames of {n} angles "
            f"(stride {cfg.frame_stride})")
    spill = Spill.create(run.work / "frames.f32", (shape[1], len(frames), *OUT_SHAPE))
    # a worker holds the chunk's small frames (and one frame being made) in float32
    small = (len(frames) + 1) * OUT_SHAPE[0] * OUT_SHAPE[1] / (shape[0] * shape[2])
    sizing = sizing_for(run, shape, dtype, work_factor=0.5 + small)
    summary = union(run.run(FrameStage(source, shape, dtype, sizing.chunk_rows, frames=frames,
                                       spill=spill, percentile=cfg.bounds_percentile), sizing))
    bounds = spill_bounds(run, spill, summary, shape[1], source.bad)
    wsizing = run.sizing(n_rows=shape[1], row_bytes=spill.row_bytes, work_factor=3)
    images = FrameImages(run.tag, bounds)
    written = run.run(WriteStage(SpillStage(spill, wsizing.chunk_rows), images, run.writer()),
                      wsizing)
    spill.path.unlink()
    files = [file_record(images.path(f, v), "frame", v, OUT_SHAPE, bounds, frame=f,
                         angles=list(frames[f]))
             for v in range(shape[1]) for f in range(len(frames))]
    add_range_used(files, written)
    return files


def run_sample(run: SampleRun) -> SampleRecord:
    """Generate the dynamic-mode frames of a scan."""
    return run_shifts(run, plan_scan)
