"""The ``robust`` stripe detector over a scan in three passes (like Larix's candidates and
merge), each row's work done once whatever the chunking.

1. :class:`RobustFeatureStage` reads row chunks of the scan with no halo and stores what the
   detector needs of each row from that row alone
   (:func:`~nsgen.prep.stripe_robust.row_feature_parts`: the ranks of every angle set and
   the strong defects in one scratch volume, the means over angle bins in another; together
   about a quarter of a float32 row at 1801 angles);
2. :class:`RobustOffsetStage` reads the ranks with ``hd`` rows each side and stores each
   row's offsets against the rows around it
   (:func:`~nsgen.prep.stripe_robust.row_offsets`; a few values per column);
3. :class:`RobustDecideStage` reads the offsets with ``hd`` rows each side and its rows'
   bin means and decides (:func:`~nsgen.prep.stripe_robust.decide_offsets`).

The mask equals the whole-volume computation exactly (the one-pass stage it replaces
ranked every chunk's ``2 x 2 hd`` halo rows again: 2.5-4x Larix's time).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nsgen.engine import scratch
from nsgen.engine.pipeline import Chunk, Stage, WorkResult, row_chunks
from nsgen.io.spill import Spill
from nsgen.prep.detect_params import DetectParams
from nsgen.prep.normalise import flat_field_log
from nsgen.prep.robust_tall import TALL_SETS  # tall
from nsgen.prep.stripe_detect import rows_to_read
from nsgen.prep.stripe_robust import (decide_offsets, depth_rule, feature_layout,
                                      row_feature_parts, row_offsets)
from nsgen.runner import StageRunner
from nsgen.stages.scan_sizing import row_sizing, scan_sizing
from nsgen.stages.scan_source import ScanSource
from nsgen.stages.scan_stages import ScanStage, load_flat_field
from nsgen.stages.stripes import JIT_OVERHEAD, StepClock, mask_flags

__all__ = ["RobustDecideStage", "RobustFeatureStage", "RobustOffsetStage", "balanced",
           "detect_robust"]

#: float32 copies of a row a pass-one worker holds (the volume, a sorted block, features)
FEATURE_FLOAT_COPIES = 2.5
#: bytes a pass-two worker holds per feature byte read (the angle sets' contiguous copies
#: and one background copy)
OFFSET_WORK_FACTOR = 2.5


def balanced(chunk_rows: int, n_rows: int, workers: int) -> int:
    """Rows per chunk, at most ``chunk_rows``, aiming at a chunk count that is a multiple
    of ``workers``, the chunks as even as can be (a pass whose chunks cost alike ends when its
    busiest worker does).

    Examples
    --------
    >>> balanced(56, 256, 2)   # 5 chunks (56, 56, 56, 56, 32): 6 of 43 (the last 41)
    43
    >>> balanced(300, 256, 2), balanced(7, 256, 2)
    (128, 7)
    """
    n = -(-n_rows // max(1, chunk_rows))
    n = -(-n // workers) * workers
    return max(1, -(-n_rows // n))


@dataclass
class RobustFeatureStage(ScanStage):
    """Pass one: each row's features (no halo) into ``features`` (ranks and strong defects)
    and ``bins`` (angle-bin means), rows first."""

    features: Spill | None = None
    bins: Spill | None = None
    label: str = "detect stripes (robust, rows)"

    def prepare(self) -> None:
        t = time.perf_counter()
        load_flat_field()
        row_feature_parts(np.zeros((1, 1, 4), np.float32))   # load the compiled kernels
        self._prepared = time.perf_counter() - t

    #: seconds of :meth:`prepare` in this worker, charged to its first chunk
    _prepared: float = field(default=0.0, init=False, repr=False, compare=False)

    def work(self, chunk: Chunk, data: list[np.ndarray]) -> WorkResult:
        assert self.features is not None and self.bins is not None
        clock = StepClock()
        clock.add("prepare (kernels)", self._prepared)
        self._prepared = 0.0
        raw, flat, dark = data
        # the normalised chunk in a reused buffer (a fresh ~130 MB array per chunk cost its
        # page faults every time)
        volume = flat_field_log(raw, flat, dark, sinograms_first=False,
                                out=scratch.buffer("normalised", raw.shape, np.float32))
        clock.lap("normalise")
        feat, means = row_feature_parts(volume)
        clock.lap("features")
        self.features.write_rows(chunk.start, feat)
        self.bins.write_rows(chunk.start, means)   # no fields with one angle block
        clock.lap("write")
        return WorkResult(clock.seconds)


@dataclass
class _RobustRowStage(Stage):
    """A pass over the detector rows of the spilled features (ranks and strong defects),
    bin means and offsets, reading ``hd`` rows each side of its chunk (the rows-first
    comparison's reach)."""

    features: Spill
    bins: Spill
    offsets: Spill
    n_angles: int
    chunk_rows: int = 1
    params: DetectParams = field(default_factory=DetectParams)

    @property
    def halo(self) -> int:
        """Rows read at each chunk side."""
        return depth_rule(self.features.shape[0], self.params.min_stripe_depth)

    def chunks(self) -> list[Chunk]:
        return row_chunks(self.features.shape[0], self.chunk_rows)


@dataclass
class RobustOffsetStage(_RobustRowStage):
    """Pass two: each row's offsets and robust scales for every angle set from the features
    of its rows and ``hd`` rows each side, into ``offsets`` (rows first; small)."""

    label: str = "detect stripes (robust, offsets)"

    def work(self, chunk: Chunk, data: object) -> WorkResult:
        n_rows = self.features.shape[0]
        lo, hi = rows_to_read(chunk.start, chunk.stop, n_rows, self.halo)
        feat = self.features.read_rows(lo, hi, scratch.buffer(
            "features", (hi - lo,) + self.features.shape[1:], np.float32))
        self.offsets.write_rows(chunk.start, row_offsets(
            feat, lo, (chunk.start, chunk.stop), n_rows, self.n_angles,
            self.params.min_stripe_depth))
        return WorkResult(None)


@dataclass
class RobustDecideStage(_RobustRowStage):
    """Pass three: the mask of each row chunk from the offsets of its rows and ``hd`` rows
    each side and its rows' angle-bin means; keeps the mask (like
    :class:`~nsgen.stages.stripes.MergeStage`) and returns the per-row (patch) flags."""

    patch_shape: tuple[int, int] | None = None
    mask_spill: Spill | None = None
    label: str = "decide stripes (robust)"

    def work(self, chunk: Chunk, data: object) -> WorkResult:
        n_rows = self.features.shape[0]
        lo, hi = rows_to_read(chunk.start, chunk.stop, n_rows, self.halo)
        qs = self.offsets.read_rows(lo, hi)
        xb = self.bins.read_rows(chunk.start, chunk.stop)
        mask = decide_offsets(qs, lo, xb, (chunk.start, chunk.stop), n_rows, self.n_angles,
                              depth=self.params.min_stripe_depth)
        if self.mask_spill is not None:
            self.mask_spill.write_band(chunk.start, np.packbits(mask.transpose(1, 0, 2),
                                                                axis=-1))
        return WorkResult(mask_flags(mask, self.patch_shape))


def detect_robust(run: StageRunner, source: ScanSource, shape: tuple[int, int, int],
                  dtype: str, params: DetectParams, work: Path,
                  patch_shape: tuple[int, int] | None = None,
                  mask_spill: Spill | None = None) -> np.ndarray:
    """The robust detector's mask of a scan in three passes (features and offsets in
    ``work``, removed at the end); returns the per-row (patch) flags, as
    :func:`~nsgen.stages.stripes.detect_stripes`."""
    n_angles, n_rows, n_cols = shape
    sizes, n_bins = feature_layout(n_angles)
    features = Spill.create(work / "robust-features.f32",
                            (n_rows, sum(sizes) + len(sizes), n_cols), "float32")
    bins = Spill.create(work / "robust-bins.f32", (n_rows, n_bins, n_cols), "float32")
    offsets = Spill.create(work / "robust-offsets.f64",  # tall: + row-alone scores per set
                           (n_rows, len(sizes) * (1 + TALL_SETS), n_cols + 1), "float64")
    try:
        sizing = scan_sizing(run, shape, dtype, FEATURE_FLOAT_COPIES,
                             worker_overhead=JIT_OVERHEAD)
        clocks = run.run(RobustFeatureStage(source, shape, dtype, sizing.chunk_rows, halo=0,
                                            features=features, bins=bins), sizing)
        run.say(StepClock.describe("detect stripes (robust, rows)", clocks))
        stage = RobustOffsetStage(features=features, bins=bins, offsets=offsets,
                                  n_angles=n_angles, params=params)
        # compute-only: the worker holds the feature rows it reads (with the halo), their
        # angle sets' contiguous copies and one background copy
        sizing = row_sizing(run, n_rows, row_bytes=features.row_bytes,
                            work_factor=OFFSET_WORK_FACTOR, halo=stage.halo,
                            worker_overhead=JIT_OVERHEAD)
        stage.chunk_rows = balanced(sizing.chunk_rows, n_rows, sizing.workers)
        run.run(stage, sizing)
        decide_stage = RobustDecideStage(features=features, bins=bins, offsets=offsets,
                                         n_angles=n_angles, params=params,
                                         patch_shape=patch_shape, mask_spill=mask_spill)
        # the worker holds its rows' features and mask (a byte per voxel), the offsets
        # of the halo are small
        sizing = row_sizing(run, n_rows, row_bytes=bins.row_bytes + n_angles * n_cols,
                            work_factor=1.5, worker_overhead=JIT_OVERHEAD)
        decide_stage.chunk_rows = sizing.chunk_rows
        return np.concatenate(run.run(decide_stage, sizing), axis=0)
    finally:
        for spill in (features, bins, offsets):
            spill.path.unlink(missing_ok=True)
