"""The stripe pipeline: Larix generation-2 detection streamed over detector-row chunks.

Used alike by ``nsgen mask`` (full mask into an archive) and the paired and patch modes
(stripe flags per row or row patch when no ``--mask`` is given). Pass one
(:class:`CandidateStage`) runs the expensive detector on the raw counts with a halo of
``radius`` rows per chunk side (normalising plane by plane inside the ratio map: no float32
volume is held) and keeps its candidates, one bit per voxel, in a scratch volume; pass two
(:class:`MergeStage`) runs the cheap merge passes on those bits: its halo of ``depth // 2``
rows is read packed and only counted for the depth pass, never unpacked or merged
(:mod:`nsgen.prep.stripe_packed`). The result equals the whole-volume computation exactly
(docs/science.md B 5.2). Each pass reports seconds per step with ``-v``. The ``robust``
detector (:mod:`nsgen.prep.stripe_robust`) runs in two passes of its own
(:mod:`nsgen.stages.robust`); ``detect_stripes(..., detector=...)`` chooses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nsgen.engine import scratch
from nsgen.engine.pipeline import Chunk, Stage, WorkResult, row_chunks
from nsgen.io.spill import Spill
from nsgen.prep.detect_params import DetectParams
from nsgen.prep.normalise import flat_field_log
from nsgen.prep.patches import crop_bounds
from nsgen.prep.stripe_detect import load_kernels, rows_to_read, stripe_candidates_rows
from nsgen.prep.stripe_packed import (candidates_from_raw, load_packed_kernels, merge_packed,
                                      packed_columns)
from nsgen.runner import StageRunner
from nsgen.stages.scan_sizing import MAX_AUTO_CHUNK, row_sizing
from nsgen.stages.scan_source import ScanSource
from nsgen.stages.scan_stages import ScanStage, load_flat_field

__all__ = ["CandidateStage", "MergeStage", "StepClock", "band_flags", "detect_stripes",
           "mask_bands", "mask_flags"]


class StepClock:
    """Seconds a worker spends per step of a chunk, summed over chunks for ``-v``.

    Examples
    --------
    >>> c = StepClock(); c.lap("a"); c.lap("b"); c.add("rows", 3)
    >>> sorted(c.seconds), c.seconds["rows"]
    (['a', 'b', 'rows'], 3)
    >>> StepClock.total([{"a": 1.0}, {"a": 0.5, "b": 2.0}])
    {'a': 1.5, 'b': 2.0}
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, step: str) -> None:
        """Charge the time since the previous lap (or the start) to ``step``."""
        t = time.perf_counter()
        self.add(step, t - self._t)
        self._t = t

    def add(self, step: str, value: float) -> None:
        """Add ``value`` (seconds measured elsewhere, or a count) to ``step``."""
        self.seconds[step] = self.seconds.get(step, 0) + value

    @staticmethod
    def total(clocks: list[dict[str, float]]) -> dict[str, float]:
        """Sum of the chunks' ``seconds``, step by step."""
        out: dict[str, float] = {}
        for c in clocks:
            for k, v in c.items():
                out[k] = out.get(k, 0) + v
        return out

    @staticmethod
    def describe(label: str, clocks: list[dict[str, float]]) -> str:
        """One ``-v`` line: ``label worker seconds: step s, ...`` (counts as integers)."""
        tot = StepClock.total(clocks)
        return f"{label} worker seconds: " + ", ".join(
            f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in tot.items())

#: float32 copies of a row a worker holds in :class:`CandidateStage`: the below-threshold
#: map and the packed candidates (1 + 1/8 bytes per voxel; the ratio map's ring of 2R+1
#: gradient planes is small); no normalised volume (:func:`candidates_from_raw`)
CANDIDATE_FLOAT_COPIES = 0.3
#: fixed memory of a detection worker beyond a plain one: Numba's compiler (~80 MiB PSS)
JIT_OVERHEAD = 96 * 2**20
#: extra float32 copies with ``--weights`` (the volume, ratio map, weights and their copy)
WEIGHTS_FLOAT_COPIES = 4.5
#: bytes a worker holds per packed candidate byte read in :class:`MergeStage`: the mask
#: rows (8), their packed copy (1), the halo rows read with them (about 1)
MERGE_WORK_FACTOR = 10.0
#: pass one aims at this many chunks per worker: the last chunks of a pass leave workers
#: idle, and smaller chunks start sooner and fault in less memory ...
CHUNKS_PER_WORKER = 4
#: ... but its chunks keep at least this many times the radius (halo rows, which are read,
#: normalised and differentiated again, at most 2/8 = 25 % more)
MIN_CHUNK_RADII = 8


