"""Resources of ``nsgen submit`` that fit the cluster, and pending reasons that never clear.

The batch script's default resources (:data:`DEFAULT_DIRECTIVES`) are capped to the
largest node of the partition, as ``sinfo`` reports it (:func:`fitted_directives`), so
that a job with the defaults can start on a small cluster. While ``nsgen submit --wait``
waits, :func:`pending_reasons` and :func:`hopeless` tell a wait that will end from one
that never will.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

#: default resources, overridable on the sbatch command line
DEFAULT_DIRECTIVES: tuple[str, ...] = (
    "--job-name=nsgen",
    "--cpus-per-task=4",
    "--mem-per-cpu=2G",
    "--open-mode=append",
    "--requeue",
)


#: pending reasons that never clear by waiting (the request cannot be met as it is)
HOPELESS = frozenset({"PartitionConfig", "PartitionNodeLimit", "PartitionTimeLimit",
                      "BadConstraints", "InvalidAccount", "InvalidQOS", "PartitionDown",
                      "PartitionInactive", "QOSMaxCpuPerJobLimit", "QOSMaxMemoryPerJob"})


def partition_of(sbatch_args: Sequence[str]) -> str | None:
    """The partition the sbatch options ask for, or None (the default partition)."""
    for i, a in enumerate(sbatch_args):
        if a in ("--partition", "-p") and i + 1 < len(sbatch_args):
            return sbatch_args[i + 1]
        if a.startswith("--partition="):
            return a.split("=", 1)[1]
        if a.startswith("-p") and len(a) > 2 and not a.startswith("--"):
            return a[2:]
    return None


def partition_resources(partition: str | None) -> tuple[str, int, int] | None:
    """``(partition, CPUs, memory MB)`` of the largest node of the partition (the
    default one if None), from ``sinfo``; None when sinfo is missing or says nothing."""
    if shutil.which("sinfo") is None:
        return None
    r = subprocess.run(["sinfo", "-h", "-o", "%P %c %m"], capture_output=True, text=True, check=False)
    best: tuple[str, int, int] | None = None
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        name, default = parts[0].rstrip("*"), parts[0].endswith("*")
        if (partition is None and not default) or (partition is not None and name != partition):
            continue
        mem = int(parts[2].rstrip("+")) if parts[2].rstrip("+").isdigit() else 0
        if best is None or int(parts[1]) > best[1]:
            best = (name, int(parts[1]), mem)
    return best


def fitted_directives(resources: tuple[str, int, int] | None,
                      sbatch_args: Sequence[str] = ()) -> tuple[str, ...]:
    """:data:`DEFAULT_DIRECTIVES` capped to what a node of the partition has; no
    ``--mem-per-cpu`` when the sbatch options ask for memory another way (sbatch refuses
    two memory options).

    Examples
    --------
    >>> [d for d in fitted_directives(("debug", 2, 3000)) if "cpu" in d]
    ['--cpus-per-task=2', '--mem-per-cpu=1500M']
    >>> fitted_directives(None) == DEFAULT_DIRECTIVES
    True
    >>> any("mem" in d for d in fitted_directives(None, ["--mem=8G"]))
    False
    """
    other_mem = any(a.split("=")[0] in ("--mem", "--mem-per-gpu") for a in sbatch_args)
    if resources is None:
        return tuple(d for d in DEFAULT_DIRECTIVES
                     if not (other_mem and d.startswith("--mem-per-cpu=")))
    _, cpus, mem_mb = resources
    if other_mem:
        mem_mb = 0
    cpus = max(1, min(4, cpus))
    out = []
    for d in DEFAULT_DIRECTIVES:
        if d.startswith("--cpus-per-task="):
            d = f"--cpus-per-task={cpus}"
        elif d.startswith("--mem-per-cpu="):
            if mem_mb <= 1:        # memory not configured: do not ask for any
                continue
            d = f"--mem-per-cpu={min(2048, mem_mb // cpus)}M"
        out.append(d)
    return tuple(out)


def pending_reasons(job_id: str) -> dict[str, str]:
    """Task id (or range) -> pending reason, from ``squeue``."""
    r = subprocess.run(["squeue", "-h", "-j", job_id, "-t", "PENDING", "-o", "%i %r"],
                       capture_output=True, text=True, check=False)
    return dict(line.split(None, 1) for line in r.stdout.splitlines() if " " in line.strip())


def hopeless(reason: str, partition: str | None = None) -> bool:
    """True for a pending reason that waiting never clears: :data:`HOPELESS`, or
    ``ReqNodeNotAvail`` naming every node of the partition."""
    name = reason.split(",")[0].strip()
    if name in HOPELESS:
        return True
    if name != "ReqNodeNotAvail" or "UnavailableNodes:" not in reason:
        return False
    listed = reason.split("UnavailableNodes:", 1)[1].strip()
    args = ["sinfo", "-h", "-o", "%N"] + (["-p", partition] if partition else [])
    nodes = subprocess.run(args, capture_output=True, text=True, check=False).stdout.split()

    def expand(text: str) -> set[str]:
        r = subprocess.run(["scontrol", "show", "hostnames", text], capture_output=True, text=True, check=False)
        return set(r.stdout.split())

    return bool(nodes) and all(expand(n) <= expand(listed) for n in nodes)
