"""What a pass is (nsgen.engine.stage): chunks, slot layout, the Stage defaults, the
stages that read as another one does (ReadsThrough)."""

from __future__ import annotations

import inspect
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest

from nsgen.engine.stage import (READER_METHODS, Chunk, ReadsThrough, Stage, WorkResult,
                                row_chunks, slot_bytes, slot_views, tapered_chunks)
from nsgen.modes.patch import RawRows
from nsgen.scan import ScanLayout
from nsgen.stages.fused import FusedStage
from nsgen.stages.scan_source import ScanSource
from nsgen.stages.scan_stages import ScanStage
from nsgen.stages.write import WriteStage


@pytest.mark.parametrize("n_rows, chunk_rows", [(0, 1), (1, 1), (10, 3), (10, 10), (7, 100)])
def test_row_chunks_partition_the_rows_in_order(n_rows, chunk_rows):
    chunks = row_chunks(n_rows, chunk_rows)
    covered = [r for c in chunks for r in range(c.start, c.stop)]
    assert covered == list(range(n_rows))
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(1 <= c.rows <= chunk_rows for c in chunks)
    assert len(chunks) == -(-n_rows // chunk_rows)


@pytest.mark.parametrize("n_rows", [1, 2, 7, 16, 64, 256, 257])
@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 32, 300])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_tapered_chunks_cover_the_rows_once_in_order(n_rows, chunk_rows, workers):
    """Consecutive chunks numbered in order, covering every row once, none larger than
    ``chunk_rows``; the chunks before the last ``workers`` are those of ``row_chunks``."""
    chunks = tapered_chunks(n_rows, chunk_rows, workers)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[0].start == 0 and chunks[-1].stop == n_rows
    assert all(a.stop == b.start for a, b in zip(chunks, chunks[1:]))
    assert all(0 < c.rows <= chunk_rows for c in chunks)
    plain = row_chunks(n_rows, chunk_rows)
    keep = max(0, len(plain) - workers)
    assert chunks[:keep] == plain[:keep]


def test_one_worker_keeps_the_plain_chunks():
    assert tapered_chunks(256, 32, 1) == row_chunks(256, 32)


def test_the_last_chunk_of_every_worker_is_halved():
    assert [c.rows for c in tapered_chunks(256, 32, 2)] == [32] * 6 + [16] * 4


@pytest.mark.parametrize("n_rows, chunk_rows", [(-1, 4), (10, 0)])
def test_row_chunks_refuses_a_bad_chunking(n_rows, chunk_rows):
    with pytest.raises(ValueError, match="bad chunking"):
        row_chunks(n_rows, chunk_rows)


def test_chunk_rows_is_its_length():
    assert Chunk(3, 10, 17).rows == 7


def test_one_array_slot_is_exactly_its_bytes():
    assert slot_bytes(((3, 5), "uint16")) == 30
    buf = bytearray(30)
    view = slot_views(buf, ((3, 5), "uint16"))
    view[:] = 7
    assert view.shape == (3, 5) and view.dtype == np.uint16
    assert bytes(buf) == np.full((3, 5), 7, np.uint16).tobytes()


def test_several_arrays_are_aligned_and_do_not_overlap():
    spec = [((3,), "uint8"), ((2, 2), "float64"), ((5,), "float32")]
    size = slot_bytes(spec)
    assert size == 64 + 64 + 20       # each array starts on a 64-byte boundary
    buf = bytearray(size)
    a, b, c = slot_views(buf, spec)
    a[:] = 1
    b[:] = 2.5
    c[:] = -1
    assert (a == 1).all() and (b == 2.5).all() and (c == -1).all()
    base = np.frombuffer(buf, np.uint8).ctypes.data
    assert [v.ctypes.data - base for v in (a, b, c)] == [0, 64, 128]


def test_stage_defaults_are_a_compute_only_pass():
    stage = Stage()
    assert slot_bytes(stage.slot_spec(Chunk(0, 0, 1))) == 0
    assert stage.read(Chunk(0, 0, 1), None) is None
    assert stage.prepare() is None and stage.prefetch() is None
    with pytest.raises(NotImplementedError):
        stage.chunks()
    with pytest.raises(NotImplementedError):
        stage.work(Chunk(0, 0, 1), None)


def test_work_results_do_not_share_their_checksums():
    a, b = WorkResult(), WorkResult()
    a.checksums["x"] = "1"
    assert b.checksums == {} and (a.files, a.nbytes, a.value) == (0, 0, None)


def test_reader_methods_are_every_method_of_a_stage_but_work():
    """A reader method added to Stage must be added to READER_METHODS, so that every
    ReadsThrough passes it on (as early_reader once was not)."""
    methods = {n for n, f in vars(Stage).items() if inspect.isfunction(f) and not n.startswith("_")}
    assert methods - {"work"} == set(READER_METHODS)
    assert all(callable(getattr(ReadsThrough, n)) for n in READER_METHODS)


@dataclass
class Recording(ScanStage):
    """A scan stage whose reader methods record their calls and return what they were
    asked for, without a file."""

    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def _called(self, name: str, *args: Any) -> str:
        self.calls.append((name, args))
        return f"{name} of the inner stage"

    def slot_spec(self, chunk: Chunk) -> Any:
        return self._called("slot_spec", chunk)

    def read(self, chunk: Chunk, out: Any) -> None:
        self._called("read", chunk, out)

    def early_reader(self) -> Any:
        self._called("early_reader")
        return nullcontext(self.read)

    def prefetch(self) -> None:
        self._called("prefetch")

    def prepare(self) -> None:
        self._called("prepare")


def _no_images(chunk: Chunk, rows: Any) -> list[Any]:
    return []


class _NoWriter:
    def write(self, items: Any) -> tuple[int, int, dict[str, str]]:
        return 0, 0, {}


@pytest.mark.parametrize("wrap, own", [
    (lambda s: WriteStage(s, _no_images, _NoWriter()), ()),
    (lambda s: FusedStage(s, s), ("prepare",)),            # prepares both passes' workers
    (RawRows, ("prepare",)),                               # loads its own row kernels
    (lambda s: WriteStage(RawRows(s), _no_images, _NoWriter()), ("prepare",)),
], ids=["WriteStage", "FusedStage", "RawRows", "WriteStage of RawRows"])
def test_a_stage_that_reads_through_passes_every_reader_method_on(
        wrap: Callable[[ScanStage], Any], own: tuple[str, ...]) -> None:
    inner = Recording(ScanSource("s.nxs", ScanLayout()), (10, 8, 4), "<u2", chunk_rows=3)
    outer = wrap(inner)
    chunk, out = inner.chunks()[1], object()
    args: dict[str, tuple[Any, ...]] = {"slot_spec": (chunk,), "read": (chunk, out)}
    for name in READER_METHODS:
        if name in own:   # what the stage does itself
            continue
        inner.calls.clear()
        got = getattr(outer, name)(*args.get(name, ()))
        if name == "chunks":
            assert got == inner.chunks()
            continue
        assert inner.calls == [(name, args.get(name, ()))], name
        if name == "slot_spec":
            assert got == "slot_spec of the inner stage"
    inner.calls.clear()
    with outer.early_reader() as read:   # the early reads are the inner stage's reads
        read(chunk, out)
    assert inner.calls == [("early_reader", ()), ("read", (chunk, out))]