def candidate_chunk_rows(n_rows: int, workers: int, radius: int) -> int:
    """Largest automatic chunk of pass one (:class:`CandidateStage`).

    Examples
    --------
    >>> candidate_chunk_rows(256, 2, 3), candidate_chunk_rows(64, 2, 3)
    (32, 24)
    >>> candidate_chunk_rows(2160, 2, 3)   # memory and the sizing's targets decide
    270
    """
    return max(-(-n_rows // (CHUNKS_PER_WORKER * workers)), MIN_CHUNK_RADII * radius)


@dataclass
class CandidateStage(ScanStage):
    """Stripe detection, pass one: ``W <= threshold`` per row chunk (halo ``radius`` rows).

    Writes the candidate mask rows first, bit-packed along columns (``np.packbits``), to
    ``candidates`` and, when asked, the weights to ``weights_spill`` (angles first, like the
    archive entry). See :func:`detect_stripes`.
    """

    params: DetectParams = field(default_factory=DetectParams)
    candidates: Spill | None = None
    weights_spill: Spill | None = None
    label: str = "detect stripes"

    def prepare(self) -> None:
        t = time.perf_counter()
        if self.weights_spill is not None:
            load_flat_field()
            load_kernels()
        # fault the work buffers in while the reader reads the first chunk (first touch of
        # fresh memory is the slowest part of a first chunk)
        if self.weights_spill is not None:
            rows = self.chunk_rows + 2 * self.halo
            scratch.buffer("volume", (self.shape[0], rows, self.shape[2]), np.float32).fill(0)
        scratch.buffer("candidates", self._candidates_shape(self.chunk_rows),
                       np.uint8).fill(0)
        scratch.buffer("below", (self.chunk_rows * self.shape[0] * self.shape[2],),
                       np.uint8).fill(0)
        load_packed_kernels(self.dtype)
        self._prepared = time.perf_counter() - t

    #: seconds of :meth:`prepare` in this worker, charged to its first chunk
    _prepared: float = field(default=0.0, init=False, repr=False, compare=False)

    def _candidates_shape(self, rows: int) -> tuple[int, int, int]:
        """Packed candidates of ``rows`` rows (rows first, a bit per column)."""
        return rows, self.shape[0], packed_columns(self.shape[2])

    def slot_spec(self, chunk: Chunk) -> Any:
        # the reader's seconds for the chunk travel with it (for the -v profile)
        return [*super().slot_spec(chunk), ((1,), "float64")]

    def read(self, chunk: Chunk, out: list[np.ndarray]) -> None:
        t = time.perf_counter()
        super().read(chunk, out)
        out[3][0] = time.perf_counter() - t

    def work(self, chunk: Chunk, data: list[np.ndarray]) -> WorkResult:
        assert self.candidates is not None
        clock = StepClock()
        raw, flat, dark, read_seconds = data
        clock.add("read (reader)", float(read_seconds[0]))
        clock.add("prepare (kernels+buffers)", self._prepared)
        self._prepared = 0.0
        lo, hi = self.read_rows(chunk)
        clock.add("rows", hi - lo)
        clock.add("halo rows", hi - lo - chunk.rows)
        p = self.params
        out = scratch.buffer("candidates", self._candidates_shape(chunk.rows), np.uint8)
        below = scratch.buffer("below", (out.shape[0] * out.shape[1] * self.shape[2],),
                               np.uint8)
        if self.weights_spill is None:
            # normalised plane by plane inside the ratio map: no float32 volume
            candidates_from_raw(raw, flat, dark, lo, (chunk.start, chunk.stop),
                                self.shape[1], p, out=out, work=below)
            clock.lap("normalise+detect")
        else:
            # the weights need the float32 volume (order statistic of the ratio map)
            volume = flat_field_log(raw, flat, dark, sinograms_first=False,
                                    out=scratch.buffer("volume", raw.shape, np.float32))
            clock.lap("normalise")
            cand, weights = stripe_candidates_rows(volume, lo, (chunk.start, chunk.stop),
                                                   self.shape[1], p, return_weights=True)
            np.copyto(out, np.packbits(cand, axis=-1))
            self.weights_spill.write_band(chunk.start, weights)
            clock.lap("detect+weights")
        self.candidates.write_rows(chunk.start, out)
        clock.lap("write")
        return WorkResult(clock.seconds)


@dataclass
class MergeStage(Stage):
    """Stripe detection, pass two: the merge passes per row chunk (halo ``depth // 2`` rows).

    Each worker reads its candidate rows (with the halo) straight from the scratch volume
    (no shared-memory copy), returns the stripe flags of each row (or row patch, see
    :func:`mask_flags`) and, with ``mask_spill`` (stored angles first like the archive entry,
    bit-packed along columns), keeps the full mask.
    """

    candidates: Spill
    n_cols: int
    chunk_rows: int = 1
    params: DetectParams = field(default_factory=DetectParams)
    patch_shape: tuple[int, int] | None = None
    mask_spill: Spill | None = None
    label: str = "merge stripes"

    @property
    def halo(self) -> int:
        """Rows repeated at each chunk side: half the maximum stripe depth."""
        return self.params.min_stripe_depth // 2

    def chunks(self) -> list[Chunk]:
        return row_chunks(self.candidates.shape[0], self.chunk_rows)

    def work(self, chunk: Chunk, data: object) -> WorkResult:
        clock = StepClock()
        n_rows, n_angles, n_bytes = self.candidates.shape
        lo, hi = rows_to_read(chunk.start, chunk.stop, n_rows, self.halo)
        clock.add("rows", chunk.rows)
        clock.add("halo rows (read packed)", hi - lo - chunk.rows)
        packed = self.candidates.read_rows(
            lo, hi, scratch.buffer("packed", (hi - lo, n_angles, n_bytes), np.uint8))
        clock.lap("read")
        mask = merge_packed(packed, lo, (chunk.start, chunk.stop), n_rows, self.params,
                            self.n_cols, out=scratch.buffer(
                                "mask", (chunk.rows, n_angles, self.n_cols), np.uint8))
        clock.lap("merge")
        if self.mask_spill is not None or self.patch_shape is None:
            from nsgen.prep._stripe_jit import pack_bits
            bits = np.empty((*mask.shape[:2], packed_columns(self.n_cols)), np.uint8)
            pack_bits(mask, bits)
            if self.mask_spill is not None:
                self.mask_spill.write_band(chunk.start, bits)
            clock.lap("pack+write")
        if self.patch_shape is None:   # from the packed rows: 8x fewer bytes to look at
            flags = np.asarray(bits.reshape(chunk.rows, -1).any(axis=1))[:, None]
        else:
            flags = mask_flags(mask.transpose(1, 0, 2), self.patch_shape)
        clock.lap("flags")
        return WorkResult((flags, clock.seconds))


def detect_stripes(run: StageRunner, source: ScanSource, shape: tuple[int, int, int],
                   dtype: str, params: DetectParams, work: Path,
                   patch_shape: tuple[int, int] | None = None, mask_spill: Spill | None = None,
                   weights_spill: Spill | None = None, detector: str = "larix") -> np.ndarray:
    """Stripe mask of a scan in two streamed passes; returns the per-row (patch) flags.

    Pass one (:class:`CandidateStage`) repeats only ``radius`` rows per chunk side of the
    expensive detector; its candidates go to a scratch volume in ``work`` (one bit per voxel,
    removed at the end); pass two (:class:`MergeStage`) repeats ``depth // 2`` rows of
    the cheap merge passes. The result equals the whole-volume computation exactly.

    Parameters
    ----------
    run : StageRunner
        Runs the two passes on its engine, sized by its options.
    source, shape, dtype
        The scan (``shape`` = angles, rows, columns of the projections).
    params : DetectParams
        Detection parameters, fitted to the scan (:meth:`DetectParams.for_scan`).
    work : pathlib.Path
        Directory for the candidate scratch volume.
    patch_shape, mask_spill, weights_spill
        See :class:`MergeStage` and :class:`CandidateStage`; ``mask_spill`` is
        ``(angles, rows, ceil(columns / 8))`` uint8 (bit-packed), ``weights_spill``
        ``(angles, rows, columns)`` float32 (``larix`` only).
    detector : str
        ``larix`` (the two passes above) or ``robust`` (two passes too:
        :func:`nsgen.stages.robust.detect_robust`).
    """
    n_angles, n_rows, n_cols = shape
    if detector != "larix":
        from nsgen.stages.robust import detect_robust
        return detect_robust(run, source, shape, dtype, params, work, patch_shape, mask_spill)
    candidates = Spill.create(work / "candidates.bits", (n_rows, n_angles, -(-n_cols // 8)),
                              "uint8")
    try:
        copies = CANDIDATE_FLOAT_COPIES + (WEIGHTS_FLOAT_COPIES if weights_spill else 0.0)
        itemsize = np.dtype(dtype).itemsize   # rows as scan_sizing counts them
        sizing = run.sizing(n_rows=n_rows, row_bytes=n_angles * n_cols * itemsize + 8 * n_cols,
                            work_factor=copies * 4 / itemsize, halo=params.radius,
                            worker_overhead=JIT_OVERHEAD,
                            max_chunk_rows=min(MAX_AUTO_CHUNK, candidate_chunk_rows(
                                n_rows, run.workers, params.radius)))
        clocks = run.run(CandidateStage(source, shape, dtype, sizing.chunk_rows,
                                        halo=params.radius, params=params,
                                        candidates=candidates, weights_spill=weights_spill),
                         sizing)
        run.say(StepClock.describe("detect stripes", clocks))
        merge = MergeStage(candidates=candidates, n_cols=n_cols, chunk_rows=1, params=params,
                           patch_shape=patch_shape, mask_spill=mask_spill)
        # a compute-only stage: no slot, the worker holds the rows it reads and works on;
        # its halo rows are read packed and never merged, so chunks need not be large:
        # sized by the packed rows read (a mask row is 8 of them)
        sizing = row_sizing(run, n_rows, row_bytes=n_angles * packed_columns(n_cols),
                            worker_overhead=JIT_OVERHEAD, work_factor=MERGE_WORK_FACTOR)
        merge.chunk_rows = sizing.chunk_rows
        got = run.run(merge, sizing)
        run.say(StepClock.describe("merge stripes", [c for _, c in got]))
        return np.concatenate([f for f, _ in got], axis=0)
    finally:
        candidates.path.unlink(missing_ok=True)


def mask_flags(mask: np.ndarray, patch_shape: tuple[int, int] | None) -> np.ndarray:
    """Which rows (or row patches) of a full-resolution mask block hold stripes.

    Parameters
    ----------
    mask : numpy.ndarray
        ``(angles, rows, columns)`` 0/1 mask.
    patch_shape : (int, int) or None
        None: one flag per row, shape ``(rows, 1)``. Otherwise one flag per patch of the
        cropped sinogram, shape ``(rows, n_patches)``, in patch order ``p = w * nh + h``.

    Examples
    --------
    >>> m = np.zeros((4, 2, 6), np.uint8); m[0, 1, 5] = 1
    >>> mask_flags(m, None)[:, 0].tolist()
    [False, True]
    >>> mask_flags(m, (2, 3)).tolist()      # angles 0-1, columns 3-5: p = 1 * 2 + 0
    [[False, False, False, False], [False, False, True, False]]
    """
    banded = np.stack([mask[a:b].any(axis=0) for a, b in mask_bands(mask.shape[0], patch_shape)])
    return band_flags(banded, patch_shape)


def mask_bands(n_angles: int, patch_shape: tuple[int, int] | None) -> list[tuple[int, int]]:
    """The angle bands whose ORed masks give :func:`band_flags` (a patch row each).

    Examples
    --------
    >>> mask_bands(10, None), mask_bands(10, (4, 3))   # crop keeps angles 1-8
    ([(0, 10)], [(1, 5), (5, 9)])
    """
    if patch_shape is None:
        return [(0, n_angles)]
    rs = crop_bounds((n_angles, patch_shape[1]), patch_shape)[0]
    ph = patch_shape[0]
    return [(k, k + ph) for k in range(rs.start, rs.stop, ph)]


def band_flags(banded: np.ndarray, patch_shape: tuple[int, int] | None) -> np.ndarray:
    """:func:`mask_flags` from a mask ORed over :func:`mask_bands` (``(bands, rows, columns)``).

    Examples
    --------
    >>> m = np.zeros((4, 2, 6), np.uint8); m[0, 1, 5] = 1
    >>> banded = np.stack([m[a:b].any(axis=0) for a, b in mask_bands(4, (2, 3))])
    >>> np.array_equal(band_flags(banded, (2, 3)), mask_flags(m, (2, 3)))
    True
    """
    if patch_shape is None:
        return np.asarray(banded[0].any(axis=1))[:, None]
    nh, rows, n_cols = banded.shape
    cs = crop_bounds((patch_shape[0], n_cols), patch_shape)[1]
    pw = patch_shape[1]
    cropped = banded[:, :, cs]
    nw = cropped.shape[2] // pw
    blocks = np.asarray(cropped.reshape(nh, rows, nw, pw).any(axis=3))     # nh, rows, nw
    return blocks.transpose(1, 2, 0).reshape(rows, nw * nh)
