"""What a pass is (nsgen.engine.stage): chunks, slot layout, the Stage defaults."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.engine.stage import Chunk, Stage, WorkResult, row_chunks, slot_bytes, slot_views


@pytest.mark.parametrize("n_rows, chunk_rows", [(0, 1), (1, 1), (10, 3), (10, 10), (7, 100)])
def test_row_chunks_partition_the_rows_in_order(n_rows, chunk_rows):
    chunks = row_chunks(n_rows, chunk_rows)
    covered = [r for c in chunks for r in range(c.start, c.stop)]
    assert covered == list(range(n_rows))
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(1 <= c.rows <= chunk_rows for c in chunks)
    assert len(chunks) == -(-n_rows // chunk_rows)


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
