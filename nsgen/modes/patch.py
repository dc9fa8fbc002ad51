"""Patch mode: full-resolution patches, fake/real split per patch (seed: Patch).

No downsampling. Every normalised sinogram is cropped to a multiple of ``--patch-size``
(symmetric; an odd remainder loses its extra row at the bottom and column at the right)
and cut into patches numbered column block first (``p = w * nh + h``). Each patch is
classified with the mask; stripe-free patches get synthetic full stripes (``PATCH`` preset)
-> ``fake_artifacts/{clean,stripe}``, others -> ``real_artifacts/stripe``.
Names ``NNNN_shiftSS_VVVV_wPP.tif``; one scale per shift. Pass two recomputes pass one's
patches from the scan (bit-identical) instead of keeping a full-resolution scratch copy.
Patches are views of the normalised sinogram, never copied: each pass normalises a
detector row from the raw counts in a compiled kernel (:mod:`nsgen.prep._patches_jit`) that
works on each angle while it is in cache - pass one for every patch column's extremes, pass
two to scale every patch into its own image with the extremes of its integers (each image's
``range_used``) and its maximum (the stripes' scale) - into one row buffer per process
(percentile bounds: pass one normalises whole chunks, it counts every value). Writing
TIFFs, pass two scales each row into one of two buffers a worker keeps, and a fake pair's
stripe image is its clean image's buffer with the stripe columns pasted in once the clean
image is written (:class:`PatchImages`, :class:`~nsgen.stages.write.Written`): no new
memory per row, no copy per stripe image.
With ``--mask`` and min/max bounds, the mask's flags are read on a thread while pass one
runs (every patch gets its fake stripes there, and its bounds are kept per patch until
the flags say which of them count), as in paired mode. Writing TIFFs, the files' empty
temporaries are created on a thread while pass one runs (:class:`~nsgen.io.tiff.Temporaries`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

from nsgen.config import Config
from nsgen.engine import profile, scratch
from nsgen.engine.pipeline import Chunk, WorkResult
from nsgen.engine.stage import ReadsThrough
from nsgen.errors import NsgenError
from nsgen.io.tiff import Temporaries, TiffWriter
from nsgen.modes.artefacts import artefact_records, make_artefact_dirs, stripe_scale
from nsgen.modes.real import ENGINE_PRELOAD as REAL_PRELOAD
from nsgen.modes.real import (flags_and_pass_one, add_range_used, check_mask_source, check_scans, interior,
                              run_shifts, scan_bounds, shift_flags, sizing_for, summarise,
                              union)
from nsgen.prep.normalise import check_raw, pixel_constants
from nsgen.prep.patches import (crop_bounds, fitted_patch_shape, normalised_column_extremes,
                                 normalised_scaled_patches, patch_stack_shape, patch_views)
from nsgen.prep.scaling import EMPTY, Bounds, to_uint16
from nsgen.rng import generator
from nsgen.runner import SampleRecord, SampleRun, note_after_checks
from nsgen.sim.stripes import PATCH, stripe_spans
from nsgen.stages.fused import Alongside
from nsgen.stages.scan_source import ScanSource
from nsgen.stages.scan_stages import ScanStage
from nsgen.stages.write import WriteStage, Written, range_of, releases_images

__all__ = ["ENGINE_PRELOAD", "check", "run_sample"]

#: modules the engine's processes import before they start
#: (:data:`nsgen.modes.real.ENGINE_PRELOAD`)
ENGINE_PRELOAD = ("nsgen.modes.patch", "nsgen.prep._patches_jit", *REAL_PRELOAD)
#: float32 copies of a scan row a pass-one worker holds (:class:`BoundsStage`)
PASS_ONE_COPIES = 4.0


def patch_shape(config: Config, shape: tuple[int, int, int]) -> tuple[int, int]:
    """The patches of a scan of ``shape`` (angles, rows, columns): ``--patch-size``, or
    without it the default cut down to the sinograms (:func:`fitted_patch_shape`)."""
    return fitted_patch_shape(config.patch_size, config.patch_size_given, (shape[0], shape[2]))


def check(config: Config) -> None:
    """Scans open, patches fit the sinograms, the mask archive matches."""
    for path, shape, *_ in check_scans(config):
        ph, pw = patch_shape(config, shape)
        if (ph, pw) != tuple(config.patch_size) and not config.quiet:
            note_after_checks(f"nsgen: --patch-size not given: {path} has {shape[0]} angles x "
                              f"{shape[2]} columns, so its patches are {ph} x {pw} (the "
                              f"default {config.patch_size[0]} x {config.patch_size[1]}, cut "
                              f"down to the sinograms)")
        if ph > shape[0] or pw > shape[2]:
            raise NsgenError(f"--patch-size {ph} {pw} is larger than the sinograms of {path} "
                             f"({shape[0]} angles x {shape[2]} columns); choose a patch size "
                             f"of at most {shape[0]} {shape[2]}")
        check_mask_source(config, path, shape)


@dataclass(frozen=True, eq=False)
class PatchCutter:
    """The patches of a shift's sinograms: clean or real-artefact input, and fake stripes."""

    patch_shape: tuple[int, int]
    #: (rows, patches): real stripes in the patch; None: not known yet (every patch gets
    #: its fake stripes)
    flags: np.ndarray | None
    seed: int
    sample: int
    shift: int

    def patches(self, v: int, sino: np.ndarray, maxima: np.ndarray | None = None
                ) -> Iterator[tuple[int, np.ndarray, Spans | None]]:
        """``(p, clean_or_real_input, stripes_or_None)`` for every patch of row ``v`` (a
        view of ``sino``): a fake pair's stripe image is the patch with the :data:`Spans`
        pasted on (:func:`paste`; :func:`~nsgen.modes.artefacts.synthetic_stripes` as
        computed by :func:`~nsgen.sim.stripes.stripe_spans`, touching only the striped
        columns). ``maxima``: each patch's maximum, when known already."""
        for p, patch in enumerate(patch_views(sino, self.patch_shape)):
            if self.flags is not None and self.flags[v, p]:
                yield p, patch, None
            else:
                rng = generator(self.seed, "stripes", self.sample, self.shift, v, p)
                top = None if maxima is None else float(maxima[p])
                yield p, patch, stripe_spans(patch, rng, PATCH, stripe_scale(patch, top))


