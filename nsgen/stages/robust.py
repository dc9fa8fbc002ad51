"""The ``robust`` stripe detector over a scan in three passes (like Larix's candidates and
merge) and two more near defects over a few rows, each row's work done once whatever the
chunking.

1. :class:`RobustFeatureStage` reads row chunks of the scan with no halo and stores what the
   detector needs of each row from that row alone
   (:func:`~nsgen.prep.robust_features.raw_feature_parts`: the ranks of every angle set and
   the strong defects, from the raw rows normalised as they are ranked; about an eighth
   of a float32 row at 1801 angles), and each row's ``M0`` per angle bin
   (:func:`~nsgen.prep.robust_mass.row_mass`: 258 values at 1801 angles), whose
   volume's traces (:func:`~nsgen.prep.robust_mass.mass_trace`, every row's) the
   decisions read (the mass-conservation confirmation);
2. :class:`RobustOffsetStage` reads the ranks with ``hd`` rows each side and stores each
   row's offsets against the rows around it
   (:func:`~nsgen.prep.stripe_robust.row_offsets`; a few values per column);
3. :class:`RobustDecideStage` reads the offsets with ``hd + 4`` rows each side and decides
   (:func:`~nsgen.prep.stripe_robust.decide_offsets`) its rows and 4 more each side
   (:data:`~nsgen.prep.robust_stack.DECIDE_REACH`), from which its rows are widened
   (:func:`~nsgen.prep.robust_rows.grow_rows`: the rows beside) and their stacks confirmed
   (:func:`~nsgen.prep.robust_stack.stack_flags`: the 4 rows each side); the angle-bin
   means the decision
   asks for (rows of stripes over part of the scan: a few rows) come from the scan then
   (:class:`~nsgen.stages.robust_scratch.RowBins`; storing every row's was half the
   scratch), and stores which columns of each row it flagged at any angle;
4. :class:`RobustSecondOffsetStage` computes again the offsets of the rows whose compared
   rows hold flags of a defect over a few rows (:mod:`nsgen.prep.robust_second`: rows
   first once more, those flags left out of the backgrounds; from the features of ``hd``
   rows and the flags of ``2 hd`` rows each side) and writes them over the first ones;
5. :class:`RobustSecondStage` decides the rows near those flags (and the 4 rows each
   side: their widening and stacks) again from them and writes their mask again. Both read the
   flags only where no such defect is near.

The scratch volumes (but the flags: a byte per row and column) are kept in memory as far as
half the memory limit allows (:meth:`~nsgen.runner.StageRunner.with_memory_scratch`), the
rest on disk. The mask equals the whole-volume computation exactly (the one-pass stage it
replaces ranked every chunk's ``2 x 2 hd`` halo rows again: 2.5-4x Larix's time).
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import cast

import numpy as np

from nsgen.engine import forkserver as _forkserver, scratch
from nsgen.engine.pipeline import Chunk, Stage, WorkResult, row_chunks
from nsgen.engine.shm import SHM_PREFIX
from nsgen.errors import NsgenError
from nsgen.io.spill import Spill
from nsgen.prep.detect_params import DetectParams
from nsgen.prep.robust_angles import expand_planes, plane_edges, plane_of_angle
from nsgen.prep.robust_features import block_edges, feature_layout, raw_feature_fields
from nsgen.prep.robust_mass import mass_trace, row_mass
from nsgen.prep.robust_rows import grow_rows
from nsgen.prep.robust_second import excluded, second_offsets, second_rows
from nsgen.prep.robust_stack import DECIDE_REACH as REACH, apply, stack_flags
from nsgen.prep.stripe_detect import rows_to_read
from nsgen.prep.stripe_robust import STORED_SETS, decide_bins, depth_rule, set_offsets
from nsgen.runner import StageRunner
from nsgen.stages import robust_sizing
from nsgen.stages.fused import Alongside, FusedStage
from nsgen.stages.robust_scratch import FeatureSpills, RowBins
from nsgen.stages.robust_sizing import balanced
from nsgen.stages.scan_source import ScanSource
from nsgen.stages.scan_stages import ScanStage
from nsgen.stages.stripes import StepClock, mask_flags

__all__ = ["ROBUST_PRELOAD", "RobustDecideStage", "RobustFeatureStage", "RobustOffsetStage",
           "RobustSecondOffsetStage", "RobustSecondStage", "chunk_mass", "detect_robust",
           "kernels_cached"]

#: what the engine's processes import once, in the forkserver, for ``nsgen mask``
#: (:class:`~nsgen.engine.pipeline.Engine` ``preload``): these stages, and the compiled
#: kernels of the three passes loaded (:mod:`nsgen.prep._robust_preload`; the reader and
#: each worker imported the stages and set Numba up again: ~0.7 CPU-s per process)
ROBUST_PRELOAD = _forkserver.ROBUST_PRELOAD


def kernels_cached(cache_dir: str | None = None) -> bool:
    """Whether Numba's disk cache holds robust kernels that Numba will load: an index file
    of ``nsgen/prep/_robust_jit.py`` under ``cache_dir`` (default ``NUMBA_CACHE_DIR``, or
    the directory :mod:`nsgen.prep._jit` gives Numba where the package is read-only:
    :func:`~nsgen.prep._jit.cache_root`; Numba then caches there only), else in the
    ``__pycache__`` beside it, that Numba loads now (:func:`~nsgen.prep._jit.loads_index`:
    written by this Numba for the source stamp it gives those kernels, with an entry). An
    outdated index counted as cached: the forkserver then compiled every kernel alone.
    (The offsets kernels, ``_robust_offsets_jit.py``, are cached by the same first pass,
    under a stamp holding the same :func:`~nsgen.prep._jit.sources_digest`: an edit of any
    kernel source outdates both.)
    ``nsgen mask`` preloads them in the forkserver only when cached: on an empty cache one
    process compiling them all is slower than the reader and the workers compiling at once
    (first ``nsgen mask`` after install 32.9 s -> 42.8 s, quiet 2 cores).

    Examples
    --------
    >>> import tempfile
    >>> cache = Path(tempfile.mkdtemp())
    >>> _ = (cache / "_robust_jit.bin_means-363.py311.nbi").write_bytes(b"")
    >>> kernels_cached(str(cache))   # not an index Numba loads
    False
    """
    from nsgen.prep import _jit, _robust_jit

    source = Path(_robust_jit.__file__)
    pattern = f"{source.stem}.*.nbi"
    root = cache_dir if cache_dir is not None else \
        os.environ.get("NUMBA_CACHE_DIR") or _jit.cache_root()
    found = Path(root).rglob(pattern) if root else \
        (source.parent / "__pycache__").glob(pattern)
    stamp = _jit.cache_stamp(_robust_jit.bin_means.py_func, source)
    return stamp is not None and any(_jit.loads_index(index, stamp) for index in found)


@dataclass
class RobustFeatureStage(ScanStage):
    """Pass one: each row's features (no halo) into ``features`` (ranks and strong
    defects), rows first."""

    features: FeatureSpills | None = None
    #: ``(rows, 1, bins)`` float64: each row's ``M0`` per angle bin (none with one block)
    mass: Spill | None = None
    label: str = "detect stripes (robust, rows)"

    def prepare(self) -> None:
        t = time.perf_counter()
        # load the compiled kernels (the forkserver of nsgen mask has: ROBUST_PRELOAD;
        # importing the preload loads them from Numba's cache); on an empty cache the
        # workers compile the three passes' kernels in turn, each pass once
        from nsgen.prep import _robust_preload
        if not _robust_preload.LOADED:
            _robust_preload.compile_in_turn()
        raw_feature_fields(np.zeros((1, 1, 4), self.dtype), *np.ones((2, 1, 4), np.float32))
        self._prepared = time.perf_counter() - t

    #: seconds of :meth:`prepare` in this worker, charged to its first chunk
    _prepared: float = field(default=0.0, init=False, repr=False, compare=False)

    def work(self, chunk: Chunk, data: list[np.ndarray]) -> WorkResult:
        assert self.features is not None
        clock = StepClock()
        clock.add("prepare (kernels)", self._prepared)
        self._prepared = 0.0
        raw, flat, dark = data
        # normalised tile by tile as the rows are ranked (the normalised chunk is never
        # made: its write and read again cost as much as the normalisation)
        # with the masses, every value normalised too, for its row's angle-bin means
        means = (np.empty((raw.shape[1], feature_layout(raw.shape[0])[1], raw.shape[2]),
                          np.float32) if self.mass is not None else None)
        fields = raw_feature_fields(raw, flat, dark, means)
        clock.lap("features")
        self.features.write_rows(chunk.start, fields)
        clock.lap("write")
        if self.mass is not None:
            assert means is not None
            self.mass.write_rows(chunk.start, chunk_mass(means)[:, None])
            clock.lap("mass")
        return WorkResult(clock.seconds)


def chunk_mass(means: np.ndarray) -> np.ndarray:
    """Each row's :func:`~nsgen.prep.robust_mass.row_mass` ``(rows, bins)`` float64 of
    the rows' angle-bin means ``means`` ``(rows, bins, columns)`` float32 (one row at a
    time: its float64 copies stay small)."""
    out = np.empty(means.shape[:2])
    for j in range(means.shape[0]):
        out[j] = row_mass(means[j:j + 1])[0]
    return out


@dataclass
class _RobustRowStage(Stage):
    """A pass over the detector rows of the spilled features (ranks and strong defects)
    and offsets, reading ``hd`` rows each side of its chunk (the rows-first comparison's
    reach)."""

    features: FeatureSpills
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
        clock = StepClock()
        n_rows = self.features.shape[0]
        lo, hi = rows_to_read(chunk.start, chunk.stop, n_rows, self.halo)
        # each angle set's ranks and the strong flags as their files hold them
        *sets, flags = self.features.read(lo, hi)
        clock.lap("read")
        qs = set_offsets(sets, [flags[:, n] > 0.5 for n in range(len(sets))], lo,
                         (chunk.start, chunk.stop), n_rows, self.params.min_stripe_depth)
        clock.lap("offsets")
        self.offsets.write_rows(chunk.start, qs)
        clock.lap("write")
        return WorkResult(clock.seconds)


@dataclass
class RobustDecideStage(_RobustRowStage):
    """Pass three: the mask of each row chunk from the offsets of its rows and ``hd`` rows
    each side and the angle-bin means of those of its rows the decision asks for
    (:class:`~nsgen.stages.robust_scratch.RowBins`, from the scan ``source``); keeps the
    mask (like :class:`~nsgen.stages.stripes.MergeStage`) and returns the per-row (patch)
    flags."""

    source: ScanSource | None = None
    dtype: str = "<u2"
    patch_shape: tuple[int, int] | None = None
    mask_spill: Spill | None = None
    #: ``(rows, 1, columns)`` uint8: the columns of each row flagged at any angle (for
    #: :class:`RobustSecondStage`)
    flagged: Spill | None = None
    #: the volume's :func:`~nsgen.prep.robust_mass.mass_trace` ``(rows, bins + 1)`` (every
    #: row's, from pass one; None: no mass-conservation confirmation)
    mass: np.ndarray | None = None
    label: str = "decide stripes (robust)"

    def work(self, chunk: Chunk, data: object) -> WorkResult:
        clock = StepClock()
        n_rows = self.features.shape[0]
        lo, hi = rows_to_read(chunk.start, chunk.stop, n_rows, self.halo + REACH)
        qs = self.offsets.read_rows(lo, hi)
        clock.lap("read")
        flags, flagged = self.decide(qs, lo, (chunk.start, chunk.stop), clock)
        if self.flagged is not None:
            self.flagged.write_rows(chunk.start, flagged[:, None])
        clock.lap("mask write")
        return WorkResult((flags, clock.seconds))

    def decide(self, qs: np.ndarray, q_start: int, rows: tuple[int, int], clock: StepClock
               ) -> tuple[np.ndarray, np.ndarray]:
        """Decide volume rows ``rows`` and the :data:`~nsgen.prep.robust_stack.DECIDE_REACH`
        rows each side from the offsets ``qs`` of volume rows ``q_start ...``, widen ``rows``
        from those (:func:`~nsgen.prep.robust_rows.grow_rows`) and write their mask: their
        per-row (patch) flags and the columns of each row flagged at any angle before the
        widening ``(rows, columns)`` uint8 (what the second pass leaves out)."""
        n_rows = self.features.shape[0]
        assert self.source is not None
        rows1 = (max(0, rows[0] - REACH), min(n_rows, rows[1] + REACH))
        xb = RowBins(self.source, (self.n_angles, n_rows, self.features.shape[2]),
                     self.dtype, rows1)
        edges = block_edges(self.n_angles)
        bins = plane_edges(edges, self.n_angles)
        # the mask held per angle bin (every flag is: decide_bins; 7x less than per angle
        # at 1801 angles), in this worker's buffer, reused chunk after chunk (no page
        # faulted in)
        scores: list[np.ndarray] = []
        decided = decide_bins(qs, q_start, cast(np.ndarray, xb), rows1,
                              n_rows, self.n_angles, depth=self.params.min_stripe_depth,
                              out=scratch.buffer("mask bins", (bins.size - 1, rows1[1] - rows1[0],
                                                               self.features.shape[2]), np.uint8),
                              mass=self.mass, scores=scores)
        cut = slice(rows[0] - rows1[0], rows[1] - rows1[0])
        flagged = np.asarray(decided[:, cut].any(axis=0)).view(np.uint8)
        stacked = stack_flags(decided, rows1[0], scores, self.mass, rows, edges, bins,
                              per_bin=True)
        mask = apply(grow_rows(decided, rows1[0], cast(np.ndarray, xb), scores, rows, edges,
                               bins), stacked)
        clock.lap("decide")
        clock.add("bin means", xb.seconds)
        clock.add("bin-mean rows", len(xb.rows))
        if self.mask_spill is not None:
            packed = np.packbits(mask, axis=-1)   # (bins first: 4x faster than rows first)
            # each bin's plane written at each of its angles
            self.mask_spill.write_band(rows[0], packed, planes_first=True,
                                       planes=plane_of_angle(bins))
            # a row holds stripes where a byte of its bits is not 0 (8x less to look at)
            flags = (np.asarray(packed.any(axis=(0, 2)))[:, None] if self.patch_shape is None
                     else mask_flags(expand_planes(mask, bins), self.patch_shape))
        else:
            flags = mask_flags(expand_planes(mask, bins), self.patch_shape)
        return flags, flagged


def _left_out(flagged: Spill, chunk: Chunk, n_rows: int, hd: int, reach: int, more: int = 0
              ) -> tuple[np.ndarray, int, int]:
    """The values the second rows-first pass leaves out
    (:func:`~nsgen.prep.robust_second.excluded`) in the rows within ``reach * hd + more``
    of ``chunk``, and those rows ``(lo, hi)``; reads the flags of ``(reach + 1) * hd +
    more`` rows each side of the chunk from ``flagged`` (the decide pass's flagged
    columns)."""
    f_lo, f_hi = rows_to_read(chunk.start, chunk.stop, n_rows, (reach + 1) * hd + more)
    flags = flagged.read_rows(f_lo, f_hi)[:, 0] > 0
    lo, hi = rows_to_read(chunk.start, chunk.stop, n_rows, reach * hd + more)
    return excluded(flags, f_lo, (lo, hi), hd, n_rows), lo, hi


@dataclass
class RobustSecondOffsetStage(_RobustRowStage):
    """Pass four: the offsets of each row whose compared rows hold values the third pass
    flagged in a defect over a few rows (:func:`~nsgen.prep.robust_second.excluded`),
    computed again without them (:func:`~nsgen.prep.robust_second.second_offsets`) and
    written over the row's offsets; reads the flags of ``2 hd`` rows each side of its
    chunk, and where a row needs it, the features of ``hd`` rows each side (each row's
    work once, whatever the chunking)."""

    flagged: Spill | None = None
    label: str = "detect stripes again (robust, offsets)"

    def work(self, chunk: Chunk, data: object) -> WorkResult:
        assert self.flagged is not None
        clock = StepClock()
        n_rows = self.features.shape[0]
        hd = self.halo
        ex, lo, hi = _left_out(self.flagged, chunk, n_rows, hd, 1)
        clock.lap("flags")
        if not ex.any():
            return WorkResult(clock.seconds)
        *sets, strong = self.features.read(lo, hi)
        qs = self.offsets.read_rows(chunk.start, chunk.stop)
        clock.lap("read")
        again = second_offsets(sets, [strong[:, n] > 0.5 for n in range(len(sets))], ex, lo,
                               qs, chunk.start, (chunk.start, chunk.stop), n_rows, hd)
        clock.lap("offsets")
        self.offsets.write_rows(chunk.start, again)
        clock.lap("write")
        return WorkResult(clock.seconds)


@dataclass
class RobustSecondStage(RobustDecideStage):
    """Pass five: the rows whose second decision may differ from the first (within ``2
    hd`` of a value :class:`RobustSecondOffsetStage` left out:
    :func:`~nsgen.prep.robust_second.second_rows`) and the 4 rows each side of them (whose
    widening and stacks read their decisions), decided again on the offsets it wrote, their
    mask written again. Returns ``(first row, per-row (patch) flags)`` of the rows decided
    again, or ``(start, None)``; reads the flags of ``3 hd + 4`` rows each side of its
    chunk, and where it decides, the offsets of ``hd + 4`` rows each side of those rows."""

    label: str = "decide stripes again (robust)"

    def work(self, chunk: Chunk, data: object) -> WorkResult:
        assert self.flagged is not None
        clock = StepClock()
        n_rows = self.features.shape[0]
        hd = self.halo
        ex, e_lo, _ = _left_out(self.flagged, chunk, n_rows, hd, 2, REACH)
        # the rows decided again, and the rows widened from them (grow_rows)
        near = second_rows(ex, e_lo, (max(0, chunk.start - REACH),
                                      min(n_rows, chunk.stop + REACH)), hd)
        again = None if near is None else (max(chunk.start, near[0] - REACH),
                                           min(chunk.stop, near[1] + REACH))
        clock.lap("flags")
        if again is None or again[0] >= again[1]:
            return WorkResult(((chunk.start, None), clock.seconds))
        q_lo, q_hi = rows_to_read(*again, n_rows, hd + REACH)
        qs = self.offsets.read_rows(q_lo, q_hi)
        clock.lap("read")
        flags, _ = self.decide(qs, q_lo, again, clock)
        clock.lap("mask write")
        return WorkResult(((again[0], flags), clock.seconds))


def detect_robust(run: StageRunner, source: ScanSource, shape: tuple[int, int, int],
                  dtype: str, params: DetectParams, work: Path,
                  patch_shape: tuple[int, int] | None = None,
                  mask_spill: Spill | None = None,
                  alongside: Alongside | None = None) -> np.ndarray:
    """The robust detector's mask of a scan in five passes (features and offsets in
    ``work``, or in memory as far as :func:`~nsgen.io.spill.memory_rows` allows; removed at
    the end);
    returns the per-row (patch) flags, as :func:`~nsgen.stages.stripes.detect_stripes`.

    ``alongside``: a pass of the caller's over the scan's row chunks that the first pass
    runs on the chunks it reads (:class:`~nsgen.stages.fused.FusedStage`; both sized
    together), its values left in ``alongside.values``: the scan is read once for both.
    When the two do not fit the memory limit together (an explicit ``--chunk-size``), the
    first pass runs alone and ``alongside.values`` stays None."""
    n_angles, n_rows, n_cols = shape
    sizes = feature_layout(n_angles)[0]
    layouts = {"features": ((n_rows, sum(sizes) + len(sizes), n_cols), "float32"),
               # + the row-alone scores and the rank consistency of every angle set
               "offsets": ((n_rows, len(sizes) * STORED_SETS, n_cols + 1), "float64")}
    row_bytes = sum(int(np.prod(s[1:])) * np.dtype(d).itemsize for s, d in layouts.values())
    runner, rows = run.with_memory_scratch(row_bytes, n_rows)
    along = 0.0 if alongside is None else alongside.work_factor
    try:
        sizings = robust_sizing.sizings(runner, shape, dtype, layouts, params, along)
    except NsgenError:   # the passes need that memory (an explicit --chunk-size): disk
        rows = 0
        try:
            sizings = robust_sizing.sizings(run, shape, dtype, layouts, params, along)
        except NsgenError:
            if not along:
                raise
            along, alongside = 0.0, None   # the caller's pass runs on its own
            sizings = robust_sizing.sizings(run, shape, dtype, layouts, params)
    run.say(f"scratch: {rows} of {n_rows} rows in memory "
            f"({rows * row_bytes / 2**20:.0f} MiB), {n_rows - rows} on disk "
            f"({(n_rows - rows) * row_bytes / 2**20:.0f} MiB)")
    # named as the engine's segments (a dead run's are swept), unique to this call
    shm = Path("/dev/shm") / f"{SHM_PREFIX}{os.getpid()}-robust-{uuid.uuid4().hex[:12]}"
    features = FeatureSpills.create(work / "robust-features.f32", Path(f"{shm}-features"),
                                    n_rows, sizes, n_cols, rows)
    s, dt = layouts["offsets"]
    offsets = Spill.create(work / "robust-offsets.f64", s, dt, memory=Path(f"{shm}-offsets"),
                           memory_rows=rows)
    flagged = Spill.create(work / "robust-flagged.u1", (n_rows, 1, n_cols), "uint8")
    n_bins = feature_layout(n_angles)[1]
    mass = Spill.create(work / "robust-mass.f64", (n_rows, 1, n_bins), "float64") \
        if n_bins else None
    try:
        first = RobustFeatureStage(source, shape, dtype, sizings[0].chunk_rows, halo=0,
                                   features=features, mass=mass)
        if alongside is None:
            clocks = run.run(first, sizings[0])
        else:
            both = run.run(FusedStage(first, replace(alongside.stage,
                                                     chunk_rows=sizings[0].chunk_rows)),
                           sizings[0])
            clocks = [c for c, _ in both]
            alongside.values = [v for _, v in both]
        run.say(StepClock.describe("detect stripes (robust, rows)", clocks))
        # every row's M0 traces: the common mode and the rows' spread are the volume's
        trace = None if mass is None else mass_trace(mass.read_rows(0, n_rows)[:, 0])
        stage = RobustOffsetStage(features=features, offsets=offsets,
                                  n_angles=n_angles, params=params,
                                  chunk_rows=balanced(sizings[1].chunk_rows, n_rows,
                                                      sizings[1].workers))
        clocks = run.run(stage, sizings[1])
        run.say(StepClock.describe("detect stripes (robust, offsets)", clocks))
        decide_stage = RobustDecideStage(features=features, offsets=offsets,
                                         n_angles=n_angles, params=params,
                                         chunk_rows=sizings[2].chunk_rows,
                                         source=source, dtype=dtype,
                                         patch_shape=patch_shape, mask_spill=mask_spill,
                                         flagged=flagged, mass=trace)
        results = run.run(decide_stage, sizings[2])
        run.say(StepClock.describe("decide stripes (robust)", [r[1] for r in results]))
        flags = np.concatenate([r[0] for r in results], axis=0)
        clocks = run.run(RobustSecondOffsetStage(features=features, offsets=offsets,
                                                 n_angles=n_angles, params=params,
                                                 chunk_rows=stage.chunk_rows, flagged=flagged),
                         sizings[1])
        run.say(StepClock.describe("detect stripes again (robust, offsets)", clocks))
        again = run.run(RobustSecondStage(**{f.name: getattr(decide_stage, f.name)
                                             for f in fields(RobustDecideStage) if f.init
                                             and f.name != "label"}), sizings[2])
        run.say(StepClock.describe("decide stripes again (robust)", [r[1] for r in again]))
        for (start, redone), _ in again:
            if redone is not None:
                flags[start:start + len(redone)] = redone
        return flags
    finally:
        features.unlink()
        offsets.unlink()
        flagged.unlink()
        if mass is not None:
            mass.unlink()
