"""How many workers, how many rows per chunk, how many slots: from the machine.

Inside a SLURM allocation the allocation is the machine: cores come from the CPU
affinity mask capped by ``SLURM_CPUS_PER_TASK`` (else ``SLURM_CPUS_ON_NODE``), memory
from ``SLURM_MEM_PER_CPU`` x allocated CPUs, ``SLURM_MEM_PER_NODE`` or the job's cgroup
limit, whichever is tightest; outside SLURM from the affinity mask, psutil and cgroups.
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
#: automatic chunks stay near this many bytes per slot: large enough to amortise per-chunk
#: costs, small enough that first-touch of worker buffers and cache misses stay cheap
TARGET_SLOT_BYTES = 64 * 2**20
#: with a halo, chunks aim at this many times the halo (repeated rows 2/16 = 12.5 %)
HALO_CHUNK_FACTOR = 16


def _positive_int(env: Mapping[str, str], key: str) -> int | None:
    """``env[key]`` as a positive integer, or None when unset, empty, zero or not a number."""
    text = env.get(key, "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def allocated_cores(env: Mapping[str, str] | None = None) -> int | None:
    """CPUs a SLURM allocation gives this task, or None outside SLURM.

    ``SLURM_CPUS_PER_TASK`` when the job asked for ``--cpus-per-task``, else
    ``SLURM_CPUS_ON_NODE`` (what a one-task batch job holds on its node).

    Examples
    --------
    >>> allocated_cores({"SLURM_CPUS_PER_TASK": "4", "SLURM_CPUS_ON_NODE": "8"})
    4
    >>> allocated_cores({"SLURM_CPUS_ON_NODE": "2"}), allocated_cores({})
    (2, None)
    """
    env = os.environ if env is None else env
    return _positive_int(env, "SLURM_CPUS_PER_TASK") or _positive_int(env, "SLURM_CPUS_ON_NODE")


def usable_cores(env: Mapping[str, str] | None = None) -> int:
    """Cores this process may use: the CPU affinity mask, capped by the SLURM allocation.

    The affinity mask is what the kernel lets the process run on (SLURM's task/affinity
    or task/cgroup plugins, ``taskset``); the allocation also caps it where SLURM does
    not bind tasks to CPUs (task/none), so workers never outnumber the allocated CPUs.
    """
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        cores = max(1, psutil.cpu_count() or 1)
    allocated = allocated_cores(env)
    return min(cores, allocated) if allocated else cores


#: cgroup memory-limit files: v2 (unified, also mounted at unified/ in hybrid setups), v1
_CGROUP_FILES = (("", "memory.max"), ("unified", "memory.max"),
                 ("memory", "memory.limit_in_bytes"))


def cgroup_memory_limit(proc_cgroup: str | None = None,
                        fs: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Tightest memory limit of this process's cgroup and its ancestors, if any.

    Parameters
    ----------
    proc_cgroup : str, optional
        Text of ``/proc/self/cgroup`` (read when None). Its paths locate the
        process's own cgroup (e.g. a SLURM job's ``job_<id>/step_batch``) below
        ``fs``; the limit of every ancestor applies too.
    fs : Path
        Mount point of the cgroup file systems.

    Returns
    -------
    int or None
        Bytes, or None when no finite limit is set.
    """
    if proc_cgroup is None:
        try:
            proc_cgroup = Path("/proc/self/cgroup").read_text()
        except OSError:
            proc_cgroup = ""
    own: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        hid, controllers, path = parts
        if hid == "0" and controllers == "":
            own[""] = own["unified"] = path
        elif "memory" in controllers.split(","):
            own["memory"] = path
    limits = []
    for sub, name in _CGROUP_FILES:
        rel = [p for p in own.get(sub, "/").split("/") if p]
        for depth in range(len(rel), -1, -1):
            try:
                text = (fs / sub).joinpath(*rel[:depth], name).read_text().strip()
            except OSError:
                continue
            if text.isdigit() and int(text) < 2**60:
                limits.append(int(text))
    return min(limits) if limits else None


