"""Paired mode: fake-artefact pairs from stripe-free sinograms (seed: Paired).

Each downsampled sinogram is classified with the full-resolution stripe mask of its shift
(``--mask`` archive key ``m<file stem>``, or detected on the fly). Stripe-free sinograms get
synthetic stripes (``PAIRED`` preset: 1 % of columns, partial or full, small random walk;
not clipped, the shared bounds cover them) -> ``fake_artifacts/{clean,stripe}``; sinograms
with real stripes go to ``real_artifacts/stripe`` (no clean target exists).
Names ``NNNN_shiftSS_VVVV.tif``; one scale per shift shared by clean and stripe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from nsgen.config import Config
from nsgen.engine import profile
from nsgen.engine.pipeline import Chunk, WorkResult
from nsgen.io.spill import Spill
from nsgen.modes.artefacts import (artefact_images, artefact_records, make_artefact_dirs,
                                   synthetic_stripes)
from nsgen.modes.real import ENGINE_PRELOAD as REAL_PRELOAD
from nsgen.modes.real import (flags_and_pass_one, OUT_SHAPE, add_range_used, check_mask_source, check_scans,
                              interior, interior_parts, keep, run_shifts, shift_flags,
                              sizing_for, spill_bounds, summarise, union)
from nsgen.prep.scaling import EMPTY, Bounds, to_uint16
from nsgen.rng import generator
from nsgen.runner import SampleRecord, SampleRun
from nsgen.sim.stripes import PAIRED
from nsgen.stages.fused import Alongside
from nsgen.stages.scan_source import ScanSource
from nsgen.stages.scan_stages import ResizeStage
from nsgen.stages.spill import SpillStage
from nsgen.stages.write import WriteStage

__all__ = ["ENGINE_PRELOAD", "check", "run_sample"]

#: modules the engine's processes import before they start
#: (:data:`nsgen.modes.real.ENGINE_PRELOAD`)
ENGINE_PRELOAD = ("nsgen.modes.paired", *REAL_PRELOAD)
#: float32 copies of a scan row a pass-one worker holds (:class:`PairStage`)
PASS_ONE_COPIES = 1.0


def check(config: Config) -> None:
    """Scans open, and the mask archive (if any) has a key of the right shape per shift."""
    for path, shape, *_ in check_scans(config):
        check_mask_source(config, path, shape)


@dataclass
class PairStage(ResizeStage):
    """Pass one: normalise, downsample, add stripes to the stripe-free rows -> scratch.

    With ``flags`` None (not known yet: read from the mask archive meanwhile), every row
    gets stripes and a chunk's value is :func:`row_bounds` instead of its summary.
    """

    flags: np.ndarray | None = field(default_factory=lambda: np.zeros(0, bool))
    seed: int = 0
    sample: int = 0
    shift: int = 0
    spill: Spill | None = None
    label: str = "normalise+pair"

    def process(self, chunk: Chunk, small: np.ndarray) -> WorkResult:
        out = np.full((chunk.rows, 2, *OUT_SHAPE), np.nan, np.float32)
        out[:, 0] = small
        with profile.phase("stripes"):
            for k, v in enumerate(range(chunk.start, chunk.stop)):
                if self.flags is None or not self.flags[v]:
                    rng = generator(self.seed, "stripes", self.sample, self.shift, v)
                    out[k, 1] = synthetic_stripes(small[k], rng, PAIRED)
        if self.flags is not None:
            return keep(self.spill, chunk, out, self.shape[1], self.source.bad,
                        self.percentile)
        assert self.spill is not None
        with profile.phase("scratch write"):
            self.spill.write_rows(chunk.start, out)
        with profile.phase("bounds"):
            return WorkResult(row_bounds(chunk, out, self.shape[1], self.source.bad))


def image_bounds(x: np.ndarray) -> Bounds:
    """Bounds of the finite values of ``x`` (EMPTY when there are none)."""
    return Bounds.of(x) if x.size and np.isfinite(x).any() else EMPTY


def row_bounds(chunk: Chunk, values: np.ndarray, n_rows: int, bad: np.ndarray | None
               ) -> list[tuple[int, Bounds, Bounds]]:
    """``(row, bounds of its clean sinogram, bounds of its stripe sinogram)`` of every
    interior row of a chunk (``values``: ``(rows, 2, *OUT_SHAPE)``), over the columns that
    count (:func:`~nsgen.modes.real.interior_parts`): the union of the clean bounds and of
    the stripe bounds of the stripe-free rows is pass one's summary with the flags known."""
    out = []
    for k, v in enumerate(range(chunk.start, chunk.stop)):
        if v in interior(n_rows):
            for part in interior_parts(Chunk(0, v, v + 1), values[k:k + 1], n_rows, bad):
                out.append((v, image_bounds(part[..., 0, :, :]),
                            image_bounds(part[..., 1, :, :])))
    return out


def pair_flags(run: SampleRun, shift: int, source: ScanSource, shape: tuple[int, int, int],
               dtype: str, alongside: Alongside | None = None) -> np.ndarray:
    """Which sinograms of a shift have real stripes: the mask's, and a dead or saturated
    pixel's (a bad pixel is a stripe of its sinogram); ``alongside``: see
    :func:`~nsgen.modes.real.shift_flags`."""
    with profile.phase("mask flags"):
        flags = shift_flags(run, run.config, shift, source, shape, dtype, None,
                            alongside)[:, 0]
    if source.bad is not None:
        flags = flags | source.bad.any(axis=1)
    return flags


