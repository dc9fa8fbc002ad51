"""Sizing from the machine and from a SLURM allocation."""

from __future__ import annotations

import pytest

from nsgen.engine.sizing import available_memory, plan_sizing, usable_cores
from nsgen.errors import NsgenError


def test_cores_from_slurm_allocation():
    assert usable_cores({"SLURM_CPUS_PER_TASK": "3"}) == 3
    assert usable_cores({}) >= 1


def test_memory_from_slurm_allocation():
    mb = 2**20
    assert available_memory({"SLURM_MEM_PER_CPU": "100", "SLURM_CPUS_PER_TASK": "2"}) \
        == min(available_memory({}), 200 * mb)
    assert available_memory({"SLURM_MEM_PER_NODE": "300"}) == min(available_memory({}),
                                                                   300 * mb)


def test_auto_chunking_fits_the_memory_limit():
    row = 10 * 2**20
    s = plan_sizing(n_rows=2160, row_bytes=row, work_factor=3, workers=2,
                    memory_limit=2 * 2**30, max_chunk_rows=243, env={})
    in_flight = row * s.chunk_rows * (s.slots + s.workers * 3) + (s.workers + 2) * 80 * 2**20
    assert 1 <= s.chunk_rows <= 243 and in_flight <= 2 * 2**30
    big = plan_sizing(n_rows=2160, row_bytes=row, work_factor=3, workers=2,
                      memory_limit=64 * 2**30, max_chunk_rows=243, env={})
    assert big.chunk_rows > s.chunk_rows


def test_too_small_limit_is_a_clear_error():
    with pytest.raises(NsgenError, match="cannot hold one chunk of one row"):
        plan_sizing(n_rows=10, row_bytes=2**30, work_factor=4, workers=2,
                    memory_limit=2**30, env={})


def test_explicit_chunk_that_does_not_fit_is_an_error():
    with pytest.raises(NsgenError, match="--chunk-size 500 does not fit --memory-limit"):
        plan_sizing(n_rows=1000, row_bytes=2**20, work_factor=4, workers=2, chunk_rows=500,
                    memory_limit=2**30, env={})


def test_overrides_win_when_they_fit():
    s = plan_sizing(n_rows=100, row_bytes=1000, work_factor=4, workers=3, chunk_rows=7,
                    memory_limit=2**30, env={})
    assert (s.workers, s.chunk_rows) == (3, 7)
