"""What the synthetic modes share: the sample's phantom, its projection stage, the layout."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from nsgen.engine.pipeline import Chunk, SlotSpec, Stage, WorkResult, tapered_chunks
from nsgen.io.spill import SHM_DIR, Spill
from nsgen.rng import generator
from nsgen.stages.spill import SpillStage
from nsgen.sim.phantom import OBJECT_FIELDS, random_foam
from nsgen.sim.projection import Geometry, project

if TYPE_CHECKING:   # the main process's side only: the engine's processes, which import this
    # module for ProjectStage, need neither (the runner imports the configuration, the
    # sizing's psutil and the output formats: ~25 ms of the forkserver's serial preload)
    from nsgen.config import Config
    from nsgen.engine.sizing import Sizing
    from nsgen.runner import SampleRun


def check(config: Config) -> None:
    """Nothing to read for synthetic modes: the options were validated by config."""


def phantom(config: Config, sample: int) -> np.ndarray:
    """The object list of ``sample`` (depends only on seed, sample and options)."""
    return random_foam(generator(config.seed, "phantom", sample), config.objects,
                       object_type=config.object_type)


def volume_path(sample: int, volume: str, v: int) -> str:
    """Where row ``v`` of a synthetic sample's ``volume`` (clean, stripe, shiftSS) goes.

    Examples
    --------
    >>> volume_path(3, "stripe", 9)
    '0003/stripe/0003_stripe_0009.tif'
    """
    tag = f"{sample:04d}"
    return f"{tag}/{volume}/{tag}_{volume}_{v:04d}.tif"


def objects_record(objects: np.ndarray) -> list[dict[str, float]]:
    """JSON form of an object list (floats round-trip exactly through ``repr``)."""
    return [{k: float(v) for k, v in zip(OBJECT_FIELDS, row)} for row in objects]


@dataclass
class TaperedSpillStage(SpillStage):
    """:class:`~nsgen.stages.spill.SpillStage` in
    :func:`~nsgen.engine.stage.tapered_chunks`."""

    workers: int = 1

    def chunks(self) -> list[Chunk]:
        return tapered_chunks(self.spill.shape[0], self.chunk_rows, self.workers)


def _read_nothing(chunk: Chunk, out: Any) -> None:
    """A chunk of a pass whose workers make their own data: nothing to read."""


@dataclass
class ProjectStage(Stage):
    """Analytic projection of detector-row chunks into a scratch volume.

    Returns per chunk the (min, max) of the projection values.
    """

    objects: np.ndarray
    geometry: Geometry
    spill: Spill
    chunk_rows: int
    label: str = "project"
    workers: int = 1

    def chunks(self) -> list[Chunk]:
        return tapered_chunks(self.geometry.n_rows, self.chunk_rows, self.workers)

    def slot_spec(self, chunk: Chunk) -> SlotSpec:
        """The slots of the passes that read the scratch volume back (the chunk's rows, as
        :class:`TaperedSpillStage` reads them), though this pass leaves them unread: the
        engine creates them now and the processes fault them in while the workers project
        (each worker its first chunk's slot, :meth:`early_reader`), instead of when the
        next pass starts, before its first chunk (a new stage whose slots are larger than
        the last one's gets new slots)."""
        return (chunk.rows, self.geometry.n_angles, self.geometry.n_columns), self.spill.dtype

    def early_reader(self) -> AbstractContextManager[Callable[[Chunk, Any], None] | None]:
        """Reads nothing: the main process hands the first chunks out at once, before the
        reader starts (:meth:`Engine.run <nsgen.engine.pipeline.Engine.run>`), so that each
        worker begins its first chunk as it starts, faulting its own slot in, instead of
        waiting for the reader to fault one slot after another in first."""
        return nullcontext(_read_nothing)

    def work(self, chunk: Chunk, data: np.ndarray) -> WorkResult:
        p = project(self.objects, self.geometry, (chunk.start, chunk.stop))
        self.spill.write_rows(chunk.start, p)
        return WorkResult((float(p.min()), float(p.max())))


@dataclass
class Projected:
    """A synthetic sample after its projection stage."""

    geometry: Geometry
    objects: np.ndarray
    spill: Spill
    sizing: Sizing
    lo: float
    hi: float


def scratch_sizing(run: SampleRun, geometry: Geometry, work_factor: float
                   ) -> tuple[Sizing, int]:
    """The sizing of every pass of a sample and how many rows of its scratch volume are
    kept in memory (:meth:`~nsgen.runner.StageRunner.with_memory_scratch`: the passes are
    sized within the rest of the limit, or, where an explicit ``--chunk-size`` does not fit
    that, all on disk).

    A scratch file on disk cost 2-5x the CPU of one in memory on its first write (the
    file system's block allocation and write-back: 0.77-1.70 against 0.32-0.35 CPU-s for
    N=512's 1.2 GB in 28-row chunks), and the write-back's disk traffic besides.
    """
    from nsgen.errors import NsgenError
    from nsgen.runner import StageRunner

    row_bytes = geometry.n_angles * geometry.n_columns * 4
    runner, rows = run.with_memory_scratch(row_bytes, geometry.n_rows)

    def sizing(runner: StageRunner) -> Sizing:
        return runner.sizing(n_rows=geometry.n_rows, row_bytes=row_bytes,
                             work_factor=work_factor)

    if rows:
        try:
            return sizing(runner), rows
        except NsgenError:   # the passes need that memory (an explicit --chunk-size)
            pass
    return sizing(run), 0


@contextmanager
def project_sample(run: SampleRun, work_factor: float) -> Iterator[Projected]:
    """Draw the sample's phantom and project it into its scratch volume
    (``run.work/projection.f32``, its first rows in memory: :func:`scratch_sizing`),
    removed when the context ends.

    Gives the geometry, the object list, the scratch volume, the sizing used for all
    stages of the sample and the global (min, max) of the projection.
    """
    from nsgen.engine.shm import SHM_PREFIX

    geometry = Geometry.for_size(run.config.size)
    objects = phantom(run.config, run.sample)
    run.log(f"[{run.tag}] phantom: {len(objects)} objects; projection {geometry.shape}")
    sizing, rows = scratch_sizing(run, geometry, work_factor)
    # named as the engine's segments (a killed run's are swept at the next start)
    memory = SHM_DIR / f"{SHM_PREFIX}{os.getpid()}-projection-{uuid.uuid4().hex[:12]}"
    spill = Spill.create(run.work / "projection.f32", geometry.shape, memory=memory,
                         memory_rows=rows)
    run.log(f"[{run.tag}] scratch: {spill.memory_rows} of {geometry.n_rows} rows in memory")
    try:
        ranges = run.run(ProjectStage(objects, geometry, spill, sizing.chunk_rows,
                                      workers=sizing.workers), sizing)
        yield Projected(geometry, objects, spill, sizing, min(r[0] for r in ranges),
                        max(r[1] for r in ranges))
    finally:
        spill.unlink()
