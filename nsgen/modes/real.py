"""What the real-data modes share: scans per shift, normalised row chunks, masks, bounds.

A real scan is one sample; every shift file is one *unit* of work with its own completion
record, so an interrupted run resumes at the first unfinished shift. Within a shift:

* pass one streams detector-row chunks (raw projections plus that chunk's mean flat and
  dark) from the reader into shared memory; workers normalise (``-log``), apply the mode's
  transform, collect bounds over the interior rows and, for downsampling modes, keep the
  small result in a scratch volume;
* pass two writes every TIFF once with the scan's global bounds.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from nsgen.config import Config
from nsgen.engine import scratch
from nsgen.engine.pipeline import Chunk, Stage, WorkResult, row_chunks
from nsgen.engine.sizing import TARGET_SLOT_BYTES
from nsgen.errors import NsgenError
from nsgen.io.nexus import Scan, ScanLayout, create_frame_copy, open_scan, shift_files
from nsgen.io.spill import Spill
from nsgen.prep.normalise import flat_field_log
from nsgen.prep.patches import crop_bounds
from nsgen.prep.resize import normalise_downsample, prepare_downsample
from nsgen.prep.scaling import EMPTY, Bounds
from nsgen.prep.stripe_detect import (load_kernels, merge_stripes_rows, rows_to_read,
                                      stripe_candidates_rows)
from nsgen.runner import file_record
from nsgen.scan.shifts import shift_note

#: sinogram size after downsampling (raw, paired, dynamic), as in the seed
OUT_SHAPE = (402, 362)
#: detector rows at each edge left out of the scaling bounds (SCIENCE A.7)
EDGE_ROWS = 20
#: the seed's mask parameters (Larix generation 2)
MASK_PARAMS = dict(size=250, radius=3, threshold=0.63, min_stripe_length=600,
                   min_stripe_depth=30, min_stripe_width=22, sensitivity_perc=85.0)
#: automatic chunking never exceeds the seed's default chunk size
MAX_AUTO_CHUNK = 243
#: bytes of projections the reader asks the disk for at a time, ahead of the chunks it reads
PREFETCH_BYTES = 384 * 2**20
#: batches asked for beyond the one being read (so at most 3 x PREFETCH_BYTES wait in the
#: page cache): the disk keeps reading while the first chunks wait for the workers to start
PREFETCH_AHEAD = 2


_NOTED: list[list[str]] = []   # shift-file notes printed by this process


def scan_files(config: Config) -> list[Path]:
    """The scan of every shift: the seed's numbering rule, or the explicit list."""
    files = list(config.hdf_root)
    if config.mode == "dynamic":
        if len(files) != 1:
            raise NsgenError("dynamic mode reads one scan; give one file to --hdf-root")
        return files
    if len(files) == 1:
        found = shift_files(files[0], config.shifts if config.shifts_given else None)
        if not config.shifts_given and not config.quiet and found not in _NOTED:
            _NOTED.append(found)
            print(f"nsgen: --shifts not given: using {shift_note(found)}", file=sys.stderr,
                  flush=True)
        return [Path(p) for p in found]
    return files


@dataclass(frozen=True)
class ScanSource:
    """How to open one scan (picklable; each process opens its own handle)."""

    path: str
    layout: ScanLayout
    flats: str | None = None
    darks: str | None = None
    #: an uncompressed copy of the scan's frames to read instead (:func:`decompressed`)
    copy: str | None = None

    @classmethod
    def of(cls, config: Config, path: Path) -> "ScanSource":
        return cls(str(path), ScanLayout(config.data_path, config.image_key_path,
                                         config.angles_path),
                   None if config.flats is None else str(config.flats),
                   None if config.darks is None else str(config.darks))

    def open_new(self) -> Scan:
        """A newly opened scan (close it)."""
        if self.copy is not None:
            return open_scan(self.copy, ScanLayout(), self.flats, self.darks)
        return open_scan(self.path, self.layout, self.flats, self.darks)

    def open(self) -> Scan:
        """An open scan, cached per process (the reader keeps its handle)."""
        scan = _OPEN.get(self)
        if scan is None:
            for old in _OPEN.values():
                old.close()
            _OPEN.clear()
            scan = _OPEN[self] = self.open_new()
        return scan


