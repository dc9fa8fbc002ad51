"""Simple mode: analytic projection + stripes only (seed: Synthetic / Simple).

Per sample: phantom -> exact projection ``P3`` -> clean = ``P3`` and
stripe = ``clip(|X + stripes|, 0, 1)`` with ``X = (P3 - min) / (max - min)``
(docs/science.md B 4.6; ``mix`` stripes are each partial or full, A.4). Both volumes share
one scale: uint16 0..65535 stands for ``P3`` values ``min..max``.

Layout: ``root/NNNN/clean/NNNN_clean_VVVV.tif``, ``root/NNNN/stripe/NNNN_stripe_VVVV.tif``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nsgen.engine.pipeline import Chunk
from nsgen.modes.synthetic import (TaperedSpillStage, check, objects_record, project_sample,
                                   volume_path)
from nsgen.prep.scaling import Bounds, to_uint16_blocks
from nsgen.rng import generator
from nsgen.sim.projection import Geometry
from nsgen.sim.stripes import SIMPLE, add_stripes
from nsgen.stages.write import WriteStage

if TYPE_CHECKING:   # the main process's side only (see nsgen.modes.complex.ENGINE_PRELOAD)
    from nsgen.runner import SampleRecord, SampleRun

__all__ = ["ENGINE_PRELOAD", "check", "rescale", "run_sample", "stripe_sinogram"]

#: what the engine's processes import once, in the forkserver, before they start
#: (:class:`~nsgen.engine.pipeline.Engine` ``preload``): the stages and the TIFF writer. No
#: process of simple mode loads Numba: the images are scaled by NumPy
#: (:func:`~nsgen.prep.scaling.to_uint16_blocks`, the same integers; ~0.1 ms more per
#: 402 x 362 image than the compiled kernel), and loading it (~0.45 CPU-s, ~0.5-1 s of wall
#: on a loaded machine) was the forkserver's serial preload that the workers waited for
ENGINE_PRELOAD = ("nsgen.modes.simple", "nsgen.io.tiff")


def stripe_sinogram(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The stripe input of simple mode for one rescaled sinogram ``x`` in [0, 1]."""
    return np.clip(np.abs(add_stripes(x, rng, SIMPLE, vmax=1.0)), 0.0, 1.0)


def rescale(p3: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Projection values ``lo..hi`` -> [0, 1] (float32): the clean target of simple mode."""
    span = hi - lo
    return (p3 - np.float32(lo)) / np.float32(span if span > 0 else 1.0)


@dataclass(frozen=True)
class SimpleImages:
    """Pass two's images: every projection row rescaled to [0, 1], clean and with stripes."""

    seed: int
    sample: int
    lo: float
    hi: float

    def __call__(self, chunk: Chunk, rows: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
        x = rescale(rows, self.lo, self.hi)
        unit = Bounds(0.0, 1.0)
        for k, v in enumerate(range(chunk.start, chunk.stop)):
            stripe = stripe_sinogram(x[k], generator(self.seed, "stripes", self.sample, 0, v))
            yield volume_path(self.sample, "clean", v), to_uint16_blocks(x[k], unit)
            yield volume_path(self.sample, "stripe", v), to_uint16_blocks(stripe, unit)


def sample_record(sample: int, geometry: Geometry, objects: np.ndarray, lo: float,
                  hi: float) -> SampleRecord:
    """The manifest's record of a simple-mode sample: its files and their shared scale."""
    from nsgen.runner import SampleRecord

    record = SampleRecord(extra={"geometry": geometry.shape, "objects": objects_record(objects),
                                 "scale": "uint16 0..65535 = projection value lo..hi"})
    shape = (geometry.n_angles, geometry.n_columns)
    for v in range(geometry.n_rows):
        clean = volume_path(sample, "clean", v)
        record.add_file(clean, "clean", v, shape, (lo, hi))
        record.add_file(volume_path(sample, "stripe", v), "stripe", v, shape, (lo, hi),
                        target=clean)
    return record


def run_sample(run: SampleRun) -> SampleRecord:
    """Generate one simple-mode sample."""
    from concurrent.futures import ThreadPoolExecutor

    cfg = run.config
    with project_sample(run, work_factor=6) as done:
        geometry, objects, spill, sizing, lo, hi = (done.geometry, done.objects, done.spill,
                                                    done.sizing, done.lo, done.hi)
        for sub in ("clean", "stripe"):
            (run.dir / sub).mkdir(parents=True, exist_ok=True)
        images = SimpleImages(cfg.seed, run.sample, lo, hi)
        # the manifest's records need only the bounds: a thread makes them while the
        # workers write
        with ThreadPoolExecutor(1, thread_name_prefix="nsgen-record") as pool:
            record = pool.submit(sample_record, run.sample, geometry, objects, lo, hi)
            run.run(WriteStage(TaperedSpillStage(spill, sizing.chunk_rows, sizing.workers),
                               images, run.writer()), sizing)
            return record.result()