#: ``(first column, values)`` of the column ranges a patch's fake stripes change
Spans = list[tuple[int, np.ndarray]]


def paste(image: np.ndarray, spans: Spans, into: np.ndarray | None = None) -> np.ndarray:
    """A copy of ``image`` with each span's values in its columns (written ``into`` that
    array, when given: ``image`` itself pastes in place).

    Examples
    --------
    >>> paste(np.zeros((1, 4), np.uint16), [(1, np.array([[7, 8]], np.uint16))]).tolist()
    [[0, 7, 8, 0]]
    >>> x = np.zeros((1, 3), np.uint16)
    >>> paste(x, [(2, np.array([[5]], np.uint16))], into=x) is x, x.tolist()
    (True, [[0, 0, 5]])
    """
    if into is None:
        out = image.copy()
    else:
        out = into
        if out is not image:
            out[...] = image
    for left, values in spans:
        out[:, left:left + values.shape[1]] = values
    return out


def patch_bounds(patch: np.ndarray, spans: Spans | None, good: np.ndarray | None,
                 extremes: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> tuple[Bounds, Bounds | None]:
    """Bounds of a patch and of its stripe image (None without stripes) over its ``good``
    columns (all when None), each :func:`image_bounds` of the image, found from the
    patch's column extremes (``extremes``: its columns' minima and maxima, when known
    already) and the striped columns alone (no stripe image is made).

    Examples
    --------
    >>> x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    >>> patch_bounds(x, [(2, np.array([[9.0], [0.5]], np.float32))], None)
    (Bounds(lo=1.0, hi=6.0), Bounds(lo=0.5, hi=9.0))
    >>> patch_bounds(x, None, np.array([False, True, False]))
    (Bounds(lo=2.0, hi=5.0), None)
    """
    lo, hi = (patch.min(axis=0), patch.max(axis=0)) if extremes is None else extremes
    keep = np.ones(lo.shape, bool) if good is None else good
    clean = _extremes(lo[keep], hi[keep])
    if not (np.isfinite(clean.lo) and np.isfinite(clean.hi)):   # no columns, or not finite
        stripe = None if spans is None else paste(patch, spans)[:, keep]
        return image_bounds(patch[:, keep]), None if stripe is None else image_bounds(stripe)
    if spans is None:
        return clean, None
    untouched = keep.copy()
    parts = []
    for left, values in spans:
        cols = keep[left:left + values.shape[1]]
        untouched[left:left + values.shape[1]] = False
        parts.append(image_bounds(values[:, cols]))
    return clean, union([_extremes(lo[untouched], hi[untouched]), *parts])


def _extremes(lo: np.ndarray, hi: np.ndarray) -> Bounds:
    """Bounds from per-column minima and maxima (EMPTY for no columns)."""
    return Bounds(float(lo.min()), float(hi.max())) if lo.size else EMPTY


@dataclass
class BoundsStage(ScanStage):
    """Pass one: bounds of every patch (and its fake stripes) of the interior rows."""

    cutter: PatchCutter | None = None
    label: str = "normalise+patches"

    #: level two of percentile bounds: the key bins to count (this pass again)
    refine: tuple[int, ...] = ()

    @property
    def exact(self) -> bool:
        """Whether the pass counts every value (percentile bounds) rather than taking the
        patches' extremes."""
        return self.percentile != 0 or bool(self.refine)

    def prepare(self) -> None:
        if self.exact:
            super().prepare()
            return
        _prepare_row_kernels(self.shape)

    def work(self, chunk: Chunk, data: list[np.ndarray]) -> WorkResult:
        """:meth:`process` of the chunk's normalised sinograms when the pass counts every
        value; else the bounds from each interior row's column extremes, the row
        normalised as they are taken (:func:`~nsgen.prep.patches.normalised_column_extremes`,
        into a sinogram buffer the process keeps; the other rows are not normalised)."""
        if self.exact:
            return super().work(chunk, data)
        assert self.cutter is not None
        raw, flat, dark = check_raw(*data)
        constants = pixel_constants(flat, dark)
        sino = scratch.buffer(SINOGRAM, (raw.shape[0], raw.shape[2]), np.float32)
        inside = interior(self.shape[1])
        ps = self.cutter.patch_shape
        found = []
        for k, v in enumerate(range(chunk.start, chunk.stop)):
            if v not in inside:
                continue
            good = patch_good_columns(self.source.bad, v, self.shape, ps)
            with profile.phase("normalise+column extremes"):
                lo, hi, _ = normalised_column_extremes(raw, k, constants, ps, sino)
            with profile.phase("stripes+bounds"):
                for p, first, spans in self.cutter.patches(v, sino, hi.max(axis=1)):
                    cols = None if good is None else good[p]
                    found.append((v, p, *patch_bounds(first, spans, cols, (lo[p], hi[p]))))
        if self.cutter.flags is None:
            return WorkResult(found)
        with profile.phase("bounds"):
            return WorkResult(union([b for _, _, *both in found for b in both
                                     if b is not None]))

    def process(self, chunk: Chunk, sinos: np.ndarray) -> WorkResult:
        """The chunk's summary (:func:`~nsgen.modes.real.summarise`) from its normalised
        sinograms, counting every value (percentile bounds)."""
        assert self.cutter is not None
        inside = interior(self.shape[1])
        parts = []
        for k, v in enumerate(range(chunk.start, chunk.stop)):
            if v not in inside:
                continue
            good = patch_good_columns(self.source.bad, v, self.shape, self.cutter.patch_shape)
            with profile.phase("patches+stripes"):
                for p, first, spans in self.cutter.patches(v, sinos[k]):
                    cols = None if good is None else good[p]
                    these = [first] if spans is None else [first, paste(first, spans)]
                    parts += [x if cols is None else x[:, cols] for x in these]
        with profile.phase("bounds"):
            return WorkResult(summarise(parts, self.percentile, self.refine))


def image_bounds(x: np.ndarray) -> Bounds:
    """Bounds of ``x`` as :func:`~nsgen.modes.real.summarise` counts it (EMPTY when empty).

    Examples
    --------
    >>> image_bounds(np.array([[2.0, -1.0]])), image_bounds(np.zeros((3, 0))) == EMPTY
    (Bounds(lo=-1.0, hi=2.0), True)
    """
    return Bounds.of(x) if x.size else EMPTY


def flagged_summary(patches: list[tuple[int, int, Bounds, Bounds | None]],
                    flags: np.ndarray) -> Bounds:
    """Pass one's min/max summary from the per-patch bounds of a pass run without the
    flags: every patch's first image, and the fake stripes of the stripe-free patches.

    Examples
    --------
    >>> flags = np.array([[False, True]])
    >>> flagged_summary([(0, 0, Bounds(0, 1), Bounds(-1, 1)),
    ...                  (0, 1, Bounds(0, 2), Bounds(-5, 9))], flags)
    Bounds(lo=-1, hi=2)
    """
    return union([first for _, _, first, _ in patches]
                 + [stripe for v, p, _, stripe in patches if not flags[v, p] and stripe is not None])


@dataclass(frozen=True, eq=False)
class PatchImages:
    """Pass two's images: the patches recomputed from the scan, with the shift's bounds.

    With ``reuse`` (a writer that releases its images, :class:`~nsgen.stages.write.Written`)
    each row is scaled into one of two buffers kept by the process, and a stripe image is
    its clean patch's buffer with the scaled stripe columns pasted in once the clean image
    is written: no new memory per row or per stripe image (fresh pages cost the kernel a
    zeroing each), no copy of a patch."""

    cutter: PatchCutter
    tag: str
    bounds: Bounds
    reuse: bool = False

    def name(self, v: int, p: int) -> str:
        """File name of patch ``p`` of row ``v`` (in each artefact directory)."""
        return patch_name(self.tag, self.cutter.shift, v, p)

    def __call__(self, chunk: Chunk, rows: RawChunk
                 ) -> Iterator[tuple[str, np.ndarray, float] | Written]:
        """Per row, every patch normalised and scaled once (all of a row's in one pass
        from the raw counts, :func:`~nsgen.prep.patches.normalised_scaled_patches`, into a
        sinogram buffer the process keeps): the clean (or real-artefact) images of the
        row's patches, then the stripe images of its fake pairs, each a scaled patch with
        the scaled stripe columns pasted on (scaling is per pixel: the same integers). With
        each image, its :func:`~nsgen.stages.write.range_used`, from the column extremes."""
        b = self.bounds
        ps = self.cutter.patch_shape
        raw = rows.raw
        ring = _take_buffers((raw.shape[0], raw.shape[2]), ps) if self.reuse else None
        sino = scratch.buffer(SINOGRAM, (raw.shape[0], raw.shape[2]), np.float32)
        count = 0
        row_end: list[int] = []   # images yielded up to the end of each row
        for k, v in enumerate(range(chunk.start, chunk.stop)):
            buffer = None
            if ring is not None:
                if k >= 2:
                    yield Written(row_end[k - 2])      # its buffer's last images are written
                buffer = ring[k % 2]
            with profile.phase("normalise+scale patches"):
                scaled, _ = normalised_scaled_patches(raw, k, rows.constants, ps, b.lo, b.hi,
                                                      buffer, sino)
            stripes = []
            for p, _, spans in self.cutter.patches(v, sino, scaled.maxima.max(axis=1)):
                low, high = scaled.low[p], scaled.high[p]
                sub = "real_artifacts/stripe" if spans is None else "fake_artifacts/clean"
                yield (f"{self.tag}/{sub}/{self.name(v, p)}", scaled.images[p],
                       range_of(int(low.min()), int(high.max())))
                count += 1
                if spans is not None:
                    with profile.phase("stripe images"):
                        columns = [(c, to_uint16(x, b)) for c, x in spans]
                    stripes.append((p, columns, stripe_range(low, high, columns)))
            if stripes and ring is not None:
                yield Written(count)                   # the row's clean images are written
            for p, columns, used in stripes:
                with profile.phase("stripe images"):
                    clean = scaled.images[p]
                    stripe = paste(clean, columns, into=clean if ring is not None else None)
                yield f"{self.tag}/fake_artifacts/stripe/{self.name(v, p)}", stripe, used
                count += 1
            row_end.append(count)
        if ring is not None:
            yield Written(count)
            _BUFFERS.append(ring)                      # free again: the next chunk's


def patch_name(tag: str, shift: int, v: int, p: int) -> str:
    """File name of patch ``p`` of row ``v`` of a shift (in each artefact directory).

    Examples
    --------
    >>> patch_name("0003", 1, 25, 7)
    '0003_shift01_0025_w07.tif'
    """
    return f"{tag}_shift{shift:02d}_{v:04d}_w{p:02d}.tif"


def image_paths(tag: str, shift: int, flags: np.ndarray) -> Iterator[str]:
    """The paths :class:`PatchImages` writes, in its order, given the flags ``(rows,
    patches)``: per row, the clean or real-artefact image of every patch, then the stripe
    images of its fake pairs.

    Examples
    --------
    >>> list(image_paths("0000", 0, np.array([[False, True]])))    # doctest: +NORMALIZE_WHITESPACE
    ['0000/fake_artifacts/clean/0000_shift00_0000_w00.tif',
     '0000/real_artifacts/stripe/0000_shift00_0000_w01.tif',
     '0000/fake_artifacts/stripe/0000_shift00_0000_w00.tif']
    """
    for v, row in enumerate(flags.tolist()):
        names = [patch_name(tag, shift, v, p) for p in range(len(row))]
        for real, name in zip(row, names):
            yield f"{tag}/{'real_artifacts/stripe' if real else 'fake_artifacts/clean'}/{name}"
        for real, name in zip(row, names):
            if not real:
                yield f"{tag}/fake_artifacts/stripe/{name}"


#: name of the :mod:`~nsgen.engine.scratch` buffer of :class:`PatchImages`' normalised row
SINOGRAM = "patch sinogram"


class RawChunk(NamedTuple):
    """A chunk's raw counts ``(angles, rows, columns)`` and the
    :func:`~nsgen.prep.normalise.pixel_constants` of its rows (:class:`RawRows`)."""

    raw: np.ndarray
    constants: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class RawRows(ReadsThrough):
    """Pass two's source (:class:`~nsgen.stages.write.RowSource`): the reader of ``scan``
    (a :class:`~nsgen.stages.scan_stages.ScanStage`; :class:`~nsgen.engine.stage.ReadsThrough`),
    whose chunks' raw counts it delivers with their rows' normalisation constants
    (:class:`RawChunk`) instead of normalised sinograms: :class:`PatchImages` normalises
    each row as it scales it."""

    scan: ScanStage
    label: str = "raw rows"

    def reads_as(self) -> ScanStage:
        return self.scan

    def prepare(self) -> None:
        _prepare_row_kernels(self.scan.shape)

    def values(self, chunk: Chunk, data: list[np.ndarray]) -> RawChunk:
        """The chunk's raw counts and constants (see :class:`RawChunk`)."""
        raw, flat, dark = check_raw(*data)
        return RawChunk(raw, pixel_constants(flat, dark))


def _prepare_row_kernels(shape: tuple[int, int, int]) -> None:
    """Load the compiled row kernels of both passes and fault in this process's row
    buffer (:data:`SINOGRAM`) for a scan of ``shape``, while the reader reads."""
    ones = np.ones((1, 1, 4), np.uint16)
    constants = pixel_constants(ones[0] * 2, ones[0] * 0)
    normalised_column_extremes(ones, 0, constants, (1, 4))
    normalised_scaled_patches(ones, 0, constants, (1, 4), 0.0, 1.0)
    scratch.buffer(SINOGRAM, (shape[0], shape[2]), np.float32).fill(0)


#: per process: pairs of row buffers of :class:`PatchImages` not in use
_BUFFERS: list[list[np.ndarray]] = []


def _take_buffers(shape: tuple[int, int], patch_shape: tuple[int, int]) -> list[np.ndarray]:
    """Two buffers for a row of ``shape`` scaled into patches: kept ones of that size,
    or new ones."""
    want = patch_stack_shape(shape, patch_shape)
    while _BUFFERS:
        ring = _BUFFERS.pop()
        if ring[0].shape == want:
            return ring
    return [np.empty(want, np.uint16) for _ in range(2)]


def stripe_range(low: np.ndarray, high: np.ndarray, columns: Spans) -> float:
    """:func:`~nsgen.stages.write.range_used` of a stripe image: a scaled patch whose
    column extremes are ``low`` and ``high``, with the scaled ``columns`` pasted on.

    Examples
    --------
    >>> low, high = np.array([5, 1, 7], np.uint16), np.array([9, 2, 13107], np.uint16)
    >>> stripe_range(low, high, [(1, np.array([[0], [3]], np.uint16))])   # 13107 - 0
    0.2
    """
    untouched = np.ones(low.shape, bool)
    lo, hi = [], []
    for left, values in columns:
        untouched[left:left + values.shape[1]] = False
        lo.append(int(values.min()))
        hi.append(int(values.max()))
    if untouched.any():
        lo.append(int(low[untouched].min()))
        hi.append(int(high[untouched].max()))
    return range_of(min(lo), max(hi))


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


def patch_flags(run: SampleRun, shift: int, source: ScanSource, shape: tuple[int, int, int],
                dtype: str, alongside: Alongside | None = None) -> np.ndarray:
    """Which patches of a shift have real stripes: the mask's, and those a dead or
    saturated pixel reaches (a bad pixel is a stripe of its patches); ``alongside``: see
    :func:`~nsgen.modes.real.shift_flags`."""
    ps = patch_shape(run.config, shape)
    with profile.phase("mask flags"):
        flags = shift_flags(run, run.config, shift, source, shape, dtype, ps, alongside)
    if source.bad is not None:
        goods = [patch_good_columns(source.bad, v, shape, ps) for v in range(shape[1])]
        flags = flags | np.stack([~g.all(axis=1) for g in goods if g is not None])
    return flags


def pass_one(run: SampleRun, shift: int, source: ScanSource, shape: tuple[int, int, int],
             dtype: str, flags_known: Callable[[np.ndarray], None] | None = None
             ) -> tuple[np.ndarray, Any]:
    """The flags and pass one's summary. With min/max bounds, pass one runs with the
    detector's first pass (on the fly) or while the flags are read from the archive
    (``--mask``), and is combined with the flags after (per-patch bounds).
    ``flags_known(flags)`` is called as soon as the flags are known."""
    cfg = run.config
    sizing = sizing_for(run, shape, dtype, work_factor=PASS_ONE_COPIES)

    def read_flags(alongside: Alongside | None) -> np.ndarray:
        flags = patch_flags(run, shift, source, shape, dtype, alongside)
        if flags_known is not None:
            flags_known(flags)
        return flags

    def stage(flags: np.ndarray | None) -> BoundsStage:
        cutter = PatchCutter(patch_shape(cfg, shape), flags, cfg.seed, run.sample, shift)
        return BoundsStage(source, shape, dtype, sizing.chunk_rows, cutter=cutter,
                           percentile=cfg.bounds_percentile)

    return flags_and_pass_one(run, read_flags, stage, sizing, flagged_summary,
                              PASS_ONE_COPIES)


def plan_shift(run: SampleRun, shift: int, source: ScanSource, shape: tuple[int, int, int],
               dtype: str) -> list[dict[str, Any]]:
    """Mask flags per patch, bounds pass, write pass; returns the manifest entries.

    Writing TIFFs, the files' empty temporaries are created on a thread from the moment
    the flags are known until the write pass starts (:class:`~nsgen.io.tiff.Temporaries`:
    pass one waits for the disk; pass two, busy on every core, then only fills them)."""
    cfg = run.config
    ps = patch_shape(cfg, shape)
    writer = run.writer()
    ahead = Temporaries(writer.root) if isinstance(writer, TiffWriter) else None
    make_artefact_dirs(run.dir)

    def flags_known(flags: np.ndarray) -> None:
        if ahead is not None:
            ahead.start(image_paths(run.tag, shift, flags))

    try:
        flags, summary = pass_one(run, shift, source, shape, dtype, flags_known)
        run.log(f"[{run.tag}] shift {shift}: {int(flags.sum())} of {flags.size} patches have "
                f"real stripes")
        sizing = sizing_for(run, shape, dtype, work_factor=4)
        cutter = PatchCutter(ps, flags, cfg.seed, run.sample, shift)
        bounds = scan_bounds(run, summary, lambda bins: union(run.run(BoundsStage(
            source, shape, dtype, sizing.chunk_rows, cutter=cutter, refine=bins,
            label="percentiles"), sizing)))
        if isinstance(writer, TiffWriter) and ahead is not None:
            run.say(f"shift {shift}: {ahead.stop()} files created ahead of the write pass")
            writer = replace(writer, owner=ahead.owner)
        images = PatchImages(cutter, run.tag, bounds, releases_images(writer))
        written = run.run(WriteStage(RawRows(ScanStage(source, shape, dtype, sizing.chunk_rows)),
                                     images, writer), sizing)
    except BaseException:
        if ahead is not None:
            ahead.discard()
        raise
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