def pass_one(run: SampleRun, shift: int, source: ScanSource, shape: tuple[int, int, int],
             dtype: str, spill: Spill) -> tuple[np.ndarray, Any]:
    """The flags and pass one's summary. With min/max bounds, pass one runs with the
    detector's first pass (on the fly) or while the flags are read from the archive
    (``--mask``), and is combined with the flags after (per-row bounds). Percentile bounds
    on the fly: pass one runs with the detector's first pass too, and
    :class:`FlagRowsStage` counts the scratch volume once the flags are known."""
    cfg = run.config
    sizing = sizing_for(run, shape, dtype, work_factor=PASS_ONE_COPIES)

    def stage(flags: np.ndarray | None) -> PairStage:
        return PairStage(source, shape, dtype, sizing.chunk_rows, flags=flags, seed=cfg.seed,
                         sample=run.sample, shift=shift, spill=spill,
                         percentile=cfg.bounds_percentile)

    def recount(flags: np.ndarray) -> Any:
        wsizing = run.sizing(n_rows=shape[1], row_bytes=spill.row_bytes, work_factor=3)
        return union(run.run(FlagRowsStage(spill, wsizing.chunk_rows, flags=flags,
                                           n_rows=shape[1], bad=source.bad,
                                           percentile=cfg.bounds_percentile), wsizing))

    return flags_and_pass_one(
        run, lambda along: pair_flags(run, shift, source, shape, dtype, along), stage, sizing,
        flagged_summary, PASS_ONE_COPIES, recount)


@dataclass
class FlagRowsStage(SpillStage):
    """After pass one ran without the flags (every row got stripes): the stripe images of
    the flagged rows made NaN again in the scratch volume (as pass one with the flags
    leaves them) and each chunk's summary (:func:`~nsgen.modes.real.summarise`, the key
    counts of percentile bounds) from its rows as pass one with the flags would have had
    them; one read of the small scratch volume instead of one of the scan."""

    flags: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    n_rows: int = 0
    bad: np.ndarray | None = None
    percentile: float = 0.0
    label: str = "flag rows"

    def work(self, chunk: Chunk, data: np.ndarray) -> WorkResult:
        values = np.array(data)
        for k, v in enumerate(range(chunk.start, chunk.stop)):
            if self.flags[v]:
                values[k, 1] = np.nan
                self.spill.write_rows(v, values[k:k + 1])
        with profile.phase("bounds"):
            return WorkResult(summarise(interior_parts(chunk, values, self.n_rows, self.bad),
                                        self.percentile))


def flagged_summary(rows: list[tuple[int, Bounds, Bounds]], flags: np.ndarray) -> Bounds:
    """Pass one's min/max summary from :func:`row_bounds` once the flags are known: every
    clean sinogram, and the stripe sinograms of the stripe-free rows."""
    return union([clean for _, clean, _ in rows] + [stripe for v, _, stripe in rows
                                                    if not flags[v]])


@dataclass(frozen=True, eq=False)
class PairImages:
    """Pass two's images: fake pairs and real-artefact inputs with the shift's bounds."""

    tag: str
    shift: int
    flags: np.ndarray
    bounds: Bounds

    def name(self, v: int) -> str:
        """File name of row ``v`` (in each artefact directory).

        Examples
        --------
        >>> PairImages("0000", 1, np.zeros(0, bool), Bounds(0, 1)).name(5)
        '0000_shift01_0005.tif'
        """
        return f"{self.tag}_shift{self.shift:02d}_{v:04d}.tif"

    def __call__(self, chunk: Chunk, rows: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
        for k, v in enumerate(range(chunk.start, chunk.stop)):
            for sub, img in artefact_images(bool(self.flags[v]), rows[k, 0], rows[k, 1]):
                yield f"{self.tag}/{sub}/{self.name(v)}", to_uint16(img, self.bounds)


def plan_shift(run: SampleRun, shift: int, source: ScanSource, shape: tuple[int, int, int],
               dtype: str) -> list[dict[str, Any]]:
    """Mask flags, then both passes of one shift; returns its manifest entries."""
    spill = Spill.create(run.work / f"shift{shift:02d}.f32", (shape[1], 2, *OUT_SHAPE))
    flags, summary = pass_one(run, shift, source, shape, dtype, spill)
    run.log(f"[{run.tag}] shift {shift}: {int(flags.sum())} of {len(flags)} sinograms have "
            f"real stripes")
    bounds = spill_bounds(run, spill, summary, shape[1], source.bad)
    make_artefact_dirs(run.dir)
    images = PairImages(run.tag, shift, flags, bounds)
    wsizing = run.sizing(n_rows=shape[1], row_bytes=spill.row_bytes, work_factor=3)
    written = run.run(WriteStage(SpillStage(spill, wsizing.chunk_rows), images, run.writer()),
                      wsizing)
    spill.path.unlink()
    files: list[dict[str, Any]] = []
    for v in range(shape[1]):
        files += artefact_records(run.tag, shift, v, images.name(v), bool(flags[v]),
                                  OUT_SHAPE, bounds)
    add_range_used(files, written)
    return files


def run_sample(run: SampleRun) -> SampleRecord:
    """Generate the paired-mode sample of a scan (all shifts)."""
    return run_shifts(run, plan_shift)