_OPEN: dict[ScanSource, Scan] = {}


class _HintThread:
    """``advise_projections`` of an open scan, carried out in order on one background thread
    of this process, each request waiting for the previous one to arrive: asking the
    kernel for a batch of rows blocks while it queues the reads (~0.3 s per batch),
    which the reader must not wait for, and two batches in flight at once arrive
    interleaved, both late."""

    _pool: ThreadPoolExecutor | None = None

    def __init__(self, scan: Scan) -> None:
        self.scan = scan

    @classmethod
    def of(cls, scan: Scan) -> "_HintThread":
        if cls._pool is None:
            cls._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nsgen-hints")
        return cls(scan)

    def advise_projections(self, rows: slice) -> None:
        """Ask for ``rows`` once the rows asked for before have arrived."""
        assert self._pool is not None
        self._pool.submit(self.scan.advise_projections, rows, True)


def reread_warning(path: str, span: int | None, rows: int) -> str | None:
    """Advice when a compressed scan is read in chunks of fewer rows than it is compressed.

    HDF5 decompresses whole chunks: reading ``rows`` rows of chunks that span ``span`` rows
    decompresses each chunk about ``span / rows`` times.

    Examples
    --------
    >>> reread_warning("s.nxs", None, 7) is None, reread_warning("s.nxs", 8, 16) is None
    (True, True)
    >>> "9 times" in reread_warning("s.nxs", 2160, 243)
    True
    """
    if span is None or span <= rows:
        return None
    times = -(-span // rows)
    return (f"{path}: the projections are compressed in HDF5 chunks of {span} detector rows "
            f"and read {rows} rows at a time, so every chunk is decompressed {times} times "
            f"(about {times}x the time of one read); decompress the file first "
            f"(h5repack -f NONE in.nxs out.nxs) or let each chunk hold more rows "
            f"(--memory-limit, --chunk-size)")


def load_flat_field() -> None:
    """Load the compiled flat-field pass in this process (it loads on first use anyway)."""
    flat_field_log(np.ones((1, 1, 4), np.uint16), np.ones((1, 4)), np.zeros((1, 4)))


def interior(n_rows: int) -> range:
    """Rows that count for the bounds: all but ``EDGE_ROWS`` at each edge (if any remain)."""
    return range(EDGE_ROWS, n_rows - EDGE_ROWS) if n_rows > 2 * EDGE_ROWS else range(n_rows)


def interior_bounds(chunk: Chunk, values: np.ndarray, n_rows: int) -> Bounds:
    """Bounds of the interior rows of a chunk (``values`` has the chunk's rows first)."""
    keep = interior(n_rows)
    lo, hi = max(chunk.start, keep.start), min(chunk.stop, keep.stop)
    if lo >= hi:
        return EMPTY
    return Bounds.of(values[lo - chunk.start:hi - chunk.start])


def keep(spill: Any, chunk: Chunk, values: np.ndarray, n_rows: int) -> WorkResult:
    """Pass one of a downsampling mode: keep a chunk's result for pass two, return bounds."""
    spill.write_rows(chunk.start, values)
    return WorkResult(interior_bounds(chunk, values, n_rows))


def union(bounds: list[Bounds]) -> Bounds:
    """Union of per-chunk bounds (EMPTY when there are none)."""
    out = EMPTY
    for b in bounds:
        out = out.union(b)
    return out


@dataclass
class ScanStage(Stage):
    """Pass over detector-row chunks of a scan: raw projections + mean flat/dark rows.

    Subclasses implement :meth:`process` on the normalised sinograms
    ``(rows, angles, columns)``.
    """

    source: ScanSource
    shape: tuple[int, int, int]          # (angles, rows, columns) of the projections
    dtype: str
    chunk_rows: int
    halo: int = 0
    label: str = "normalise"
    #: chunks whose rows were asked for ahead of reading (:meth:`_prefetch`)
    _hinted: int = field(default=0, init=False, repr=False, compare=False)

    def chunks(self) -> list[Chunk]:
        return row_chunks(self.shape[1], self.chunk_rows)

    def read_rows(self, chunk: Chunk) -> tuple[int, int]:
        """Detector rows the reader delivers for ``chunk`` (the chunk plus any halo)."""
        return rows_to_read(chunk.start, chunk.stop, self.shape[1], self.halo)

    def slot_spec(self, chunk: Chunk) -> Any:
        lo, hi = self.read_rows(chunk)
        a, _, c = self.shape
        return [((a, hi - lo, c), self.dtype), ((hi - lo, c), "float32"),
                ((hi - lo, c), "float32")]

    def read(self, chunk: Chunk, out: Any) -> None:
        lo, hi = self.read_rows(chunk)
        scan = self.source.open()
        if chunk.index == 0:
            advice = reread_warning(self.source.path, scan.compressed_row_span,
                                    self.chunk_rows + 2 * self.halo)
            if advice:
                print(f"nsgen: warning: {advice}", file=sys.stderr, flush=True)
        self._prefetch(_HintThread.of(scan), chunk)
        scan.read_projections(slice(lo, hi), out[0])
        out[1][:] = scan.flat_mean(slice(lo, hi))
        out[2][:] = scan.dark_mean(slice(lo, hi))

    def prefetch(self) -> None:
        """Ask for the first batch of rows while the reader process is starting (main
        process; the reader then asks for the batches after it)."""
        chunks = self.chunks()
        if chunks:
            last = chunks[min(self._batch(), len(chunks)) - 1]
            with self.source.open_new() as scan:
                scan.advise_projections(self._rows_of(chunks[0], last))

    def _batch(self) -> int:
        """Chunks per read-ahead request (about :data:`PREFETCH_BYTES`)."""
        a, _, c = self.shape
        chunk_bytes = self.chunk_rows * a * c * np.dtype(self.dtype).itemsize
        return max(1, PREFETCH_BYTES // max(1, chunk_bytes))

    def _rows_of(self, first: Chunk, last: Chunk) -> slice:
        """Detector rows read for chunks ``first`` to ``last``."""
        return slice(self.read_rows(first)[0], self.read_rows(last)[1])

    def _prefetch(self, scan: Any, chunk: Chunk) -> None:
        """Keep the disk reading the next batch of rows while the workers process this one.

        Rows are asked for (``scan.advise_projections``) a batch of about
        :data:`PREFETCH_BYTES` at a time, so that each projection frame is fetched in
        pieces of a batch's rows rather than one small piece per chunk (strided small
        reads are what make a cold scan slow). Reading a chunk asks for its batch and the
        :data:`PREFETCH_AHEAD` after it: the reader's ``scan`` (:class:`_HintThread`) sends
        each request once the one before has arrived, so the disk reads on while the
        workers process this batch, and a bounded amount waits in the page cache (the
        kernel may reclaim it; it is not part of the memory limit).
        """
        chunks = self.chunks()
        batch = self._batch()
        want = min(len(chunks), (chunk.index // batch + 1 + PREFETCH_AHEAD) * batch)
        while self._hinted < want:
            last = min(want, self._hinted + batch)
            scan.advise_projections(self._rows_of(chunks[self._hinted], chunks[last - 1]))
            self._hinted = last

    def prepare(self) -> None:
        # load the compiled kernel and fault the work buffer in while the reader reads the
        # first chunk (first touch of fresh memory is the slowest part of a first chunk)
        load_flat_field()
        self._sinograms(self.chunk_rows + 2 * self.halo).fill(0)

    def _sinograms(self, rows: int) -> np.ndarray:
        """This worker's reusable buffer for ``rows`` normalised sinograms."""
        return scratch.buffer("sinograms", (rows, self.shape[0], self.shape[2]), np.float32)

    def work(self, chunk: Chunk, data: Any) -> WorkResult:
        raw, flat, dark = data
        return self.process(chunk, flat_field_log(raw, flat, dark,
                                                  out=self._sinograms(raw.shape[1])))

    def process(self, chunk: Chunk, sinos: np.ndarray) -> WorkResult:
        raise NotImplementedError


@dataclass
class ResizeStage(ScanStage):
    """Pass over a scan whose workers need only the downsampled sinograms (:data:`OUT_SHAPE`).

    Normalisation and downsampling run fused (:func:`~nsgen.prep.resize.normalise_downsample`):
    the full-resolution float32 sinograms are never stored. Subclasses implement
    :meth:`process` on the small sinograms ``(rows, *OUT_SHAPE)``, or override :meth:`work`
    to downsample ranges of angles (dynamic mode's frames).
    """

    def prepare(self) -> None:
        # build the resize operators and load the kernels while the first chunk is read
        for shape in self.resized_shapes():
            prepare_downsample(shape, OUT_SHAPE)

    def resized_shapes(self) -> set[tuple[int, int]]:
        """Sinogram shapes ``(angles, columns)`` this stage downsamples to :data:`OUT_SHAPE`."""
        return {(self.shape[0], self.shape[2])}

    def work(self, chunk: Chunk, data: Any) -> WorkResult:
        raw, flat, dark = data
        return self.process(chunk, normalise_downsample(raw, flat, dark, OUT_SHAPE))


@dataclass
class CandidateStage(ScanStage):
    """Stripe detection, pass one: ``W <= threshold`` per row chunk (halo ``radius`` rows).

    Writes the candidate mask rows first, bit-packed along columns (``np.packbits``), to
    ``candidates`` and, when asked, the weights to ``weights_spill`` (angles first, like the
    archive entry). See :func:`detect_stripes`.
    """

    params: dict = field(default_factory=lambda: dict(MASK_PARAMS))
    candidates: Any = None
    weights_spill: Any = None
    label: str = "detect stripes"

    def prepare(self) -> None:
        load_flat_field()
        load_kernels()
        # fault the work buffers in while the reader reads the first chunk (first touch of
        # fresh memory is the slowest part of a first chunk)
        rows = self.chunk_rows + 2 * self.halo
        scratch.buffer("volume", (self.shape[0], rows, self.shape[2]), np.float32).fill(0)
        scratch.buffer("candidates", (self.chunk_rows, *self.shape[::2]), np.uint8).fill(0)
        scratch.buffer("below", (self.chunk_rows * self.shape[0] * self.shape[2],),
                       np.uint8).fill(0)

    def work(self, chunk: Chunk, data: Any) -> WorkResult:
        raw, flat, dark = data
        # the detector works on (angles, rows, columns): the raw layout, no transposed copy
        volume = flat_field_log(raw, flat, dark, sinograms_first=False,
                                out=scratch.buffer("volume", raw.shape, np.float32))
        lo, _ = self.read_rows(chunk)
        p = self.params
        out = scratch.buffer("candidates", (chunk.rows, *self.shape[::2]), np.uint8)
        got = stripe_candidates_rows(volume, lo, (chunk.start, chunk.stop), self.shape[1],
                                     p["size"], p["radius"], p["threshold"],
                                     return_weights=self.weights_spill is not None, out=out,
                                     work=scratch.buffer("below", (out.size,), np.uint8))
        cand, weights = got if isinstance(got, tuple) else (got, None)
        self.candidates.write_rows(chunk.start, np.packbits(cand, axis=-1))
        if weights is not None:
            self.weights_spill.write_band(chunk.start, weights)
        return WorkResult(None)


@dataclass
class MergeStage(Stage):
    """Stripe detection, pass two: the merge passes per row chunk (halo ``depth // 2`` rows).

    Each worker reads its candidate rows (with the halo) straight from the scratch volume
    (no shared-memory copy), returns the stripe flags of each row (or row patch, see
    :func:`mask_flags`) and, with ``mask_spill`` (stored angles first like the archive entry,
    bit-packed along columns), keeps the full mask.
    """

    candidates: Any = None
    n_cols: int = 0
    chunk_rows: int = 1
    params: dict = field(default_factory=lambda: dict(MASK_PARAMS))
    patch_shape: tuple[int, int] | None = None
    mask_spill: Any = None
    label: str = "merge stripes"

    @property
    def halo(self) -> int:
        return self.params["min_stripe_depth"] // 2

    def chunks(self) -> list[Chunk]:
        return row_chunks(self.candidates.shape[0], self.chunk_rows)

    def work(self, chunk: Chunk, data: Any) -> WorkResult:
        p = self.params
        n_rows = self.candidates.shape[0]
        lo, hi = rows_to_read(chunk.start, chunk.stop, n_rows, self.halo)
        rows = scratch.buffer("candidates", (hi - lo, self.candidates.shape[1], self.n_cols),
                              np.uint8)
        from nsgen.prep._stripe_jit import unpack_bits  # compiled; numba loads lazily
        unpack_bits(self.candidates.read_rows(lo, hi), rows)
        mask = merge_stripes_rows(rows, lo,
                                  (chunk.start, chunk.stop), n_rows, p["min_stripe_length"],
                                  p["min_stripe_depth"], p["min_stripe_width"],
                                  p["sensitivity_perc"], overwrite_input=True)
        if self.mask_spill is not None:
            self.mask_spill.write_band(chunk.start, np.packbits(mask, axis=-1))
        return WorkResult(mask_flags(mask.transpose(1, 0, 2), self.patch_shape))


#: float32 copies of a row a worker holds in :class:`CandidateStage`: the float32 volume,
#: the below-threshold map and the candidates (4 + 1 + 1 bytes per voxel)
CANDIDATE_FLOAT_COPIES = 1.5
#: fixed memory of a detection worker beyond a plain one: Numba's compiler (~80 MiB PSS)
JIT_OVERHEAD = 96 * 2**20
#: extra float32 copies with ``--weights`` (ratio map, weights and their copy)
WEIGHTS_FLOAT_COPIES = 3.0
#: bytes a worker holds per candidate byte in :class:`MergeStage` (the rows read, the bool
#: copy, the output)
MERGE_WORK_FACTOR = 3.0


@dataclass
class DecompressStage(Stage):
    """Copy a compressed scan's frames, whole, into an uncompressed file (see
    :func:`decompressed`): the reader decompresses blocks of frames in file order, each
    chunk once; workers write them at their place in the copy."""

    source: ScanSource
    frames: Spill               # every frame of the copy: (frames, rows, columns)
    frames_per_chunk: int
    label: str = "decompress"

    def chunks(self) -> list[Chunk]:
        return row_chunks(self.frames.shape[0], self.frames_per_chunk)

    def slot_spec(self, chunk: Chunk) -> Any:
        return (chunk.rows, *self.frames.shape[1:]), self.frames.dtype

    def read(self, chunk: Chunk, out: Any) -> None:
        self.source.open().read_frames(slice(chunk.start, chunk.stop), out)

    def work(self, chunk: Chunk, data: Any) -> WorkResult:
        self.frames.write_rows(chunk.start, data)
        return WorkResult(None, nbytes=data.nbytes)


def decompressed(execute: Any, plan: Any, source: ScanSource, shape: tuple[int, int, int],
                 dtype: str, work: Path, log: Any = None) -> ScanSource:
    """``source``, or an uncompressed copy of it when reading it in row chunks would
    decompress every frame many times.

    HDF5 decompresses whole chunks, and detector frames are usually compressed a frame (or
    many rows) per chunk: a pass over row chunks then decompresses each frame once per row
    chunk. When the scan's compressed chunks span more rows than a chunk of the passes will
    hold, its frames are first copied, decompressed once each, into ``work/frames.h5``
    (on the engine: the reader decompresses, workers write); the passes then read the copy
    through the direct row reader. The copy reads exactly as the original (same frames,
    image key, flats and darks), so the outputs are the same bytes. A finished copy is kept
    (renamed into place when complete) and reused by a rerun.

    Raises
    ------
    NsgenError
        When ``work``'s file system lacks the space for the copy.
    """
    import shutil

    with source.open_new() as scan:
        span = scan.compressed_row_span
        rows = scan_sizing(plan, shape, dtype, 4).chunk_rows
        if span is None or span <= rows:
            return source
        n_frames = scan.n_frames
        frame_bytes = int(np.prod(shape[1:])) * np.dtype(dtype).itemsize
        target = work / "frames.h5"
        copy = ScanSource(source.path, source.layout, source.flats, source.darks, str(target))
        if target.exists():
            return copy
        work.mkdir(parents=True, exist_ok=True)
        need = n_frames * frame_bytes
        free = shutil.disk_usage(work).free
        if need > free:
            raise NsgenError(
                f"{source.path} is compressed in chunks of {span} detector rows; reading it "
                f"in chunks of {rows} rows needs an uncompressed copy of {need / 2**30:.1f} GiB "
                f"but {work} has {free / 2**30:.1f} GiB free; free space there, or decompress "
                f"the file first (h5repack -f NONE in.nxs out.nxs)")
        tmp = work / "frames.h5.partial"
        offset = create_frame_copy(tmp, scan)
    if log is not None:
        log(f"{source.path}: compressed in chunks of {span} rows; decompressing "
            f"{n_frames} frames once into {target}")
    sizing = plan(row_bytes=frame_bytes, work_factor=0.0)
    block = max(1, min(n_frames, TARGET_SLOT_BYTES // max(1, frame_bytes)))
    frames = Spill(tmp, (n_frames, *shape[1:]), np.dtype(dtype).str, offset)
    execute(DecompressStage(source, frames, block), replace(sizing, chunk_rows=block))
    os.replace(tmp, target)
    return copy


def detect_stripes(execute: Any, plan: Any, source: ScanSource, shape: tuple[int, int, int],
                   dtype: str, params: dict, work: Path,
                   patch_shape: tuple[int, int] | None = None, mask_spill: Any = None,
                   weights_spill: Any = None) -> np.ndarray:
    """Stripe mask of a scan in two streamed passes; returns the per-row (patch) flags.

    Pass one (:class:`CandidateStage`) repeats only ``radius`` rows per chunk side of the
    expensive detector; its candidates go to a scratch volume in ``work`` (one bit per voxel,
    removed at the end); pass two (:class:`MergeStage`) repeats ``depth // 2`` rows of
    the cheap merge passes. The result equals the whole-volume computation exactly.

    Parameters
    ----------
    execute : callable
        ``execute(stage, sizing) -> list`` runs a stage on the engine.
    plan : callable
        ``plan(row_bytes=..., work_factor=..., halo=...) -> Sizing`` for a pass.
    source, shape, dtype
        The scan (``shape`` = angles, rows, columns of the projections).
    params : dict
        Detection parameters (:data:`MASK_PARAMS` keys).
    work : pathlib.Path
        Directory for the candidate scratch volume.
    patch_shape, mask_spill, weights_spill
        See :class:`MergeStage` and :class:`CandidateStage`; ``mask_spill`` is
        ``(angles, rows, ceil(columns / 8))`` uint8 (bit-packed), ``weights_spill``
        ``(angles, rows, columns)`` float32.
    """
    n_angles, n_rows, n_cols = shape
    candidates = Spill.create(work / "candidates.bits", (n_rows, n_angles, -(-n_cols // 8)),
                              "uint8")
    try:
        copies = CANDIDATE_FLOAT_COPIES + (WEIGHTS_FLOAT_COPIES if weights_spill else 0.0)
        sizing = scan_sizing(plan, shape, dtype, copies, halo=params["radius"],
                             worker_overhead=JIT_OVERHEAD)
        execute(CandidateStage(source, shape, dtype, sizing.chunk_rows, halo=params["radius"],
                               params=params, candidates=candidates,
                               weights_spill=weights_spill), sizing)
        merge = MergeStage(candidates=candidates, n_cols=n_cols, chunk_rows=1, params=params,
                           patch_shape=patch_shape, mask_spill=mask_spill)
        # a compute-only stage: no slot, the worker holds the rows it reads and works on
        sizing = plan(row_bytes=n_angles * n_cols, halo=merge.halo, worker_overhead=JIT_OVERHEAD,
                      work_factor=MERGE_WORK_FACTOR)
        merge.chunk_rows = sizing.chunk_rows
        return np.concatenate(execute(merge, sizing), axis=0)
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
    """
    if patch_shape is None:
        return mask.any(axis=(0, 2))[:, None]
    n_angles, rows, n_cols = mask.shape
    rs, cs = crop_bounds((n_angles, n_cols), patch_shape)
    ph, pw = patch_shape
    cropped = mask[rs, :, cs]
    nh, nw = cropped.shape[0] // ph, cropped.shape[2] // pw
    blocks = cropped.reshape(nh, ph, rows, nw, pw).any(axis=(1, 4))   # (nh, rows, nw)
    return blocks.transpose(1, 2, 0).reshape(rows, nw * nh)


def scan_info(config: Config, path: Path) -> tuple[tuple[int, int, int], str, list[str]]:
    """Open a scan once in the main process (validates it): shape, dtype, files read."""
    with ScanSource.of(config, path).open_new() as scan:
        return (tuple(int(x) for x in scan.shape), np.dtype(scan.dtype).str,  # type: ignore
                scan.source_files)


def check_scans(config: Config) -> list[tuple[Path, tuple[int, int, int], str, list[str]]]:
    """Validate every shift's scan before anything is written.

    Returns ``(path, shape, dtype, files read)`` per shift.
    """
    if config.samples != 1:
        raise NsgenError(f"--samples {config.samples}: a real scan is one sample; choose its "
                         f"number with --start, and run one job per scan (see nsgen submit)")
    return [(p, *scan_info(config, p)) for p in scan_files(config)]


def check_mask_source(config: Config, path: Path, shape: tuple[int, int, int]) -> None:
    """The ``--mask`` archive holds this scan's key at full resolution; or, without one,
    the scan is large enough for on-the-fly detection with the seed's parameters."""
    if config.mask is not None:
        from nsgen.io.mask_archive import check_mask, mask_key
        check_mask(config.mask, mask_key(path), shape)
        return
    n_angles = shape[0]
    need = max(2 * MASK_PARAMS["size"], MASK_PARAMS["min_stripe_length"] + 1)
    if n_angles < need or shape[2] <= MASK_PARAMS["min_stripe_width"] \
            or shape[1] <= MASK_PARAMS["min_stripe_depth"]:
        raise NsgenError(f"{path} ({n_angles} angles x {shape[1]} rows x {shape[2]} columns) is "
                         f"too small for on-the-fly stripe detection with the seed's parameters "
                         f"(at least {need} angles, {MASK_PARAMS['min_stripe_depth'] + 1} rows, "
                         f"{MASK_PARAMS['min_stripe_width'] + 1} columns); give a mask with "
                         f"--mask (see nsgen mask)")


def scan_sizing(plan: Any, shape: tuple[int, int, int], dtype: str, float_copies: float,
                **kw: Any) -> Any:
    """Chunking for row chunks of a scan: one row = all angles x columns of raw data plus
    that row's mean flat and dark.

    ``plan(row_bytes=..., work_factor=..., **kw)`` makes the :class:`Sizing`;
    ``float_copies`` counts float32 copies of a row a worker holds.
    """
    a, _, c = shape
    itemsize = np.dtype(dtype).itemsize
    return plan(row_bytes=a * c * itemsize + 2 * c * 4,
                work_factor=float_copies * 4 / itemsize, **kw)


def run_plan(run: Any, n_rows: int) -> Any:
    """``plan(**kw)`` for :func:`scan_sizing` and :func:`detect_stripes` within a run."""
    return partial(run.sizing, n_rows=n_rows, max_chunk_rows=MAX_AUTO_CHUNK)


def sizing_for(run: Any, shape: tuple[int, int, int], dtype: str, work_factor: float) -> Any:
    """:func:`scan_sizing` of a run's scan (``work_factor`` float32 copies per row)."""
    return scan_sizing(run_plan(run, shape[1]), shape, dtype, work_factor)


def shift_flags(run: Any, config: Config, shift: int, source: ScanSource,
                shape: tuple[int, int, int], dtype: str,
                patch_shape: tuple[int, int] | None) -> np.ndarray:
    """Stripe flags of a shift: from ``--mask`` when given, else detected on the fly."""
    if config.mask is not None:
        from nsgen.io.mask_archive import mask_key, read_mask_flags
        return read_mask_flags(config.mask, mask_key(source.path), shape,
                               lambda block: mask_flags(block, patch_shape))
    run.log(f"[{run.tag}] shift {shift}: no --mask, detecting stripes on the fly")
    return detect_stripes(run.run, run_plan(run, shape[1]), source, shape, dtype,
                          dict(MASK_PARAMS), run.work / f"shift{shift:02d}",
                          patch_shape=patch_shape)


def run_shifts(run: Any, plan: Any) -> Any:
    """Run ``plan(run, shift, source, shape, dtype) -> list of file records`` per shift.

    Each shift is a unit: a finished one (from an interrupted earlier run) is not redone.
    Returns the sample's :class:`~nsgen.runner.SampleRecord` with the source files.
    """
    from nsgen.io.manifest import source_record
    from nsgen.runner import SampleRecord

    scans = check_scans(run.config)
    files = [f for *_, read in scans for f in read]
    if run.config.mask is not None:
        files.append(str(run.config.mask))
    record = SampleRecord(extra={"sources": [source_record(Path(f))
                                             for f in dict.fromkeys(files)],
                                 "bounds_rows": [interior(scans[0][1][1]).start,
                                                 interior(scans[0][1][1]).stop]})
    for shift, (path, shape, dtype, _) in enumerate(scans):
        unit = f"shift{shift:02d}"
        done = run.unit_done(unit)
        if done is None:
            run.log(f"[{run.tag}] {unit}: {path} {shape[0]} angles x {shape[1]} rows x "
                    f"{shape[2]} columns")
            source = decompressed(run.run, run_plan(run, shape[1]),
                                  ScanSource.of(run.config, path), shape, dtype,
                                  run.work / unit, lambda m: run.log(f"[{run.tag}] {m}"))
            files = plan(run, shift, source, shape, dtype)
            if source.copy is not None:   # done with it: free the space for the next shift
                Path(source.copy).unlink(missing_ok=True)
            run.finish_unit(unit, {"files": files})
        else:
            run.log(f"[{run.tag}] {unit}: finished earlier, kept")
            files = done["files"]
        record.files.extend(files)
    return record


ARTEFACT_DIRS = ("fake_artifacts/clean", "fake_artifacts/stripe", "real_artifacts/clean",
                 "real_artifacts/stripe")


def make_artefact_dirs(sample_dir: Path) -> None:
    """The paired/patch layout of the seed (``real_artifacts/clean`` stays empty)."""
    for d in ARTEFACT_DIRS:
        (sample_dir / d).mkdir(parents=True, exist_ok=True)


def artefact_images(real: bool, first: np.ndarray, stripe: np.ndarray | None
                    ) -> list[tuple[str, np.ndarray]]:
    """(subdirectory, image) of a real-artefact input, or of a fake pair's clean and stripe."""
    if real:
        return [("real_artifacts/stripe", first)]
    return [("fake_artifacts/clean", first), ("fake_artifacts/stripe", stripe)]


def artefact_records(tag: str, shift: int, index: int, name: str, real: bool,
                     shape: tuple[int, ...], bounds: Bounds, **more: Any) -> list[dict[str, Any]]:
    """Manifest entries of one fake pair (clean + stripe) or one real-artefact input."""
    if real:
        return [file_record(f"{tag}/real_artifacts/stripe/{name}", "stripe", index, shape,
                            bounds, shift=shift, artefact="real", **more)]
    clean = f"{tag}/fake_artifacts/clean/{name}"
    return [file_record(clean, "clean", index, shape, bounds, shift=shift, artefact="fake",
                        **more),
            file_record(f"{tag}/fake_artifacts/stripe/{name}", "stripe", index, shape, bounds,
                        shift=shift, artefact="fake", target=clean, **more)]


def synthetic_stripes(x: np.ndarray, rng: np.random.Generator, params: Any) -> np.ndarray:
    """Stripes on a real (``-log``) sinogram or patch, scaled by its own maximum."""
    from nsgen.sim.stripes import add_stripes

    vmax = float(np.max(x))
    if not vmax > 0:
        vmax = float(np.max(np.abs(x))) or 1.0
    return add_stripes(x, rng, params, vmax=vmax)
