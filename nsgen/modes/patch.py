"""Patch mode: full-resolution patches, fake/real split per patch (seed: Patch).

No downsampling. Every normalised sinogram is cropped to a multiple of ``--patch-size``
(symmetric; an odd remainder loses its extra row at the bottom and column at the right)
and cut into patches numbered column block first (``p = w * nh + h``). Each patch is
classified with the mask; stripe-free patches get synthetic full stripes (``PATCH`` preset)
-> ``fake_artifacts/{clean,stripe}``, others -> ``real_artifacts/stripe``.
Names ``NNNN_shiftSS_VVVV_wPP.tif``; one scale per shift. Pass two recomputes pass one's
patches from the scan (bit-identical) instead of keeping a full-resolution scratch copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from nsgen.config import Config
from nsgen.engine.pipeline import Chunk, WorkResult
from nsgen.errors import NsgenError
from nsgen.io.formats import Sink, TiffSink
from nsgen.modes.real import (ScanSource, ScanStage, artefact_images, artefact_records,
                              check_mask_source, check_scans, interior, make_artefact_dirs,
                              run_shifts, shift_flags, sizing_for, synthetic_stripes, union)
from nsgen.prep.patches import crop_to_multiple, split_patches
from nsgen.prep.scaling import EMPTY, Bounds, to_uint16
from nsgen.rng import generator
from nsgen.runner import SampleRecord, SampleRun
from nsgen.sim.stripes import PATCH

__all__ = ["check", "run_sample"]


def check(config: Config) -> None:
    """Scans open, patches fit the sinograms, the mask archive matches."""
    ph, pw = config.patch_size
    for path, shape, *_ in check_scans(config):
        if ph > shape[0] or pw > shape[2]:
            raise NsgenError(f"--patch-size {ph} {pw} is larger than the sinograms of {path} "
                             f"({shape[0]} angles x {shape[2]} columns); choose a patch size "
                             f"of at most {shape[0]} {shape[2]}")
        check_mask_source(config, path, shape)


@dataclass
class PatchStage(ScanStage):
    """Both passes: pass one returns interior bounds, pass two writes the patches."""

    patch_shape: tuple[int, int] = (1801, 256)
    flags: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))
    seed: int = 0
    sample: int = 0
    shift: int = 0
    bounds: Bounds | None = None
    out: Path = Path(".")
    prefix: str = ""
    sink: Sink = field(default_factory=TiffSink)
    label: str = "normalise+patches"

    def patches(self, v: int, sino: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray
                                                                  | None]]:
        """``(p, clean_or_real_input, stripe_or_None)`` for every patch of row ``v``."""
        parts = split_patches(crop_to_multiple(sino, self.patch_shape), self.patch_shape)
        for p, patch in enumerate(parts):
            if self.flags[v, p]:
                yield p, patch, None
            else:
                rng = generator(self.seed, "stripes", self.sample, self.shift, v, p)
                yield p, patch, synthetic_stripes(patch, rng, PATCH)

    def process(self, chunk: Chunk, sinos: np.ndarray) -> WorkResult:
        keep = interior(self.shape[1])
        if self.bounds is None:
            b = EMPTY
            for k, v in enumerate(range(chunk.start, chunk.stop)):
                if v in keep:
                    for _, first, stripe in self.patches(v, sinos[k]):
                        b = b.union(Bounds.of(first))
                        if stripe is not None:
                            b = b.union(Bounds.of(stripe))
            return WorkResult(b)
        bounds = self.bounds
        return WorkResult(None, *self.sink.write(
            (self.out / sub / f"{self.prefix}_{v:04d}_w{p:02d}.tif", to_uint16(img, bounds))
            for k, v in enumerate(range(chunk.start, chunk.stop))
            for p, first, stripe in self.patches(v, sinos[k])
            for sub, img in artefact_images(stripe is None, first, stripe)))


def plan_shift(run: SampleRun, shift: int, source: ScanSource, shape: tuple[int, int, int],
               dtype: str) -> list[dict[str, Any]]:
    """Mask flags per patch, bounds pass, write pass; returns the manifest entries."""
    cfg = run.config
    ps = tuple(cfg.patch_size)
    flags = shift_flags(run, cfg, shift, source, shape, dtype, ps)  # type: ignore[arg-type]
    run.log(f"[{run.tag}] shift {shift}: {int(flags.sum())} of {flags.size} patches have real "
            f"stripes")
    sizing = sizing_for(run, shape, dtype, work_factor=4)
    prefix = f"{run.tag}_shift{shift:02d}"
    common = dict(patch_shape=ps, flags=flags, seed=cfg.seed, sample=run.sample, shift=shift,
                  out=run.dir, prefix=prefix, sink=run.sink)
    bounds = union(run.run(PatchStage(source, shape, dtype, sizing.chunk_rows, **common),
                           sizing))
    make_artefact_dirs(run.dir)
    run.run(PatchStage(source, shape, dtype, sizing.chunk_rows, bounds=bounds, label="write",
                       **common), sizing)
    files: list[dict[str, Any]] = []
    for v in range(shape[1]):
        for p in range(flags.shape[1]):
            files += artefact_records(run.tag, shift, v, f"{prefix}_{v:04d}_w{p:02d}.tif",
                                      bool(flags[v, p]), ps, bounds, patch=p)
    return files


def run_sample(run: SampleRun) -> SampleRecord:
    """Generate the patch-mode sample of a scan (all shifts)."""
    return run_shifts(run, plan_shift)
