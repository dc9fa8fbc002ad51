"""The ``robust`` stripe detector over a scan in two passes (like Larix's candidates/merge).

Pass one (:class:`RobustFeatureStage`) reads row chunks with no halo and stores what the
detector needs of each row from that row alone (:func:`~nsgen.prep.stripe_robust.
row_features`: the ranks of every angle set, the strong defects, the means over angle
bins; about a quarter of a float32 row at 1801 angles) in a scratch volume; pass two
(:class:`RobustDecideStage`) reads those features with the detector's halo (``2 hd`` rows
each side) and decides (:func:`~nsgen.prep.stripe_robust.decide`). The rows are ranked
once, not once per chunk and halo; the mask equals the whole-volume computation exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nsgen.engine import scratch
from nsgen.engine.pipeline import Chunk, Stage, WorkResult, row_chunks
from nsgen.io.spill import Spill
from nsgen.prep.detect_params import DetectParams
from nsgen.prep.normalise import flat_field_log
from nsgen.prep.stripe_detect import rows_to_read
from nsgen.prep.stripe_robust import (HALO, decide, depth_rule, feature_layout,
                                      row_features)
from nsgen.runner import StageRunner
from nsgen.stages.scan_sizing import row_sizing, scan_sizing
from nsgen.stages.scan_source import ScanSource
from nsgen.stages.scan_stages import ScanStage, load_flat_field
from nsgen.stages.stripes import JIT_OVERHEAD, mask_flags

__all__ = ["RobustDecideStage", "RobustFeatureStage", "detect_robust", "feature_fields"]

#: float32 copies of a row a pass-one worker holds (the volume, a sorted block, features)
FEATURE_FLOAT_COPIES = 2.5
#: bytes a pass-two worker holds per feature byte read (the features with the halo, the
#: background copy, the mask rows: 1 byte per voxel against 4 x fields per column)
DECIDE_WORK_FACTOR = 3.0


def feature_fields(n_angles: int) -> int:
    """Float32 fields per column of a row's features (:func:`feature_layout`).

    Examples
    --------
    >>> feature_fields(1801), feature_fields(100)
    (489, 33)
    """
    sizes, bins = feature_layout(n_angles)
    return sum(sizes) + len(sizes) + bins


@dataclass
class RobustFeatureStage(ScanStage):
    """Pass one: each row's features (no halo) into ``features`` (rows first)."""

    features: Spill | None = None
    label: str = "detect stripes (robust, rows)"

    def prepare(self) -> None:
        load_flat_field()

    def work(self, chunk: Chunk, data: list[np.ndarray]) -> WorkResult:
        assert self.features is not None
        raw, flat, dark = data
        volume = flat_field_log(raw, flat, dark, sinograms_first=False)
        self.features.write_rows(chunk.start, row_features(volume))
        return WorkResult(None)


@dataclass
class RobustDecideStage(Stage):
    """Pass two: the mask of each row chunk from the features of its rows and ``2 hd``
    rows each side; keeps the mask (like :class:`~nsgen.stages.stripes.MergeStage`) and
    returns the per-row (patch) flags."""

    features: Spill
    n_angles: int
    chunk_rows: int = 1
    params: DetectParams = field(default_factory=DetectParams)
    patch_shape: tuple[int, int] | None = None
    mask_spill: Spill | None = None
    label: str = "decide stripes (robust)"

    @property
    def halo(self) -> int:
        """Rows of features read at each chunk side."""
        return HALO * depth_rule(self.features.shape[0], self.params.min_stripe_depth)

    def chunks(self) -> list[Chunk]:
        return row_chunks(self.features.shape[0], self.chunk_rows)

    def work(self, chunk: Chunk, data: object) -> WorkResult:
        n_rows = self.features.shape[0]
        lo, hi = rows_to_read(chunk.start, chunk.stop, n_rows, self.halo)
        feat = self.features.read_rows(lo, hi, scratch.buffer(
            "features", (hi - lo,) + self.features.shape[1:], np.float32))
        mask = decide(feat, lo, (chunk.start, chunk.stop), n_rows, self.n_angles,
                      depth=self.params.min_stripe_depth)
        if self.mask_spill is not None:
            self.mask_spill.write_band(chunk.start, np.packbits(mask.transpose(1, 0, 2),
                                                                axis=-1))
        return WorkResult(mask_flags(mask, self.patch_shape))


def detect_robust(run: StageRunner, source: ScanSource, shape: tuple[int, int, int],
                  dtype: str, params: DetectParams, work: Path,
                  patch_shape: tuple[int, int] | None = None,
                  mask_spill: Spill | None = None) -> np.ndarray:
    """The robust detector's mask of a scan in two passes (features in ``work``, removed at
    the end); returns the per-row (patch) flags, as
    :func:`~nsgen.stages.stripes.detect_stripes`."""
    n_angles, n_rows, n_cols = shape
    fields = feature_fields(n_angles)
    features = Spill.create(work / "robust-features.f32", (n_rows, fields, n_cols), "float32")
    try:
        sizing = scan_sizing(run, shape, dtype, FEATURE_FLOAT_COPIES,
                             worker_overhead=JIT_OVERHEAD)
        run.run(RobustFeatureStage(source, shape, dtype, sizing.chunk_rows, halo=0,
                                   features=features), sizing)
        decide_stage = RobustDecideStage(features=features, n_angles=n_angles, params=params,
                                         patch_shape=patch_shape, mask_spill=mask_spill)
        # compute-only: the worker holds the feature rows it reads (with the halo) and
        # the mask rows it makes (n_angles bytes per column, about as much again)
        sizing = row_sizing(run, n_rows, row_bytes=features.row_bytes,
                            work_factor=DECIDE_WORK_FACTOR + n_angles / (4 * fields),
                            halo=decide_stage.halo, worker_overhead=JIT_OVERHEAD)
        decide_stage.chunk_rows = sizing.chunk_rows
        return np.concatenate(run.run(decide_stage, sizing), axis=0)
    finally:
        features.path.unlink(missing_ok=True)
