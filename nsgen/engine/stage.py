"""What the engine runs: :class:`Stage` (one pass over the rows of a volume), its
:class:`Chunk` s (:func:`row_chunks`, :func:`tapered_chunks`), a worker's
:class:`WorkResult`, the layout of a chunk's arrays in a shared-memory slot
(:func:`slot_bytes`, :func:`slot_views`), and :class:`ReadsThrough`, the base of whatever
reads as another stage does."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np


@dataclass(frozen=True)
class Chunk:
    """Rows ``[start, stop)`` of a volume; ``index`` orders results."""

    index: int
    start: int
    stop: int

    @property
    def rows(self) -> int:
        """Number of rows."""
        return self.stop - self.start


def row_chunks(n_rows: int, chunk_rows: int) -> list[Chunk]:
    """Split ``n_rows`` rows into consecutive chunks of at most ``chunk_rows``.

    Examples
    --------
    >>> [(c.start, c.stop) for c in row_chunks(10, 4)]
    [(0, 4), (4, 8), (8, 10)]
    """
    if n_rows < 0 or chunk_rows < 1:
        raise ValueError(f"bad chunking: {n_rows} rows, {chunk_rows} per chunk")
    return [Chunk(i, s, min(s + chunk_rows, n_rows))
            for i, s in enumerate(range(0, n_rows, chunk_rows))]


def tapered_chunks(n_rows: int, chunk_rows: int, workers: int) -> list[Chunk]:
    """:func:`row_chunks` whose last ``workers`` chunks are cut in halves (none with one
    worker): the engine's chunking for passes whose chunks cost alike.

    The engine hands each chunk to the first free worker and the next pass waits for the
    last chunk, so a pass ends with workers idle while another finishes its chunk: halving
    the last chunks halves that wait. Outputs do not depend on the chunking.

    Examples
    --------
    >>> [c.rows for c in tapered_chunks(256, 32, 2)]
    [32, 32, 32, 32, 32, 32, 16, 16, 16, 16]
    >>> [c.rows for c in tapered_chunks(70, 32, 2)]
    [32, 16, 16, 3, 3]
    >>> [(c.start, c.stop) for c in tapered_chunks(10, 4, 1)]
    [(0, 4), (4, 8), (8, 10)]
    """
    chunks = row_chunks(n_rows, chunk_rows)
    if workers < 2 or chunk_rows < 2:
        return chunks
    keep = max(0, len(chunks) - workers)
    bounds = [(c.start, c.stop) for c in chunks[:keep]]
    for c in chunks[keep:]:
        middle = c.start + (c.rows + 1) // 2
        bounds += [(c.start, middle), (middle, c.stop)] if c.rows > 1 else [(c.start, c.stop)]
    return [Chunk(i, start, stop) for i, (start, stop) in enumerate(bounds)]


@dataclass
class WorkResult:
    """What a worker returns for one chunk: a small value plus output accounting
    (files and bytes written, and a checksum of each file by path)."""

    value: Any = None
    files: int = 0
    nbytes: int = 0
    checksums: dict[str, str] = field(default_factory=dict)


SlotSpec = Any  # (shape, dtype) or a list of (shape, dtype)
_ALIGN = 64


def _layout(spec: SlotSpec) -> list[tuple[int, tuple[int, ...], np.dtype]]:
    """Byte offset, shape and dtype of each array of a slot specification."""
    many = isinstance(spec, list)
    items = spec if many else [spec]
    out, off = [], 0
    for shape, dtype in items:
        dt = np.dtype(dtype)
        out.append((off, tuple(int(x) for x in shape), dt))
        off += -(-int(np.prod(shape)) * dt.itemsize // _ALIGN) * _ALIGN
    return out


def slot_bytes(spec: SlotSpec) -> int:
    """Bytes a slot needs for ``spec``."""
    lay = _layout(spec)
    off, shape, dt = lay[-1]
    return off + int(np.prod(shape)) * dt.itemsize


def slot_views(buf: Any, spec: SlotSpec) -> Any:
    """The arrays of ``spec`` laid out in ``buf`` (one array, or a list)."""
    views = [np.ndarray(shape, dtype=dt, buffer=buf, offset=off) for off, shape, dt in
             _layout(spec)]
    return views if isinstance(spec, list) else views[0]


class Stage:
    """One pass over the rows of a volume. Subclass and override.

    Instances are pickled to the reader and every worker once per stage, so keep
    them small (configuration, object lists, 2D maps), never whole volumes.
    """

    #: label of the progress bar
    label: str = "stage"
    #: what a chunk's ``start``/``stop`` count, as error messages name them
    unit: str = "rows"

    def chunks(self) -> Sequence[Chunk]:
        """The chunks of this stage, in result order."""
        raise NotImplementedError

    def slot_spec(self, chunk: Chunk) -> SlotSpec:
        """Shape and dtype of the data the reader delivers for ``chunk``.

        Either one ``(shape, dtype)`` pair, or a list of them when a chunk is several
        arrays (then :meth:`read` and :meth:`work` receive a list of arrays). The
        default is an empty array: a compute-only stage whose workers make their own
        data (for example by simulation).
        """
        return (0,), "uint8"

    def read(self, chunk: Chunk, out: Any) -> None:
        """Fill ``out`` with the data of ``chunk`` (runs in the reader process)."""

    def work(self, chunk: Chunk, data: Any) -> WorkResult:
        """Process one chunk (runs in a worker process)."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Run once in every worker as the stage starts, while the reader reads the first
        chunks (for example to load compiled kernels). The default does nothing."""

    def early_reader(self) -> AbstractContextManager[Callable[[Chunk, Any], None] | None]:
        """A context giving a function that reads a chunk as :meth:`read` does, in the main
        process, or None (the default): while the engine's processes start, the main
        process fills the free slots with the first chunks (:meth:`Engine.run
        <nsgen.engine.pipeline.Engine.run>`), and the reader begins after them. Only for
        stages whose reader carries no state from chunk to chunk; the context releases
        what the reads held (open files) before the stage goes to the reader."""
        return nullcontext(None)

    def prefetch(self) -> None:
        """Begin slow input early (for example ask the OS to read ahead). Runs on a thread
        of the main process as the stage is submitted, while the reader process receives
        it; it must not change the stage, and its errors are ignored (the reader reports
        real ones). The default does nothing."""


#: the methods of a :class:`Stage` that make its reader side (all but ``work``)
READER_METHODS = ("chunks", "slot_spec", "read", "early_reader", "prefetch", "prepare")


class ChunkReader(Protocol):
    """The reader side of a stage (:data:`READER_METHODS`): what :class:`ReadsThrough`
    passes on."""

    def chunks(self) -> Sequence[Chunk]: ...

    def slot_spec(self, chunk: Chunk) -> SlotSpec: ...

    def read(self, chunk: Chunk, out: Any) -> None: ...

    def early_reader(self) -> AbstractContextManager[Callable[[Chunk, Any], None] | None]: ...

    def prefetch(self) -> None: ...

    def prepare(self) -> None: ...


class ReadsThrough:
    """Base of a stage (or a stage's row source) that reads as another one does: every
    method of :data:`READER_METHODS` is that of :meth:`reads_as` (a subclass overrides
    the ones it adds to, such as ``prepare``). Put it before :class:`Stage` in the bases.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Twice(ReadsThrough, Stage):
    ...     inner: Stage
    ...     def reads_as(self) -> Stage:
    ...         return self.inner
    >>> class Rows(Stage):
    ...     def chunks(self) -> list[Chunk]:
    ...         return row_chunks(5, 2)
    >>> [c.stop for c in Twice(Rows()).chunks()]
    [2, 4, 5]
    """

    def reads_as(self) -> ChunkReader:
        """The stage whose reader this one's is."""
        raise NotImplementedError

    def chunks(self) -> Sequence[Chunk]:
        return self.reads_as().chunks()

    def slot_spec(self, chunk: Chunk) -> SlotSpec:
        return self.reads_as().slot_spec(chunk)

    def read(self, chunk: Chunk, out: Any) -> None:
        self.reads_as().read(chunk, out)

    def early_reader(self) -> AbstractContextManager[Callable[[Chunk, Any], None] | None]:
        return self.reads_as().early_reader()

    def prefetch(self) -> None:
        self.reads_as().prefetch()

    def prepare(self) -> None:
        self.reads_as().prepare()


class EngineError(RuntimeError):
    """A reader or worker process failed or died; the message says which and why."""

