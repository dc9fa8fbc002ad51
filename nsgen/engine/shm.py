"""The engine's POSIX shared-memory segments: naming, attaching without the resource
tracker, faulting in, sweeping a dead run's leftovers, and the ``/dev/shm`` space check."""

from __future__ import annotations

import os
import sys
from multiprocessing import shared_memory
from pathlib import Path
from typing import Any, Sequence

from nsgen.errors import NsgenError

SHM_PREFIX = "nsgen-"

_MADV_POPULATE_WRITE = 23   # Linux >= 5.14; not exported by Python's mmap module


def populate(seg: shared_memory.SharedMemory) -> None:
    """Fault a segment's pages in with one call (page faults are costly in some sandboxes)."""
    try:
        seg._mmap.madvise(_MADV_POPULATE_WRITE)  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        pass


def attach(name: str) -> shared_memory.SharedMemory:
    """Map an existing segment without registering it with the resource tracker.

    Before Python 3.13 attaching registers the segment as if this process owned it; the
    registration can reach the tracker after the main process unlinked and unregistered
    the segment (a stopped run), which then warns of "leaked" segments at shutdown. The
    main process alone registers (and, killed, has the tracker unlink) its segments.
    """
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name=name, track=False)
    from multiprocessing import resource_tracker
    register = resource_tracker.register
    resource_tracker.register = lambda *args, **kwargs: None
    try:
        return shared_memory.SharedMemory(name=name)
    finally:
        resource_tracker.register = register


class Attached:
    """A child's mappings of the run's segments, kept while their names stay in use.

    A segment is faulted in (:func:`populate`) the first time this process uses it, not
    when it is created: the reader faults each slot in just before it first writes it,
    in parallel with the workers' :meth:`Stage.prepare`, instead of the main process
    faulting every slot in before the stage may start (first touch of fresh memory is
    the largest fixed cost of a run in some virtual machines); a worker then only maps
    pages that exist already.
    """

    def __init__(self) -> None:
        self.by_name: dict[str, shared_memory.SharedMemory] = {}
        self.faulted: set[str] = set()

    def use(self, names: Sequence[str]) -> list[shared_memory.SharedMemory]:
        for name in list(self.by_name):
            if name not in names:
                self.by_name.pop(name).close()
                self.faulted.discard(name)
        for name in names:
            if name not in self.by_name:
                self.by_name[name] = attach(name)
        return [self.by_name[n] for n in names]

    def buffer(self, seg: shared_memory.SharedMemory) -> Any:
        """``seg.buf``, faulted in on this process's first use of the segment."""
        if seg.name not in self.faulted:
            populate(seg)
            self.faulted.add(seg.name)
        return seg.buf


def sweep_stale_segments(shm_dir: Path = Path("/dev/shm")) -> int:
    """Unlink ``nsgen-<pid>-*`` segments whose creating process no longer exists."""
    n = 0
    try:
        entries = list(shm_dir.iterdir())
    except OSError:
        return 0
    for p in entries:
        if not p.name.startswith(SHM_PREFIX):
            continue
        try:
            pid = int(p.name[len(SHM_PREFIX):].split("-")[0])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        try:
            p.unlink()
            n += 1
        except OSError:
            pass
    return n


def check_shm_space(nbytes: int, shm_dir: Path = Path("/dev/shm")) -> None:
    """Refuse to start a stage whose slots do not fit in the shared-memory file system.

    Slots are faulted in lazily, so a ``/dev/shm`` that is too small (64 MB in a default
    Docker container) would otherwise kill the reader with SIGBUS mid-run.
    """
    try:
        st = os.statvfs(shm_dir)
    except OSError:  # pragma: no cover - no /dev/shm to ask: let shared_memory decide
        return
    free = st.f_bavail * st.f_frsize
    if nbytes > free:
        raise NsgenError(
            f"shared memory {shm_dir} has {free / 2**20:.0f} MiB free but this stage needs "
            f"{nbytes / 2**20:.0f} MiB of slots; lower --memory-limit or --chunk-size, or "
            f"give {shm_dir} more space (docker run --shm-size=...)")

