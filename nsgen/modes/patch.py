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

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from nsgen.config import Config
from nsgen.engine import profile
from nsgen.engine.pipeline import Chunk, WorkResult
from nsgen.errors import NsgenError
from nsgen.modes.artefacts import (artefact_images, artefact_records, make_artefact_dirs,
                                   synthetic_stripes)
from nsgen.modes.real import (add_range_used, check_mask_source, check_scans, interior,
                              run_shifts, scan_bounds, shift_flags, sizing_for, summarise,
                              union)
from nsgen.prep.patches import crop_bounds, crop_to_multiple, split_patches
from nsgen.prep.scaling import Bounds, to_uint16
from nsgen.rng import generator
from nsgen.runner import SampleRecord, SampleRun
from nsgen.sim.stripes import PATCH
from nsgen.stages.scan_source import ScanSource
from nsgen.stages.scan_stages import ScanStage
from nsgen.stages.write import WriteStage

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


@dataclass(frozen=True, eq=False)
class PatchCutter:
    """The patches of a shift's sinograms: clean or real-artefact input, and fake stripes."""

    patch_shape: tuple[int, int]
    flags: np.ndarray          # (rows, patches): real stripes in the patch
    seed: int
    sample: int
    shift: int

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


@dataclass
class BoundsStage(ScanStage):
    """Pass one: bounds of every patch (and its fake stripes) of the interior rows."""

    cutter: PatchCutter | None = None
    label: str = "normalise+patches"

    #: level two of percentile bounds: the key bins to count (this pass again)
    refine: tuple[int, ...] = ()

    def process(self, chunk: Chunk, sinos: np.ndarray) -> WorkResult:
        assert self.cutter is not None
        inside = interior(self.shape[1])
        ps = self.cutter.patch_shape
        parts = []
        with profile.phase("patches+stripes"):
            for k, v in enumerate(range(chunk.start, chunk.stop)):
                if v in inside:
                    good = patch_good_columns(self.source.bad, v, self.shape, ps)
                    for p, first, stripe in self.cutter.patches(v, sinos[k]):
                        cols = slice(None) if good is None else good[p]
                        parts += [x[:, cols] for x in (first, stripe) if x is not None]
        with profile.phase("bounds"):
            return WorkResult(summarise(parts, self.percentile, self.refine))


@dataclass(frozen=True, eq=False)
class PatchImages:
    """Pass two's images: the patches recomputed from the scan, with the shift's bounds."""

    cutter: PatchCutter
    tag: str
    bounds: Bounds

    def name(self, v: int, p: int) -> str:
        """File name of patch ``p`` of row ``v`` (in each artefact directory)."""
        return f"{self.tag}_shift{self.cutter.shift:02d}_{v:04d}_w{p:02d}.tif"

    def __call__(self, chunk: Chunk, rows: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
        for k, v in enumerate(range(chunk.start, chunk.stop)):
            for p, first, stripe in self.cutter.patches(v, rows[k]):
                for sub, img in artefact_images(stripe is None, first, stripe):
                    yield f"{self.tag}/{sub}/{self.name(v, p)}", to_uint16(img, self.bounds)


def patch_good_columns(bad: np.ndarray | None, v: int, shape: tuple[int, int, int],
                       patch_shape: tuple[int, int]) -> np.ndarray | None:
    """Per patch of row ``v``: its columns without a bad pixel, ``(n_patches, pw)`` bool
    in patch order ``p = w * nh + h``; None when the scan has no bad pixel.

    Examples
    --------
    >>> bad = np.zeros((1, 7), bool); bad[0, 4] = True   # columns 0..5 kept (crop)
    >>> patch_good_columns(bad, 0, (4, 1, 7), (2, 3)).astype(int).tolist()
    [[1, 1, 1], [1, 1, 1], [1, 0, 1], [1, 0, 1]]
    """
    if bad is None:
        return None
    rs, cs = crop_bounds((shape[0], shape[2]), patch_shape)
    ph, pw = patch_shape
    nh = (rs.stop - rs.start) // ph
    blocks = ~bad[v, cs].reshape(-1, pw)                 # (nw, pw)
    return np.repeat(blocks, nh, axis=0)


def plan_shift(run: SampleRun, shift: int, source: ScanSource, shape: tuple[int, int, int],
               dtype: str) -> list[dict[str, Any]]:
    """Mask flags per patch, bounds pass, write pass; returns the manifest entries."""
    cfg = run.config
    ph, pw = cfg.patch_size
    ps = (ph, pw)
    flags = shift_flags(run, cfg, shift, source, shape, dtype, ps)
    if source.bad is not None:   # a dead or saturated pixel is a stripe of its patches
        goods = [patch_good_columns(source.bad, v, shape, ps) for v in range(shape[1])]
        flags = flags | np.stack([~g.all(axis=1) for g in goods if g is not None])
    run.log(f"[{run.tag}] shift {shift}: {int(flags.sum())} of {flags.size} patches have real "
            f"stripes")
    sizing = sizing_for(run, shape, dtype, work_factor=4)
    cutter = PatchCutter(ps, flags, cfg.seed, run.sample, shift)
    summary = union(run.run(BoundsStage(source, shape, dtype, sizing.chunk_rows, cutter=cutter,
                                        percentile=cfg.bounds_percentile), sizing))
    bounds = scan_bounds(run, summary, lambda bins: union(run.run(BoundsStage(
        source, shape, dtype, sizing.chunk_rows, cutter=cutter, refine=bins,
        label="percentiles"), sizing)))
    make_artefact_dirs(run.dir)
    images = PatchImages(cutter, run.tag, bounds)
    written = run.run(WriteStage(ScanStage(source, shape, dtype, sizing.chunk_rows), images,
                                 run.writer()), sizing)
    files: list[dict[str, Any]] = []
    for v in range(shape[1]):
        for p in range(flags.shape[1]):
            files += artefact_records(run.tag, shift, v, images.name(v, p), bool(flags[v, p]),
                                      ps, bounds, patch=p)
    add_range_used(files, written)
    return files


def run_sample(run: SampleRun) -> SampleRecord:
    """Generate the patch-mode sample of a scan (all shifts)."""
    return run_shifts(run, plan_shift)
