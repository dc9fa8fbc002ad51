"""Simple mode: analytic projection + stripes only (seed: Synthetic / Simple).

Per sample: phantom -> exact projection ``P3`` -> clean = ``P3`` and
stripe = ``clip(|X + stripes|, 0, 1)`` with ``X = (P3 - min) / (max - min)``
(SCIENCE B 4.6; ``mix`` stripes are each partial or full, A.4). Both volumes share
one scale: uint16 0..65535 stands for ``P3`` values ``min..max``.

Layout: ``root/NNNN/clean/NNNN_clean_VVVV.tif``, ``root/NNNN/stripe/NNNN_stripe_VVVV.tif``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nsgen.engine.pipeline import Chunk, WorkResult
from nsgen.io.formats import Sink, TiffSink
from nsgen.modes.synthetic import SpillStage, check, objects_record, project_sample
from nsgen.prep.scaling import Bounds, to_uint16
from nsgen.rng import generator
from nsgen.runner import SampleRecord, SampleRun
from nsgen.sim.stripes import SIMPLE, add_stripes

__all__ = ["check", "rescale", "run_sample", "stripe_sinogram"]


def stripe_sinogram(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The stripe input of simple mode for one rescaled sinogram ``x`` in [0, 1]."""
    return np.clip(np.abs(add_stripes(x, rng, SIMPLE, vmax=1.0)), 0.0, 1.0)


def rescale(p3: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Projection values ``lo..hi`` -> [0, 1] (float32): the clean target of simple mode."""
    span = hi - lo
    return (p3 - np.float32(lo)) / np.float32(span if span > 0 else 1.0)


@dataclass
class WriteStage(SpillStage):
    """Rescale, add stripes, write both TIFFs of every row of a chunk."""

    seed: int = 0
    sample: int = 0
    lo: float = 0.0
    hi: float = 1.0
    out: Path = Path(".")
    sink: Sink = field(default_factory=TiffSink)
    label: str = "write"

    def work(self, chunk: Chunk, data: np.ndarray) -> WorkResult:
        x = rescale(data, self.lo, self.hi)
        unit = Bounds(0.0, 1.0)
        tag = f"{self.sample:04d}"

        def images(k: int, v: int) -> list[tuple[Path, np.ndarray]]:
            stripe = stripe_sinogram(x[k], generator(self.seed, "stripes", self.sample, 0, v))
            return [(self.out / "clean" / f"{tag}_clean_{v:04d}.tif", to_uint16(x[k], unit)),
                    (self.out / "stripe" / f"{tag}_stripe_{v:04d}.tif",
                     to_uint16(stripe, unit))]

        return WorkResult(None, *self.sink.write(
            item for k, v in enumerate(range(chunk.start, chunk.stop)) for item in images(k, v)))


def run_sample(run: SampleRun) -> SampleRecord:
    """Generate one simple-mode sample."""
    cfg = run.config
    done = project_sample(run, work_factor=6)
    geometry, objects, spill, sizing, lo, hi = (done.geometry, done.objects, done.spill,
                                                done.sizing, done.lo, done.hi)
    for sub in ("clean", "stripe"):
        (run.dir / sub).mkdir(parents=True, exist_ok=True)
    run.run(WriteStage(spill, sizing.chunk_rows, seed=cfg.seed, sample=run.sample, lo=lo,
                       hi=hi, out=run.dir, sink=run.sink), sizing)
    record = SampleRecord(extra={"geometry": geometry.shape, "objects": objects_record(objects),
                                 "scale": "uint16 0..65535 = projection value lo..hi"})
    shape = (geometry.n_angles, geometry.n_columns)
    for v in range(geometry.n_rows):
        clean = f"{run.tag}/clean/{run.tag}_clean_{v:04d}.tif"
        record.add_file(clean, "clean", v, shape, (lo, hi))
        record.add_file(f"{run.tag}/stripe/{run.tag}_stripe_{v:04d}.tif", "stripe", v, shape,
                        (lo, hi), target=clean)
    return record
