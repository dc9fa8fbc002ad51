"""Sizing from the machine and from a SLURM allocation."""

from __future__ import annotations

import os

import pytest

from nsgen.engine.sizing import (TARGET_SLOT_BYTES, allocated_cores, available_memory,
                                  cgroup_memory_limit,
                                  plan_sizing, usable_cores)
from nsgen.errors import NsgenError

AFFINITY = len(os.sched_getaffinity(0))


def test_cores_from_slurm_allocation():
    assert usable_cores({"SLURM_CPUS_PER_TASK": "1"}) == 1
    assert usable_cores({"SLURM_CPUS_PER_TASK": "3"}) == min(3, AFFINITY)
    assert usable_cores({}) == AFFINITY


def test_cores_without_cpus_per_task_come_from_the_job_share_and_affinity():
    """sbatch without --cpus-per-task sets only SLURM_CPUS_ON_NODE; 0/garbage is ignored."""
    assert allocated_cores({"SLURM_CPUS_ON_NODE": "1"}) == 1
    assert usable_cores({"SLURM_CPUS_ON_NODE": "1"}) == 1
    assert allocated_cores({"SLURM_CPUS_PER_TASK": "2", "SLURM_CPUS_ON_NODE": "8"}) == 2
    for bad in ("", "0", "x", "-2"):
        assert allocated_cores({"SLURM_CPUS_PER_TASK": bad}) is None
        assert usable_cores({"SLURM_CPUS_PER_TASK": bad}) == AFFINITY


def test_cores_follow_the_affinity_mask():
    old = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(old)})
        assert usable_cores({}) == 1
        assert usable_cores({"SLURM_CPUS_PER_TASK": "4"}) == 1
    finally:
        os.sched_setaffinity(0, old)


def test_memory_from_slurm_allocation():
    mb = 2**20
    assert available_memory({"SLURM_MEM_PER_CPU": "100", "SLURM_CPUS_PER_TASK": "2"}) \
        == min(available_memory({}), 200 * mb)
    assert available_memory({"SLURM_MEM_PER_NODE": "300"}) == min(available_memory({}),
                                                                   300 * mb)


def test_memory_per_cpu_counts_allocated_cpus():
    mb = 2**20
    env = {"SLURM_MEM_PER_CPU": "50", "SLURM_CPUS_ON_NODE": "3"}
    assert available_memory(env) == min(available_memory({}), 150 * mb)


def test_zero_slurm_memory_means_the_whole_node():
    """--mem=0 sets SLURM_MEM_PER_NODE=0: all of the node's memory, not a zero limit."""
    free = available_memory({})
    assert available_memory({"SLURM_MEM_PER_NODE": "0"}) >= 0.5 * free
    assert available_memory({"SLURM_MEM_PER_CPU": "0", "SLURM_CPUS_PER_TASK": "1"}) \
        >= 0.5 * free


def test_cgroup_v2_limit_of_the_own_cgroup_and_its_ancestors(tmp_path):
    job = tmp_path / "system.slice" / "slurmstepd.scope" / "job_7"
    (job / "step_batch").mkdir(parents=True)
    (tmp_path / "memory.max").write_text("max\n")
    (job / "memory.max").write_text(f"{3 * 2**30}\n")
    (job / "step_batch" / "memory.max").write_text("max\n")
    own = "0::/system.slice/slurmstepd.scope/job_7/step_batch\n"
    assert cgroup_memory_limit(own, tmp_path) == 3 * 2**30
    (job / "step_batch" / "memory.max").write_text(f"{2**30}\n")
    assert cgroup_memory_limit(own, tmp_path) == 2**30
    assert cgroup_memory_limit("0::/\n", tmp_path) is None


def test_cgroup_v1_memory_hierarchy(tmp_path):
    mem = tmp_path / "memory"
    (mem / "slurm" / "uid_0" / "job_9").mkdir(parents=True)
    (mem / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (mem / "slurm" / "uid_0" / "job_9" / "memory.limit_in_bytes").write_text("536870912\n")
    own = "4:memory:/slurm/uid_0/job_9\n3:cpuset:/\n0::/\n"
    assert cgroup_memory_limit(own, tmp_path) == 2**29
    assert cgroup_memory_limit("4:cpuacct,memory:/slurm/uid_0/job_9\n", tmp_path) == 2**29
    assert cgroup_memory_limit("3:cpuset:/\n", tmp_path) is None
    assert cgroup_memory_limit("", tmp_path / "missing") is None


def test_auto_chunking_fits_the_memory_limit():
    row = 10 * 2**20
    small = plan_sizing(n_rows=2160, row_bytes=row, work_factor=3, workers=2,
                        memory_limit=600 * 2**20, max_chunk_rows=243, env={})
    in_flight = (row * small.chunk_rows * (small.slots + small.workers * 3)
                 + (small.workers + 2) * 80 * 2**20)
    assert 1 <= small.chunk_rows and in_flight <= 600 * 2**20
    # plenty of memory: chunks stay near TARGET_SLOT_BYTES (cheap first touch, many chunks)
    big = plan_sizing(n_rows=2160, row_bytes=row, work_factor=3, workers=2,
                      memory_limit=64 * 2**30, max_chunk_rows=243, env={})
    assert big.chunk_rows == TARGET_SLOT_BYTES // row > small.chunk_rows
    # few rows: every worker still gets chunks
    few = plan_sizing(n_rows=16, row_bytes=1000, work_factor=3, workers=2,
                      memory_limit=2**30, env={})
    assert few.chunk_rows == 2

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


def test_halo_rows_count_against_the_budget():
    row = 10 * 2**20
    plain = plan_sizing(n_rows=2000, row_bytes=row, work_factor=2, workers=2,
                        memory_limit=4 * 2**30, env={})
    haloed = plan_sizing(n_rows=2000, row_bytes=row, work_factor=2, workers=2,
                         memory_limit=4 * 2**30, halo=18, env={})
    for s, h in ((plain, 0), (haloed, 18)):
        in_flight = row * (s.chunk_rows + 2 * h) * (s.slots + s.workers * 2)
        assert in_flight + 4 * 80 * 2**20 <= 4 * 2**30
    # with a halo, chunks grow (as memory allows) so that little work is repeated
    assert haloed.chunk_rows > plain.chunk_rows


def test_tight_memory_uses_fewer_slots_before_failing():
    row = 10 * 2**20
    # one row + 2 x 18 halo rows, x (slot + 3 x work) = 1.5 GiB per busy worker
    s = plan_sizing(n_rows=256, row_bytes=row, work_factor=3, workers=2,
                    memory_limit=2 * 2**30, halo=18, env={})
    assert (s.slots, s.workers) == (1, 1) and s.chunk_rows >= 1
    with pytest.raises(NsgenError, match=r"plus 36 halo rows\) even with one worker busy"):
        plan_sizing(n_rows=256, row_bytes=row, work_factor=3, workers=2,
                    memory_limit=1 * 2**30, halo=18, env={})


def test_worker_overhead_comes_off_the_budget():
    row = 2 * 2**20
    kw = dict(n_rows=2160, row_bytes=row, work_factor=3, workers=2,
              memory_limit=900 * 2**20, max_chunk_rows=243, env={})
    plain = plan_sizing(**kw)
    jit = plan_sizing(**kw, worker_overhead=200 * 2**20)
    assert jit.chunk_rows < plain.chunk_rows
    with pytest.raises(NsgenError, match="needs about"):
        plan_sizing(**{**kw, "memory_limit": 600 * 2**20}, worker_overhead=2**30)