def available_memory(env: Mapping[str, str] | None = None) -> int:
    """Bytes this run may use: the tightest of SLURM, cgroup and free memory.

    Inside an allocation ``SLURM_MEM_PER_CPU`` (MiB) x allocated CPUs or
    ``SLURM_MEM_PER_NODE`` (MiB), whichever is set (0 means "all of the node"
    and sets no limit), and the job's cgroup limit where SLURM enforces one.
    """
    env = os.environ if env is None else env
    limits = [psutil.virtual_memory().available]
    mb = 2**20
    per_cpu = _positive_int(env, "SLURM_MEM_PER_CPU")
    per_node = _positive_int(env, "SLURM_MEM_PER_NODE")
    if per_cpu is not None:
        limits.append(per_cpu * mb * (allocated_cores(env) or usable_cores(env)))
    elif per_node is not None:
        limits.append(per_node * mb)
    cg = cgroup_memory_limit()
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
                halo: int = 0, max_workers: int | None = None,
                worker_overhead: int = 0,
                env: Mapping[str, str] | None = None) -> Sizing:
    """Choose rows per chunk and slot count within a memory budget.

    Memory in flight: every slot holds ``chunk_rows + 2 * halo`` rows of ``row_bytes``;
    every slot being processed also costs its worker ``work_factor`` times that. At most
    ``slots`` chunks are in flight, so when memory is short nsgen uses fewer slots (fewer
    workers busy at once) before giving up.

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
    halo : int
        Extra rows read and processed on each side of a chunk (stripe detection).
    max_workers : int, optional
        Worker processes of the running engine (default: ``workers``).
    worker_overhead : int
        Extra fixed bytes per worker for this stage (e.g. a loaded compiler).

    Returns
    -------
    Sizing

    Raises
    ------
    NsgenError
        When the memory limit cannot hold even one row per chunk with one slot, or an
        explicit ``chunk_rows`` does not fit.
    """
    n_workers = max_workers or workers or usable_cores(env)
    limit = memory_limit or int(available_memory(env) * DEFAULT_MEMORY_SHARE)
    budget = limit - (n_workers + 2) * PROCESS_OVERHEAD - n_workers * worker_overhead
    row_bytes = max(1, row_bytes)

    def fit(slots: int) -> int:
        per_row = row_bytes * (slots + min(n_workers, slots) * work_factor)
        return (int(budget // per_row) if budget > 0 else 0) - 2 * halo

    slots = n_workers + 1
    while slots > 1 and fit(slots) < max(1, chunk_rows or 1):
        slots -= 1
    room = fit(slots)
    if chunk_rows is None:
        if room < 1:
            need = (n_workers + 2) * PROCESS_OVERHEAD + n_workers * worker_overhead + \
                row_bytes * (1 + 2 * halo) * (1 + work_factor)
            raise NsgenError(f"--memory-limit {limit / 2**20:.0f}MiB cannot hold one chunk of "
                             f"one row (plus {2 * halo} halo rows) even with one worker busy "
                             f"(needs about {math.ceil(need / 2**20)}MiB); raise "
                             f"--memory-limit")
        # enough chunks to keep every worker busy, not more than memory allows; slots near
        # TARGET_SLOT_BYTES, but chunks well above the halo so little work is repeated
        busy = min(n_workers, slots)
        per_worker = 2 if halo else 4   # with a halo, fewer chunks repeat less work
        balanced = (math.ceil(n_rows / (per_worker * busy)) if n_rows > per_worker * busy
                    else n_rows)
        target = max(1, TARGET_SLOT_BYTES // row_bytes, HALO_CHUNK_FACTOR * halo)
        rows = max(1, min(room, balanced, target))
        if max_chunk_rows:
            rows = min(rows, max_chunk_rows)
        chunk_rows = min(rows, n_rows)
    elif memory_limit is not None and chunk_rows > room:
        raise NsgenError(f"--chunk-size {chunk_rows} does not fit --memory-limit "
                         f"{limit / 2**20:.0f}MiB (at most {max(room, 0)} rows"
                         f"{f' plus {2 * halo} halo rows' if halo else ''}); lower "
                         f"--chunk-size or raise --memory-limit")
    return Sizing(workers=min(n_workers, slots), chunk_rows=max(1, min(chunk_rows, n_rows)),
                  slots=slots, memory_limit=limit)
