"""Passes over detector-row chunks of a scan: raw projections + mean flat/dark rows in,
normalised (and, for :class:`ResizeStage`, downsampled) sinograms to a subclass's
:meth:`ScanStage.process`.

The reader asks the disk for rows ahead of the chunks it reads (:meth:`ScanStage._prefetch`):
the first batch from the main process while the reader starts, then this batch and the
next ones on the reader's hint thread (:class:`~nsgen.stages.scan_source.HintThread`).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from nsgen.engine import profile, scratch
from nsgen.engine.pipeline import Chunk, SlotSpec, Stage, WorkResult, row_chunks
from nsgen.prep.normalise import flat_field_log
from nsgen.prep.resize import normalise_downsample, prepare_downsample
from nsgen.prep.stripe_detect import rows_to_read
from nsgen.scan import Scan
from nsgen.stages.scan_source import HintThread, RowHints, ScanSource

__all__ = ["OUT_SHAPE", "PREFETCH_AHEAD", "PREFETCH_BYTES", "ResizeStage", "ScanStage",
           "load_flat_field", "read_scan_rows", "reread_warning"]

#: sinogram size after downsampling (raw, paired, dynamic), as in the seed
OUT_SHAPE = (402, 362)
#: bytes of projections the reader asks the disk for at a time, ahead of the chunks it reads
PREFETCH_BYTES = 384 * 2**20
#: batches asked for beyond the one being read (so at most 3 x PREFETCH_BYTES wait in the
#: page cache): the disk keeps reading while the first chunks wait for the workers to start
PREFETCH_AHEAD = 2


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


def read_scan_rows(scan: Scan, rows: slice, out: list[np.ndarray]) -> None:
    """The raw projections of detector ``rows`` of ``scan`` and their mean flat and dark
    rows into ``out`` (``(angles, rows, columns)`` of the scan's dtype, then two ``(rows,
    columns)`` float32): what the reader of a scan pass hands its workers."""
    scan.read_projections(rows, out[0])
    out[1][:] = scan.flat_mean(rows)
    out[2][:] = scan.dark_mean(rows)


def load_flat_field() -> None:
    """Load the compiled flat-field pass in this process (it loads on first use anyway)."""
    flat_field_log(np.ones((1, 1, 4), np.uint16), np.ones((1, 4)), np.zeros((1, 4)))


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
    #: 0: pass one returns bounds (min/max); else key counts for percentile bounds
    #: (:func:`nsgen.modes.real.summarise`)
    percentile: float = 0.0
    #: chunks whose rows were asked for ahead of reading (:meth:`_prefetch`)
    _hinted: int = field(default=0, init=False, repr=False, compare=False)
    #: the main process's scan while it reads the first chunks (:meth:`early_reader`)
    _early: Scan | None = field(default=None, init=False, repr=False, compare=False)

    def chunks(self) -> list[Chunk]:
        return row_chunks(self.shape[1], self.chunk_rows)

    def read_rows(self, chunk: Chunk) -> tuple[int, int]:
        """Detector rows the reader delivers for ``chunk`` (the chunk plus any halo)."""
        return rows_to_read(chunk.start, chunk.stop, self.shape[1], self.halo)

    def slot_spec(self, chunk: Chunk) -> SlotSpec:
        lo, hi = self.read_rows(chunk)
        a, _, c = self.shape
        return [((a, hi - lo, c), self.dtype), ((hi - lo, c), "float32"),
                ((hi - lo, c), "float32")]

    def read(self, chunk: Chunk, out: list[np.ndarray]) -> None:
        scan = self._early
        if scan is None:
            scan = self.source.open()
            self._prefetch(HintThread.of(scan), chunk)
        if chunk.index == 0:
            advice = reread_warning(self.source.path, scan.compressed_row_span,
                                    self.chunk_rows + 2 * self.halo)
            if advice:
                print(f"nsgen: warning: {advice}", file=sys.stderr, flush=True)
        lo, hi = self.read_rows(chunk)
        read_scan_rows(scan, slice(lo, hi), out)

    @contextmanager
    def early_reader(self) -> Iterator[Callable[[Chunk, list[np.ndarray]], None]]:
        """:meth:`read` in the main process, from a scan of its own, closed afterwards
        (without read-ahead requests: :meth:`prefetch` asked for the first batch)."""
        with self.source.open_new() as scan:
            self._early = scan
            try:
                yield self.read
            finally:
                self._early = None

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

    def _prefetch(self, scan: RowHints, chunk: Chunk) -> None:
        """Keep the disk reading the next batch of rows while the workers process this one.

        Rows are asked for (``scan.advise_projections``) a batch of about
        :data:`PREFETCH_BYTES` at a time, so that each projection frame is fetched in
        pieces of a batch's rows rather than one small piece per chunk (strided small
        reads are what make a cold scan slow). Reading a chunk asks for its batch and the
        :data:`PREFETCH_AHEAD` after it: the reader's ``scan`` (:class:`HintThread`) sends
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

    def values(self, chunk: Chunk, data: list[np.ndarray]) -> np.ndarray:
        """The chunk's normalised sinograms ``(rows, angles, columns)`` (with any halo
        rows), in this worker's reusable buffer."""
        raw, flat, dark = data
        with profile.phase("normalise"):
            return flat_field_log(raw, flat, dark, out=self._sinograms(raw.shape[1]))

    def work(self, chunk: Chunk, data: list[np.ndarray]) -> WorkResult:
        return self.process(chunk, self.values(chunk, data))

    def process(self, chunk: Chunk, sinos: np.ndarray) -> WorkResult:
        """A chunk's result from its normalised sinograms ``(rows, angles, columns)``."""
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

    def values(self, chunk: Chunk, data: list[np.ndarray]) -> np.ndarray:
        """The chunk's downsampled sinograms ``(rows, *OUT_SHAPE)``."""
        raw, flat, dark = data
        with profile.phase("normalise+downsample"):
            return normalise_downsample(raw, flat, dark, OUT_SHAPE)
