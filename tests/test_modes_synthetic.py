"""What the synthetic modes share: the tapered chunking of their passes."""

from __future__ import annotations

import pytest

from nsgen.engine.pipeline import row_chunks
from nsgen.modes.synthetic import tapered_chunks


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
