"""How many workers, how many rows per chunk, how many slots: from the machine.

Inside a SLURM allocation the allocation is the machine: cores come from
``SLURM_CPUS_PER_TASK`` (or the CPU affinity mask), memory from
``SLURM_MEM_PER_CPU`` x cores, ``SLURM_MEM_PER_NODE`` or the cgroup limit,
whichever applies; outside SLURM from psutil.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import psutil

from nsgen.errors import NsgenError

#: share of the available memory used when --memory-limit is auto
DEFAULT_MEMORY_SHARE = 0.75
#: memory a process of the run takes before it holds any data (interpreter, numpy, h5py)
PROCESS_OVERHEAD = 80 * 2**20


def usable_cores(env: Mapping[str, str] | None = None) -> int:
    """Cores this process may use: SLURM allocation, else affinity mask, else all."""
    env = os.environ if env is None else env
    for key in ("SLURM_CPUS_PER_TASK",):
        if env.get(key, "").strip().isdigit() and int(env[key]) > 0:
            return int(env[key])
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, psutil.cpu_count() or 1)


def _cgroup_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:
            return int(text)
    return None


def available_memory(env: Mapping[str, str] | None = None) -> int:
    """Bytes this run may use: the tightest of SLURM, cgroup and free memory."""
    env = os.environ if env is None else env
    limits = [psutil.virtual_memory().available]
    mb = 2**20
    if env.get("SLURM_MEM_PER_CPU", "").isdigit():
        limits.append(int(env["SLURM_MEM_PER_CPU"]) * mb * usable_cores(env))
    elif env.get("SLURM_MEM_PER_NODE", "").isdigit():
        limits.append(int(env["SLURM_MEM_PER_NODE"]) * mb)
    cg = _cgroup_limit()
    if cg is not None:
        limits.append(cg)
    return int(min(limits))


@dataclass(frozen=True)
class Sizing:
    """The engine's resources for one stage."""

    workers: int
    chunk_rows: int
    slots: int
    memory_limit: int

    def describe(self, row_bytes: int) -> str:
        """One line for ``-v``."""
        return (f"{self.workers} workers, {self.chunk_rows} rows per chunk, {self.slots} "
                f"shared-memory slots of {self.chunk_rows * row_bytes / 2**20:.1f} MiB, "
                f"memory limit {self.memory_limit / 2**30:.2f} GiB")


def plan_sizing(*, n_rows: int, row_bytes: int, work_factor: float,
                workers: int | None = None, chunk_rows: int | None = None,
                memory_limit: int | None = None, max_chunk_rows: int | None = None,
                env: Mapping[str, str] | None = None) -> Sizing:
    """Choose workers, rows per chunk and slot count within a memory budget.

    Parameters
    ----------
    n_rows : int
        Rows (detector rows) of the volume streamed through the engine.
    row_bytes : int
        Bytes one row occupies in a shared-memory slot.
    work_factor : float
        Bytes a worker holds while processing a chunk, per slot byte (temporaries).
    workers, chunk_rows, memory_limit : optional
        User overrides (``--workers``, ``--chunk-size``, ``--memory-limit``).
    max_chunk_rows : int, optional
        Upper bound of automatic chunk rows (e.g. 243 for real data).

    Returns
    -------
    Sizing

    Raises
    ------
    NsgenError
        When the memory limit cannot hold even one row per chunk.
    """
    n_workers = workers or usable_cores(env)
    limit = memory_limit or int(available_memory(env) * DEFAULT_MEMORY_SHARE)
    n_slots = n_workers + 1
    budget = limit - (n_workers + 2) * PROCESS_OVERHEAD
    per_row = max(1, row_bytes) * (n_slots + n_workers * work_factor)
    fit = int(budget // per_row) if budget > 0 else 0
    if chunk_rows is None:
        if fit < 1:
            need = (n_workers + 2) * PROCESS_OVERHEAD + per_row
            raise NsgenError(f"--memory-limit {limit / 2**20:.0f}MiB cannot hold one chunk of "
                             f"one row with {n_workers} workers (needs about "
                             f"{math.ceil(need / 2**20)}MiB); raise --memory-limit or lower "
                             f"--workers")
        # enough chunks to keep every worker busy, not more than memory allows
        balanced = math.ceil(n_rows / (4 * n_workers))
        rows = max(1, min(fit, balanced if n_rows > 4 * n_workers else n_rows))
        if max_chunk_rows:
            rows = min(rows, max_chunk_rows)
        chunk_rows = min(rows, n_rows)
    elif memory_limit is not None and chunk_rows > fit:
        raise NsgenError(f"--chunk-size {chunk_rows} does not fit --memory-limit "
                         f"{limit / 2**20:.0f}MiB (at most {max(fit, 0)} rows with "
                         f"{n_workers} workers); lower --chunk-size or raise --memory-limit")
    return Sizing(workers=n_workers, chunk_rows=max(1, min(chunk_rows, n_rows)),
                  slots=n_slots, memory_limit=limit)
